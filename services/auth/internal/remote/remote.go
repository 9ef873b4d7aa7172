// Package remote adapts the gRPC clients of the user and API-key services to
// the small interfaces the auth flows depend on. Their verdicts (statuses
// carrying a Moreid ErrorInfo, such as invalid_credentials or not_found)
// pass through unchanged; transport failures become apierr kinds (apierr.FromTransport) so that
// no dial detail reaches a client.
package remote

import (
	"context"
	"errors"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
	"github.com/moreline/moreid/services/auth/internal/keycache"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// callTimeout bounds a call to another service. Password verification is
// deliberately slow (argon2id, queued under load), so it gets the most.
const (
	callTimeout     = 5 * time.Second
	passwordTimeout = 10 * time.Second
)

// Users is the user service as an oauth.UserDirectory.
type Users struct{ client userv1.UserServiceClient }

var _ oauth.UserDirectory = Users{}

// NewUsers wraps client.
func NewUsers(client userv1.UserServiceClient) Users { return Users{client: client} }

// VerifyPassword implements oauth.UserDirectory.
func (u Users) VerifyPassword(ctx context.Context, userID, password string) (oauth.User, error) {
	ctx, cancel := context.WithTimeout(ctx, passwordTimeout)
	defer cancel()
	r, err := u.client.VerifyPassword(ctx, &userv1.VerifyPasswordRequest{UserId: userID, Password: password})
	if err != nil {
		return oauth.User{}, apierr.FromTransport(err)
	}
	return user(r.GetUser()), nil
}

// GetUser implements oauth.UserDirectory.
func (u Users) GetUser(ctx context.Context, userID string) (oauth.User, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := u.client.GetUser(ctx, &userv1.GetUserRequest{UserId: userID})
	if err != nil {
		return oauth.User{}, apierr.FromTransport(err)
	}
	return user(r.GetUser()), nil
}

// UpdateProfile implements oauth.UserDirectory.
func (u Users) UpdateProfile(ctx context.Context, userID string, c oauth.ProfileChange) (oauth.User, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := u.client.UpdateProfile(ctx, &userv1.UpdateProfileRequest{UserId: userID, Username: c.Username, Bio: c.Bio})
	if err != nil {
		return oauth.User{}, apierr.FromTransport(err)
	}
	return user(r.GetUser()), nil
}

func user(p *userv1.User) oauth.User {
	return oauth.User{
		ID:        p.GetId(),
		UserID:    p.GetUserId(),
		Username:  p.GetUsername(),
		Email:     p.GetEmail(),
		Bio:       p.GetBio(),
		AvatarURL: p.GetAvatarUrl(),
		Disabled:  p.GetDisabled(),
	}
}

// Keys is the API-key service as a keycache.Validator.
type Keys struct{ client apikeyv1.APIKeyServiceClient }

var _ keycache.Validator = Keys{}

// NewKeys wraps client.
func NewKeys(client apikeyv1.APIKeyServiceClient) Keys { return Keys{client: client} }

// ValidateKey implements keycache.Validator.
func (k Keys) ValidateKey(ctx context.Context, key, clientIP string) (*apikeyv1.APIKey, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := k.client.ValidateKey(ctx, &apikeyv1.ValidateKeyRequest{Key: key, ClientIp: clientIP})
	if err != nil {
		return nil, apierr.FromTransport(err)
	}
	if r.GetApiKey() == nil {
		return nil, apierr.Wrap(apierr.Internal, errEmptyKey)
	}
	return r.GetApiKey(), nil
}

// CheckKey implements keycache.Validator.
func (k Keys) CheckKey(ctx context.Context, id int64) (*apikeyv1.APIKey, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := k.client.CheckKey(ctx, &apikeyv1.CheckKeyRequest{Id: id})
	if err != nil {
		return nil, apierr.FromTransport(err)
	}
	if r.GetApiKey() == nil {
		return nil, apierr.Wrap(apierr.Internal, errEmptyKey)
	}
	return r.GetApiKey(), nil
}

// Client implements oauth.ClientDirectory over APIKeyService.GetClient.
func (k Keys) Client(ctx context.Context, clientID string) (oauth.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := k.client.GetClient(ctx, &apikeyv1.GetClientRequest{ClientId: clientID})
	if err != nil {
		return oauth.Client{}, apierr.FromTransport(err)
	}
	a := r.GetApiKey()
	if a == nil {
		return oauth.Client{}, apierr.Wrap(apierr.Internal, errEmptyKey)
	}
	return ClientOf(a), nil
}

// ClientOf is a key's record as the OAuth client it is: the one mapping,
// whether the record came from GetClient or from the key check of a call.
func ClientOf(a *apikeyv1.APIKey) oauth.Client {
	return oauth.Client{
		KeyID:                  a.GetId(),
		ClientID:               a.GetClientId(),
		Name:                   a.GetName(),
		Public:                 a.GetPublic(),
		RedirectURIs:           a.GetRedirectUris(),
		PostLogoutRedirectURIs: a.GetPostLogoutRedirectUris(),
		Whitelist:              a.GetWhitelist(),
	}
}

// ActiveKeys is a keycache.Validator (auth's key cache) as the
// oauth.KeyDirectory that tokens are checked against, with the clients of
// the OpenID Connect flows.
type ActiveKeys struct {
	keys keycache.Validator
	oauth.ClientDirectory
}

var _ oauth.KeyDirectory = ActiveKeys{}

// NewActiveKeys wraps keys and clients.
func NewActiveKeys(keys keycache.Validator, clients oauth.ClientDirectory) ActiveKeys {
	return ActiveKeys{keys: keys, ClientDirectory: clients}
}

// KeyActive implements oauth.KeyDirectory: the key service's refusal
// (invalid_api_key) means revoked or gone; other errors mean it could not
// answer.
func (a ActiveKeys) KeyActive(ctx context.Context, keyID int64) (bool, error) {
	_, err := a.keys.CheckKey(ctx, keyID)
	if apierr.Is(err, apierr.InvalidAPIKey) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

var errEmptyKey = errors.New("apikey service answered without a key record")
