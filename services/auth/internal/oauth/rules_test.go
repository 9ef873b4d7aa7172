package oauth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/account"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit/audittest"
	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/testenv"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
)

// directory stands in for the user service, which applies platform/account
// to everything it is sent (services/user proves that against Postgres):
// here it only notes what reached it, so that the tests can tell what auth
// refused itself and what it passed on, and unchanged.
type directory struct {
	mu   sync.Mutex
	seen []string
}

func (d *directory) note(call string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, call)
}

// take returns the calls since the last take.
func (d *directory) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := d.seen
	d.seen = nil
	return seen
}

func user(userID string) oauth.User {
	return oauth.User{ID: 1, UserID: userID, Username: "Alice", Email: "alice@example.com"}
}

// VerifyPassword accepts any password: what matters is that it got here.
func (d *directory) VerifyPassword(_ context.Context, userID, password string) (oauth.User, error) {
	d.note("verify " + userID + " " + password)
	return user(userID), nil
}

func (d *directory) GetUser(_ context.Context, userID string) (oauth.User, error) {
	d.note("get " + userID)
	if userID != "alice" {
		return oauth.User{}, apierr.New(apierr.NotFound)
	}
	return user(userID), nil
}

func (d *directory) UpdateProfile(_ context.Context, userID string, c oauth.ProfileChange) (oauth.User, error) {
	d.note("update " + userID)
	u := user(userID)
	if c.Username != nil {
		u.Username = *c.Username
	}
	if c.Bio != nil {
		u.Bio = *c.Bio
	}
	return u, nil
}

// sameError fails unless got is the very answer of the account rule: the
// documented 400 invalid_request, with the message the user service gives.
func sameError(t *testing.T, got, want error) {
	t.Helper()
	var g, w *apierr.Error
	if !errors.As(want, &w) || w.Kind != apierr.InvalidRequest {
		t.Fatalf("the rule accepts the value (%v): a bad test case", want)
	}
	if !errors.As(got, &g) || g.Kind != w.Kind || g.Message != w.Message {
		t.Fatalf("auth answers %v, the user service %v", got, want)
	}
}

func ptr(s string) *string { return &s }

