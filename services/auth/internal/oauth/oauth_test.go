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
)

// Validation runs before any dependency is touched, so the service here has
// none: a call that got past validation would panic on the nil store.
func TestValidation(t *testing.T) {
	s := New(nil, nil, nil, Lifetimes{Token: time.Hour, Session: time.Hour}, Limits{}, audit.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	key := Key{ID: 1, PasswordLogin: true}
	ctx := context.Background()
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"login user_id", func() error { _, _, err := s.Login(ctx, key, "", "p", "s"); return err }, "user_id"},
		{"login password", func() error { _, _, err := s.Login(ctx, key, "u", "", "s"); return err }, "password"},
		{"login state", func() error { _, _, err := s.Login(ctx, key, "u", "p", ""); return err }, "state"},
		{"login user_id of 65 characters", func() error {
			_, _, err := s.Login(ctx, key, strings.Repeat("用", 65), "p", "s")
			return err
		}, "user_id"},
		{"login password of 1025 characters", func() error {
			_, _, err := s.Login(ctx, key, "u", strings.Repeat("p", 1025), "s")
			return err
		}, "password"},
		{"login state of 129 characters", func() error {
			_, _, err := s.Login(ctx, key, "u", "p", strings.Repeat("s", 129))
			return err
		}, "state"},
		{"token code", func() error { _, err := s.Token(ctx, key, "", "s"); return err }, "code"},
		{"token state", func() error { _, err := s.Token(ctx, key, "c", ""); return err }, "state"},
		{"profile user_id", func() error { _, err := s.PublicProfile(ctx, ""); return err }, "user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *apierr.Error
			if !errors.As(err, &e) || e.Kind != apierr.InvalidRequest || !strings.Contains(e.Message, tt.field) {
				t.Fatalf("err = %v, want invalid_request naming %s", err, tt.field)
			}
		})
	}
	t.Run("password login disabled", func(t *testing.T) {
		_, _, err := s.Login(ctx, Key{ID: 1}, "u", "p", "s")
		if !apierr.Is(err, apierr.PasswordLoginDisabled) {
			t.Fatalf("err = %v, want password_login_disabled", err)
		}
	})
}

func TestIPSubject(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::9", "2001:db8:1:2::/64"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := ipSubject(tt.ip); got != tt.want {
				t.Fatalf("ipSubject(%q) = %q, want %q", tt.ip, got, tt.want)
			}
		})
	}
}

// The answer to an attempt depends on its subjects' verdicts only, in a
// fixed order: no state, refused (longest wait), busy, granted.
func TestJoin(t *testing.T) {
	ok := Verdict{Granted: true}
	noState := Verdict{NoState: true, Limit: LimitState}
	busy := Verdict{Busy: true, Limit: LimitUser}
	short := Verdict{Limit: LimitIP, RetryAfter: time.Second}
	long := Verdict{Limit: LimitUser, RetryAfter: time.Minute}
	tests := []struct {
		name string
		in   []Verdict
		want Verdict
	}{
		{"nothing to count", nil, ok},
		{"all granted", []Verdict{ok, ok}, ok},
		{"busy", []Verdict{ok, busy}, busy},
		{"a refusal beats busy", []Verdict{busy, short, ok}, short},
		{"the longest refusal", []Verdict{short, long}, long},
		{"the longest refusal in any order", []Verdict{long, short}, long},
		{"no state beats everything", []Verdict{long, busy, noState}, noState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Join(tt.in...); got != tt.want {
				t.Fatalf("Join = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLimitsDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Limits
		want Limits
	}{
		{"unset", Limits{}, DefaultLimits},
		{"partly set", Limits{PerUser: 3}, Limits{PerUser: 3, PerAccount: 100, PerIP: 50, Window: 15 * time.Minute}},
		{"set", Limits{PerUser: 1, PerAccount: 4, PerIP: 2, Window: time.Second, KeyStates: 9}, Limits{PerUser: 1, PerAccount: 4, PerIP: 2, Window: time.Second, KeyStates: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.withDefaults(); got != tt.want {
				t.Fatalf("withDefaults = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNormalizeUserCode(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"BCDF-GHJK", "BCDFGHJK"},
		{"bcdf-ghjk", "BCDFGHJK"},
		{"bcdfghjk", "BCDFGHJK"},
		{" bcdf ghjk ", "BCDFGHJK"},
		{"BCDF–GHJK", "BCDF–GHJK"}, // an en dash is not the dash: no match
	} {
		if got := NormalizeUserCode(c.in); got != c.want {
			t.Errorf("NormalizeUserCode(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
