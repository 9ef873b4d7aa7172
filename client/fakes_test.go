package client_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// The fakes are small in-memory stand-ins for auth's AuthService and
// TokenService, served over real gRPC on a loopback port. The client module
// may not import platform, so the fake writes its failures as apierr does,
// from the same proto/wire names (apierr's TestWireEncoding pins that side;
// e2e's Go client tests run the client against the real suite).

const (
	goodKey     = "ml_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	safeOnlyKey = "ml_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	blockedKey  = "ml_00000000000000000000000000000000000000000000000000000000deadbeef"
	tokenTTL    = 3600
)

// account is a user the fake knows.
type account struct {
	password string
	user     *authv1.User
	disabled bool
	limited  bool // every login attempt is rate limited
}

var accounts = map[string]account{
	"alice":   {password: "alice-password", user: &authv1.User{Id: 1, UserId: "alice", Username: "Alice", Email: "alice@example.com"}},
	"bob":     {password: "bob-password", user: &authv1.User{Id: 2, UserId: "bob", Username: "Bob", Email: "bob@example.com"}, disabled: true},
	"mallory": {password: "x", user: &authv1.User{Id: 3, UserId: "mallory"}, limited: true},
}

type grant struct {
	state string
	user  *authv1.User
}

// fakeAuth implements both services over one set of records.
type fakeAuth struct {
	authv1.UnimplementedAuthServiceServer
	authv1.UnimplementedTokenServiceServer

	mu     sync.Mutex
	seq    int
	states map[string]bool
	codes  map[string]grant
	tokens map[string]*authv1.User
	calls  []call // every call, in order
}

// call is one RPC as the server saw it.
type call struct {
	method   string   // e.g. "AuthService/Login"
	keys     []string // the x-api-key metadata values
	req      any
	deadline time.Time // the call's deadline; zero when it had none
}

func newFakeAuth() *fakeAuth {
	return &fakeAuth{states: map[string]bool{}, codes: map[string]grant{}, tokens: map[string]*authv1.User{}}
}

func (f *fakeAuth) next(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s%06d", prefix, f.seq)
}

// checkKey is the fake's version of auth's API-key interceptor: it records
// every call with its metadata and refuses calls without the right key.
func (f *fakeAuth) checkKey(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	keys := md.Get(wire.APIKey)
	svc, name, _ := strings.Cut(strings.TrimPrefix(info.FullMethod, "/"), "/")
	method := svc[strings.LastIndex(svc, ".")+1:] + "/" + name
	f.mu.Lock()
	deadline, _ := ctx.Deadline()
	f.calls = append(f.calls, call{method: method, keys: keys, req: req, deadline: deadline})
	f.mu.Unlock()
	if len(keys) != 1 {
		return nil, fail(wire.ReasonInvalidAPIKey, "", 0)
	}
	switch keys[0] {
	case goodKey, safeOnlyKey:
		return next(ctx, req)
	case blockedKey:
		return nil, fail(wire.ReasonIPNotAllowed, "", 0)
	default:
		return nil, fail(wire.ReasonInvalidAPIKey, "", 0)
	}
}

func (f *fakeAuth) received() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeAuth) methods() []string {
	var out []string
	for _, c := range f.received() {
		out = append(out, c.method)
	}
	return out
}

func keyOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	return md.Get(wire.APIKey)[0]
}

func (f *fakeAuth) Authorize(context.Context, *authv1.AuthorizeRequest) (*authv1.AuthorizeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.next("state")
	f.states[s] = true
	return &authv1.AuthorizeResponse{Success: true, Message: "授权初始化成功", State: s}, nil
}

func (f *fakeAuth) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	if keyOf(ctx) == safeOnlyKey {
		return nil, fail(wire.ReasonPasswordLoginDisabled, "", 0)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.states[req.GetState()] {
		return nil, fail(wire.ReasonInvalidState, "", 0)
	}
	a, ok := accounts[req.GetUserId()]
	switch {
	case ok && a.limited:
		return nil, fail(wire.ReasonRateLimited, "", 42)
	case !ok || a.password != req.GetPassword():
		return nil, fail(wire.ReasonInvalidCredentials, "", 0)
	case a.disabled:
		return nil, fail(wire.ReasonAccountDisabled, "", 0)
	}
	delete(f.states, req.GetState())
	code := f.next("code_")
	f.codes[code] = grant{state: req.GetState(), user: a.user}
	return &authv1.LoginResponse{Success: true, Message: "登录成功", Code: code, User: a.user}, nil
}

func (f *fakeAuth) Token(_ context.Context, req *authv1.TokenRequest) (*authv1.TokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.codes[req.GetCode()]
	if !ok || g.state != req.GetState() {
		return nil, fail(wire.ReasonInvalidCode, "", 0)
	}
	delete(f.codes, req.GetCode())
	tok := f.next("token_")
	f.tokens[tok] = g.user
	return &authv1.TokenResponse{Success: true, Message: "获取访问令牌成功", AccessToken: tok, TokenType: "Bearer", ExpiresIn: tokenTTL}, nil
}

func (f *fakeAuth) IntrospectToken(_ context.Context, req *authv1.IntrospectTokenRequest) (*authv1.IntrospectTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.tokens[req.GetToken()]
	if !ok {
		return &authv1.IntrospectTokenResponse{}, nil
	}
	now := time.Now()
	return &authv1.IntrospectTokenResponse{
		Active:     true,
		User:       &authv1.UserProfile{Id: u.GetId(), UserId: u.GetUserId(), Username: u.GetUsername(), Email: u.GetEmail()},
		ApiKeyId:   7,
		IssuedAt:   timestamppb.New(now),
		ExpiresAt:  timestamppb.New(now.Add(tokenTTL * time.Second)),
		ApiKeyName: "test app",
	}, nil
}

// failMessage is the human text the fake sends with every forced failure,
// so that tests can see the service's own words come through.
const failMessage = "测试用的错误"

// RevokeToken revokes, except for two kinds of magic tokens: "fail:KIND"
// answers an error of that kind, "slow" waits for the caller to give up.
func (f *fakeAuth) RevokeToken(ctx context.Context, req *authv1.RevokeTokenRequest) (*authv1.RevokeTokenResponse, error) {
	if kind, ok := strings.CutPrefix(req.GetToken(), "fail:"); ok {
		return nil, fail(kind, failMessage, 0)
	}
	if req.GetToken() == "slow" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, req.GetToken())
	return &authv1.RevokeTokenResponse{}, nil
}

// fail is a failure as a Moreid service sends it: a status whose ErrorInfo
// names the reason, with the wait of a rate limit in its metadata. The code
// is one apierr uses for many kinds; the client must go by the reason.
func fail(reason, message string, retryAfterSeconds int) error {
	if message == "" {
		message = "失败: " + reason
	}
	info := &errdetails.ErrorInfo{Reason: reason, Domain: wire.ErrorDomain}
	if retryAfterSeconds > 0 {
		info.Metadata = map[string]string{wire.RetryAfterMetadata: fmt.Sprint(retryAfterSeconds)}
	}
	st, err := status.New(codes.FailedPrecondition, message).WithDetails(info)
	if err != nil {
		panic(err) // an ErrorInfo always marshals
	}
	return st.Err()
}

// serve starts the fake on a loopback port, keeping the listener it
// picked, and returns its address.
func serve(t *testing.T, f *fakeAuth, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(opts, grpc.UnaryInterceptor(f.checkKey))...)
	authv1.RegisterAuthServiceServer(g, f)
	authv1.RegisterTokenServiceServer(g, f)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}
