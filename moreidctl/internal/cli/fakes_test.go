package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/ipset"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	auditv1 "github.com/moreline/moreid/proto/gen/go/moreid/audit/v1"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
)

// The fakes below are deterministic in-memory stand-ins for the admin
// services, served over real gRPC with the platform's interceptors so that
// the CLI sees exactly the statuses the real services send.

type fakeUsers struct {
	userv1.UnimplementedUserAdminServiceServer
	mu       sync.Mutex
	users    []*userv1.User
	reqs     []*userv1.CreateUserRequest
	disables []*userv1.SetUserDisabledRequest
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

func (f *fakeUsers) SetUserDisabled(_ context.Context, req *userv1.SetUserDisabledRequest) (*userv1.SetUserDisabledResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disables = append(f.disables, proto.Clone(req).(*userv1.SetUserDisabledRequest))
	for _, u := range f.users {
		if u.GetUserId() == req.GetUserId() {
			u.Disabled = req.GetDisabled()
			return &userv1.SetUserDisabledResponse{User: proto.Clone(u).(*userv1.User)}, nil
		}
	}
	return nil, apierr.Newf(apierr.NotFound, "用户不存在")
}

// add stores a user as if created earlier.
func (f *fakeUsers) add(u *userv1.User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users = append(f.users, u)
}

// disabled reports the current flag of userID.
func (f *fakeUsers) disabled(userID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.GetUserId() == userID {
			return u.GetDisabled()
		}
	}
	return false
}

func (f *fakeUsers) disableRequests() []*userv1.SetUserDisabledRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*userv1.SetUserDisabledRequest(nil), f.disables...)
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
	if err := fakeCheckURIs(req.GetRedirectUris(), req.GetPostLogoutRedirectUris()); err != nil {
		return nil, err
	}
	id := int64(len(f.keys) + 1)
	sum := sha256.Sum256([]byte(fmt.Sprintf("key-%d-%s", id, req.GetName())))
	secret := "ml_" + hex.EncodeToString(sum[:])
	cid := sha256.Sum256([]byte(fmt.Sprintf("client-%d", id)))
	k := &apikeyv1.APIKey{
		Id: id, Name: req.GetName(), Prefix: secret[:11], Whitelist: wl,
		PasswordLogin: !req.GetDisablePasswordLogin(),
		CreatedAt:     timestamppb.New(baseTime.Add(time.Duration(id) * time.Minute)),
		ClientId:      "mlc_" + hex.EncodeToString(cid[:16]),
		Public:        req.GetPublic(),
		RedirectUris:  req.GetRedirectUris(), PostLogoutRedirectUris: req.GetPostLogoutRedirectUris(),
	}
	f.keys = append(f.keys, k)
	f.secrets = append(f.secrets, secret)
	if req.GetPublic() {
		return &apikeyv1.CreateAPIKeyResponse{ApiKey: k}, nil
	}
	return &apikeyv1.CreateAPIKeyResponse{ApiKey: k, Key: secret}, nil
}

// fakeCheckURIs stands in for the service's URI rules with one of them: a
// fragment is refused, naming the URI as the service does.
func fakeCheckURIs(lists ...[]string) error {
	for _, l := range lists {
		for _, u := range l {
			if strings.Contains(u, "#") {
				return apierr.Newf(apierr.InvalidRequest, "重定向URI无效：%q（不能包含片段（#））", u)
			}
		}
	}
	return nil
}

func (f *fakeKeys) SetRedirectURIs(_ context.Context, req *apikeyv1.SetRedirectURIsRequest) (*apikeyv1.SetRedirectURIsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, proto.Clone(req))
	k, err := f.find(req.GetId())
	if err != nil {
		return nil, err
	}
	if err := fakeCheckURIs(req.GetUris()); err != nil {
		return nil, err
	}
	if req.GetPostLogout() {
		k.PostLogoutRedirectUris = req.GetUris()
	} else {
		k.RedirectUris = req.GetUris()
	}
	return &apikeyv1.SetRedirectURIsResponse{ApiKey: k}, nil
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

// fakeAuth is auth's admin listener over a count of live tokens per user
// and the apps (client IDs) each user consented to.
type fakeAuth struct {
	authv1.UnimplementedAuthAdminServiceServer
	mu          sync.Mutex
	tokens      map[string]int32
	reqs        []*authv1.RevokeUserTokensRequest
	consents    map[string][]string
	withdrawals []*authv1.WithdrawConsentRequest
}

