// Command auth serves AuthService, ConfirmationService and TokenService (the
// sign-in flows over Redis, with API keys checked by the apikey service and
// users by the user service) and, on a separate admin listener,
// AuthAdminService and the audit trail's AuditAdminService. Security events
// go to the audit trail in Postgres, written in the background.
package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	auditv1 "github.com/moreline/moreid/proto/gen/go/moreid/audit/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
	"github.com/moreline/moreid/services/auth/internal/keycache"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
	"github.com/moreline/moreid/services/auth/internal/remote"
	"github.com/moreline/moreid/services/auth/internal/server"
)

// keyCacheEntries bounds the ValidateKey cache: one entry per (key, client
// IP) seen recently (kept up to MOREID_KEY_CACHE_STALE for outages).
const keyCacheEntries = 10000

type settings struct {
	addr       string
	adminAddr  string
	userAddr   string
	apikeyAddr string
	redisURL   string
	pgDSN      string
	prefix     string
	tokenTTL   time.Duration
	sessionTTL time.Duration
	limits     oauth.Limits
	keyStale   time.Duration
	gateways   []netip.Prefix
	drain      time.Duration
}

func readSettings(r *config.Reader) (settings, error) {
	s := settings{
		addr:       r.String("MOREID_AUTH_ADDR", "127.0.0.1:9090"),
		adminAddr:  r.String("MOREID_AUTH_ADMIN_ADDR", "127.0.0.1:9190"),
		userAddr:   r.String("MOREID_USER_ADDR", "127.0.0.1:9091"),
		apikeyAddr: r.String("MOREID_APIKEY_ADDR", "127.0.0.1:9092"),
		redisURL:   r.String("MOREID_REDIS_URL", "redis://127.0.0.1:6379/0"),
		pgDSN:      r.String("MOREID_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/moreid?sslmode=disable"),
		prefix:     r.String("MOREID_REDIS_PREFIX", "moreid:"),
		tokenTTL:   r.Duration("MOREID_ACCESS_TOKEN_TTL", 3600*time.Second),
		sessionTTL: r.Duration("MOREID_SESSION_TTL", 24*time.Hour),
		limits: oauth.Limits{
			PerUser: r.Int("MOREID_LOGIN_MAX_FAILURES_PER_USER", oauth.DefaultLimits.PerUser, 1),
			PerIP:   r.Int("MOREID_LOGIN_MAX_FAILURES_PER_IP", oauth.DefaultLimits.PerIP, 1),
			Window:  r.Duration("MOREID_LOGIN_FAILURE_WINDOW", oauth.DefaultLimits.Window),
		},
		keyStale: r.Duration("MOREID_KEY_CACHE_STALE", keycache.DefaultStale),
		gateways: r.Prefixes("MOREID_GATEWAY_CIDRS", []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		}),
		drain: r.Duration("MOREID_DRAIN_TIMEOUT", 10*time.Second),
	}
	return s, r.Err()
}

func main() {
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, "auth:", err)
		os.Exit(1)
	}
}

func serve() error {
	log := logging.New("auth")
	cfg, err := readSettings(config.FromEnv())
	if err != nil {
		return err
	}
	ctx, stop := run.SignalContext()
	defer stop()

	tel, err := telemetry.Setup(ctx, config.FromEnv(), "auth")
	if err != nil {
		return err
	}
	defer tel.Close(context.Background())

	rdb, err := redisdb.Open(ctx, cfg.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	userConn, err := grpcx.Dial(cfg.userAddr)
	if err != nil {
		return err
	}
	defer userConn.Close()
	apikeyConn, err := grpcx.Dial(cfg.apikeyAddr)
	if err != nil {
		return err
	}
	defer apikeyConn.Close()

	// Postgres holds only the audit trail here. It is needed to start (the
	// migrations), not to serve: the writer queues and retries through an
	// outage, and no health probe of auth depends on it.
	db, sqlDB, err := pgdb.OpenMigrated(ctx, cfg.pgDSN, pgdb.Options{MaxOpenConns: 5, MaxIdleConns: 2}, audit.Migrate)
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	trail := audit.NewWriter(db, "auth", log)

	ttl := oauth.Lifetimes{Token: cfg.tokenTTL, Session: cfg.sessionTTL}
	flows := oauth.New(redisstore.New(rdb, cfg.prefix), remote.NewUsers(userv1.NewUserServiceClient(userConn)), ttl, cfg.limits, trail, log)
	keys := keycache.New(remote.NewKeys(apikeyv1.NewAPIKeyServiceClient(apikeyConn)), keycache.MaxTTL, cfg.keyStale, keyCacheEntries)

	health := grpcx.NewHealth(map[string]grpcx.Probe{
		"redis":  func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		"user":   grpcx.ServiceProbe(healthpb.NewHealthClient(userConn)),
		"apikey": grpcx.ServiceProbe(healthpb.NewHealthClient(apikeyConn)),
	})
	api := server.New(flows)

	// The public listener: AuthService behind the key interceptor, the
	// keyless ConfirmationService and TokenService.
	srv := grpc.NewServer(grpcx.ServerOptions(log, server.KeyInterceptor(keys, cfg.gateways))...)
	api.Register(srv)
	healthpb.RegisterHealthServer(srv, health)

	// The admin listener: operator RPCs, never mapped by the gateway.
	adminSrv := grpc.NewServer(grpcx.ServerOptions(log)...)
	api.RegisterAdmin(adminSrv)
	auditv1.RegisterAuditAdminServiceServer(adminSrv, audit.NewAdminServer(db))
	healthpb.RegisterHealthServer(adminSrv, health)

	unit, err := run.GRPC("auth", cfg.addr, srv)
	if err != nil {
		return err
	}
	adminUnit, err := run.GRPC("auth admin", cfg.adminAddr, adminSrv)
	if err != nil {
		unit.Stop(context.Background())
		return err
	}
	// The trail comes after the listeners: stopped last, it flushes what
	// their final calls recorded.
	return run.Group(ctx, log, cfg.drain, unit, adminUnit, trail.Unit(), tel.Metrics)
}
