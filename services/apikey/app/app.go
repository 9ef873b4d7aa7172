// Package app wires the API-key service from its settings: the database,
// the key service, the audit trail and health. cmd/apikey serves it on its
// own listeners; a combined binary also registers it in-process.
package app

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	"github.com/moreline/moreid/services/apikey/internal/apikey"
	"github.com/moreline/moreid/services/apikey/internal/pgstore"
	"github.com/moreline/moreid/services/apikey/internal/server"
)

// Settings are the API-key service's configuration.
type Settings struct {
	PostgresDSN string
	OwnerDSN    string // migrations and grants; "" when PostgresDSN's role applies them
	Addr        string
	AdminAddr   string
	// PgTimeout bounds each Postgres call (MOREID_POSTGRES_TIMEOUT).
	PgTimeout time.Duration
}

// ReadSettings reads the MOREID_* variables of the API-key service,
// recording bad values in r (the caller checks r.Err once it has read
// everything).
func ReadSettings(r *config.Reader) Settings {
	return Settings{
		PostgresDSN: pgdb.DSN(r),
		OwnerDSN:    pgdb.OwnerDSN(r),
		Addr:        r.String("MOREID_APIKEY_ADDR", "127.0.0.1:9092"),
		AdminAddr:   r.String(grpcx.EnvAPIKeyAdminAddr, grpcx.DefaultAPIKeyAdminAddr),
		PgTimeout:   pgdb.Timeout(r),
	}
}

// Schemas are the apikey service's tables and the audit trail's, in the
// order they are applied: what New migrates, and `moreid migrate` with it.
func Schemas() []pgdb.Schema { return []pgdb.Schema{pgstore.Schema, audit.Schema} }

// App is the wired API-key service.
type App struct {
	svc    *apikey.Service
	trail  *audit.Writer
	health *grpcx.Health
	sqlDB  *sql.DB
}

// New opens the database (applying the migrations) and wires the service,
// recording its metrics and traces in tel. Close releases the database.
func New(ctx context.Context, log *slog.Logger, tel *telemetry.Telemetry, cfg Settings) (*App, error) {
	// Every call is one short indexed statement; 20 connections serve a busy
	// replica without letting many replicas exhaust the server.
	db, sqlDB, err := pgdb.OpenMigrated(ctx, cfg.PostgresDSN, cfg.OwnerDSN, pgdb.Options{MaxOpenConns: 20, Telemetry: tel}, Schemas()...)
	if err != nil {
		return nil, err
	}
	audit.WarnIfOwner(ctx, db, log)
	return &App{
		svc:   apikey.New(pgstore.New(db, cfg.PgTimeout)),
		trail: audit.NewWriter(db, "apikey", log, audit.Metrics(tel)),
		health: grpcx.NewHealth(map[string]grpcx.Probe{
			"postgres": func(ctx context.Context) error { return sqlDB.PingContext(ctx) },
		}),
		sqlDB: sqlDB,
	}, nil
}

// Register registers APIKeyService and health (the internal listener's
// services) on r.
func (a *App) Register(r grpc.ServiceRegistrar) {
	apikeyv1.RegisterAPIKeyServiceServer(r, server.NewKeys(a.svc))
	healthpb.RegisterHealthServer(r, a.health)
}

// RegisterAdmin registers APIKeyAdminService and health on r.
func (a *App) RegisterAdmin(r grpc.ServiceRegistrar) {
	apikeyv1.RegisterAPIKeyAdminServiceServer(r, server.NewAdmin(a.svc, a.trail))
	healthpb.RegisterHealthServer(r, a.health)
}

// Units are the background units to stop after the listeners: the audit
// trail, which flushes what their final calls recorded.
func (a *App) Units() []run.Unit { return []run.Unit{a.trail.Unit()} }

// Close releases the database.
func (a *App) Close() error { return a.sqlDB.Close() }
