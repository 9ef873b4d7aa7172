package oauth

import (
	"context"
	"strings"
	"time"

	"github.com/moreline/moreid/platform/account"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/secret"
)

const (
	tokenPrefix = "token_"
	tokenLen    = len(tokenPrefix) + 56
)

// ActiveToken is an access token that works right now, and its user as the
// directory describes them now.
type ActiveToken struct {
	Record    TokenRecord
	User      User
	ExpiresAt time.Time
}

// ResolveToken is the one answer to "what does this bearer token stand for":
// invalid_token for a malformed, unknown, expired or revoked token, for a
// token whose user is gone or disabled, and for a token whose API key was
// revoked (asked through the key cache, so within a second on every
// instance, with no index of a key's tokens to maintain on every issue).
// Only a store or directory failure is another error.
func (s *Service) ResolveToken(ctx context.Context, token string) (ActiveToken, error) {
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return ActiveToken{}, apierr.New(apierr.InvalidToken)
	}
	rec, found, err := s.store.Token(ctx, secret.Hash(token))
	if err != nil {
		return ActiveToken{}, err
	}
	if !found || rec.UserID == "" {
		// A client_credentials token has no user: no user endpoint
		// accepts it.
		return ActiveToken{}, apierr.New(apierr.InvalidToken)
	}
	active, err := s.keys.KeyActive(ctx, rec.KeyID)
	if err != nil {
		return ActiveToken{}, err
	}
	if !active {
		return ActiveToken{}, apierr.New(apierr.InvalidToken)
	}
	user, err := s.users.GetUser(ctx, rec.UserID)
	if apierr.Is(err, apierr.NotFound) {
		return ActiveToken{}, apierr.New(apierr.InvalidToken)
	}
	if err != nil {
		return ActiveToken{}, err
	}
	if user.Disabled {
		return ActiveToken{}, apierr.New(apierr.InvalidToken)
	}
	return ActiveToken{Record: rec, User: user, ExpiresAt: s.now().Add(rec.TTL).Truncate(time.Second)}, nil
}

// keyToken is ResolveToken for a token that must have been issued to key;
// another key's token is as good as none.
func (s *Service) keyToken(ctx context.Context, key Key, token string) (ActiveToken, error) {
	t, err := s.ResolveToken(ctx, token)
	if err != nil {
		return ActiveToken{}, err
	}
	if t.Record.KeyID != key.ID {
		return ActiveToken{}, apierr.New(apierr.InvalidToken)
	}
	return t, nil
}

// Introspect says whether token, which must have been issued to key, is
// active; inactive is not an error, and the answer does not say why (another
// key's token is just inactive).
func (s *Service) Introspect(ctx context.Context, key Key, token string) (ActiveToken, bool, error) {
	t, err := s.keyToken(ctx, key, token)
	if apierr.Is(err, apierr.InvalidToken) {
		return ActiveToken{}, false, nil
	}
	if err != nil {
		return ActiveToken{}, false, err
	}
	return t, true, nil
}

// RevokeToken ends a token of key at once; an unknown token, or another
// key's, is no error (RFC 7009) and no event: nothing was revoked.
func (s *Service) RevokeToken(ctx context.Context, key Key, token string) error {
	if err := required(field{"token", token, maxCode}); err != nil {
		return err
	}
	// A token's key never changes, so checking it before the delete is
	// no race.
	owned, found, err := s.store.Token(ctx, secret.Hash(token))
	if err != nil {
		s.recordResult(ctx, audit.TokenRevoked, 0, "", err, "")
		return err
	}
	if !found || owned.KeyID != key.ID {
		return nil
	}
	rec, found, err := s.store.DeleteToken(ctx, secret.Hash(token))
	if err != nil {
		s.recordResult(ctx, audit.TokenRevoked, 0, "", err, "")
		return err
	}
	if found {
		s.recordResult(ctx, audit.TokenRevoked, rec.KeyID, rec.UserID, nil, "revoke_token")
	}
	return nil
}

// Userinfo returns the profile of the token's user, for any holder of it,
// with only the fields an OpenID Connect token's scopes allow.
func (s *Service) Userinfo(ctx context.Context, token string) (User, error) {
	t, err := s.ResolveToken(ctx, token)
	if err != nil {
		return User{}, err
	}
	return scopedUser(t), nil
}

// TokenUser returns the profile of the token's user; the token must have been
// issued to key. An OpenID Connect token shows what its scopes allow.
func (s *Service) TokenUser(ctx context.Context, key Key, token string) (User, error) {
	t, err := s.keyToken(ctx, key, token)
	if err != nil {
		return User{}, err
	}
	return scopedUser(t), nil
}

// RevokeUserTokens ends every access token of a user and says how many were
// live.
func (s *Service) RevokeUserTokens(ctx context.Context, userID string) (int, error) {
	if err := account.CheckUserID(userID); err != nil {
		return 0, err
	}
	n, err := s.store.DeleteUserTokens(ctx, userID)
	s.recordResult(ctx, audit.TokenRevoked, 0, userID, err, "admin")
	if err != nil {
		return 0, err
	}
	s.log.InfoContext(ctx, "user tokens revoked", "user_id", userID, "revoked", n)
	return n, nil
}
