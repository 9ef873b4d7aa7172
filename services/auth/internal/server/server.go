// Package server maps the auth service's gRPC services onto the oauth flows:
// AuthService (guarded by the API-key interceptor), ConfirmationService and
// TokenService on the public listener, AuthAdminService on the admin
// listener only.
package server

import (
	"context"

	"google.golang.org/grpc"

	"github.com/moreline/moreid/platform/apierr"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// The documented success messages (SPEC section 2).
const (
	msgAuthorize = "授权初始化成功"
	msgLogin     = "登录成功"
	msgToken     = "获取访问令牌成功"
	msgProfile   = "获取用户信息成功"
	msgUCA       = "获取一次性确认码成功"
	msgLoginSafe = "登录成功，授权码已生成"
	msgUpdate    = "用户信息更新成功"
)

// Server implements authv1.AuthServiceServer.
type Server struct {
	authv1.UnimplementedAuthServiceServer
	flows        *oauth.Service
	signing      *Signing
	signingAdmin *SigningAdmin
}

// New returns the AuthService over flows.
func New(flows *oauth.Service) *Server { return &Server{flows: flows} }

// Register adds the public services to g: AuthService, ConfirmationService
// and TokenService. AuthAdminService is deliberately not among them.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	authv1.RegisterAuthServiceServer(g, s)
	authv1.RegisterConfirmationServiceServer(g, &Confirmation{flows: s.flows})
	authv1.RegisterTokenServiceServer(g, &Tokens{flows: s.flows})
	authv1.RegisterOIDCClientServiceServer(g, &OIDCClients{flows: s.flows})
	authv1.RegisterOIDCServiceServer(g, &oidcService{OIDC: NewOIDC(s.flows), signing: s.signing})
}

// RegisterAdmin adds the operator service to g, the admin listener's server.
func (s *Server) RegisterAdmin(g grpc.ServiceRegistrar) {
	authv1.RegisterAuthAdminServiceServer(g, &adminService{Admin: &Admin{flows: s.flows}, signing: s.signingAdmin})
}

// WithSigning serves OIDCService's SignJWT and GetJWKS from sig and the
// signing-key operator calls from admin. Without it they answer
// unimplemented: the flows' own tests need no signing keys.
func (s *Server) WithSigning(sig *Signing, admin *SigningAdmin) *Server {
	s.signing, s.signingAdmin = sig, admin
	return s
}

// oidcService is OIDCService: the front channel's flows and, when set, the
// signing keys' calls.
type oidcService struct {
	*OIDC
	signing *Signing
}

// SignJWT implements OIDCService.
func (o *oidcService) SignJWT(ctx context.Context, req *authv1.SignJWTRequest) (*authv1.SignJWTResponse, error) {
	if o.signing == nil {
		return o.OIDC.SignJWT(ctx, req)
	}
	return o.signing.SignJWT(ctx, req)
}

// GetJWKS implements OIDCService.
func (o *oidcService) GetJWKS(ctx context.Context, req *authv1.GetJWKSRequest) (*authv1.GetJWKSResponse, error) {
	if o.signing == nil {
		return o.OIDC.GetJWKS(ctx, req)
	}
	return o.signing.GetJWKS(ctx, req)
}

// adminService is AuthAdminService: the token and consent calls and, when
// set, the signing keys'.
type adminService struct {
	*Admin
	signing *SigningAdmin
}

// RotateSigningKey implements AuthAdminService.
func (a *adminService) RotateSigningKey(ctx context.Context, req *authv1.RotateSigningKeyRequest) (*authv1.RotateSigningKeyResponse, error) {
	if a.signing == nil {
		return a.Admin.RotateSigningKey(ctx, req)
	}
	return a.signing.RotateSigningKey(ctx, req)
}

// ListSigningKeys implements AuthAdminService.
func (a *adminService) ListSigningKeys(ctx context.Context, req *authv1.ListSigningKeysRequest) (*authv1.ListSigningKeysResponse, error) {
	if a.signing == nil {
		return a.Admin.ListSigningKeys(ctx, req)
	}
	return a.signing.ListSigningKeys(ctx, req)
}

// Authorize implements AuthService.
func (s *Server) Authorize(ctx context.Context, _ *authv1.AuthorizeRequest) (*authv1.AuthorizeResponse, error) {
	key, err := callerKey(ctx)
	if err != nil {
		return nil, err
	}
	state, err := s.flows.Authorize(ctx, key)
	if err != nil {
		return nil, err
	}
	return &authv1.AuthorizeResponse{Success: true, Message: msgAuthorize, State: state}, nil
}

// Login implements AuthService.
func (s *Server) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	key, err := callerKey(ctx)
	if err != nil {
		return nil, err
	}
	code, u, err := s.flows.Login(ctx, key, req.GetUserId(), req.GetPassword(), req.GetState())
	if err != nil {
		return nil, err
	}
	return &authv1.LoginResponse{
		Success: true,
		Message: msgLogin,
		Code:    code,
		User:    summary(u),
	}, nil
}

