// Package server maps the API-key gRPC services onto the apikey domain:
// APIKeyService for the internal listener, APIKeyAdminService for the admin
// listener only.
package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/ipset"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	"github.com/moreline/moreid/services/apikey/internal/apikey"
)

// Keys implements APIKeyService.
type Keys struct {
	apikeyv1.UnimplementedAPIKeyServiceServer
	svc *apikey.Service
}

// NewKeys returns APIKeyService over svc.
func NewKeys(svc *apikey.Service) *Keys { return &Keys{svc: svc} }

// ValidateKey implements APIKeyService.
func (s *Keys) ValidateKey(ctx context.Context, req *apikeyv1.ValidateKeyRequest) (*apikeyv1.ValidateKeyResponse, error) {
	k, err := s.svc.Validate(ctx, req.GetKey(), req.GetClientIp())
	if err != nil {
		return nil, err
	}
	return &apikeyv1.ValidateKeyResponse{ApiKey: toProto(k)}, nil
}

// CheckKey implements APIKeyService.
func (s *Keys) CheckKey(ctx context.Context, req *apikeyv1.CheckKeyRequest) (*apikeyv1.CheckKeyResponse, error) {
	k, err := s.svc.Check(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &apikeyv1.CheckKeyResponse{ApiKey: toProto(k)}, nil
}

// GetClient implements APIKeyService: the OAuth client behind a client_id,
// for auth's OpenID Connect provider.
func (s *Keys) GetClient(ctx context.Context, req *apikeyv1.GetClientRequest) (*apikeyv1.GetClientResponse, error) {
	k, err := s.svc.Client(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	return &apikeyv1.GetClientResponse{ApiKey: toProto(k)}, nil
}

// EventRedirectURIs is the audit event of SetRedirectURIs. It lives here,
// not in platform/audit, only because this service is its one writer;
// the name follows audit.KeyWhitelist and is just as stable.
const EventRedirectURIs = "apikey.redirect_uris_changed"

// Admin implements APIKeyAdminService. Every change it makes, or is refused,
// goes to the audit trail.
type Admin struct {
	apikeyv1.UnimplementedAPIKeyAdminServiceServer
	svc *apikey.Service
	rec audit.Recorder
}

// NewAdmin returns APIKeyAdminService over svc, recording to rec.
func NewAdmin(svc *apikey.Service, rec audit.Recorder) *Admin { return &Admin{svc: svc, rec: rec} }

// record notes an admin operation on key id (0 when none was made). The
// client IP is the admin caller's: the admin listener is dialed directly.
func (s *Admin) record(ctx context.Context, event string, id int64, err error) {
	outcome, detail := audit.Result(err)
	s.rec.Record(ctx, audit.Event{Event: event, Outcome: outcome, APIKeyID: id, ClientIP: audit.PeerIP(ctx), Detail: detail})
}

// CreateAPIKey implements APIKeyAdminService.
func (s *Admin) CreateAPIKey(ctx context.Context, req *apikeyv1.CreateAPIKeyRequest) (*apikeyv1.CreateAPIKeyResponse, error) {
	k, key, err := s.svc.Create(ctx, apikey.CreateRequest{
		Name:                   req.GetName(),
		Whitelist:              req.GetWhitelist(),
		DisablePasswordLogin:   req.GetDisablePasswordLogin(),
		RedirectURIs:           req.GetRedirectUris(),
		PostLogoutRedirectURIs: req.GetPostLogoutRedirectUris(),
		Public:                 req.GetPublic(),
	})
	s.record(ctx, audit.KeyCreated, k.ID, err)
	if err != nil {
		return nil, err
	}
	return &apikeyv1.CreateAPIKeyResponse{ApiKey: toProto(k), Key: key}, nil
}

// ListAPIKeys implements APIKeyAdminService.
func (s *Admin) ListAPIKeys(ctx context.Context, _ *apikeyv1.ListAPIKeysRequest) (*apikeyv1.ListAPIKeysResponse, error) {
	keys, err := s.svc.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*apikeyv1.APIKey, len(keys))
	for i, k := range keys {
		out[i] = toProto(k)
	}
	return &apikeyv1.ListAPIKeysResponse{ApiKeys: out}, nil
}

// RevokeAPIKey implements APIKeyAdminService.
func (s *Admin) RevokeAPIKey(ctx context.Context, req *apikeyv1.RevokeAPIKeyRequest) (*apikeyv1.RevokeAPIKeyResponse, error) {
	k, err := s.svc.Revoke(ctx, req.GetId())
	s.record(ctx, audit.KeyRevoked, req.GetId(), err)
	if err != nil {
		return nil, err
	}
	return &apikeyv1.RevokeAPIKeyResponse{ApiKey: toProto(k)}, nil
}

// SetWhitelist implements APIKeyAdminService.
func (s *Admin) SetWhitelist(ctx context.Context, req *apikeyv1.SetWhitelistRequest) (*apikeyv1.SetWhitelistResponse, error) {
	k, err := s.svc.SetWhitelist(ctx, req.GetId(), req.GetWhitelist())
	s.record(ctx, audit.KeyWhitelist, req.GetId(), err)
	if err != nil {
		return nil, err
	}
	return &apikeyv1.SetWhitelistResponse{ApiKey: toProto(k)}, nil
}

// SetRedirectURIs implements APIKeyAdminService. The audit detail says which
// list changed ("post_logout" for the post-logout one) on success; on
// failure it is the error kind, as for every admin event.
func (s *Admin) SetRedirectURIs(ctx context.Context, req *apikeyv1.SetRedirectURIsRequest) (*apikeyv1.SetRedirectURIsResponse, error) {
	k, err := s.svc.SetRedirectURIs(ctx, req.GetId(), req.GetUris(), req.GetPostLogout())
	outcome, detail := audit.Result(err)
	if err == nil {
		detail = "redirect"
		if req.GetPostLogout() {
			detail = "post_logout"
		}
	}
	s.rec.Record(ctx, audit.Event{Event: EventRedirectURIs, Outcome: outcome, APIKeyID: req.GetId(), ClientIP: audit.PeerIP(ctx), Detail: detail})
	if err != nil {
		return nil, err
	}
	return &apikeyv1.SetRedirectURIsResponse{ApiKey: toProto(k)}, nil
}

// toProto is the public record: the hash stays inside this service.
func toProto(k apikey.Key) *apikeyv1.APIKey {
	out := &apikeyv1.APIKey{
		Id:                     k.ID,
		Name:                   k.Name,
		Prefix:                 k.Prefix,
		Whitelist:              ipset.Strings(k.Whitelist),
		PasswordLogin:          k.PasswordLogin,
		CreatedAt:              timestamppb.New(k.CreatedAt),
		ClientId:               k.ClientID,
		Public:                 k.Public,
		RedirectUris:           k.RedirectURIs,
		PostLogoutRedirectUris: k.PostLogoutRedirectURIs,
	}
	if k.RevokedAt != nil {
		out.RevokedAt = timestamppb.New(*k.RevokedAt)
	}
	return out
}
