// Command apikey serves the API-key service: APIKeyService (with health) on
// the internal listener and APIKeyAdminService (with health) on the admin
// listener, over Postgres; admin changes go to the audit trail.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	"github.com/moreline/moreid/services/apikey/internal/apikey"
	"github.com/moreline/moreid/services/apikey/internal/pgstore"
	"github.com/moreline/moreid/services/apikey/internal/server"
)

type settings struct {
	postgresDSN string
	addr        string
	adminAddr   string
	drain       time.Duration
}

func readSettings(r *config.Reader) (settings, error) {
	s := settings{
		postgresDSN: r.String("MOREID_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/moreid?sslmode=disable"),
		addr:        r.String("MOREID_APIKEY_ADDR", "127.0.0.1:9092"),
		adminAddr:   r.String("MOREID_APIKEY_ADMIN_ADDR", "127.0.0.1:9192"),
		drain:       r.Duration("MOREID_DRAIN_TIMEOUT", 10*time.Second),
	}
	return s, r.Err()
}

func main() {
	migrateOnly := flag.Bool("migrate-only", false, "apply database migrations and exit")
	flag.Parse()
	log := logging.New("apikey")
	if err := serve(log, *migrateOnly); err != nil {
		log.Error("apikey stopped", "error", err.Error())
		os.Exit(1)
	}
}

func serve(log *slog.Logger, migrateOnly bool) error {
	cfg, err := readSettings(config.FromEnv())
	if err != nil {
		return err
	}
	ctx, stop := run.SignalContext()
	defer stop()

	tel, err := telemetry.Setup(ctx, config.FromEnv(), "apikey")
	if err != nil {
		return err
	}
	defer tel.Close(context.Background())

	// Every call is one short indexed statement; 20 connections serve a busy
	// replica without letting many replicas exhaust the server.
	db, sqlDB, err := pgdb.OpenMigrated(ctx, cfg.postgresDSN, pgdb.Options{MaxOpenConns: 20, MaxIdleConns: 20}, pgstore.Migrate, audit.Migrate)
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	if migrateOnly {
		log.Info("migrations applied")
		return nil
	}

	svc := apikey.New(pgstore.New(db))
	trail := audit.NewWriter(db, "apikey", log)
	health := grpcx.NewHealth(map[string]grpcx.Probe{
		"postgres": func(ctx context.Context) error { return sqlDB.PingContext(ctx) },
	})

	internal := grpc.NewServer(grpcx.ServerOptions(log)...)
	apikeyv1.RegisterAPIKeyServiceServer(internal, server.NewKeys(svc))
	healthpb.RegisterHealthServer(internal, health)

	admin := grpc.NewServer(grpcx.ServerOptions(log)...)
	apikeyv1.RegisterAPIKeyAdminServiceServer(admin, server.NewAdmin(svc, trail))
	healthpb.RegisterHealthServer(admin, health)

	internalUnit, err := run.GRPC("apikey", cfg.addr, internal)
	if err != nil {
		return err
	}
	adminUnit, err := run.GRPC("apikey-admin", cfg.adminAddr, admin)
	if err != nil {
		return err
	}
	// The trail comes after the listeners: stopped last, it flushes what
	// their final calls recorded.
	return run.Group(ctx, log, cfg.drain, internalUnit, adminUnit, trail.Unit(), tel.Metrics)
}
