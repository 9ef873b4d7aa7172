package server

import (
	"context"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// OIDC implements authv1.OIDCServiceServer, the OpenID Connect front
// channel, except SignJWT and GetJWKS (the signing keys' own type serves
// those). It takes no API key: the page calls are protected like
// ConfirmationService's, by the session metadata and its CSRF token.
type OIDC struct {
	authv1.UnimplementedOIDCServiceServer
	flows *oauth.Service
}

// NewOIDC returns the front channel over flows.
func NewOIDC(flows *oauth.Service) *OIDC { return &OIDC{flows: flows} }

// GetClient implements OIDCService.
func (o *OIDC) GetClient(ctx context.Context, req *authv1.GetClientRequest) (*authv1.GetClientResponse, error) {
	c, err := o.flows.OIDCClient(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	return &authv1.GetClientResponse{Client: oidcClient(c)}, nil
}

// oidcClient is the public view of a client (no whitelist), as GetClient
// and AuthenticateClient answer it.
func oidcClient(c oauth.Client) *authv1.OIDCClient {
	return &authv1.OIDCClient{
		ClientId: c.ClientID, Name: c.Name, Public: c.Public,
		RedirectUris: c.RedirectURIs, PostLogoutRedirectUris: c.PostLogoutRedirectURIs,
		ApiKeyId: c.KeyID,
	}
}

// CreateAuthRequest implements OIDCService.
func (o *OIDC) CreateAuthRequest(ctx context.Context, req *authv1.CreateAuthRequestRequest) (*authv1.CreateAuthRequestResponse, error) {
	r, err := o.flows.CreateAuthRequest(ctx, oauth.AuthRequestParams{
		ClientID: req.GetClientId(), RedirectURI: req.GetRedirectUri(), Scopes: req.GetScopes(),
		State: req.GetState(), Nonce: req.GetNonce(),
		CodeChallenge: req.GetCodeChallenge(), CodeChallengeMethod: req.GetCodeChallengeMethod(),
		Prompt: req.GetPrompt(), MaxAge: req.MaxAge, LoginHint: req.GetLoginHint(),
	})
	if err != nil {
		return nil, err
	}
	return &authv1.CreateAuthRequestResponse{AuthRequest: authRequest(r)}, nil
}

// GetAuthRequest implements OIDCService.
func (o *OIDC) GetAuthRequest(ctx context.Context, req *authv1.GetAuthRequestRequest) (*authv1.GetAuthRequestResponse, error) {
	p, err := o.flows.GetAuthRequest(ctx, incoming(ctx, wire.Session), req.GetId())
	if err != nil {
		return nil, err
	}
	r := authRequest(p.AuthRequest)
	r.CsrfToken = p.CSRF
	if p.User != nil {
		r.User = summary(*p.User)
	}
	return &authv1.GetAuthRequestResponse{AuthRequest: r}, nil
}

// authRequest is the wire form of a stored request, with its app's name.
func authRequest(r oauth.AuthRequest) *authv1.AuthRequest {
	out := &authv1.AuthRequest{
		Id: r.ID, ClientId: r.ClientID, RedirectUri: r.RedirectURI, Scopes: r.Scopes,
		State: r.State, Nonce: r.Nonce, CodeChallenge: r.Challenge,
		Prompt: r.Prompt, MaxAge: r.MaxAge, LoginHint: r.LoginHint,
		ExpiresAt: timestamppb.New(r.ExpiresAt), AppName: r.KeyName,
	}
	if r.Challenge != "" {
		out.CodeChallengeMethod = "S256"
	}
	return out
}

// SignIn implements OIDCService.
func (o *OIDC) SignIn(ctx context.Context, req *authv1.OIDCServiceSignInRequest) (*authv1.OIDCServiceSignInResponse, error) {
	in, err := o.flows.OIDCSignIn(ctx, req.GetAuthRequestId(), req.GetUserId(), req.GetPassword())
	if err != nil {
		return nil, err
	}
	return &authv1.OIDCServiceSignInResponse{Session: in.Session, CsrfToken: in.CSRF, ExpiresIn: in.ExpiresIn, User: summary(in.User)}, nil
}

// decisions maps the wire decision; unspecified maps to 0, which the
// flows refuse.
var decisions = map[authv1.Decision]oauth.Decision{
	authv1.Decision_DECISION_AUTO:    oauth.DecideAuto,
	authv1.Decision_DECISION_APPROVE: oauth.DecideApprove,
	authv1.Decision_DECISION_DENY:    oauth.DecideDeny,
}

var nexts = map[oauth.Next]authv1.Next{
	oauth.NextLogin:    authv1.Next_NEXT_LOGIN,
	oauth.NextConsent:  authv1.Next_NEXT_CONSENT,
	oauth.NextRedirect: authv1.Next_NEXT_REDIRECT,
}

// Decide implements OIDCService.
func (o *OIDC) Decide(ctx context.Context, req *authv1.DecideRequest) (*authv1.DecideResponse, error) {
	d, err := o.flows.Decide(ctx, incoming(ctx, wire.Session), incoming(ctx, wire.CSRF), req.GetAuthRequestId(), decisions[req.GetDecision()])
	if err != nil {
		return nil, err
	}
	return &authv1.DecideResponse{
		Next: nexts[d.Next], RedirectUri: d.RedirectURI, Code: d.Code, State: d.State,
		Error: d.Error, ErrorDescription: d.ErrorDescription,
	}, nil
}

// GetDevice implements OIDCService.
func (o *OIDC) GetDevice(ctx context.Context, req *authv1.GetDeviceRequest) (*authv1.GetDeviceResponse, error) {
	p, err := o.flows.GetDevice(ctx, incoming(ctx, wire.Session), req.GetUserCode())
	if err != nil {
		return nil, err
	}
	d := &authv1.DeviceAuthorization{
		UserCode: oauth.DisplayUserCode(oauth.NormalizeUserCode(req.GetUserCode())), ClientId: p.Record.ClientID, AppName: p.Record.KeyName,
		Scopes: p.Record.Scopes, ExpiresAt: timestamppb.New(p.ExpiresAt), CsrfToken: p.CSRF,
	}
	if p.User != nil {
		d.User = summary(*p.User)
	}
	return &authv1.GetDeviceResponse{Device: d}, nil
}

// DecideDevice implements OIDCService.
func (o *OIDC) DecideDevice(ctx context.Context, req *authv1.DecideDeviceRequest) (*authv1.DecideDeviceResponse, error) {
	if err := o.flows.DecideDevice(ctx, incoming(ctx, wire.Session), incoming(ctx, wire.CSRF), req.GetUserCode(), req.GetApprove()); err != nil {
		return nil, err
	}
	return &authv1.DecideDeviceResponse{}, nil
}

// EndSession implements OIDCService.
func (o *OIDC) EndSession(ctx context.Context, req *authv1.EndSessionRequest) (*authv1.EndSessionResponse, error) {
	other, err := o.flows.EndSession(ctx, incoming(ctx, wire.Session), req.GetSubject())
	if err != nil {
		return nil, err
	}
	return &authv1.EndSessionResponse{OtherUser: other}, nil
}

// GetUserinfo implements OIDCService.
func (o *OIDC) GetUserinfo(ctx context.Context, _ *authv1.OIDCServiceGetUserinfoRequest) (*authv1.OIDCServiceGetUserinfoResponse, error) {
	info, err := o.flows.OIDCUserinfo(ctx, bearer(ctx))
	if err != nil {
		return nil, err
	}
	u := info.User
	out := &authv1.OIDCUserinfo{Sub: strconv.FormatInt(int64(u.ID), 10), Scopes: info.Scopes}
	if info.Profile {
		out.PreferredUsername, out.Name, out.Picture, out.Bio = u.UserID, u.Username, u.AvatarURL, u.Bio
	}
	if info.Email {
		// Moreid does not verify addresses (SPEC section 8).
		out.Email, out.EmailVerified = u.Email, false
	}
	return &authv1.OIDCServiceGetUserinfoResponse{Userinfo: out}, nil
}
