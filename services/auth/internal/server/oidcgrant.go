package server

import (
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/remote"
)

// OIDCClients implements authv1.OIDCClientServiceServer, the OpenID
// Connect back channel behind the gateway's token, introspection,
// revocation and device authorization endpoints.
type OIDCClients struct {
	authv1.UnimplementedOIDCClientServiceServer
	flows *oauth.Service
}

// caller is the one place a back-channel call's client is decided. With a
// key (validated by KeyInterceptor: secret and whitelist) the request's
// client_id must be the key's own, else invalid_client: one client's
// secret never speaks for another. Without one, x-oidc-client-id must
// name a public client (whose whitelist PublicClient checks) and agree
// with the request's client_id.
func (o *OIDCClients) caller(ctx context.Context, clientID string) (oauth.Client, error) {
	if k, ok := KeyFromContext(ctx); ok {
		if clientID == "" || k.GetClientId() != clientID {
			return oauth.Client{}, apierr.New(apierr.InvalidClient)
		}
		return remote.ClientOf(k), nil
	}
	id := incoming(ctx, wire.OIDCClientID)
	if id == "" || id != clientID {
		return oauth.Client{}, apierr.New(apierr.InvalidClient)
	}
	return o.flows.PublicClient(ctx, id)
}

// AuthenticateClient implements OIDCClientService.
func (o *OIDCClients) AuthenticateClient(ctx context.Context, req *authv1.AuthenticateClientRequest) (*authv1.AuthenticateClientResponse, error) {
	c, err := o.caller(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	return &authv1.AuthenticateClientResponse{Client: oidcClient(c)}, nil
}

// RedeemCode implements OIDCClientService.
func (o *OIDCClients) RedeemCode(ctx context.Context, req *authv1.RedeemCodeRequest) (*authv1.RedeemCodeResponse, error) {
	c, err := o.caller(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	g, err := o.flows.RedeemCode(ctx, c, req.GetCode(), req.GetCodeVerifier(), req.GetRedirectUri())
	if err != nil {
		return nil, err
	}
	return &authv1.RedeemCodeResponse{Grant: grant(g)}, nil
}

// Refresh implements OIDCClientService.
func (o *OIDCClients) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
	c, err := o.caller(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	g, err := o.flows.Refresh(ctx, c, req.GetRefreshToken(), req.GetScopes())
	if err != nil {
		return nil, err
	}
	return &authv1.RefreshResponse{Grant: grant(g)}, nil
}

// IssueClientToken implements OIDCClientService.
func (o *OIDCClients) IssueClientToken(ctx context.Context, req *authv1.IssueClientTokenRequest) (*authv1.IssueClientTokenResponse, error) {
	c, err := o.caller(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	g, err := o.flows.IssueClientToken(ctx, c, req.GetScopes())
	if err != nil {
		return nil, err
	}
	return &authv1.IssueClientTokenResponse{Grant: grant(g)}, nil
}

// StartDevice implements OIDCClientService.
func (o *OIDCClients) StartDevice(ctx context.Context, req *authv1.StartDeviceRequest) (*authv1.StartDeviceResponse, error) {
	c, err := o.caller(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	iv, err := o.flows.StartDevice(ctx, c, req.GetDeviceCode(), req.GetUserCode(), req.GetScopes(), time.Duration(req.GetExpiresIn())*time.Second)
	if err != nil {
		return nil, err
	}
	return &authv1.StartDeviceResponse{Interval: int32(iv)}, nil
}

// PollDevice implements OIDCClientService.
func (o *OIDCClients) PollDevice(ctx context.Context, req *authv1.PollDeviceRequest) (*authv1.PollDeviceResponse, error) {
	c, err := o.caller(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	g, err := o.flows.PollDevice(ctx, c, req.GetDeviceCode())
	if err != nil {
		return nil, err
	}
	return &authv1.PollDeviceResponse{Grant: grant(g)}, nil
}

// Introspect implements OIDCClientService.
func (o *OIDCClients) Introspect(ctx context.Context, req *authv1.IntrospectRequest) (*authv1.IntrospectResponse, error) {
	c, err := o.caller(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	in, err := o.flows.IntrospectOIDC(ctx, c, req.GetToken())
	if err != nil {
		return nil, err
	}
	if !in.Active {
		return &authv1.IntrospectResponse{}, nil
	}
	return &authv1.IntrospectResponse{
		Active:    true,
		Scope:     strings.Join(in.Scopes, " "),
		ClientId:  in.ClientID,
		Sub:       in.Subject,
		Username:  in.Username,
		TokenType: in.TokenType,
		IssuedAt:  timestamppb.New(in.IssuedAt),
		ExpiresAt: timestamppb.New(in.ExpiresAt),
	}, nil
}

// Revoke implements OIDCClientService.
func (o *OIDCClients) Revoke(ctx context.Context, req *authv1.RevokeRequest) (*authv1.RevokeResponse, error) {
	c, err := o.caller(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	if err := o.flows.RevokeOIDC(ctx, c, req.GetToken()); err != nil {
		return nil, err
	}
	return &authv1.RevokeResponse{}, nil
}

// grant is a Grant on the wire.
func grant(g oauth.Grant) *authv1.OIDCGrant {
	out := &authv1.OIDCGrant{
		AccessToken:  g.AccessToken,
		ExpiresIn:    int32(g.ExpiresIn / time.Second),
		RefreshToken: g.RefreshToken,
		Scopes:       g.Scopes,
		Subject:      g.Subject,
		Nonce:        g.Nonce,
		ClientId:     g.ClientID,
	}
	if g.Subject != "" {
		// Every sign-in behind a grant is a password one.
		out.Amr = []string{"pwd"}
		if g.AuthTime > 0 {
			out.AuthTime = timestamppb.New(time.Unix(g.AuthTime, 0))
		}
	}
	return out
}
