package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

// fakeAuth is a deterministic AuthService: the user_id of a Login picks the
// outcome, so every documented error can be provoked through the real
// interceptors of grpcx.ServerOptions. It records the metadata of the last
// call.
type fakeAuth struct {
	authv1.UnimplementedAuthServiceServer
	mu sync.Mutex
	md metadata.MD
}

// internalText is the cause of the fake's internal failure; it must never
// reach a client.
const internalText = "pq: password authentication failed for 10.9.8.7"

func (f *fakeAuth) record(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.md = md.Copy()
	f.mu.Unlock()
	if len(md.Get("x-api-key")) == 0 {
		return apierr.New(apierr.InvalidAPIKey)
	}
	return nil
}

func (f *fakeAuth) lastMD() metadata.MD {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.md
}

func (f *fakeAuth) Authorize(ctx context.Context, _ *authv1.AuthorizeRequest) (*authv1.AuthorizeResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	return &authv1.AuthorizeResponse{Success: true, Message: "授权初始化成功", State: "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"}, nil
}

func (f *fakeAuth) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	switch req.GetUserId() {
	case "alice":
		return &authv1.LoginResponse{Success: true, Message: "登录成功", Code: "code_0123456789abcdef0123456789abcdef",
			User: &authv1.User{Id: 1, Username: "Alice", UserId: "alice", Email: "alice@example.com"}}, nil
	case "":
		return nil, apierr.Newf(apierr.InvalidRequest, "缺少必要参数: user_id")
	case "wrong-password":
		return nil, apierr.New(apierr.InvalidCredentials)
	case "outside-whitelist":
		return nil, apierr.New(apierr.IPNotAllowed)
	case "missing":
		return nil, apierr.New(apierr.NotFound)
	case "stale-state":
		return nil, apierr.New(apierr.InvalidState)
	case "used-code":
		return nil, apierr.New(apierr.InvalidCode)
	case "throttled":
		return nil, &apierr.Error{Kind: apierr.RateLimited, RetryAfterSeconds: 42}
	case "broken":
		return nil, errors.New(internalText)
	case "panics":
		panic(internalText)
	case "redis-down":
		return nil, apierr.Wrap(apierr.Unavailable, errors.New("dial tcp 10.9.8.7:6379: connection refused"))
	}
	return nil, apierr.New(apierr.InvalidCredentials)
}

func (f *fakeAuth) Token(ctx context.Context, req *authv1.TokenRequest) (*authv1.TokenResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	if req.GetCode() == "" || req.GetState() == "" {
		return nil, apierr.New(apierr.InvalidRequest)
	}
	return &authv1.TokenResponse{Success: true, Message: "获取访问令牌成功",
		AccessToken: "token_" + strings.Repeat("a", 56), TokenType: "Bearer", ExpiresIn: 3600}, nil
}

func (f *fakeAuth) GetPublicProfile(ctx context.Context, req *authv1.GetPublicProfileRequest) (*authv1.GetPublicProfileResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	if req.GetUserId() != "alice" {
		return nil, apierr.New(apierr.NotFound)
	}
	return &authv1.GetPublicProfileResponse{Success: true, Message: "获取用户信息成功",
		User: &authv1.PublicProfile{Username: "Alice", AvatarUrl: "https://example.com/a.svg"}}, nil
}

// backend is a real gRPC server with the fake AuthService and a health
// service whose answer the test controls.
type backend struct {
	auth    *fakeAuth
	conn    *grpc.ClientConn
	healthy atomic.Bool
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{auth: &fakeAuth{}}
	b.healthy.Store(true)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpcx.ServerOptions(discard())...)
	authv1.RegisterAuthServiceServer(srv, b.auth)
	healthpb.RegisterHealthServer(srv, grpcx.NewHealth(map[string]grpcx.Probe{
		"redis": func(context.Context) error {
			if b.healthy.Load() {
				return nil
			}
			return errors.New("redis down")
		},
	}))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	b.conn = dial(t, lis.Addr().String())
	return b
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcx.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// startGateway serves the real handler over real HTTP.
func startGateway(t *testing.T, conn *grpc.ClientConn, trusted []netip.Prefix, log *slog.Logger) *httptest.Server {
	t.Helper()
	h, err := New(conn, trusted, log, grpcx.ServiceProbe(healthpb.NewHealthClient(conn)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