// Auth applies the user service's own rules (platform/account) to the
// account's fields before it counts, audits, consumes or forwards
// anything: a value the user service would refuse gets the same answer from
// auth, and a value it accepts reaches it exactly as sent. Before, auth
// counted user_id and password in characters and the user service in
// bytes, so a password of 342 three-byte characters passed auth, was
// counted as an attempt at the account and was refused only then.
func TestAuthAppliesTheAccountRules(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	store := redisstore.New(rdb, prefix, redisdb.DefaultTimeout)
	dir := &directory{}
	events := &audittest.Recorder{}
	svc := oauth.New(store, dir, nil, oauth.Lifetimes{Token: time.Hour, Session: time.Hour}, oauth.Limits{}, events, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	key := oauth.Key{ID: 7, Name: "app", PasswordLogin: true}
	// With a client address every subject of an attempt is counted.
	ctx := oauth.WithClientIP(context.Background(), "192.0.2.1")
	x := strings.Repeat

	authorize := func(t *testing.T) string {
		t.Helper()
		state, err := svc.Authorize(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return state
	}
	stateLive := func(t *testing.T, state string) bool {
		t.Helper()
		_, found, err := store.State(ctx, secret.Hash(state))
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	// counters are the brute-force records (throttle): failures and
	// attempts held.
	counters := func(t *testing.T) []string {
		t.Helper()
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range keys {
			if strings.Contains(k, "fail") || strings.HasSuffix(k, ":held") {
				out = append(out, k)
			}
		}
		return out
	}

	t.Run("sign-in refuses what the user service refuses, before anything is counted", func(t *testing.T) {
		refused := []struct {
			name, userID, password string
			want                   error
		}{
			{"user_id of 65 characters", x("a", 65), "pw", account.CheckUserID(x("a", 65))},
			{"user_id of 21 three-byte characters", x("用", 21), "pw", account.CheckUserID(x("用", 21))},
			{"user_id with a space", "a b", "pw", account.CheckUserID("a b")},
			{"empty user_id", "", "pw", account.CheckUserID("")},
			{"password of 1025 bytes", "alice", x("é", 512) + "a", account.CheckLoginPassword(x("é", 512) + "a")},
			{"password of 342 three-byte characters", "alice", x("用", 342), account.CheckLoginPassword(x("用", 342))},
			{"empty password", "alice", "", account.CheckLoginPassword("")},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				state := authorize(t)
				_, _, err := svc.Login(ctx, key, tt.userID, tt.password, state)
				sameError(t, err, tt.want)
				uca, err := svc.CreateUCA(ctx, key, state)
				if err != nil {
					t.Fatal(err)
				}
				_, err = svc.SignIn(ctx, uca, tt.userID, tt.password)
				sameError(t, err, tt.want)

				if seen := dir.take(); len(seen) != 0 {
					t.Fatalf("the user service was asked: %d calls", len(seen))
				}
				if ev := events.Take(); len(ev) != 0 {
					t.Fatalf("a malformed request was audited: %+v", ev)
				}
				if c := counters(t); len(c) != 0 {
					t.Fatalf("a malformed request was counted: %v", c)
				}
				if _, _, err := svc.Login(ctx, key, "alice", "pw", state); err != nil {
					t.Fatalf("the state does not sign in after the refusal: %v", err)
				}
				dir.take()
				events.Take()
			})
		}
	})

	t.Run("what the user service accepts reaches it as sent", func(t *testing.T) {
		accepted := []struct{ name, userID, password string }{
			{"user_id of 64 characters", x("a", 64), "pw"},
			{"user_id of every allowed character", "Az09_.@-", "pw"},
			{"password of 1024 bytes", "alice", x("p", 1024)},
			{"password of 512 two-byte characters", "alice", x("é", 512)},
			{"password of 341 three-byte characters and one byte", "alice", x("用", 341) + "a"},
			{"password with a newline", "alice", "pass\nword"},
		}
		for _, tt := range accepted {
			t.Run(tt.name, func(t *testing.T) {
				if _, _, err := svc.Login(ctx, key, tt.userID, tt.password, authorize(t)); err != nil {
					t.Fatalf("refused: %v", err)
				}
				if seen := dir.take(); len(seen) != 1 || seen[0] != "verify "+tt.userID+" "+tt.password {
					t.Fatalf("the user service was asked %d times, not once with the values as sent", len(seen))
				}
			})
		}
	})

	t.Run("a profile change the user service refuses costs no state", func(t *testing.T) {
		session := "sess_" + secret.New("", 43, secret.Alphanumeric)
		if err := store.PutSession(ctx, secret.Hash(session), oauth.SessionRecord{User: 1, UserID: "alice"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		consent := oauth.Consent{Cookie: session}
		refused := []struct {
			name   string
			userID string
			change oauth.ProfileChange
		}{
			{"neither username nor bio", "alice", oauth.ProfileChange{}},
			{"empty username", "alice", oauth.ProfileChange{Username: ptr("")}},
			{"username of 33 characters", "alice", oauth.ProfileChange{Username: ptr(x("é", 33))}},
			{"username with a leading space", "alice", oauth.ProfileChange{Username: ptr(" Alice")}},
			{"bio of 501 characters", "alice", oauth.ProfileChange{Bio: ptr(x("简", 501))}},
			{"bio of two lines", "alice", oauth.ProfileChange{Bio: ptr("a\nb")}},
			{"a good bio, a bad username", "alice", oauth.ProfileChange{Username: ptr("a\x7f"), Bio: ptr("ok")}},
			{"user_id of 65 characters", x("a", 65), oauth.ProfileChange{Bio: ptr("ok")}},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				want := account.CheckUserID(tt.userID)
				if want == nil {
					want = account.CheckProfileChange(tt.change.Username, tt.change.Bio)
				}
				state := authorize(t)
				_, err := svc.UpdateUser(ctx, key, tt.userID, state, consent, tt.change)
				sameError(t, err, want)
				if !stateLive(t, state) {
					t.Fatal("the refused update used up the state")
				}
				if seen := dir.take(); len(seen) != 0 {
					t.Fatalf("the user service was asked: %v", seen)
				}
			})
		}
		accepted := []struct {
			name   string
			change oauth.ProfileChange
		}{
			{"username of 32 multi-byte characters", oauth.ProfileChange{Username: ptr(x("名", 32))}},
			{"bio of 500 multi-byte characters", oauth.ProfileChange{Bio: ptr(x("简", 500))}},
			{"an empty bio", oauth.ProfileChange{Bio: ptr("")}},
		}
		for _, tt := range accepted {
			t.Run(tt.name, func(t *testing.T) {
				state := authorize(t)
				if _, err := svc.UpdateUser(ctx, key, "alice", state, consent, tt.change); err != nil {
					t.Fatalf("refused: %v", err)
				}
				if stateLive(t, state) {
					t.Fatal("the update left its state usable")
				}
				if seen := dir.take(); len(seen) != 2 || seen[1] != "update alice" {
					t.Fatalf("the user service saw %v, want the session's user and the update", seen)
				}
			})
		}
	})

	t.Run("user/info and token revocation take the same user_id", func(t *testing.T) {
		if _, err := svc.PublicProfile(ctx, x("a", 64)); !apierr.Is(err, apierr.NotFound) {
			t.Fatalf("a 64-character user_id: %v, want the user service's not_found", err)
		}
		if seen := dir.take(); len(seen) != 1 {
			t.Fatalf("the user service was asked %d times, want once", len(seen))
		}
		for _, id := range []string{x("用", 64), x("a", 65), "a b", ""} {
			_, err := svc.PublicProfile(ctx, id)
			sameError(t, err, account.CheckUserID(id))
			_, err = svc.RevokeUserTokens(ctx, id)
			sameError(t, err, account.CheckUserID(id))
		}
		if seen := dir.take(); len(seen) != 0 {
			t.Fatalf("the user service was asked: %v", seen)
		}
	})
}
