// Command user serves the user directory: UserService on the internal
// listener, UserAdminService on the admin listener, both with gRPC health.
// With -migrate-only it applies the database migrations and exits, for a
// Kubernetes migration Job.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
	"github.com/moreline/moreid/services/user/internal/pgstore"
	"github.com/moreline/moreid/services/user/internal/server"
	"github.com/moreline/moreid/services/user/internal/user"
)

const defaultAvatar = "https://more.jsoftstudio.top/uploads/images/default/avatar.svg"

type settings struct {
	dsn           string
	addr          string
	adminAddr     string
	defaultAvatar string
	argon2        user.Params
	concurrency   int
	drain         time.Duration
}

func readSettings() (settings, error) {
	r := config.FromEnv()
	s := settings{
		dsn:           r.String("MOREID_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/moreid?sslmode=disable"),
		addr:          r.String("MOREID_USER_ADDR", "127.0.0.1:9091"),
		adminAddr:     r.String("MOREID_USER_ADMIN_ADDR", "127.0.0.1:9191"),
		defaultAvatar: r.String("MOREID_DEFAULT_AVATAR_URL", defaultAvatar),
		argon2: user.Params{
			MemoryKiB: uint32(r.Int("MOREID_ARGON2_MEMORY_KIB", 47104, 8)),
			Time:      uint32(r.Int("MOREID_ARGON2_TIME", 1, 1)),
		},
		concurrency: r.Int("MOREID_ARGON2_CONCURRENCY", runtime.NumCPU(), 1),
		drain:       r.Duration("MOREID_DRAIN_TIMEOUT", 10*time.Second),
	}
	threads := r.Int("MOREID_ARGON2_THREADS", 1, 1)
	if err := r.Err(); err != nil {
		return s, err
	}
	if threads > 255 {
		return s, fmt.Errorf("configuration: MOREID_ARGON2_THREADS=%d: must be at most 255", threads)
	}
	s.argon2.Threads = uint8(threads)
	if u, err := url.Parse(s.defaultAvatar); err != nil || !u.IsAbs() || u.Host == "" {
		return s, fmt.Errorf("configuration: MOREID_DEFAULT_AVATAR_URL=%q: must be an absolute URL", s.defaultAvatar)
	}
	return s, nil
}

func main() {
	migrateOnly := flag.Bool("migrate-only", false, "apply the database migrations and exit")
	flag.Parse()
	log := logging.New("user")
	if err := serve(log, *migrateOnly); err != nil {
		log.Error("exiting", "error", err.Error())
		os.Exit(1)
	}
}

func serve(log *slog.Logger, migrateOnly bool) error {
	cfg, err := readSettings()
	if err != nil {
		return err
	}
	ctx, stop := run.SignalContext()
	defer stop()

	tel, err := telemetry.Setup(ctx, config.FromEnv(), "user")
	if err != nil {
		return err
	}
	defer tel.Close(context.Background())

	// The pool stays well under Postgres's default max_connections even
	// with several replicas of each service.
	db, sqlDB, err := pgdb.OpenMigrated(ctx, cfg.dsn, pgdb.Options{MaxOpenConns: 20, MaxIdleConns: 10}, pgstore.Migrate, audit.Migrate)
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	if migrateOnly {
		log.Info("migrations applied")
		return nil
	}

	hasher, err := user.NewHasher(cfg.argon2, cfg.concurrency)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	svc := user.NewService(pgstore.New(db), hasher, cfg.defaultAvatar, log)
	trail := audit.NewWriter(db, "user", log)
	health := grpcx.NewHealth(map[string]grpcx.Probe{
		"postgres": func(ctx context.Context) error { return sqlDB.PingContext(ctx) },
	})

	internal, err := run.GRPC("user", cfg.addr, server.NewInternal(log, svc, health))
	if err != nil {
		return err
	}
	admin, err := run.GRPC("user-admin", cfg.adminAddr, server.NewAdmin(log, svc, health, trail))
	if err != nil {
		return err
	}
	// The trail comes after the listeners: stopped last, it flushes what
	// their final calls recorded.
	return run.Group(ctx, log, cfg.drain, internal, admin, trail.Unit(), tel.Metrics)
}