// WithdrawConsent refuses an unknown user as auth does (the user is looked
// up first) and ends the matching consents, "" matching every app.
func (f *fakeAuth) WithdrawConsent(_ context.Context, req *authv1.WithdrawConsentRequest) (*authv1.WithdrawConsentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.withdrawals = append(f.withdrawals, proto.Clone(req).(*authv1.WithdrawConsentRequest))
	apps, known := f.consents[req.GetUserId()]
	if !known {
		return nil, apierr.Newf(apierr.NotFound, "用户不存在")
	}
	var kept []string
	for _, c := range apps {
		if req.GetClientId() != "" && c != req.GetClientId() {
			kept = append(kept, c)
		}
	}
	f.consents[req.GetUserId()] = kept
	return &authv1.WithdrawConsentResponse{Withdrawn: int32(len(apps) - len(kept))}, nil
}

// consented is the apps userID still consents to.
func (f *fakeAuth) consented(userID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.consents[userID]...)
}

func (f *fakeAuth) withdrawRequests() []*authv1.WithdrawConsentRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*authv1.WithdrawConsentRequest(nil), f.withdrawals...)
}

func (f *fakeAuth) RevokeUserTokens(_ context.Context, req *authv1.RevokeUserTokensRequest) (*authv1.RevokeUserTokensResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, proto.Clone(req).(*authv1.RevokeUserTokensRequest))
	if req.GetUserId() == "" {
		return nil, apierr.Newf(apierr.InvalidRequest, "用户ID不能为空")
	}
	n := f.tokens[req.GetUserId()]
	delete(f.tokens, req.GetUserId())
	return &authv1.RevokeUserTokensResponse{Revoked: n}, nil
}

func (f *fakeAuth) live(userID string) int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[userID]
}

// revoked is the user_id of every RevokeUserTokens call, in order.
func (f *fakeAuth) revoked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reqs {
		out = append(out, r.GetUserId())
	}
	return out
}

// fakeAudit is the audit trail's admin service over a fixed list of events,
// newest first, filtered as the real one filters.
type fakeAudit struct {
	auditv1.UnimplementedAuditAdminServiceServer
	mu     sync.Mutex
	events []*auditv1.AuditEvent
	reqs   []*auditv1.ListAuditEventsRequest
}

func (f *fakeAudit) ListAuditEvents(_ context.Context, req *auditv1.ListAuditEventsRequest) (*auditv1.ListAuditEventsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, proto.Clone(req).(*auditv1.ListAuditEventsRequest))
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > 1000 {
		return nil, apierr.Newf(apierr.InvalidRequest, "limit必须在1到1000之间")
	}
	out := []*auditv1.AuditEvent{}
	for _, e := range f.events {
		if req.GetUserId() != "" && e.GetUserId() != req.GetUserId() {
			continue
		}
		if req.GetSince() != nil && e.GetTime().AsTime().Before(req.GetSince().AsTime()) {
			continue
		}
		if len(out) < limit {
			out = append(out, e)
		}
	}
	return &auditv1.ListAuditEventsResponse{Events: out}, nil
}

func (f *fakeAudit) requests() []*auditv1.ListAuditEventsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*auditv1.ListAuditEventsRequest(nil), f.reqs...)
}

// suite is the three admin servers on loopback ports and the environment
// that points the CLI at them.
type suite struct {
	users *fakeUsers
	keys  *fakeKeys
	auth  *fakeAuth
	audit *fakeAudit
	env   map[string]string
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{users: &fakeUsers{}, keys: &fakeKeys{}, auth: &fakeAuth{tokens: map[string]int32{}, consents: map[string][]string{}}, audit: &fakeAudit{}}
	userAddr := serve(t, func(g *grpc.Server) { userv1.RegisterUserAdminServiceServer(g, s.users) })
	keyAddr := serve(t, func(g *grpc.Server) { apikeyv1.RegisterAPIKeyAdminServiceServer(g, s.keys) })
	authAddr := serve(t, func(g *grpc.Server) {
		authv1.RegisterAuthAdminServiceServer(g, s.auth)
		auditv1.RegisterAuditAdminServiceServer(g, s.audit) // auth hosts the audit trail's admin service
	})
	s.env = map[string]string{envUserAdminAddr: userAddr, envAPIKeyAdminAddr: keyAddr, envAuthAdminAddr: authAddr}
	return s
}

func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	g := grpctest.NewServer()
	register(g)
	return grpctest.Serve(t, g)
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
