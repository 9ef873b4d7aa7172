// Package app wires the auth service from its settings and its connections
// to the user and apikey services: the Redis flows, the key cache, the audit
// trail and health. cmd/auth serves it on its own listeners; a combined
// binary also registers it in-process, with connections that call user and
// apikey in-process too.
package app

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
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
	"github.com/moreline/moreid/services/auth/internal/signing"
)

// DefaultIssuer is MOREID_ISSUER's default: the gateway of a local suite.
const DefaultIssuer = "http://localhost:8080"

// DefaultSigningKeyPropagation is MOREID_SIGNING_KEY_PROPAGATION's default:
// how long a rotated-in signing key is published before it signs. It must
// cover the caches between a new key and a relying party: auth's own
// (signing.DefaultCacheTTL), the gateway's JWKS cache and the relying
// party's, which the JWKS response's max-age bounds.
const DefaultSigningKeyPropagation = 60 * time.Second

// maxIDTokenTTL is the longest ID token the gateway issues: with the access
// token TTL it bounds how long a retired signing key stays published.
// SignJWT refuses a token whose exp reaches further.
const maxIDTokenTTL = time.Hour

// keyCacheEntries bounds the ValidateKey cache: one entry per (key, client
// IP) seen recently (kept up to MOREID_KEY_CACHE_STALE for outages).
const keyCacheEntries = 10000

// Settings are the auth service's configuration.
type Settings struct {
	Addr       string
	AdminAddr  string
	UserAddr   string
	APIKeyAddr string
	RedisURL   string
	PgDSN      string
	PgOwnerDSN string // migrations and grants; "" when PgDSN's role applies them
	Prefix     string
	TokenTTL   time.Duration
	SessionTTL time.Duration
	RefreshTTL time.Duration // MOREID_REFRESH_TOKEN_TTL
	Limits     oauth.Limits
	KeyRate    int // requests per second per API key, 0: no limit
	KeyStale   time.Duration
	Gateways   []netip.Prefix
	// GatewayNames are the DNS names of the gateways' certificates: with
	// TLS, only a peer presenting one may set the client IP.
	GatewayNames []string

	// RedisTimeout bounds each Redis call (MOREID_REDIS_TIMEOUT).
	RedisTimeout time.Duration

	// Issuer is the OpenID Connect issuer (MOREID_ISSUER): SignJWT signs
	// only tokens naming it.
	Issuer string
	// KEKs seal the signing keys' private parts
	// (MOREID_KEY_ENCRYPTION_KEY); KEKDefault is set when the variable is
	// unset and the documented development KEK is used.
	KEKs       *signing.KEKs
	KEKDefault bool
	// SigningKeyPropagation is how long a rotated-in key is published
	// before it signs (MOREID_SIGNING_KEY_PROPAGATION).
	SigningKeyPropagation time.Duration
}

