package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/ipset"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
)

// The fakes below are deterministic in-memory stand-ins for the admin
// services, served over real gRPC with the platform's interceptors so that
// the CLI sees exactly the statuses the real services send.

type fakeUsers struct {
	userv1.UnimplementedUserAdminServiceServer
	mu    sync.Mutex
	users []*userv1.User
	reqs  []*userv1.CreateUserRequest
}

func (f *fakeUsers) CreateUser(_ context.Context, req *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, proto.Clone(req).(*userv1.CreateUserRequest))
	if !strings.Contains(req.GetEmail(), "@") {
		return nil, apierr.Newf(apierr.InvalidRequest, "邮箱格式错误")
	}
	for _, u := range f.users {
		if u.GetUserId() == req.GetUserId() {
			return nil, apierr.Newf(apierr.Conflict, "用户ID已存在")
		}
	}
	u := &userv1.User{Id: int32(len(f.users) + 1), UserId: req.GetUserId(), Username: req.GetUsername(), Email: req.GetEmail()}
	f.users = append(f.users, u)
	return &userv1.CreateUserResponse{User: u}, nil
}

func (f *fakeUsers) requests() []*userv1.CreateUserRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*userv1.CreateUserRequest(nil), f.reqs...)
}

type fakeKeys struct {
	apikeyv1.UnimplementedAPIKeyAdminServiceServer
	mu      sync.Mutex
	keys    []*apikeyv1.APIKey
	secrets []string
	calls   []proto.Message // every request received, in order
}

var baseTime = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func canonical(entries []string) ([]string, error) {
	ps, err := ipset.Parse(entries)
	if err != nil {
		return nil, apierr.Newf(apierr.InvalidRequest, "白名单格式错误")
	}
	return ipset.Strings(ps), nil
}

func (f *fakeKeys) CreateAPIKey(_ context.Context, req *apikeyv1.CreateAPIKeyRequest) (*apikeyv1.CreateAPIKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, proto.Clone(req))
	if len(req.GetName()) > 64 {
		return nil, apierr.Newf(apierr.InvalidRequest, "名称过长")
	}
	wl, err := canonical(req.GetWhitelist())
	if err != nil {
		return nil, err
	}
	id := int64(len(f.keys) + 1)
	sum := sha256.Sum256([]byte(fmt.Sprintf("key-%d-%s", id, req.GetName())))
	secret := "ml_" + hex.EncodeToString(sum[:])
	k := &apikeyv1.APIKey{
		Id: id, Name: req.GetName(), Prefix: secret[:11], Whitelist: wl,
		PasswordLogin: !req.GetDisablePasswordLogin(),
		CreatedAt:     timestamppb.New(baseTime.Add(time.Duration(id) * time.Minute)),
	}
	f.keys = append(f.keys, k)
	f.secrets = append(f.secrets, secret)
	return &apikeyv1.CreateAPIKeyResponse{ApiKey: k, Key: secret}, nil
}

func (f *fakeKeys) ListAPIKeys(_ context.Context, req *apikeyv1.ListAPIKeysRequest) (*apikeyv1.ListAPIKeysResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, proto.Clone(req))
	return &apikeyv1.ListAPIKeysResponse{ApiKeys: f.keys}, nil
}

func (f *fakeKeys) find(id int64) (*apikeyv1.APIKey, error) {
	for _, k := range f.keys {
		if k.GetId() == id {
			return k, nil
		}
	}
	return nil, apierr.Newf(apierr.NotFound, "API密钥不存在")
}

func (f *fakeKeys) RevokeAPIKey(_ context.Context, req *apikeyv1.RevokeAPIKeyRequest) (*apikeyv1.RevokeAPIKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, proto.Clone(req))
	k, err := f.find(req.GetId())
	if err != nil {
		return nil, err
	}
	if k.RevokedAt == nil {
		k.RevokedAt = timestamppb.New(baseTime.Add(time.Hour))
	}
	return &apikeyv1.RevokeAPIKeyResponse{ApiKey: k}, nil
}

func (f *fakeKeys) SetWhitelist(_ context.Context, req *apikeyv1.SetWhitelistRequest) (*apikeyv1.SetWhitelistResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, proto.Clone(req))
	k, err := f.find(req.GetId())
	if err != nil {
		return nil, err
	}
	wl, err := canonical(req.GetWhitelist())
	if err != nil {
		return nil, err
	}
	k.Whitelist = wl
	return &apikeyv1.SetWhitelistResponse{ApiKey: k}, nil
}

// received is every request the fake got, in order.
func (f *fakeKeys) received() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proto.Message(nil), f.calls...)
}

// suite is a pair of admin servers on loopback ports and the environment
// that points the CLI at them.
type suite struct {
	users *fakeUsers
	keys  *fakeKeys
	env   map[string]string
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{users: &fakeUsers{}, keys: &fakeKeys{}}
	userAddr := serve(t, func(g *grpc.Server) { userv1.RegisterUserAdminServiceServer(g, s.users) })
	keyAddr := serve(t, func(g *grpc.Server) { apikeyv1.RegisterAPIKeyAdminServiceServer(g, s.keys) })
	s.env = map[string]string{envUserAdminAddr: userAddr, envAPIKeyAdminAddr: keyAddr}
	return s
}

func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpcx.ServerOptions(slog.New(slog.NewTextHandler(io.Discard, nil)))...)
	register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// result is what the operator observes.
type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut strings.Builder
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}
