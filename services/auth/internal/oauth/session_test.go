package oauth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/proto/wire"
)

func TestSessionFromCookie(t *testing.T) {
	sess := "sess_" + strings.Repeat("A", 43)
	tests := []struct {
		name, in, want string
	}{
		{"bare value", sess, sess},
		{"bare value with spaces", "  " + sess + " ", sess},
		{"name=value", wire.SessionCookie + "=" + sess, sess},
		{"whole cookie header", "theme=dark; " + wire.SessionCookie + "=" + sess + "; lang=zh", sess},
		{"moreid_session wins over a session-shaped other cookie", "other=sess_" + strings.Repeat("B", 43) + "; " + wire.SessionCookie + "=" + sess, sess},
		{"the document's session=value form", "session=" + sess, sess},
		{"no session among cookies", "theme=dark; lang=zh", ""},
		{"empty moreid_session", wire.SessionCookie + "=", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SessionFromCookie(tt.in); got != tt.want {
				t.Fatalf("SessionFromCookie(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// The safe-login and update calls validate before touching a dependency:
// the service has none, so a call that got further would panic.
func TestSafeValidation(t *testing.T) {
	s := New(nil, nil, nil, Lifetimes{Token: time.Hour, Session: time.Hour}, Limits{}, audit.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	key := Key{ID: 1, Name: "app", PasswordLogin: true}
	ctx := context.Background()
	name := "n"
	tests := []struct {
		name string
		call func() error
	}{
		{"create uca without state", func() error { _, err := s.CreateUCA(ctx, key, ""); return err }},
		{"confirmation without uca", func() error { _, err := s.GetConfirmation(ctx, "", ""); return err }},
		{"sign in without uca", func() error { _, err := s.SignIn(ctx, "", "u", "p"); return err }},
		{"generate without uca", func() error { _, _, err := s.GenerateLoginCode(ctx, 0, "s", "c", ""); return err }},
		{"deny without uca", func() error { return s.DenyConfirmation(ctx, "s", "c", "") }},
		{"login safe without state", func() error { _, _, err := s.LoginSafe(ctx, key, "", "abcdefghij"); return err }},
		{"update without anything to change", func() error {
			_, err := s.UpdateUser(ctx, key, "alice", "state", Consent{Cookie: "x"}, ProfileChange{})
			return err
		}},
		{"update without user_id", func() error {
			_, err := s.UpdateUser(ctx, key, "", "state", Consent{Cookie: "x"}, ProfileChange{Username: &name})
			return err
		}},
		{"revoke user tokens without user_id", func() error { _, err := s.RevokeUserTokens(ctx, ""); return err }},
	}
	for _, code := range []string{"", "ABCDEFGHIJ", "abcdefghi", "abcdefghijk", "abcd_fghij", "abcdéfghi"} {
		tests = append(tests, struct {
			name string
			call func() error
		}{"login code " + code, func() error { _, _, err := s.LoginSafe(ctx, key, "state", code); return err }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *apierr.Error
			if err := tt.call(); !errors.As(err, &e) || e.Kind != apierr.InvalidRequest {
				t.Fatalf("err = %v, want invalid_request", err)
			}
		})
	}
	// Credentials are checked before any lookup: none at all is 401.
	t.Run("update without credentials", func(t *testing.T) {
		_, err := s.UpdateUser(ctx, key, "alice", "state", Consent{}, ProfileChange{Username: &name})
		if !apierr.Is(err, apierr.Unauthenticated) {
			t.Fatalf("err = %v, want unauthenticated", err)
		}
	})
	t.Run("malformed bearer token", func(t *testing.T) {
		if _, err := s.Userinfo(ctx, "token_short"); !apierr.Is(err, apierr.InvalidToken) {
			t.Fatalf("err = %v, want invalid_token", err)
		}
		if _, active, err := s.Introspect(ctx, key, ""); err != nil || active {
			t.Fatalf("Introspect = %v, %v; want inactive", active, err)
		}
	})
}