// ReadSettings reads the MOREID_* variables of the auth service, recording
// bad values in r (the caller checks r.Err once it has read everything).
func ReadSettings(r *config.Reader) Settings {
	s := Settings{
		Addr:       r.String("MOREID_AUTH_ADDR", "127.0.0.1:9090"),
		AdminAddr:  r.String(grpcx.EnvAuthAdminAddr, grpcx.DefaultAuthAdminAddr),
		UserAddr:   r.String("MOREID_USER_ADDR", "127.0.0.1:9091"),
		APIKeyAddr: r.String("MOREID_APIKEY_ADDR", "127.0.0.1:9092"),
		RedisURL:   r.String("MOREID_REDIS_URL", "redis://127.0.0.1:6379/0"),
		PgDSN:      pgdb.DSN(r),
		PgOwnerDSN: pgdb.OwnerDSN(r),
		Prefix:     r.String("MOREID_REDIS_PREFIX", "moreid:"),
		TokenTTL:   r.Duration("MOREID_ACCESS_TOKEN_TTL", 3600*time.Second),
		SessionTTL: r.Duration("MOREID_SESSION_TTL", 24*time.Hour),
		RefreshTTL: r.Duration("MOREID_REFRESH_TOKEN_TTL", oauth.DefaultRefreshTTL),
		Limits: oauth.Limits{
			PerUser:    r.Int("MOREID_LOGIN_MAX_FAILURES_PER_USER", oauth.DefaultLimits.PerUser, 1),
			PerAccount: r.Int("MOREID_LOGIN_MAX_FAILURES_PER_ACCOUNT", oauth.DefaultLimits.PerAccount, 1),
			PerIP:      r.Int("MOREID_LOGIN_MAX_FAILURES_PER_IP", oauth.DefaultLimits.PerIP, 1),
			Window:     r.Duration("MOREID_LOGIN_FAILURE_WINDOW", oauth.DefaultLimits.Window),
			KeyStates:  r.Int("MOREID_KEY_MAX_STATES", 0, 0),
		},
		KeyRate:  r.Int("MOREID_KEY_RATE_LIMIT", 0, 0),
		KeyStale: r.Duration("MOREID_KEY_CACHE_STALE", keycache.DefaultStale),
		Gateways: r.Prefixes("MOREID_GATEWAY_CIDRS", []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		}),
		GatewayNames: names(r.String("MOREID_GATEWAY_NAMES", "")),
		RedisTimeout: redisdb.Timeout(r),

		Issuer:                r.String("MOREID_ISSUER", DefaultIssuer),
		SigningKeyPropagation: r.Duration("MOREID_SIGNING_KEY_PROPAGATION", DefaultSigningKeyPropagation),
	}
	if err := checkIssuer(s.Issuer); err != nil {
		r.Fail("MOREID_ISSUER", s.Issuer, err)
	}
	list := r.String("MOREID_KEY_ENCRYPTION_KEY", "")
	if list == "" {
		list, s.KEKDefault = signing.DevKEK, true
	}
	keks, err := signing.ParseKEKs(list)
	if err != nil {
		// A secret: the error names the variable, never its value.
		r.Fail("MOREID_KEY_ENCRYPTION_KEY", "", err)
	}
	s.KEKs = keks
	return s
}

// checkIssuer accepts what OpenID Connect Discovery allows as an issuer: an
// absolute http(s) URL without query or fragment.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(issuer, "/") {
		return errors.New("must be an absolute http or https URL with no query, fragment or trailing slash")
	}
	return nil
}

