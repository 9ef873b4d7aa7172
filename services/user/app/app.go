// Package app wires the user service from its settings: the database, the
// domain service, the audit trail and health. cmd/user serves it on its own
// listeners; a combined binary also registers it in-process.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
	"github.com/moreline/moreid/services/user/internal/pgstore"
	"github.com/moreline/moreid/services/user/internal/server"
	"github.com/moreline/moreid/services/user/internal/user"
)

// DefaultAvatar is the avatar of users who have not set one.
const DefaultAvatar = "https://more.jsoftstudio.top/uploads/images/default/avatar.svg"

// Settings are the user service's configuration.
type Settings struct {
	DSN           string
	OwnerDSN      string // migrations and grants; "" when DSN's role applies them
	Addr          string
	AdminAddr     string
	DefaultAvatar string
	Argon2        user.Params
	Concurrency   int
	// CacheSize profiles are kept in memory for at most CacheTTL; 0
	// turns the cache off.
	CacheSize int
	CacheTTL  time.Duration
	// PgTimeout bounds each Postgres call (MOREID_POSTGRES_TIMEOUT).
	PgTimeout time.Duration
}

// ReadSettings reads the MOREID_* variables of the user service, recording
// bad values in r (the caller checks r.Err once it has read everything).
func ReadSettings(r *config.Reader) Settings {
	s := Settings{
		DSN:           pgdb.DSN(r),
		OwnerDSN:      pgdb.OwnerDSN(r),
		Addr:          r.String("MOREID_USER_ADDR", "127.0.0.1:9091"),
		AdminAddr:     r.String(grpcx.EnvUserAdminAddr, grpcx.DefaultUserAdminAddr),
		DefaultAvatar: r.String("MOREID_DEFAULT_AVATAR_URL", DefaultAvatar),
		Argon2: user.Params{
			MemoryKiB: uint32(r.Int("MOREID_ARGON2_MEMORY_KIB", 47104, 8)),
			Time:      uint32(r.Int("MOREID_ARGON2_TIME", 1, 1)),
		},
		Concurrency: r.Int("MOREID_ARGON2_CONCURRENCY", runtime.NumCPU(), 1),
		CacheSize:   r.Int("MOREID_USER_CACHE_SIZE", 100_000, 0),
		CacheTTL:    r.Duration("MOREID_USER_CACHE_TTL", 30*time.Second),
	}
	s.PgTimeout = pgdb.Timeout(r)
	threads := r.Int("MOREID_ARGON2_THREADS", 1, 1)
	if threads > 255 {
		r.Fail("MOREID_ARGON2_THREADS", strconv.Itoa(threads), errors.New("must be at most 255"))
		threads = 1
	}
	s.Argon2.Threads = uint8(threads)
	if u, err := url.Parse(s.DefaultAvatar); err != nil || !u.IsAbs() || u.Host == "" {
		r.Fail("MOREID_DEFAULT_AVATAR_URL", s.DefaultAvatar, errors.New("must be an absolute URL"))
	}
	return s
}

// Schemas are the user service's tables and the audit trail's, in the
// order they are applied: what New migrates, and `moreid migrate` with it.
func Schemas() []pgdb.Schema { return []pgdb.Schema{pgstore.Schema, audit.Schema} }

// App is the wired user service.
type App struct {
	svc    *user.Service
	trail  *audit.Writer
	health *grpcx.Health
	sqlDB  *sql.DB
	units  []run.Unit
}

// New opens the database (applying the migrations) and wires the service,
// recording its metrics and traces in tel. Close releases the database.
func New(ctx context.Context, log *slog.Logger, tel *telemetry.Telemetry, cfg Settings) (*App, error) {
	// The pool stays well under Postgres's default max_connections even
	// with several replicas of each service.
	db, sqlDB, err := pgdb.OpenMigrated(ctx, cfg.DSN, cfg.OwnerDSN, pgdb.Options{MaxOpenConns: 20, Telemetry: tel}, Schemas()...)
	if err != nil {
		return nil, err
	}
	audit.WarnIfOwner(ctx, db, log)
	hasher, err := user.NewHasher(cfg.Argon2, cfg.Concurrency)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("configuration: %w", err)
	}
	a := &App{
		trail: audit.NewWriter(db, "user", log, audit.Metrics(tel)),
		health: grpcx.NewHealth(map[string]grpcx.Probe{
			"postgres": func(ctx context.Context) error { return sqlDB.PingContext(ctx) },
		}),
		sqlDB: sqlDB,
	}
	a.units = append(a.units, a.trail.Unit())
	// The profile cache is only as good as its invalidation feed: the
	// listener turns it on once Postgres's change notifications flow.
	cache := user.NewProfileCache(cfg.CacheTTL, cfg.CacheSize)
	if cache != nil {
		a.units = append(a.units, pgdb.NewListener(cfg.DSN, pgstore.ChangesChannel, cache.Forget, cache.SetLive, log, tel).Unit())
	}
	a.svc = user.NewService(pgstore.New(db, cfg.PgTimeout), hasher, cache, cfg.DefaultAvatar, log, tel)
	return a, nil
}

// Register registers UserService and health (the internal listener's
// services) on r.
func (a *App) Register(r grpc.ServiceRegistrar) { server.RegisterInternal(r, a.svc, a.health) }

// RegisterAdmin registers UserAdminService and health on r.
func (a *App) RegisterAdmin(r grpc.ServiceRegistrar) {
	server.RegisterAdmin(r, a.svc, a.health, a.trail)
}

// Units are the background units to stop after the listeners: the audit
// trail, which flushes what their final calls recorded, and the profile
// cache's change listener.
func (a *App) Units() []run.Unit { return a.units }

// Close releases the database.
func (a *App) Close() error { return a.sqlDB.Close() }