// Token implements AuthService.
func (s *Server) Token(ctx context.Context, req *authv1.TokenRequest) (*authv1.TokenResponse, error) {
	key, err := callerKey(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := s.flows.Token(ctx, key, req.GetCode(), req.GetState())
	if err != nil {
		return nil, err
	}
	return &authv1.TokenResponse{
		Success:     true,
		Message:     msgToken,
		AccessToken: tok.Value,
		TokenType:   "Bearer",
		ExpiresIn:   int32(tok.TTL.Seconds()),
	}, nil
}

// GetPublicProfile implements AuthService.
func (s *Server) GetPublicProfile(ctx context.Context, req *authv1.GetPublicProfileRequest) (*authv1.GetPublicProfileResponse, error) {
	if _, err := callerKey(ctx); err != nil {
		return nil, err
	}
	u, err := s.flows.PublicProfile(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	return &authv1.GetPublicProfileResponse{
		Success: true,
		Message: msgProfile,
		User:    &authv1.PublicProfile{Username: u.Username, AvatarUrl: u.AvatarURL},
	}, nil
}

// CreateUCA implements AuthService.
func (s *Server) CreateUCA(ctx context.Context, req *authv1.CreateUCARequest) (*authv1.CreateUCAResponse, error) {
	key, err := callerKey(ctx)
	if err != nil {
		return nil, err
	}
	uca, err := s.flows.CreateUCA(ctx, key, req.GetState())
	if err != nil {
		return nil, err
	}
	return &authv1.CreateUCAResponse{Success: true, Message: msgUCA, Ucaoncecode: uca}, nil
}

// LoginSafe implements AuthService.
func (s *Server) LoginSafe(ctx context.Context, req *authv1.LoginSafeRequest) (*authv1.LoginSafeResponse, error) {
	key, err := callerKey(ctx)
	if err != nil {
		return nil, err
	}
	code, u, err := s.flows.LoginSafe(ctx, key, req.GetState(), req.GetLoginCode())
	if err != nil {
		return nil, err
	}
	return &authv1.LoginSafeResponse{Success: true, Message: msgLoginSafe, Code: code, User: summary(u)}, nil
}

// UpdateUser implements AuthService.
func (s *Server) UpdateUser(ctx context.Context, req *authv1.UpdateUserRequest) (*authv1.UpdateUserResponse, error) {
	key, err := callerKey(ctx)
	if err != nil {
		return nil, err
	}
	consent := oauth.Consent{Cookie: req.GetCookie(), Bearer: bearer(ctx)}
	change := oauth.ProfileChange{Username: req.Username, Bio: req.Bio}
	u, err := s.flows.UpdateUser(ctx, key, req.GetUserId(), req.GetState(), consent, change)
	if err != nil {
		return nil, err
	}
	return &authv1.UpdateUserResponse{
		Success: true,
		Message: msgUpdate,
		User:    &authv1.UpdatedUser{Id: u.ID, Username: u.Username, UserId: u.UserID, Email: u.Email, Bio: u.Bio},
	}, nil
}

// GetTokenUser implements AuthService.
func (s *Server) GetTokenUser(ctx context.Context, _ *authv1.GetTokenUserRequest) (*authv1.GetTokenUserResponse, error) {
	key, err := callerKey(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.flows.TokenUser(ctx, key, bearer(ctx))
	if err != nil {
		return nil, err
	}
	return &authv1.GetTokenUserResponse{Success: true, Message: msgProfile, User: profile(u)}, nil
}

// summary is the account summary the login calls return.
func summary(u oauth.User) *authv1.User {
	return &authv1.User{Id: u.ID, Username: u.Username, UserId: u.UserID, Email: u.Email}
}

// profile is the full profile a token's holder reads.
func profile(u oauth.User) *authv1.UserProfile {
	return &authv1.UserProfile{Id: u.ID, Username: u.Username, UserId: u.UserID, Email: u.Email, Bio: u.Bio, AvatarUrl: u.AvatarURL}
}

// callerKey is the validated key the interceptor put in ctx. Its absence
// means the interceptor is not installed: refuse rather than serve keyless.
func callerKey(ctx context.Context) (oauth.Key, error) {
	k, ok := KeyFromContext(ctx)
	if !ok {
		return oauth.Key{}, apierr.New(apierr.InvalidAPIKey)
	}
	return oauth.Key{ID: k.GetId(), Name: k.GetName(), PasswordLogin: k.GetPasswordLogin()}, nil
}

type keyCtx struct{}

// WithKey returns ctx carrying the caller's validated API key.
func WithKey(ctx context.Context, k *apikeyv1.APIKey) context.Context {
	return context.WithValue(ctx, keyCtx{}, k)
}

// KeyFromContext returns the caller's validated API key.
func KeyFromContext(ctx context.Context) (*apikeyv1.APIKey, bool) {
	k, ok := ctx.Value(keyCtx{}).(*apikeyv1.APIKey)
	return k, ok && k != nil
}
