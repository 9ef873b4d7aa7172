// Package server maps AuthService onto the oauth flows and guards it with the
// API-key interceptor.
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
)

// Server implements authv1.AuthServiceServer.
type Server struct {
	authv1.UnimplementedAuthServiceServer
	flows *oauth.Service
}

// New returns the AuthService over flows.
func New(flows *oauth.Service) *Server { return &Server{flows: flows} }

// Register adds the service to s.
func (s *Server) Register(g *grpc.Server) { authv1.RegisterAuthServiceServer(g, s) }

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
		User:    &authv1.User{Id: u.ID, Username: u.Username, UserId: u.UserID, Email: u.Email},
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

// callerKey is the validated key the interceptor put in ctx. Its absence
// means the interceptor is not installed: refuse rather than serve keyless.
func callerKey(ctx context.Context) (oauth.Key, error) {
	k, ok := KeyFromContext(ctx)
	if !ok {
		return oauth.Key{}, apierr.New(apierr.InvalidAPIKey)
	}
	return oauth.Key{ID: k.GetId(), PasswordLogin: k.GetPasswordLogin()}, nil
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