// names splits a comma-separated list, dropping empty entries.
func names(list string) []string {
	var out []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// App is the wired auth service.
type App struct {
	api    *server.Server
	keys   []grpc.UnaryServerInterceptor
	trail  *audit.Writer
	health *grpcx.Health
	audit  auditv1.AuditAdminServiceServer
	rdb    redis.UniversalClient
	sqlDB  *sql.DB
}

// Schemas are auth's tables (the signing keys) and the audit trail's, in
// the order they are applied: what New migrates, and `moreid migrate` with
// it.
func Schemas() []pgdb.Schema { return []pgdb.Schema{audit.Schema, signing.Schema} }

// New opens Redis and the audit database (applying its migrations) and
// wires the flows over users and keys, the connections to the user and
// apikey services (network or in-process), recording its metrics and
// traces in tel. Close releases Redis and the database, not the
// connections.
func New(ctx context.Context, log *slog.Logger, tel *telemetry.Telemetry, cfg Settings, users, keys grpc.ClientConnInterface) (*App, error) {
	rdb, err := redisdb.Open(ctx, cfg.RedisURL, cfg.RedisTimeout, tel)
	if err != nil {
		return nil, err
	}
	// Postgres holds the audit trail and the OIDC signing keys here. It is
	// needed to start (the migrations, the first key), not to serve: the
	// writer queues and retries through an outage, the signing keys are
	// served from what was read last, and no health probe of auth depends
	// on it.
	db, sqlDB, err := pgdb.OpenMigrated(ctx, cfg.PgDSN, cfg.PgOwnerDSN, pgdb.Options{MaxOpenConns: 5, Telemetry: tel}, Schemas()...)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	audit.WarnIfOwner(ctx, db, log)
	trail := audit.NewWriter(db, "auth", log, audit.Metrics(tel))

	if cfg.KEKDefault {
		log.Warn("MOREID_KEY_ENCRYPTION_KEY is not set: the OIDC signing keys are sealed with the public development key; set a secret one (base64 of 32 bytes) outside local use")
	}
	signKeys := signing.New(db, signing.Config{
		Rules: signing.Rules{Propagation: cfg.SigningKeyPropagation, Lifetime: max(cfg.TokenTTL, maxIDTokenTTL)},
		KEKs:  cfg.KEKs,
		Clock: time.Now,
	}, log)
	created, err := signKeys.Ensure(ctx)
	if err != nil {
		rdb.Close()
		_ = sqlDB.Close()
		return nil, err
	}
	if created {
		trail.Record(ctx, audit.Event{Event: server.EventSigningKey, Outcome: audit.Success, Detail: "create"})
	}

	ttl := oauth.Lifetimes{Token: cfg.TokenTTL, Session: cfg.SessionTTL, Refresh: cfg.RefreshTTL}
	keyService := remote.NewKeys(apikeyv1.NewAPIKeyServiceClient(keys))
	cache := keycache.New(keyService, keycache.MaxTTL, cfg.KeyStale, keyCacheEntries)
	store := redisstore.New(rdb, cfg.Prefix, cfg.RedisTimeout)
	flows := oauth.New(store, remote.NewUsers(userv1.NewUserServiceClient(users)), remote.NewActiveKeys(cache, keyService), ttl, cfg.Limits, trail, log, tel)
	api := server.New(flows).WithSigning(
		server.NewSigning(signKeys, cfg.Issuer, keyService, cfg.Gateways, cfg.GatewayNames, trail),
		server.NewSigningAdmin(signKeys, trail))
	return &App{
		api:   api,
		keys:  keyChecks(server.KeyInterceptor(cache, cfg.Gateways, cfg.GatewayNames...), store, cfg.KeyRate, tel),
		trail: trail,
		// Ready means Redis answers: with user or apikey down (Postgres
		// down), auth still redeems issued codes and serves tokens, so
		// their state is reported, not part of auth's readiness.
		health: grpcx.NewHealth(map[string]grpcx.Probe{
			"redis": func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		}).Downstream("auth", log, tel, map[string]grpcx.Probe{
			"user":   grpcx.ServiceProbe(healthpb.NewHealthClient(users)),
			"apikey": grpcx.ServiceProbe(healthpb.NewHealthClient(keys)),
		}),
		audit: audit.NewAdminServer(db),
		rdb:   rdb,
		sqlDB: sqlDB,
	}, nil
}

// keyChecks is the API-key check, followed by the per-key rate limit only
// when one is set: a limit that is off costs the hot path nothing.
func keyChecks(check grpc.UnaryServerInterceptor, store *redisstore.Store, perSecond int, tel *telemetry.Telemetry) []grpc.UnaryServerInterceptor {
	if perSecond <= 0 {
		return []grpc.UnaryServerInterceptor{check}
	}
	return []grpc.UnaryServerInterceptor{check, server.KeyRateInterceptor(oauth.NewKeyRate(store, perSecond, time.Now, tel))}
}

// KeyInterceptors are the API-key check (and the per-key rate limit, when
// set) the public services must be served behind: pass them as the extra
// interceptors of grpcx.ServerOptions or grpcx.UnaryChain.
func (a *App) KeyInterceptors() []grpc.UnaryServerInterceptor { return a.keys }

// Register registers the public services (AuthService, ConfirmationService,
// TokenService) and health on r, which must run KeyInterceptor.
func (a *App) Register(r grpc.ServiceRegistrar) {
	a.api.Register(r)
	healthpb.RegisterHealthServer(r, a.health)
}

// RegisterAdmin registers the operator services (AuthAdminService,
// AuditAdminService) and health on r, never mapped by the gateway.
func (a *App) RegisterAdmin(r grpc.ServiceRegistrar) {
	a.api.RegisterAdmin(r)
	auditv1.RegisterAuditAdminServiceServer(r, a.audit)
	healthpb.RegisterHealthServer(r, a.health)
}

// Units are the background units to stop after the listeners: the audit
// trail, which flushes what their final calls recorded.
func (a *App) Units() []run.Unit { return []run.Unit{a.trail.Unit()} }

// Close releases Redis and the database.
func (a *App) Close() error {
	a.rdb.Close()
	return a.sqlDB.Close()
}
