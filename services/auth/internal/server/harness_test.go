package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/grpcx/tlstest"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/telemetry"
	"github.com/moreline/moreid/platform/telemetry/telemetrytest"
	"github.com/moreline/moreid/platform/testenv"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
	"github.com/moreline/moreid/proto/wire"
	"github.com/moreline/moreid/services/auth/internal/keycache"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
	"github.com/moreline/moreid/services/auth/internal/remote"
	"github.com/moreline/moreid/services/auth/internal/server"
)

// fakeUser is a user of the in-test user service.
type fakeUser struct {
	id       int32
	username string
	email    string
	bio      string
	password string
	avatar   string
	disabled bool
}

// userService is a deterministic stand-in for the remote UserService,
// speaking real gRPC with the shared error vocabulary, including the
// disabled-user behaviour of SetUserDisabled.
type userService struct {
	userv1.UnimplementedUserServiceServer
	mu       sync.Mutex
	users    map[string]fakeUser
	verifies atomic.Int64
	updates  atomic.Int64
	// down makes GetUser answer unavailable, as while Postgres is down;
	// updatesDown does the same to UpdateProfile alone.
	down        atomic.Bool
	updatesDown atomic.Bool
	// rightVerified counts right passwords verified. When holdRight is
	// set, a right password's check reports itself on entered and waits
	// for holdRight to close (ordering a race: the password is checked,
	// then whatever the test wants happens, then it answers).
	rightVerified atomic.Int64
	holdRight     chan struct{}
	entered       chan struct{}
}

