package cli

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
)

// TestUserDisableEnableRevoke drives the three account commands against
// the fake user and auth admin listeners, each case on a fresh suite
// holding alice (2 live tokens) and bob (1 live token, already disabled).
func TestUserDisableEnableRevoke(t *testing.T) {
	refused := "127.0.0.1:1"
	tests := []struct {
		name         string
		args         []string
		env          map[string]string // overrides of the suite's environment
		wantCode     int
		wantStdout   string
		wantStderr   []string // substrings; none: stderr must be empty
		wantDisables []*userv1.SetUserDisabledRequest
		wantRevokes  []string // user_id of each RevokeUserTokens call
		wantDisabled map[string]bool
		wantLive     map[string]int32
	}{
		{
			name:         "disable revokes the tokens too",
			args:         []string{"user", "disable", "alice"},
			wantStdout:   "disabled user alice (id 1)\nrevoked 2 access tokens of user alice\n",
			wantDisables: []*userv1.SetUserDisabledRequest{{UserId: "alice", Disabled: true}},
			wantRevokes:  []string{"alice"},
			wantDisabled: map[string]bool{"alice": true, "bob": true},
			wantLive:     map[string]int32{"alice": 0, "bob": 1},
		},
		{
			name:         "disable an already disabled user revokes again",
			args:         []string{"user", "disable", "bob"},
			wantStdout:   "disabled user bob (id 2)\nrevoked 1 access token of user bob\n",
			wantDisables: []*userv1.SetUserDisabledRequest{{UserId: "bob", Disabled: true}},
			wantRevokes:  []string{"bob"},
			wantDisabled: map[string]bool{"alice": false, "bob": true},
			wantLive:     map[string]int32{"alice": 2, "bob": 0},
		},
		{
			name:         "disable an unknown user: nothing revoked",
			args:         []string{"user", "disable", "nobody"},
			wantCode:     1,
			wantStderr:   []string{"moreidctl: disable user nobody: 用户不存在 (not_found)\n"},
			wantDisables: []*userv1.SetUserDisabledRequest{{UserId: "nobody", Disabled: true}},
			wantDisabled: map[string]bool{"alice": false, "bob": true},
			wantLive:     map[string]int32{"alice": 2, "bob": 1},
		},
		{
			name:     "disable, auth unreachable: the user IS disabled, exit 1",
			args:     []string{"user", "disable", "alice"},
			env:      map[string]string{envAuthAdminAddr: refused},
			wantCode: 1,
			// What was done is on stdout; what failed, and what to do, on stderr.
			wantStdout: "disabled user alice (id 1)\n",
			wantStderr: []string{
				"user alice IS disabled, but its access tokens could not be revoked",
				"cannot reach the auth admin service at " + refused, envAuthAdminAddr,
				"moreidctl user revoke-tokens alice",
			},
			wantDisables: []*userv1.SetUserDisabledRequest{{UserId: "alice", Disabled: true}},
			wantDisabled: map[string]bool{"alice": true, "bob": true},
			wantLive:     map[string]int32{"alice": 2, "bob": 1},
		},
		{
			name:         "disable, user admin unreachable: auth not called",
			args:         []string{"user", "disable", "alice"},
			env:          map[string]string{envUserAdminAddr: refused},
			wantCode:     1,
			wantStderr:   []string{"disable user alice: cannot reach the user admin service at " + refused, envUserAdminAddr},
			wantDisabled: map[string]bool{"alice": false, "bob": true},
			wantLive:     map[string]int32{"alice": 2, "bob": 1},
		},
		{
			name:         "enable",
			args:         []string{"user", "enable", "bob"},
			wantStdout:   "enabled user bob (id 2)\n",
			wantDisables: []*userv1.SetUserDisabledRequest{{UserId: "bob", Disabled: false}},
			wantDisabled: map[string]bool{"alice": false, "bob": false},
			wantLive:     map[string]int32{"alice": 2, "bob": 1},
		},
		{
			name:         "enable an unknown user",
			args:         []string{"user", "enable", "nobody"},
			wantCode:     1,
			wantStderr:   []string{"moreidctl: enable user nobody: 用户不存在 (not_found)\n"},
			wantDisables: []*userv1.SetUserDisabledRequest{{UserId: "nobody"}},
			wantDisabled: map[string]bool{"alice": false, "bob": true},
			wantLive:     map[string]int32{"alice": 2, "bob": 1},
		},
		{
			name:         "revoke-tokens",
			args:         []string{"user", "revoke-tokens", "alice"},
			wantStdout:   "revoked 2 access tokens of user alice\n",
			wantRevokes:  []string{"alice"},
			wantDisabled: map[string]bool{"alice": false, "bob": true},
			wantLive:     map[string]int32{"alice": 0, "bob": 1},
		},
		{
			name:         "revoke-tokens of a user without tokens",
			args:         []string{"user", "revoke-tokens", "carol"},
			wantStdout:   "revoked 0 access tokens of user carol\n",
			wantRevokes:  []string{"carol"},
			wantDisabled: map[string]bool{"alice": false, "bob": true},
			wantLive:     map[string]int32{"alice": 2, "bob": 1},
		},
		{
			name:         "revoke-tokens, wrong listener",
			args:         []string{"user", "revoke-tokens", "alice"},
			env:          map[string]string{envAuthAdminAddr: "USER_ADMIN"},
			wantCode:     1,
			wantStderr:   []string{"is not the auth admin service", envAuthAdminAddr},
			wantDisabled: map[string]bool{"alice": false, "bob": true},
			wantLive:     map[string]int32{"alice": 2, "bob": 1},
		},
		{name: "disable without USER_ID", args: []string{"user", "disable"}, wantCode: 2, wantStderr: []string{"USER_ID is required", "Usage:\n  moreidctl user disable USER_ID"}},
		{name: "enable with blank USER_ID", args: []string{"user", "enable", " "}, wantCode: 2, wantStderr: []string{"USER_ID is required", "Usage:\n  moreidctl user enable USER_ID"}},
		{name: "revoke-tokens with two ids", args: []string{"user", "revoke-tokens", "alice", "bob"}, wantCode: 2, wantStderr: []string{`unexpected argument "bob"`, "Usage:\n  moreidctl user revoke-tokens USER_ID"}},
		{name: "disable with a flag", args: []string{"user", "disable", "alice", "--force"}, wantCode: 2, wantStderr: []string{"unknown flag --force (see 'moreidctl user disable --help')"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			s.users.add(&userv1.User{Id: 1, UserId: "alice", Username: "Alice", Email: "alice@example.com"})
			s.users.add(&userv1.User{Id: 2, UserId: "bob", Username: "Bob", Email: "bob@example.com", Disabled: true})
			s.auth.tokens["alice"], s.auth.tokens["bob"] = 2, 1
			for k, v := range tt.env {
				s.env[k] = strings.ReplaceAll(v, "USER_ADMIN", s.env[envUserAdminAddr])
			}

			got := run(t, s.env, "", tt.args...)
			if got.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got.code, tt.wantCode, got.stderr)
			}
			if got.stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got.stdout, tt.wantStdout)
			}
			if len(tt.wantStderr) == 0 && got.stderr != "" {
				t.Errorf("stderr = %q, want none", got.stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
			if d := s.users.disableRequests(); len(d) != len(tt.wantDisables) ||
				!slices.EqualFunc(d, tt.wantDisables, func(a, b *userv1.SetUserDisabledRequest) bool { return proto.Equal(a, b) }) {
				t.Errorf("user admin received %v, want %v", d, tt.wantDisables)
			}
			if r := s.auth.revoked(); !slices.Equal(r, tt.wantRevokes) {
				t.Errorf("auth admin revoked the tokens of %v, want %v", r, tt.wantRevokes)
			}
			for u, want := range tt.wantDisabled {
				if s.users.disabled(u) != want {
					t.Errorf("%s disabled = %v, want %v", u, !want, want)
				}
			}
			for u, want := range tt.wantLive {
				if n := s.auth.live(u); n != want {
					t.Errorf("%s has %d live tokens, want %d", u, n, want)
				}
			}
		})
	}
}

