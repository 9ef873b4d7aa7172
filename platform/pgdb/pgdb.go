// Package pgdb opens Moreid's Postgres database through gorm: it creates the
// database when it is missing and applies a service's versioned migrations
// (pressly/goose, SQL files embedded in the service binary) before serving.
package pgdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/moreline/moreid/platform/config"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	gormtracing "gorm.io/plugin/opentelemetry/tracing"

	"github.com/moreline/moreid/platform/telemetry"
)

// DSN reads MOREID_POSTGRES_DSN, defaulting to the local development
// server's moreid database.
func DSN(r *config.Reader) string {
	return r.String("MOREID_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/moreid?sslmode=disable")
}

// DefaultTimeout is MOREID_POSTGRES_TIMEOUT's default. A statement of the
// services is one indexed lookup or write (about a millisecond), so 700 ms
// means Postgres is hung or unreachable: the caller gets 503 then instead
// of holding the request. 700 ms, not a second, so that a request that
// meets the key cache's quick fallback (250 ms) and then one hung call
// still answers within a second (SPEC section 5, issue 11).
const DefaultTimeout = 700 * time.Millisecond

// Timeout reads MOREID_POSTGRES_TIMEOUT, the longest one Postgres call may
// take, waiting for a pooled connection included.
func Timeout(r *config.Reader) time.Duration {
	return r.Duration("MOREID_POSTGRES_TIMEOUT", DefaultTimeout)
}

// Bound returns db bound to ctx with at most timeout left, for one call:
// the deadline covers taking a connection from the pool (or opening one)
// and the statement. Keep CPU work, such as hashing a password, out of it.
// Call cancel when the call is done.
func Bound(ctx context.Context, db *gorm.DB, timeout time.Duration) (*gorm.DB, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return db.WithContext(ctx), cancel
}

// Options tune the connection pool.
type Options struct {
	// MaxOpenConns bounds the pool; every connection it opens is kept idle
	// for reuse (database/sql keeps only 2 by default). With fewer idle
	// than open, a burst of concurrent requests closes its surplus
	// connections and the next burst opens them again: each a Postgres
	// backend fork plus authentication. That churn held user/info at 0.31×
	// the Postgres baseline; keeping them gave 0.52× (BENCHMARKS.md).
	MaxOpenConns int
	// Existing refuses to create a missing database: for a tool (moreidctl)
	// whose mistyped DSN must not leave an empty database behind.
	Existing bool
	// Telemetry counts failed statements and, when tracing is on, traces
	// every statement; nil does neither (a tool, a test).
	Telemetry *telemetry.Telemetry
}

// Open connects to dsn (a postgres:// URL), creating the database if it does
// not exist, and returns a gorm handle whose pool is bounded by opts.
func Open(ctx context.Context, dsn string, opts Options) (*gorm.DB, error) {
	if !opts.Existing {
		if err := ensureDatabase(ctx, dsn); err != nil {
			return nil, err
		}
	}
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{
		Logger:                 logger.Discard, // queries carry secrets' hashes and profile data: not for logs
		SkipDefaultTransaction: true,
		TranslateError:         true,
	})
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := instrument(db, opts.Telemetry); err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	if opts.MaxOpenConns > 0 {
		sqlDB.SetMaxOpenConns(opts.MaxOpenConns)
		sqlDB.SetMaxIdleConns(opts.MaxOpenConns)
	}
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		return nil, fmt.Errorf("ping postgres: %w", err)
	}
	return db, nil
}

// Migration applies one schema's pending migrations (a service's own, or
// the audit trail's).
type Migration func(ctx context.Context, db *gorm.DB) error

// Embedded is the Migration of a schema whose goose SQL files are in the
// directory dir of fsys (usually a service's go:embed FS), recording
// versions in versionTable as Migrate does.
func Embedded(fsys fs.FS, dir, versionTable string) Migration {
	return func(ctx context.Context, db *gorm.DB) error {
		sub, err := fs.Sub(fsys, dir)
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return fmt.Errorf("postgres pool: %w", err)
		}
		return Migrate(ctx, sqlDB, sub, versionTable)
	}
}

// Migrate applies every pending migration in fsys (goose SQL files at its
// root), recording versions in the table named versionTable so that each
// service keeps its own history in a shared database. A Postgres advisory
// lock makes concurrent replicas apply them once.
func Migrate(ctx context.Context, db *sql.DB, fsys fs.FS, versionTable string) error {
	store, err := database.NewStore(database.DialectPostgres, versionTable)
	if err != nil {
		return fmt.Errorf("migration store: %w", err)
	}
	// Poll the lock every second (goose's default is 5 s): replicas and the
	// three services sharing the audit table start without waiting long.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(versionTable)), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider("", db, fsys,
		goose.WithStore(store),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// lockID gives each service's migrations their own advisory lock.
func lockID(name string) int64 {
	var h int64 = 5887230 // goose's default id, shifted per table
	for _, c := range name {
		h = h*31 + int64(c)
	}
	return h
}

// ensureDatabase creates the database named in dsn when it does not exist,
// connecting to the server's "postgres" database to do so. It tries the
// database itself first, so that a role that may not create databases (the
// serving role) opens an existing one without asking for what it lacks.
func ensureDatabase(ctx context.Context, dsn string) error {
	u, err := parseDSN(dsn)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" {
		return nil
	}
	conn, err := pgconn.Connect(ctx, dsn)
	if err == nil {
		return conn.Close(context.Background())
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name: no such database
		return fmt.Errorf("connect to postgres: %w", redact(err, u))
	}
	admin := *u
	admin.Path = "/postgres"
	conn, err = pgconn.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to postgres server: %w", redact(err, u))
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+quoteIdent(name)).ReadAll()
	if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505")) {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// redact keeps a DSN's password out of an error message.
// parseDSN checks that dsn is a postgres:// URL; redact needs its parts.
func parseDSN(dsn string) (*url.URL, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("MOREID_POSTGRES_DSN must be a postgres:// URL")
	}
	return u, nil
}

func redact(err error, u *url.URL) error {
	if pw, ok := u.User.Password(); ok && pw != "" {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}

// instrument counts statements that failed because Postgres was unreachable
// in moreid_store_errors_total (answers such as a constraint violation or
// "record not found" are not store failures) and, when tracing is on,
// traces every statement.
func instrument(db *gorm.DB, tel *telemetry.Telemetry) error {
	if tel == nil {
		return nil
	}
	count := func(tx *gorm.DB) {
		if tx.Error != nil && Unreachable(tx.Error) {
			tel.StoreError(telemetry.Postgres)
		}
	}
	cb := db.Callback()
	for name, err := range map[string]error{
		"create": cb.Create().After("*").Register("moreid:errors", count),
		"query":  cb.Query().After("*").Register("moreid:errors", count),
		"update": cb.Update().After("*").Register("moreid:errors", count),
		"delete": cb.Delete().After("*").Register("moreid:errors", count),
		"row":    cb.Row().After("*").Register("moreid:errors", count),
		"raw":    cb.Raw().After("*").Register("moreid:errors", count),
	} {
		if err != nil {
			return fmt.Errorf("postgres %s callback: %w", name, err)
		}
	}
	if tp := tel.TracerProvider(); tp != nil {
		if err := db.Use(gormtracing.NewPlugin(gormtracing.WithTracerProvider(tp), gormtracing.WithoutMetrics(), gormtracing.WithoutQueryVariables())); err != nil {
			return fmt.Errorf("postgres tracing: %w", err)
		}
	}
	return nil
}
