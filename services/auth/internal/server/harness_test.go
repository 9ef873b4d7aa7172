package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/testenv"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
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
	password string
	avatar   string
}

// userService is a deterministic stand-in for the remote UserService,
// speaking real gRPC with the shared error vocabulary.
type userService struct {
	userv1.UnimplementedUserServiceServer
	users    map[string]fakeUser
	verifies atomic.Int64
}

func (s *userService) VerifyPassword(_ context.Context, req *userv1.VerifyPasswordRequest) (*userv1.VerifyPasswordResponse, error) {
	s.verifies.Add(1)
	u, ok := s.users[req.GetUserId()]
	if !ok || !secret.Equal(u.password, req.GetPassword()) {
		return nil, apierr.New(apierr.InvalidCredentials)
	}
	return &userv1.VerifyPasswordResponse{User: s.proto(req.GetUserId(), u)}, nil
}

func (s *userService) GetUser(_ context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	u, ok := s.users[req.GetUserId()]
	if !ok {
		return nil, apierr.New(apierr.NotFound)
	}
	return &userv1.GetUserResponse{User: s.proto(req.GetUserId(), u)}, nil
}

func (s *userService) proto(userID string, u fakeUser) *userv1.User {
	return &userv1.User{Id: u.id, UserId: userID, Username: u.username, Email: u.email, AvatarUrl: u.avatar}
}

// fakeKey is a key of the in-test API-key service.
type fakeKey struct {
	record    *apikeyv1.APIKey
	whitelist []netip.Prefix
}

// keyService is a deterministic stand-in for the remote APIKeyService. It
// counts calls, remembers the client IPs it was asked about, and can revoke.
type keyService struct {
	apikeyv1.UnimplementedAPIKeyServiceServer
	mu      sync.Mutex
	keys    map[string]fakeKey
	revoked map[string]bool
	ips     []string
	calls   atomic.Int64
}

func (s *keyService) ValidateKey(_ context.Context, req *apikeyv1.ValidateKeyRequest) (*apikeyv1.ValidateKeyResponse, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ips = append(s.ips, req.GetClientIp())
	k, ok := s.keys[req.GetKey()]
	if !ok || s.revoked[req.GetKey()] {
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
	keyA       = "ml_" + secret.New("", 64, secret.Hex)
	keyB       = "ml_" + secret.New("", 64, secret.Hex)
	keyNoPass  = "ml_" + secret.New("", 64, secret.Hex)
	keyListed  = "ml_" + secret.New("", 64, secret.Hex)
	alicePass  = "correct horse battery staple"
	aliceID    = "alice"
	aliceEmail = "alice@example.com"
)

const tokenTTL = 2 * time.Hour

// env is one auth server wired to in-test user and apikey servers and a
// fresh Redis keyspace.
type env struct {
	auth   authv1.AuthServiceClient
	health healthpb.HealthClient
	users  *userService
	keys   *keyService
	rdb    redis.UniversalClient
	prefix string
	logs   *syncBuffer
}

type options struct {
	gateways []netip.Prefix
	redis    redis.UniversalClient // default: the test Redis
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	users := &userService{users: map[string]fakeUser{
		aliceID: {id: 7, username: "Alice", email: aliceEmail, password: alicePass, avatar: "https://example.com/a.png"},
	}}
	keys := &keyService{revoked: map[string]bool{}, keys: map[string]fakeKey{
		keyA:      {record: &apikeyv1.APIKey{Id: 1, Name: "app A", PasswordLogin: true}},
		keyB:      {record: &apikeyv1.APIKey{Id: 2, Name: "app B", PasswordLogin: true}},
		keyNoPass: {record: &apikeyv1.APIKey{Id: 3, Name: "safe only", PasswordLogin: false}},
		keyListed: {record: &apikeyv1.APIKey{Id: 4, Name: "listed", PasswordLogin: true},
			whitelist: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
	}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	remoteSrv := grpc.NewServer(grpcx.ServerOptions(quiet)...)
	userv1.RegisterUserServiceServer(remoteSrv, users)
	apikeyv1.RegisterAPIKeyServiceServer(remoteSrv, keys)
	remoteAddr := serve(t, remoteSrv)
	remoteConn := dial(t, remoteAddr)

	rdb, prefix := testenv.Redis(t)
	store := rdb
	if o.redis != nil {
		store = o.redis
	}
	gateways := o.gateways
	if gateways == nil {
		gateways = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	flows := oauth.New(redisstore.New(store, prefix), remote.NewUsers(userv1.NewUserServiceClient(remoteConn)), tokenTTL, log)
	cache := keycache.New(remote.NewKeys(apikeyv1.NewAPIKeyServiceClient(remoteConn)), keycache.MaxTTL, 100)

	authSrv := grpc.NewServer(grpcx.ServerOptions(log, server.KeyInterceptor(cache, gateways))...)
	server.New(flows).Register(authSrv)
	healthpb.RegisterHealthServer(authSrv, grpcx.NewHealth(map[string]grpcx.Probe{
		"redis": func(ctx context.Context) error { return store.Ping(ctx).Err() },
	}))
	authConn := dial(t, serve(t, authSrv))

	return &env{
		auth:   authv1.NewAuthServiceClient(authConn),
		health: healthpb.NewHealthClient(authConn),
		users:  users,
		keys:   keys,
		rdb:    rdb,
		prefix: prefix,
		logs:   logs,
	}
}

func serve(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcx.Dial(addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// as returns a context carrying key, and optional extra metadata pairs.
func as(t *testing.T, key string, kv ...string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if key != "" {
		kv = append([]string{server.APIKeyMetadata, key}, kv...)
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
	if kind == "code" {
		key = e.prefix + "code:{" + secret.Hash(s) + "}"
	}
	n, err := e.rdb.Exists(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("EXISTS: %v", err)
	}
	return n == 1
}

// wantErr asserts that err is the gRPC status of kind (code and ErrorInfo).
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