// TestUserWithdrawConsent drives 'user withdraw-consent' against the fake
// auth admin listener, each case on a fresh suite where alice consented to
// two apps and carol to none.
func TestUserWithdrawConsent(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string // overrides of the suite's environment
		wantCode   int
		wantStdout string
		wantStderr []string // substrings; none: stderr must be empty
		wantSent   []*authv1.WithdrawConsentRequest
		wantLeft   []string // the apps alice still consents to
	}{
		{
			name:       "every app",
			args:       []string{"user", "withdraw-consent", "alice"},
			wantStdout: "withdrew the consent of 2 apps for user alice\n",
			wantSent:   []*authv1.WithdrawConsentRequest{{UserId: "alice"}},
		},
		{
			name:       "one app",
			args:       []string{"user", "withdraw-consent", "alice", "--client", "mlc_a"},
			wantStdout: "withdrew the consent of 1 app for user alice (client mlc_a)\n",
			wantSent:   []*authv1.WithdrawConsentRequest{{UserId: "alice", ClientId: "mlc_a"}},
			wantLeft:   []string{"mlc_b"},
		},
		{
			name:       "flag before the user",
			args:       []string{"user", "withdraw-consent", "--client=mlc_b", "alice"},
			wantStdout: "withdrew the consent of 1 app for user alice (client mlc_b)\n",
			wantSent:   []*authv1.WithdrawConsentRequest{{UserId: "alice", ClientId: "mlc_b"}},
			wantLeft:   []string{"mlc_a"},
		},
		{
			name:       "an app the user never consented to",
			args:       []string{"user", "withdraw-consent", "alice", "--client", "mlc_z"},
			wantStdout: "withdrew the consent of 0 apps for user alice (client mlc_z)\n",
			wantSent:   []*authv1.WithdrawConsentRequest{{UserId: "alice", ClientId: "mlc_z"}},
			wantLeft:   []string{"mlc_a", "mlc_b"},
		},
		{
			name:       "a user without consents",
			args:       []string{"user", "withdraw-consent", "carol"},
			wantStdout: "withdrew the consent of 0 apps for user carol\n",
			wantSent:   []*authv1.WithdrawConsentRequest{{UserId: "carol"}},
			wantLeft:   []string{"mlc_a", "mlc_b"},
		},
		{
			name:       "an unknown user",
			args:       []string{"user", "withdraw-consent", "nobody"},
			wantCode:   1,
			wantStderr: []string{"moreidctl: withdraw the consent of user nobody: 用户不存在 (not_found)\n"},
			wantSent:   []*authv1.WithdrawConsentRequest{{UserId: "nobody"}},
			wantLeft:   []string{"mlc_a", "mlc_b"},
		},
		{
			name:       "wrong listener",
			args:       []string{"user", "withdraw-consent", "alice"},
			env:        map[string]string{envAuthAdminAddr: "USER_ADMIN"},
			wantCode:   1,
			wantStderr: []string{"is not the auth admin service", envAuthAdminAddr},
			wantLeft:   []string{"mlc_a", "mlc_b"},
		},
		{
			// An unset shell variable must not turn into "every app".
			name:       "empty --client",
			args:       []string{"user", "withdraw-consent", "alice", "--client", ""},
			wantCode:   2,
			wantStderr: []string{"--client needs a client ID", "Usage:\n  moreidctl user withdraw-consent USER_ID [--client CLIENT_ID]"},
			wantLeft:   []string{"mlc_a", "mlc_b"},
		},
		{name: "without USER_ID", args: []string{"user", "withdraw-consent", "--client", "mlc_a"}, wantCode: 2, wantStderr: []string{"USER_ID is required"}, wantLeft: []string{"mlc_a", "mlc_b"}},
		{name: "two ids", args: []string{"user", "withdraw-consent", "alice", "bob"}, wantCode: 2, wantStderr: []string{`unexpected argument "bob"`}, wantLeft: []string{"mlc_a", "mlc_b"}},
		{name: "--client without a value", args: []string{"user", "withdraw-consent", "alice", "--client"}, wantCode: 2, wantStderr: []string{"flag --client needs a value"}, wantLeft: []string{"mlc_a", "mlc_b"}},
		{name: "unknown flag", args: []string{"user", "withdraw-consent", "alice", "--all"}, wantCode: 2, wantStderr: []string{"unknown flag --all (see 'moreidctl user withdraw-consent --help')"}, wantLeft: []string{"mlc_a", "mlc_b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			s.auth.consents["alice"] = []string{"mlc_a", "mlc_b"}
			s.auth.consents["carol"] = nil
			for k, v := range tt.env {
				s.env[k] = strings.ReplaceAll(v, "USER_ADMIN", s.env[envUserAdminAddr])
			}

			got := run(t, s.env, "", tt.args...)
			if got.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got.code, tt.wantCode, got.stderr)
			}
			if got.stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got.stdout, tt.wantStdout)
			}
			if len(tt.wantStderr) == 0 && got.stderr != "" {
				t.Errorf("stderr = %q, want none", got.stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
			if r := s.auth.withdrawRequests(); !slices.EqualFunc(r, tt.wantSent, func(a, b *authv1.WithdrawConsentRequest) bool { return proto.Equal(a, b) }) {
				t.Errorf("auth admin received %v, want %v", r, tt.wantSent)
			}
			if left := s.auth.consented("alice"); !slices.Equal(left, tt.wantLeft) {
				t.Errorf("alice still consents to %v, want %v", left, tt.wantLeft)
			}
			if r := s.auth.revoked(); len(r) != 0 {
				t.Errorf("RevokeUserTokens called for %v: withdraw-consent ends tokens through WithdrawConsent alone", r)
			}
		})
	}
}