func (s *userService) VerifyPassword(ctx context.Context, req *userv1.VerifyPasswordRequest) (*userv1.VerifyPasswordResponse, error) {
	s.verifies.Add(1)
	if u, ok := s.lookup(req.GetUserId()); ok && secret.Equal(u.password, req.GetPassword()) {
		s.rightVerified.Add(1)
		if s.holdRight != nil {
			s.entered <- struct{}{}
			select {
			case <-s.holdRight:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[req.GetUserId()]
	if !ok || !secret.Equal(u.password, req.GetPassword()) {
		return nil, apierr.New(apierr.InvalidCredentials)
	}
	if u.disabled {
		return nil, apierr.New(apierr.AccountDisabled)
	}
	return &userv1.VerifyPasswordResponse{User: s.proto(req.GetUserId(), u)}, nil
}

func (s *userService) GetUser(_ context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	if s.down.Load() {
		return nil, apierr.Wrap(apierr.Unavailable, errors.New("postgres: connection refused"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[req.GetUserId()]
	if !ok {
		return nil, apierr.New(apierr.NotFound)
	}
	return &userv1.GetUserResponse{User: s.proto(req.GetUserId(), u)}, nil
}

// UpdateProfile validates as the real service does in spirit: a username
// must be 1 to 32 characters.
func (s *userService) UpdateProfile(_ context.Context, req *userv1.UpdateProfileRequest) (*userv1.UpdateProfileResponse, error) {
	if s.updatesDown.Load() {
		return nil, apierr.New(apierr.Unavailable)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[req.GetUserId()]
	if !ok {
		return nil, apierr.New(apierr.NotFound)
	}
	if req.Username != nil {
		if n := len([]rune(req.GetUsername())); n == 0 || n > 32 {
			return nil, apierr.Newf(apierr.InvalidRequest, "用户名不能超过32个字符")
		}
		u.username = req.GetUsername()
	}
	if req.Bio != nil {
		u.bio = req.GetBio()
	}
	s.users[req.GetUserId()] = u
	s.updates.Add(1)
	return &userv1.UpdateProfileResponse{User: s.proto(req.GetUserId(), u)}, nil
}

func (s *userService) lookup(userID string) (fakeUser, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	return u, ok
}

func (s *userService) setDisabled(userID string, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	u.disabled = disabled
	s.users[userID] = u
}

func (s *userService) get(userID string) fakeUser {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[userID]
}

func (s *userService) proto(userID string, u fakeUser) *userv1.User {
	return &userv1.User{Id: u.id, UserId: userID, Username: u.username, Email: u.email, Bio: u.bio, AvatarUrl: u.avatar, Disabled: u.disabled}
}

// fakeKey is a key of the in-test API-key service.
type fakeKey struct {
	record    *apikeyv1.APIKey
	whitelist []netip.Prefix
}

// keyService is a deterministic stand-in for the remote APIKeyService. It
// counts calls, remembers the client IPs it was asked about, can revoke,
// and can answer unavailable as the real one does while Postgres is down.
type keyService struct {
	apikeyv1.UnimplementedAPIKeyServiceServer
	mu      sync.Mutex
	keys    map[string]fakeKey
	revoked map[string]bool
	ips     []string
	calls   atomic.Int64
	down    atomic.Bool
}

func (s *keyService) ValidateKey(_ context.Context, req *apikeyv1.ValidateKeyRequest) (*apikeyv1.ValidateKeyResponse, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return nil, apierr.Wrap(apierr.Unavailable, errors.New("postgres: connection refused"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ips = append(s.ips, req.GetClientIp())
	k, ok := s.keys[req.GetKey()]
	// A public client has no usable secret: the real service refuses it.
	if !ok || s.revoked[req.GetKey()] || k.record.GetPublic() {
		return nil, apierr.New(apierr.InvalidAPIKey)
	}
	if len(k.whitelist) > 0 {
		ip, err := netip.ParseAddr(req.GetClientIp())
		if err != nil || !ipset.Contains(k.whitelist, ip) {
			return nil, apierr.New(apierr.IPNotAllowed)
		}
	}
	return &apikeyv1.ValidateKeyResponse{ApiKey: k.record}, nil
}

func (s *keyService) CheckKey(_ context.Context, req *apikeyv1.CheckKeyRequest) (*apikeyv1.CheckKeyResponse, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return nil, apierr.Wrap(apierr.Unavailable, errors.New("postgres: connection refused"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, k := range s.keys {
		if k.record.GetId() == req.GetId() && !s.revoked[key] {
			return &apikeyv1.CheckKeyResponse{ApiKey: k.record}, nil
		}
	}
	return nil, apierr.New(apierr.InvalidAPIKey)
}

// GetClient answers as the real service: the active key with this
// client_id; not_found otherwise.
func (s *keyService) GetClient(_ context.Context, req *apikeyv1.GetClientRequest) (*apikeyv1.GetClientResponse, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return nil, apierr.Wrap(apierr.Unavailable, errors.New("postgres: connection refused"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, k := range s.keys {
		if k.record.GetClientId() == req.GetClientId() && !s.revoked[key] {
			return &apikeyv1.GetClientResponse{ApiKey: k.record}, nil
		}
	}
	return nil, apierr.New(apierr.NotFound)
}

func (s *keyService) revoke(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[key] = true
}

func (s *keyService) clientIPs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ips...)
}

// Test keys and users.
var (
	keyA      = "ml_" + secret.New("", 64, secret.Hex)
	keyB      = "ml_" + secret.New("", 64, secret.Hex)
	keyNoPass = "ml_" + secret.New("", 64, secret.Hex)
	keyListed = "ml_" + secret.New("", 64, secret.Hex)
	// keyPublic is the stored secret of a public OAuth client: never
	// accepted as an API key.
	keyPublic = "ml_" + secret.New("", 64, secret.Hex)
	// The keys' OAuth client ids and registered redirect URIs.
	clientA        = "mlc_" + secret.New("", 32, secret.Hex)
	clientB        = "mlc_" + secret.New("", 32, secret.Hex)
	clientListed   = "mlc_" + secret.New("", 32, secret.Hex)
	clientPublic   = "mlc_" + secret.New("", 32, secret.Hex)
	redirectA      = "https://a.example/cb"
	redirectB      = "https://b.example/cb"
	redirectPublic = "http://127.0.0.1:8766/cb"
	alicePass      = "correct horse battery staple"
	aliceID        = "alice"
	aliceEmail     = "alice@example.com"
	bobID          = "bob"
	bobPass        = "bob's own password"
)

const (
	tokenTTL   = 2 * time.Hour
	sessionTTL = 3 * time.Hour
)

// env is one auth server wired to in-test user and apikey servers and a
// fresh Redis keyspace.
type env struct {
	o          options
	remoteConn *grpc.ClientConn
	store      redis.UniversalClient

	auth   authv1.AuthServiceClient
	conf   authv1.ConfirmationServiceClient
	tokens authv1.TokenServiceClient
	health healthpb.HealthClient
	// admin is AuthAdminService on the admin listener; publicAdmin is the
	// same client on the public listener, where it must not exist.
	admin       authv1.AuthAdminServiceClient
	publicAdmin authv1.AuthAdminServiceClient
	adminHealth healthpb.HealthClient
	users       *userService
	keys        *keyService
	rdb         redis.UniversalClient
	prefix      string
	logs        *syncBuffer
	authAddr    string
	// metrics is what the instance recorded.
	metrics telemetrytest.Registry
}

// serverTLS is the mutual TLS of auth's public listener: the components'
// certificate, clients of the components' CA.
func serverTLS(t *testing.T, pki *tlstest.PKI) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(pki.Component.Cert, pki.Component.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: caPool(t, pki.CA), ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
}

func caPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", path)
	}
	return pool
}

// dialTLS connects to the TLS auth listener presenting pair.
func (e *env) dialTLS(t *testing.T, pair tlstest.Pair) *grpc.ClientConn {
	t.Helper()
	opt, err := grpcx.ClientTLS(pair.Cert, pair.Key, e.o.pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcx.Dial(e.authAddr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

type options struct {
	gateways []netip.Prefix
	redis    redis.UniversalClient // default: the test Redis
	limits   oauth.Limits          // default: oauth.DefaultLimits
	keyRate  int                   // requests per second per key; default none
	now      func() time.Time      // the key rate's clock; default time.Now
	clock    func() time.Time      // the flows' clock (oauth SetClock); default time.Now
	events   audit.Recorder        // default: audit.Discard
	// pki, when set, serves AuthService over mutual TLS (e.auth presents
	// its component certificate; e.authTLS dials with another), and
	// gatewayNames are the certificate names that may set the client IP.
	pki          *tlstest.PKI
	gatewayNames []string
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	users := &userService{users: map[string]fakeUser{
		aliceID: {id: 7, username: "Alice", email: aliceEmail, bio: "hi", password: alicePass, avatar: "https://example.com/a.png"},
		bobID:   {id: 8, username: "Bob", email: "bob@example.com", password: bobPass, avatar: "https://example.com/b.png"},
	}}
	keys := &keyService{revoked: map[string]bool{}, keys: map[string]fakeKey{
		keyA: {record: &apikeyv1.APIKey{Id: 1, Name: "app A", PasswordLogin: true,
			ClientId: clientA, RedirectUris: []string{redirectA, "http://127.0.0.1:8765/cb"},
			PostLogoutRedirectUris: []string{"https://a.example/bye"}}},
		keyB: {record: &apikeyv1.APIKey{Id: 2, Name: "app B", PasswordLogin: true,
			ClientId: clientB, RedirectUris: []string{redirectB}}},
		keyNoPass: {record: &apikeyv1.APIKey{Id: 3, Name: "safe only", PasswordLogin: false, ClientId: "mlc_" + secret.New("", 32, secret.Hex)}},
		keyListed: {record: &apikeyv1.APIKey{Id: 4, Name: "listed", PasswordLogin: true,
			ClientId: clientListed, RedirectUris: []string{"https://listed.example/cb"}, Whitelist: []string{"203.0.113.0/24"}},
			whitelist: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
		keyPublic: {record: &apikeyv1.APIKey{Id: 5, Name: "public app", PasswordLogin: true,
			ClientId: clientPublic, Public: true, RedirectUris: []string{redirectPublic}}},
	}}

	remoteSrv := grpctest.NewServer()
	userv1.RegisterUserServiceServer(remoteSrv, users)
	apikeyv1.RegisterAPIKeyServiceServer(remoteSrv, keys)
	remoteConn := grpctest.Dial(t, grpctest.Serve(t, remoteSrv))

	rdb, prefix := testenv.Redis(t)
	store := rdb
	if o.redis != nil {
		store = o.redis
	}
	if o.gateways == nil {
		o.gateways = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if o.events == nil {
		o.events = audit.Discard
	}
	if o.now == nil {
		o.now = time.Now
	}
	e := &env{o: o, remoteConn: remoteConn, store: store, users: users, keys: keys, rdb: rdb, prefix: prefix}
	e.start(t)
	return e
}

// twin is another instance of the auth service (its own flows, key cache
// and listeners) on the same Redis keyspace and remote services, as a
// second replica behind a Kubernetes Service.
func (e *env) twin(t *testing.T) *env {
	t.Helper()
	tw := &env{o: e.o, remoteConn: e.remoteConn, store: e.store, users: e.users, keys: e.keys, rdb: e.rdb, prefix: e.prefix}
	tw.start(t)
	return tw
}

// start serves an auth instance over e's dependencies and fills e's
// clients.
func (e *env) start(t *testing.T) {
	t.Helper()
	e.logs = &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var tel *telemetry.Telemetry
	tel, e.metrics = telemetrytest.New(t)
	ttl := oauth.Lifetimes{Token: tokenTTL, Session: sessionTTL}
	keyService := remote.NewKeys(apikeyv1.NewAPIKeyServiceClient(e.remoteConn))
	cache := keycache.New(keyService, keycache.MaxTTL, keycache.DefaultStale, 100)
	store := redisstore.New(e.store, e.prefix, redisdb.DefaultTimeout)
	flows := oauth.New(store, remote.NewUsers(userv1.NewUserServiceClient(e.remoteConn)), remote.NewActiveKeys(cache, keyService), ttl, e.o.limits, e.o.events, log, tel)
	if e.o.clock != nil {
		flows.SetClock(e.o.clock)
	}

	health := grpcx.NewHealth(map[string]grpcx.Probe{
		"redis": func(ctx context.Context) error { return e.store.Ping(ctx).Err() },
	})
	api := server.New(flows)
	srvOpts := grpcx.ServerOptions(log, tel, server.KeyInterceptor(cache, e.o.gateways, e.o.gatewayNames...),
		server.KeyRateInterceptor(oauth.NewKeyRate(store, e.o.keyRate, e.o.now, tel)))
	if e.o.pki != nil {
		srvOpts = append(srvOpts, grpc.Creds(credentials.NewTLS(serverTLS(t, e.o.pki))))
	}
	authSrv := grpc.NewServer(srvOpts...)
	api.Register(authSrv)
	healthpb.RegisterHealthServer(authSrv, health)
	e.authAddr = grpctest.Serve(t, authSrv)
	var authConn *grpc.ClientConn
	if e.o.pki != nil {
		authConn = e.dialTLS(t, e.o.pki.Component)
	} else {
		authConn = grpctest.Dial(t, e.authAddr)
	}
	adminSrv := grpc.NewServer(grpcx.ServerOptions(log, tel)...)
	api.RegisterAdmin(adminSrv)
	healthpb.RegisterHealthServer(adminSrv, health)
	adminConn := grpctest.Dial(t, grpctest.Serve(t, adminSrv))

	e.auth = authv1.NewAuthServiceClient(authConn)
	e.conf = authv1.NewConfirmationServiceClient(authConn)
	e.tokens = authv1.NewTokenServiceClient(authConn)
	e.health = healthpb.NewHealthClient(authConn)
	e.admin = authv1.NewAuthAdminServiceClient(adminConn)
	e.publicAdmin = authv1.NewAuthAdminServiceClient(authConn)
	e.adminHealth = healthpb.NewHealthClient(adminConn)
}

// as returns a context carrying key, and optional extra metadata pairs.
func as(t *testing.T, key string, kv ...string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if key != "" {
		kv = append([]string{wire.APIKey, key}, kv...)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

func (e *env) authorize(t *testing.T, key string) string {
	t.Helper()
	r, err := e.auth.Authorize(as(t, key), &authv1.AuthorizeRequest{})
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	return r.GetState()
}

func (e *env) login(t *testing.T, key, state string) string {
	t.Helper()
	r, err := e.auth.Login(as(t, key), &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: state})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return r.GetCode()
}

func (e *env) token(t *testing.T, key, code, state string) string {
	t.Helper()
	r, err := e.auth.Token(as(t, key), &authv1.TokenRequest{Code: code, State: state})
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return r.GetAccessToken()
}

// exists reports whether the record of the given kind for secret s is in
// Redis, reading the documented key layout.
func (e *env) exists(t *testing.T, kind, s string) bool {
	t.Helper()
	key := e.prefix + kind + ":" + secret.Hash(s)
	if kind == "code" || kind == "state" {
		key = e.prefix + kind + ":{" + secret.Hash(s) + "}"
	}
	n, err := e.rdb.Exists(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("EXISTS: %v", err)
	}
	return n == 1
}

// noSecretsStored asserts that no key or value under the test's prefix
// contains any of secrets, reading every record whatever its type.
func (e *env) noSecretsStored(t *testing.T, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 100).Iterator()
	n := 0
	for iter.Next(ctx) {
		n++
		k := iter.Val()
		typ, err := e.rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		var v string
		switch typ {
		case "string":
			v, err = e.rdb.Get(ctx, k).Result()
		case "set":
			var m []string
			m, err = e.rdb.SMembers(ctx, k).Result()
			v = strings.Join(m, " ")
		case "none":
			continue // expired meanwhile
		default:
			t.Fatalf("unexpected %s record %s", typ, k)
		}
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		for _, s := range secrets {
			if strings.Contains(k, s) || strings.Contains(v, s) {
				t.Errorf("record %s = %s holds a secret", k, v)
			}
		}
	}
	if err := iter.Err(); err != nil || n == 0 {
		t.Fatalf("scan: %d keys, %v", n, err)
	}
}

// wantErr asserts that err is the gRPC status of kind (code and ErrorInfo).
// eventually polls cond until it holds and logs how long that took. The
// tests using it wait for the key cache's entries to lapse; that they lapse
// exactly at its TTL is proven with an injected clock (keycache's
// TestCache), so here the deadline only keeps a broken test from hanging
// and is generous for a loaded machine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}

func wantErr(t *testing.T, err error, kind apierr.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %s", kind)
	}
	st := status.Convert(err)
	want := apierr.ToStatus(apierr.New(kind))
	if st.Code() != want.Code() || reason(st) != string(kind) {
		t.Fatalf("got %v (%q: %s), want %v (%s)", st.Code(), reason(st), st.Message(), want.Code(), kind)
	}
}

// reason is the ErrorInfo reason a client reads from a status.
func reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == apierr.Domain {
			return info.GetReason()
		}
	}
	return ""
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// createUCA starts a safe login on state.
func (e *env) createUCA(t *testing.T, key, state string) string {
	t.Helper()
	r, err := e.auth.CreateUCA(as(t, key), &authv1.CreateUCARequest{State: state})
	if err != nil {
		t.Fatalf("CreateUCA: %v", err)
	}
	return r.GetUcaoncecode()
}

// signIn opens a web session on the page of uca.
func (e *env) signIn(t *testing.T, uca, userID, password string) *authv1.SignInResponse {
	t.Helper()
	r, err := e.conf.SignIn(as(t, ""), &authv1.SignInRequest{Uca: uca, UserId: userID, Password: password})
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	return r
}

// browser is a context as the gateway sends the page's calls: no API key,
// the session and the CSRF token as metadata.
func browser(t *testing.T, s *authv1.SignInResponse) context.Context {
	t.Helper()
	return as(t, "", wire.Session, s.GetSession(), wire.CSRF, s.GetCsrfToken())
}

// generate confirms uca in session s and returns the login code.
func (e *env) generate(t *testing.T, s *authv1.SignInResponse, uca string) string {
	t.Helper()
	r, err := e.conf.GenerateLoginCode(browser(t, s), &authv1.GenerateLoginCodeRequest{Uca: uca})
	if err != nil {
		t.Fatalf("GenerateLoginCode: %v", err)
	}
	return r.GetLoginCode()
}

// safeLogin runs a safe login for alice with key up to the login code.
func (e *env) safeLogin(t *testing.T, key string) (state, loginCode string) {
	t.Helper()
	state = e.authorize(t, key)
	uca := e.createUCA(t, key, state)
	return state, e.generate(t, e.signIn(t, uca, aliceID, alicePass), uca)
}

// session opens a web session for a user (through a throwaway UCA).
func (e *env) session(t *testing.T, userID, password string) *authv1.SignInResponse {
	t.Helper()
	return e.signIn(t, e.createUCA(t, keyA, e.authorize(t, keyA)), userID, password)
}

// accessToken runs the password flow for a user with key.
func (e *env) accessToken(t *testing.T, key, userID, password string) string {
	t.Helper()
	state := e.authorize(t, key)
	r, err := e.auth.Login(as(t, key), &authv1.LoginRequest{UserId: userID, Password: password, State: state})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return e.token(t, key, r.GetCode(), state)
}

// pttl is the remaining lifetime of a raw key under the test prefix.
func (e *env) pttl(t *testing.T, key string) time.Duration {
	t.Helper()
	d, err := e.rdb.PTTL(context.Background(), e.prefix+key).Result()
	if err != nil {
		t.Fatalf("PTTL %s: %v", key, err)
	}
	return d
}
