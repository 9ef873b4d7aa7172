package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
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
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// fakeAuth is a deterministic AuthService: the user_id of a Login picks the
// outcome, so every documented error can be provoked through the real
// interceptors of grpcx.ServerOptions. It records the metadata of the last
// call.
type fakeAuth struct {
	authv1.UnimplementedAuthServiceServer
	called
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
	if len(md.Get(wire.APIKey)) == 0 {
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

func (f *fakeAuth) UpdateUser(ctx context.Context, req *authv1.UpdateUserRequest) (*authv1.UpdateUserResponse, error) {
	f.called.record(ctx, "UpdateUser")
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	return &authv1.UpdateUserResponse{Success: true, Message: "用户信息更新成功", User: &authv1.UpdatedUser{
		Id: 1, Username: req.GetUsername(), UserId: req.GetUserId(), Email: "alice@example.com", Bio: req.GetBio()}}, nil
}

func (f *fakeAuth) CreateUCA(ctx context.Context, req *authv1.CreateUCARequest) (*authv1.CreateUCAResponse, error) {
	f.called.record(ctx, "CreateUCA")
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	return &authv1.CreateUCAResponse{Success: true, Message: "获取一次性确认码成功", Ucaoncecode: "uca_0123456789abcdef"}, nil
}

func (f *fakeAuth) LoginSafe(ctx context.Context, req *authv1.LoginSafeRequest) (*authv1.LoginSafeResponse, error) {
	f.called.record(ctx, "LoginSafe")
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	if req.GetLoginCode() != loginCode {
		return nil, apierr.New(apierr.InvalidCode)
	}
	return &authv1.LoginSafeResponse{Success: true, Message: "登录成功，授权码已生成", Code: "code_0123456789abcdef0123456789abcdef", User: alice}, nil
}

func (f *fakeAuth) GetTokenUser(ctx context.Context, _ *authv1.GetTokenUserRequest) (*authv1.GetTokenUserResponse, error) {
	md := f.called.record(ctx, "GetTokenUser")
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	if err := bearer(md); err != nil {
		return nil, err
	}
	return &authv1.GetTokenUserResponse{Success: true, Message: "获取用户信息成功", User: aliceProfile}, nil
}

// backend is a real gRPC server with the fake AuthService,
// ConfirmationService and TokenService, and a health service whose answer
// the test controls.
type backend struct {
	auth    *fakeAuth
	confirm *fakeConfirmation
	tokens  *fakeTokens
	conn    *grpc.ClientConn
	healthy atomic.Bool
}

// startBackend serves the fakes on a loopback port. outer interceptors run
// before grpcx's own chain, so they see each call's final status exactly as
// the gateway receives it (the fuzz targets use this to tell a backend's
// 5xx from one the gateway made up).
func startBackend(t testing.TB, outer ...grpc.UnaryServerInterceptor) *backend {
	t.Helper()
	b := &backend{auth: &fakeAuth{}, confirm: &fakeConfirmation{}, tokens: &fakeTokens{}}
	b.healthy.Store(true)
	var opts []grpc.ServerOption
	if len(outer) > 0 {
		opts = append(opts, grpc.ChainUnaryInterceptor(outer...))
	}
	srv := grpc.NewServer(append(opts, grpcx.ServerOptions(discard(), nil)...)...)
	authv1.RegisterAuthServiceServer(srv, b.auth)
	authv1.RegisterConfirmationServiceServer(srv, b.confirm)
	authv1.RegisterTokenServiceServer(srv, b.tokens)
	healthpb.RegisterHealthServer(srv, grpcx.NewHealth(map[string]grpcx.Probe{
		"redis": func(context.Context) error {
			if b.healthy.Load() {
				return nil
			}
			return errors.New("redis down")
		},
	}))
	b.conn = grpctest.Dial(t, grpctest.Serve(t, srv))
	return b
}

// startGateway serves the real handler over real HTTP.
func startGateway(t *testing.T, conn *grpc.ClientConn, trusted []netip.Prefix, log *slog.Logger) *httptest.Server {
	t.Helper()
	h, err := New(conn, trusted, testCSRFKey, log, nil, grpcx.ConnectionProbe("gateway", "auth", log, nil, healthpb.NewHealthClient(conn)))
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

// called records which RPC of the fakes ran last, with its metadata.
type called struct {
	mu     sync.Mutex
	method string
	md     metadata.MD
}

func (c *called) record(ctx context.Context, method string) metadata.MD {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	c.method, c.md = method, md.Copy()
	c.mu.Unlock()
	return md
}

func (c *called) last() (string, metadata.MD) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.method, c.md
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// The fixed answers of the fakes.
const (
	aliceSession = "sess_alice_0123456789abcdefghijklmnopqrstuv"
	goodToken    = "token_" + "good00000000000000000000000000000000000000000000000000"
	loginCode    = "abc234def5" // of secret.LoginCode, as auth issues them
	appName      = "示例应用 Demo"
	alicePass    = "correct horse battery staple"
)

// testCSRFKey signs the sign-in forms of every test gateway.
var testCSRFKey = []byte("test-csrf-key-0123456789abcdefghijklmnop")

var alice = &authv1.User{Id: 1, Username: "Alice", UserId: "alice", Email: "alice@example.com"}

// fakeConfirmation is a ConfirmationService with one user (alice), one
// valid session (aliceSession) and UCAs by name: "uca_used" is spent,
// "uca_down" finds the backend's Redis down, "uca_throttle" is rate
// limited, and any other "uca_..." is live until confirmed or denied.
type fakeConfirmation struct {
	authv1.UnimplementedConfirmationServiceServer
	called
	spentMu sync.Mutex
	spent   map[string]bool
}

func (f *fakeConfirmation) uca(uca string) error {
	f.spentMu.Lock()
	defer f.spentMu.Unlock()
	switch {
	case uca == "":
		return apierr.Newf(apierr.InvalidRequest, "缺少必要参数: uca")
	case uca == "uca_down":
		return apierr.Wrap(apierr.Unavailable, errors.New("dial tcp 10.9.8.7:6379: connection refused"))
	case uca == "uca_used" || f.spent[uca] || !strings.HasPrefix(uca, "uca_"):
		return apierr.New(apierr.InvalidCode)
	}
	return nil
}

func (f *fakeConfirmation) spend(uca string) {
	f.spentMu.Lock()
	defer f.spentMu.Unlock()
	if f.spent == nil {
		f.spent = map[string]bool{}
	}
	f.spent[uca] = true
}

// session checks the session and CSRF metadata of a state-changing call.
func session(md metadata.MD, csrf bool) error {
	s := first(md, wire.Session)
	if s != aliceSession {
		return apierr.New(apierr.Unauthenticated)
	}
	if csrf && first(md, wire.CSRF) != wire.CSRFToken(s) {
		return apierr.New(apierr.CSRFFailed)
	}
	return nil
}

func (f *fakeConfirmation) GetConfirmation(ctx context.Context, req *authv1.GetConfirmationRequest) (*authv1.GetConfirmationResponse, error) {
	md := f.record(ctx, "GetConfirmation")
	if err := f.uca(req.GetUca()); err != nil {
		return nil, err
	}
	res := &authv1.GetConfirmationResponse{AppName: appName, ExpiresIn: 540}
	if session(md, false) == nil {
		res.User, res.CsrfToken = alice, wire.CSRFToken(aliceSession)
	}
	return res, nil
}

func (f *fakeConfirmation) SignIn(ctx context.Context, req *authv1.SignInRequest) (*authv1.SignInResponse, error) {
	f.record(ctx, "SignIn")
	if err := f.uca(req.GetUca()); err != nil {
		return nil, err
	}
	switch {
	case req.GetUserId() == "" || req.GetPassword() == "":
		return nil, apierr.Newf(apierr.InvalidRequest, "请输入用户ID和密码")
	case req.GetUserId() == "throttled":
		return nil, &apierr.Error{Kind: apierr.RateLimited, RetryAfterSeconds: 60}
	case req.GetUserId() != "alice" || req.GetPassword() != alicePass:
		return nil, apierr.New(apierr.InvalidCredentials)
	}
	return &authv1.SignInResponse{Session: aliceSession, CsrfToken: wire.CSRFToken(aliceSession), ExpiresIn: 86400, User: alice}, nil
}

func (f *fakeConfirmation) GenerateLoginCode(ctx context.Context, req *authv1.GenerateLoginCodeRequest) (*authv1.GenerateLoginCodeResponse, error) {
	md := f.record(ctx, "GenerateLoginCode")
	if err := session(md, true); err != nil {
		return nil, err
	}
	if err := f.uca(req.GetUca()); err != nil {
		return nil, err
	}
	f.spend(req.GetUca())
	return &authv1.GenerateLoginCodeResponse{Success: true, Message: "生成登录码成功", LoginCode: loginCode, ExpiresIn: 300}, nil
}

func (f *fakeConfirmation) DenyConfirmation(ctx context.Context, req *authv1.DenyConfirmationRequest) (*authv1.DenyConfirmationResponse, error) {
	md := f.record(ctx, "DenyConfirmation")
	if err := session(md, true); err != nil {
		return nil, err
	}
	if err := f.uca(req.GetUca()); err != nil {
		return nil, err
	}
	f.spend(req.GetUca())
	return &authv1.DenyConfirmationResponse{Success: true, Message: "已拒绝"}, nil
}

// fakeTokens is a TokenService that knows one access token (goodToken).
type fakeTokens struct {
	authv1.UnimplementedTokenServiceServer
	called
}

func bearer(md metadata.MD) error {
	if first(md, "authorization") != "Bearer "+goodToken {
		return apierr.New(apierr.InvalidToken)
	}
	return nil
}

var aliceProfile = &authv1.UserProfile{Id: 1, Username: "Alice", UserId: "alice", Email: "alice@example.com",
	Bio: "hi", AvatarUrl: "https://example.com/a.svg"}

func (f *fakeTokens) GetUserinfo(ctx context.Context, _ *authv1.GetUserinfoRequest) (*authv1.GetUserinfoResponse, error) {
	if err := bearer(f.record(ctx, "GetUserinfo")); err != nil {
		return nil, err
	}
	return &authv1.GetUserinfoResponse{Success: true, Message: "获取用户信息成功", User: aliceProfile}, nil
}

func newJSONLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }
