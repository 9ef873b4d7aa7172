package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// Tokens implements authv1.TokenServiceServer. IntrospectToken and
// RevokeToken are for internal services (never mapped by the gateway) and
// run behind the key check: they answer only about tokens issued to the
// caller's key. GetUserinfo takes no key: the token is the credential.
type Tokens struct {
	authv1.UnimplementedTokenServiceServer
	flows *oauth.Service
}

// IntrospectToken implements TokenService.
func (t *Tokens) IntrospectToken(ctx context.Context, req *authv1.IntrospectTokenRequest) (*authv1.IntrospectTokenResponse, error) {
	key, err := callerKey(ctx)
	if err != nil {
		return nil, err
	}
	tok, active, err := t.flows.Introspect(ctx, key, req.GetToken())
	if err != nil {
		return nil, err
	}
	if !active {
		return &authv1.IntrospectTokenResponse{}, nil
	}
	return &authv1.IntrospectTokenResponse{
		Active:     true,
		User:       profile(tok.User),
		ApiKeyId:   tok.Record.KeyID,
		ApiKeyName: tok.Record.KeyName,
		IssuedAt:   timestamppb.New(time.Unix(tok.Record.IssuedAt, 0)),
		ExpiresAt:  timestamppb.New(tok.ExpiresAt),
	}, nil
}

// RevokeToken implements TokenService.
func (t *Tokens) RevokeToken(ctx context.Context, req *authv1.RevokeTokenRequest) (*authv1.RevokeTokenResponse, error) {
	key, err := callerKey(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.flows.RevokeToken(ctx, key, req.GetToken()); err != nil {
		return nil, err
	}
	return &authv1.RevokeTokenResponse{}, nil
}

// GetUserinfo implements TokenService.
func (t *Tokens) GetUserinfo(ctx context.Context, _ *authv1.GetUserinfoRequest) (*authv1.GetUserinfoResponse, error) {
	u, err := t.flows.Userinfo(ctx, bearer(ctx))
	if err != nil {
		return nil, err
	}
	return &authv1.GetUserinfoResponse{Success: true, Message: msgProfile, User: profile(u)}, nil
}

// Admin implements authv1.AuthAdminServiceServer, for the admin listener
// only.
type Admin struct {
	authv1.UnimplementedAuthAdminServiceServer
	flows *oauth.Service
}

// RevokeUserTokens implements AuthAdminService.
func (a *Admin) RevokeUserTokens(ctx context.Context, req *authv1.RevokeUserTokensRequest) (*authv1.RevokeUserTokensResponse, error) {
	n, err := a.flows.RevokeUserTokens(oauth.WithClientIP(ctx, peerIP(ctx)), req.GetUserId())
	if err != nil {
		return nil, err
	}
	return &authv1.RevokeUserTokensResponse{Revoked: int32(n)}, nil
}

// WithdrawConsent implements AuthAdminService.
func (a *Admin) WithdrawConsent(ctx context.Context, req *authv1.WithdrawConsentRequest) (*authv1.WithdrawConsentResponse, error) {
	n, err := a.flows.WithdrawConsent(oauth.WithClientIP(ctx, peerIP(ctx)), req.GetUserId(), req.GetClientId())
	if err != nil {
		return nil, err
	}
	return &authv1.WithdrawConsentResponse{Withdrawn: int32(n)}, nil
}
