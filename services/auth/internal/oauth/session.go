package oauth

import (
	"context"
	"net/http"
	"strings"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/proto/wire"
)

const (
	sessionPrefix = "sess_"
	sessionLen    = len(sessionPrefix) + 43
)

// newSession opens a web session for user and returns its secret.
func (s *Service) newSession(ctx context.Context, user User) (string, error) {
	session := secret.New(sessionPrefix, 43, secret.Alphanumeric)
	rec := SessionRecord{User: user.ID, UserID: user.UserID, IssuedAt: s.now().Unix()}
	if err := s.store.PutSession(ctx, secret.Hash(session), rec, s.ttl.Session); err != nil {
		return "", err
	}
	return session, nil
}

// sessionUser resolves a session secret to its user, as the directory
// describes the user now. A missing, malformed, expired or unknown session,
// or one whose user no longer exists, is unauthenticated. The user may be
// disabled: each caller decides what that means.
func (s *Service) sessionUser(ctx context.Context, session string) (User, error) {
	if !wellFormedSession(session) {
		return User{}, apierr.New(apierr.Unauthenticated)
	}
	rec, found, err := s.store.Session(ctx, secret.Hash(session))
	if err != nil {
		return User{}, err
	}
	if !found {
		return User{}, apierr.New(apierr.Unauthenticated)
	}
	user, err := s.users.GetUser(ctx, rec.UserID)
	if apierr.Is(err, apierr.NotFound) {
		return User{}, apierr.New(apierr.Unauthenticated)
	}
	if err != nil {
		return User{}, err
	}
	return user, nil
}

// sessionWithCSRF is sessionUser for a state-changing call: the CSRF token
// must be the session's (constant-time comparison).
func (s *Service) sessionWithCSRF(ctx context.Context, session, csrf string) (User, error) {
	user, err := s.sessionUser(ctx, session)
	if err != nil {
		return User{}, err
	}
	if csrf == "" || !secret.Equal(wire.CSRFToken(session), csrf) {
		return User{}, apierr.New(apierr.CSRFFailed)
	}
	return user, nil
}

// wellFormedSession spares Redis a lookup for values that cannot be a
// session.
func wellFormedSession(v string) bool {
	return len(v) == sessionLen && strings.HasPrefix(v, sessionPrefix)
}

// SessionFromCookie extracts the session secret from user/update's cookie
// field: the bare value, a "moreid_session=value" pair, or a whole Cookie
// header. Under another cookie name (the document's example is
// "session=..."), a value in the session format is accepted too. The result
// is "" when nothing in v can be a session.
func SessionFromCookie(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "=") {
		return v
	}
	cookies, err := http.ParseCookie(v)
	if err != nil {
		return ""
	}
	for _, c := range cookies {
		if c.Name == wire.SessionCookie {
			return c.Value
		}
	}
	for _, c := range cookies {
		if wellFormedSession(c.Value) {
			return c.Value
		}
	}
	return ""
}
