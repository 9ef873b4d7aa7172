package user_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
	"github.com/moreline/moreid/services/user/internal/pgstore"
	"github.com/moreline/moreid/services/user/internal/user"
)

const avatar = "https://example.test/default.svg"

var cheap = user.Params{MemoryKiB: 64, Time: 1, Threads: 1}

// fixture is a service over its own, migrated test database.
type fixture struct {
	dsn    string
	db     *gorm.DB
	store  *pgstore.Store
	hasher *user.Hasher
	svc    *user.Service
}

func newFixture(t *testing.T, p user.Params) *fixture {
	t.Helper()
	dsn := testenv.Postgres(t)
	db := pgdbtest.Open(t, dsn, 4, pgstore.Migrate)
	f := &fixture{dsn: dsn, db: db, store: pgstore.New(db, pgdb.DefaultTimeout)}
	f.hasher = newHasher(t, p)
	f.svc = user.NewService(f.store, f.hasher, nil, avatar, nil, nil)
	return f
}

func newHasher(t *testing.T, p user.Params) *user.Hasher {
	t.Helper()
	h, err := user.NewHasher(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (f *fixture) create(t *testing.T, n user.NewUser) user.User {
	t.Helper()
	u, err := f.svc.CreateUser(context.Background(), n)
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", n.UserID, err)
	}
	return u
}

func (f *fixture) storedHash(t *testing.T, userID string) string {
	t.Helper()
	var h string
	if err := f.db.Raw("SELECT password_hash FROM users WHERE user_id = ?", userID).Scan(&h).Error; err != nil {
		t.Fatal(err)
	}
	return h
}

func wantKind(t *testing.T, err error, k apierr.Kind) {
	t.Helper()
	if !apierr.Is(err, k) {
		t.Fatalf("err = %v, want kind %s", err, k)
	}
}

func ptr(s string) *string { return &s }

var alice = user.NewUser{UserID: "alice", Username: "爱丽丝", Email: "alice@example.com", Password: "alice-password"}

func TestCreateAndGet(t *testing.T) {
	f := newFixture(t, cheap)
	ctx := context.Background()
	before := time.Now().Add(-time.Minute)

	u := f.create(t, alice)
	if u.ID <= 0 || u.UserID != "alice" || u.Username != "爱丽丝" || u.Email != "alice@example.com" || u.Bio != "" {
		t.Fatalf("created %+v", u)
	}
	if u.AvatarURL != avatar {
		t.Errorf("avatar = %q, want the configured default %q", u.AvatarURL, avatar)
	}
	if u.CreatedAt.Before(before) || !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Errorf("timestamps created=%v updated=%v", u.CreatedAt, u.UpdatedAt)
	}

	got, err := f.svc.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got != u {
		t.Errorf("GetUser = %+v, want what CreateUser returned %+v", got, u)
	}

	bob := f.create(t, user.NewUser{UserID: "bob.smith@corp-1_x", Username: "Bob", Email: "bob@example.org", Password: "bob-password"})
	if bob.ID == u.ID {
		t.Errorf("two users share id %d", u.ID)
	}

	// A stored avatar replaces the default.
	if err := f.db.Exec("UPDATE users SET avatar_url = ? WHERE user_id = 'alice'", "https://cdn.example.test/a.png").Error; err != nil {
		t.Fatal(err)
	}
	got, _ = f.svc.GetUser(ctx, "alice")
	if got.AvatarURL != "https://cdn.example.test/a.png" {
		t.Errorf("avatar = %q, want the stored one", got.AvatarURL)
	}
}

func TestCreateDuplicateUserID(t *testing.T) {
	f := newFixture(t, cheap)
	first := f.create(t, alice)
	dup := alice
	dup.Username, dup.Email, dup.Password = "Other", "other@example.com", "other-password"
	_, err := f.svc.CreateUser(context.Background(), dup)
	wantKind(t, err, apierr.Conflict)

	// The first account is untouched: its password still works.
	got, err := f.svc.VerifyPassword(context.Background(), "alice", alice.Password)
	if err != nil || got.Username != first.Username {
		t.Fatalf("after the duplicate: %+v, %v", got, err)
	}
}

func TestGetUnknownUser(t *testing.T) {
	f := newFixture(t, cheap)
	_, err := f.svc.GetUser(context.Background(), "nobody")
	wantKind(t, err, apierr.NotFound)
	var e *apierr.Error
	if !errors.As(err, &e) || e.Message != "用户不存在" {
		t.Fatalf("message = %q, want 用户不存在", e.Message)
	}
}

func TestValidation(t *testing.T) {
	f := newFixture(t, cheap)
	ctx := context.Background()
	f.create(t, alice)

	with := func(change func(*user.NewUser)) user.NewUser {
		n := user.NewUser{UserID: "carol", Username: "Carol", Email: "carol@example.com", Password: "carol-password"}
		change(&n)
		return n
	}
	creates := []struct {
		name  string
		in    user.NewUser
		field string // text the message must contain
	}{
		{"empty user_id", with(func(n *user.NewUser) { n.UserID = "" }), "用户ID"},
		{"user_id too long", with(func(n *user.NewUser) { n.UserID = strings.Repeat("a", 65) }), "用户ID"},
		{"user_id with space", with(func(n *user.NewUser) { n.UserID = "carol smith" }), "用户ID"},
		{"user_id surrounded by spaces", with(func(n *user.NewUser) { n.UserID = " carol" }), "用户ID"},
		{"user_id with slash", with(func(n *user.NewUser) { n.UserID = "carol/x" }), "用户ID"},
		{"user_id non-ASCII", with(func(n *user.NewUser) { n.UserID = "卡罗尔" }), "用户ID"},
		{"user_id control char", with(func(n *user.NewUser) { n.UserID = "carol\x00" }), "用户ID"},
		{"empty username", with(func(n *user.NewUser) { n.Username = "" }), "用户名"},
		{"blank username", with(func(n *user.NewUser) { n.Username = "   " }), "用户名"},
		{"username 33 runes", with(func(n *user.NewUser) { n.Username = strings.Repeat("名", 33) }), "用户名"},
		{"username leading space", with(func(n *user.NewUser) { n.Username = " Carol" }), "用户名"},
		{"username newline", with(func(n *user.NewUser) { n.Username = "Car\nol" }), "用户名"},
		{"username invalid UTF-8", with(func(n *user.NewUser) { n.Username = "Car\xffol" }), "用户名"},
		{"empty email", with(func(n *user.NewUser) { n.Email = "" }), "邮箱"},
		{"email without @", with(func(n *user.NewUser) { n.Email = "carol.example.com" }), "邮箱"},
		{"email with display name", with(func(n *user.NewUser) { n.Email = "Carol <carol@example.com>" }), "邮箱"},
		{"email without dotted domain", with(func(n *user.NewUser) { n.Email = "carol@localhost" }), "邮箱"},
		{"email too long", with(func(n *user.NewUser) { n.Email = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com" }), "邮箱"},
		{"email control char", with(func(n *user.NewUser) { n.Email = "carol@exam\tple.com" }), "邮箱"},
		{"password 7 bytes", with(func(n *user.NewUser) { n.Password = "1234567" }), "密码"},
		{"password 1025 bytes", with(func(n *user.NewUser) { n.Password = strings.Repeat("p", 1025) }), "密码"},
		{"password 1025 bytes of multi-byte characters", with(func(n *user.NewUser) { n.Password = strings.Repeat("é", 512) + "a" }), "密码"},
		{"password control char", with(func(n *user.NewUser) { n.Password = "pass\x07word" }), "密码"},
		{"password invalid UTF-8", with(func(n *user.NewUser) { n.Password = "pass\xc3word" }), "密码"},
	}
	for _, tc := range creates {
		t.Run("create/"+tc.name, func(t *testing.T) {
			_, err := f.svc.CreateUser(ctx, tc.in)
			wantKind(t, err, apierr.InvalidRequest)
			var e *apierr.Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, tc.field) {
				t.Fatalf("message %q does not name %s", e.Message, tc.field)
			}
			if tc.in.Password != "" && strings.Contains(e.Message, tc.in.Password) {
				t.Fatalf("message repeats the password")
			}
			if _, err := f.svc.GetUser(ctx, "carol"); !apierr.Is(err, apierr.NotFound) {
				t.Fatalf("a refused user was stored (GetUser err = %v)", err)
			}
		})
	}

	accepted := []struct {
		name string
		in   user.NewUser
	}{
		{"limits exactly", user.NewUser{UserID: strings.Repeat("u", 64), Username: strings.Repeat("名", 32),
			Email: strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com", Password: strings.Repeat("p", 1024)}},
		{"8-byte password and inner space", user.NewUser{UserID: "dave", Username: "Dave Jones", Email: "d@x.io", Password: "12345678"}},
		{"1024-byte password of two-byte characters", user.NewUser{UserID: "erin", Username: "Erin", Email: "e@x.io", Password: strings.Repeat("é", 512)}},
	}
	for _, tc := range accepted {
		t.Run("create/"+tc.name, func(t *testing.T) {
			if _, err := f.svc.CreateUser(ctx, tc.in); err != nil {
				t.Fatalf("refused: %v", err)
			}
			if _, err := f.svc.VerifyPassword(ctx, tc.in.UserID, tc.in.Password); err != nil {
				t.Fatalf("cannot sign in with the password it was created with: %v", err)
			}
		})
	}

	updates := []struct {
		name   string
		change user.ProfileChange
		field  string
	}{
		{"nothing to change", user.ProfileChange{}, "用户名"},
		{"empty username", user.ProfileChange{Username: ptr("")}, "用户名"},
		{"username 33 runes", user.ProfileChange{Username: ptr(strings.Repeat("é", 33))}, "用户名"},
		{"bio 501 runes", user.ProfileChange{Bio: ptr(strings.Repeat("简", 501))}, "个人简介"},
		{"bio control char", user.ProfileChange{Bio: ptr("line\x1bone")}, "个人简介"},
		{"bio invalid UTF-8", user.ProfileChange{Bio: ptr("\xfe")}, "个人简介"},
		{"valid bio, bad username", user.ProfileChange{Username: ptr("a\x7f"), Bio: ptr("ok")}, "用户名"},
	}
	for _, tc := range updates {
		t.Run("update/"+tc.name, func(t *testing.T) {
			_, err := f.svc.UpdateProfile(ctx, "alice", tc.change)
			wantKind(t, err, apierr.InvalidRequest)
			var e *apierr.Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, tc.field) {
				t.Fatalf("message %q does not name %s", e.Message, tc.field)
			}
			got, _ := f.svc.GetUser(ctx, "alice")
			if got.Username != alice.Username || got.Bio != "" {
				t.Fatalf("a refused update changed the profile: %+v", got)
			}
		})
	}

	lookups := map[string]func() error{
		"get: empty user_id":     func() error { _, err := f.svc.GetUser(ctx, ""); return err },
		"get: malformed user_id": func() error { _, err := f.svc.GetUser(ctx, "a b"); return err },
		"verify: empty user_id":  func() error { _, err := f.svc.VerifyPassword(ctx, "", "password"); return err },
		"verify: empty password": func() error { _, err := f.svc.VerifyPassword(ctx, "alice", ""); return err },
		"verify: 1025-byte pw":   func() error { _, err := f.svc.VerifyPassword(ctx, "alice", strings.Repeat("p", 1025)); return err },
		"verify: 342 three-byte characters (1026 bytes)": func() error {
			_, err := f.svc.VerifyPassword(ctx, "alice", strings.Repeat("用", 342))
			return err
		},
		"update: bad user_id": func() error { _, err := f.svc.UpdateProfile(ctx, "", user.ProfileChange{Bio: ptr("x")}); return err },
		"update: user_id too long": func() error {
			_, err := f.svc.UpdateProfile(ctx, strings.Repeat("a", 65), user.ProfileChange{Bio: ptr("x")})
			return err
		},
	}
	for name, call := range lookups {
		t.Run(name, func(t *testing.T) { wantKind(t, call(), apierr.InvalidRequest) })
	}
}

func TestVerifyPassword(t *testing.T) {
	f := newFixture(t, cheap)
	ctx := context.Background()
	created := f.create(t, alice)

	got, err := f.svc.VerifyPassword(ctx, "alice", alice.Password)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if got != created {
		t.Errorf("VerifyPassword = %+v, want %+v", got, created)
	}

	failures := map[string][2]string{
		"wrong password":        {"alice", "not-alices-password"},
		"password case differs": {"alice", strings.ToUpper(alice.Password)},
		"password prefix":       {"alice", alice.Password[:8]},
		"user_id case differs":  {"Alice", alice.Password},
		"unknown user":          {"nobody", alice.Password},
	}
	var messages []string
	for name, in := range failures {
		t.Run(name, func(t *testing.T) {
			_, err := f.svc.VerifyPassword(ctx, in[0], in[1])
			wantKind(t, err, apierr.InvalidCredentials)
			st := apierr.ToStatus(err)
			messages = append(messages, st.Code().String()+" "+st.Message())
		})
	}
	for _, m := range messages[1:] {
		if m != messages[0] {
			t.Errorf("failures answer differently: %q vs %q", m, messages[0])
		}
	}
}

// An unknown user must cost an argon2id verification like a known one: with
// every hashing slot taken, both wait for a slot (and so time out here)
// instead of answering at once.
func TestUnknownUserComputesAHash(t *testing.T) {
	f := newFixture(t, cheap)
	f.create(t, alice)
	release := user.HoldHashSlots(f.hasher)
	t.Cleanup(release)
	for _, id := range []string{"alice", "nobody"} {
		t.Run(id, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := f.svc.VerifyPassword(ctx, id, "wrong-password")
			wantKind(t, err, apierr.Unavailable)
		})
	}
	release()
	_, err := f.svc.VerifyPassword(context.Background(), "nobody", "wrong-password")
	wantKind(t, err, apierr.InvalidCredentials)
}

func TestRehashOnLogin(t *testing.T) {
	f := newFixture(t, user.Params{MemoryKiB: 32, Time: 1, Threads: 1})
	ctx := context.Background()
	f.create(t, alice)
	oldHash := f.storedHash(t, "alice")

	// The operator raises the parameters; the same store, a new service.
	raised := user.Params{MemoryKiB: 128, Time: 2, Threads: 1}
	svc := user.NewService(f.store, newHasher(t, raised), nil, avatar, nil, nil)

	if _, err := svc.VerifyPassword(ctx, "alice", "wrong-password"); !apierr.Is(err, apierr.InvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if h := f.storedHash(t, "alice"); h != oldHash {
		t.Fatalf("a failed login rewrote the hash")
	}

	if _, err := svc.VerifyPassword(ctx, "alice", alice.Password); err != nil {
		t.Fatalf("login under the old hash: %v", err)
	}
	newHash := f.storedHash(t, "alice")
	if newHash == oldHash {
		t.Fatalf("hash was not replaced after a login under new parameters")
	}
	if !strings.HasPrefix(newHash, "$argon2id$v=19$m=128,t=2,p=1$") {
		t.Fatalf("new hash %q does not carry the new parameters", newHash)
	}
	if _, err := svc.VerifyPassword(ctx, "alice", alice.Password); err != nil {
		t.Fatalf("login under the new hash: %v", err)
	}
	if h := f.storedHash(t, "alice"); h != newHash {
		t.Errorf("hash rewritten again although the parameters are current")
	}
	if _, err := svc.VerifyPassword(ctx, "alice", "wrong-password"); !apierr.Is(err, apierr.InvalidCredentials) {
		t.Fatalf("wrong password after the rehash: %v", err)
	}
}

func TestMalformedStoredHashIsInternal(t *testing.T) {
	f := newFixture(t, cheap)
	f.create(t, alice)
	if err := f.db.Exec("UPDATE users SET password_hash = '$argon2id$v=19$garbage' WHERE user_id = 'alice'").Error; err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.VerifyPassword(context.Background(), "alice", alice.Password)
	wantKind(t, err, apierr.Internal)
}

func TestUpdateProfile(t *testing.T) {
	f := newFixture(t, cheap)
	ctx := context.Background()
	created := f.create(t, alice)

	steps := []struct {
		name     string
		change   user.ProfileChange
		username string
		bio      string
	}{
		{"username only", user.ProfileChange{Username: ptr("Alice L.")}, "Alice L.", ""},
		{"bio only", user.ProfileChange{Bio: ptr("喜欢数学 & cats")}, "Alice L.", "喜欢数学 & cats"},
		{"both", user.ProfileChange{Username: ptr("艾丽斯"), Bio: ptr(strings.Repeat("简", 500))}, "艾丽斯", strings.Repeat("简", 500)},
		{"clear bio", user.ProfileChange{Bio: ptr("")}, "艾丽斯", ""},
	}
	last := created
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := f.svc.UpdateProfile(ctx, "alice", st.change)
			if err != nil {
				t.Fatal(err)
			}
			if got.Username != st.username || got.Bio != st.bio {
				t.Fatalf("got username %q bio %q, want %q %q", got.Username, got.Bio, st.username, st.bio)
			}
			if got.ID != created.ID || got.Email != created.Email || got.AvatarURL != avatar || !got.CreatedAt.Equal(created.CreatedAt) {
				t.Fatalf("update changed other fields: %+v", got)
			}
			if !got.UpdatedAt.After(last.UpdatedAt) {
				t.Fatalf("updated_at %v did not advance past %v", got.UpdatedAt, last.UpdatedAt)
			}
			read, _ := f.svc.GetUser(ctx, "alice")
			if read != got {
				t.Fatalf("GetUser after update = %+v, want %+v", read, got)
			}
			last = got
		})
	}
	if _, err := f.svc.VerifyPassword(ctx, "alice", alice.Password); err != nil {
		t.Fatalf("password broken by profile updates: %v", err)
	}

	_, err := f.svc.UpdateProfile(ctx, "nobody", user.ProfileChange{Bio: ptr("x")})
	wantKind(t, err, apierr.NotFound)
}

// No column of any row holds the password in clear (nor its base64).
func TestNoPlaintextPasswordStored(t *testing.T) {
	f := newFixture(t, cheap)
	pw := "Plaintext-Canary-9f3k"
	f.create(t, user.NewUser{UserID: "canary", Username: "Canary", Email: "c@example.com", Password: pw})
	if _, err := f.svc.UpdateProfile(context.Background(), "canary", user.ProfileChange{Bio: ptr("hello")}); err != nil {
		t.Fatal(err)
	}
	var rows []string
	if err := f.db.Raw("SELECT users::text FROM users").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, needle := range []string{pw, strings.ToLower(pw), "UGxhaW50ZXh0LUNhbmFyeS05ZjNr"} {
		if strings.Contains(strings.ToLower(rows[0]), strings.ToLower(needle)) {
			t.Fatalf("users row contains the password: %s", rows[0])
		}
	}
	if !strings.Contains(rows[0], "$argon2id$v=19$") {
		t.Fatalf("row holds no argon2id hash: %s", rows[0])
	}
}

// The real default parameters, once, end to end through the database.
func TestDefaultParamsEndToEnd(t *testing.T) {
	f := newFixture(t, user.DefaultParams())
	f.create(t, alice)
	if h := f.storedHash(t, "alice"); !strings.HasPrefix(h, "$argon2id$v=19$m=47104,t=1,p=1$") {
		t.Fatalf("stored hash %q", h)
	}
	if _, err := f.svc.VerifyPassword(context.Background(), "alice", alice.Password); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.VerifyPassword(context.Background(), "nobody", alice.Password)
	wantKind(t, err, apierr.InvalidCredentials)
}

// A disabled user cannot sign in nor change their profile, and the answers
// tell a password guesser nothing: only the right password learns that the
// account is disabled.
func TestDisabledUser(t *testing.T) {
	f := newFixture(t, cheap)
	ctx := context.Background()
	created := f.create(t, alice)
	f.create(t, user.NewUser{UserID: "bob", Username: "Bob", Email: "bob@example.com", Password: "bob-password"})

	disabled, err := f.svc.SetDisabled(ctx, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	if !disabled.Disabled || disabled.ID != created.ID || disabled.Username != created.Username || disabled.AvatarURL != avatar {
		t.Fatalf("SetDisabled = %+v", disabled)
	}
	if got, err := f.svc.GetUser(ctx, "alice"); err != nil || got != disabled {
		t.Fatalf("GetUser = %+v, %v; want %+v", got, err, disabled)
	}

	t.Run("right password: account_disabled", func(t *testing.T) {
		_, err := f.svc.VerifyPassword(ctx, "alice", alice.Password)
		wantKind(t, err, apierr.AccountDisabled)
	})
	t.Run("wrong password: as for an unknown user", func(t *testing.T) {
		_, errWrong := f.svc.VerifyPassword(ctx, "alice", "not-alices-password")
		_, errUnknown := f.svc.VerifyPassword(ctx, "nobody", "not-alices-password")
		wantKind(t, errWrong, apierr.InvalidCredentials)
		sw, su := apierr.ToStatus(errWrong), apierr.ToStatus(errUnknown)
		if sw.Code() != su.Code() || sw.Message() != su.Message() {
			t.Fatalf("disabled user, wrong password %v; unknown user %v", sw, su)
		}
	})
	t.Run("profile cannot change", func(t *testing.T) {
		_, err := f.svc.UpdateProfile(ctx, "alice", user.ProfileChange{Bio: ptr("still here")})
		wantKind(t, err, apierr.AccountDisabled)
		if got, _ := f.svc.GetUser(ctx, "alice"); got != disabled {
			t.Fatalf("profile changed: %+v", got)
		}
	})
	t.Run("other users unaffected", func(t *testing.T) {
		if got, err := f.svc.VerifyPassword(ctx, "bob", "bob-password"); err != nil || got.Disabled {
			t.Fatalf("bob: %+v, %v", got, err)
		}
	})
	t.Run("re-enabled", func(t *testing.T) {
		enabled, err := f.svc.SetDisabled(ctx, "alice", false)
		if err != nil || enabled.Disabled {
			t.Fatalf("SetDisabled(false) = %+v, %v", enabled, err)
		}
		if _, err := f.svc.VerifyPassword(ctx, "alice", alice.Password); err != nil {
			t.Fatalf("sign-in after re-enabling: %v", err)
		}
		if got, err := f.svc.UpdateProfile(ctx, "alice", user.ProfileChange{Bio: ptr("back")}); err != nil || got.Bio != "back" {
			t.Fatalf("update after re-enabling: %+v, %v", got, err)
		}
	})

	refusals := []struct {
		name   string
		userID string
		kind   apierr.Kind
	}{
		{"unknown user", "nobody", apierr.NotFound},
		{"empty user_id", "", apierr.InvalidRequest},
		{"malformed user_id", "a b", apierr.InvalidRequest},
	}
	for _, tc := range refusals {
		t.Run("set disabled/"+tc.name, func(t *testing.T) {
			_, err := f.svc.SetDisabled(ctx, tc.userID, true)
			wantKind(t, err, tc.kind)
		})
	}
}

// The disabled answer costs the same argon2id verification as any other:
// with every hashing slot taken, a disabled user's sign-in waits too.
func TestDisabledUserComputesAHash(t *testing.T) {
	f := newFixture(t, cheap)
	f.create(t, alice)
	if _, err := f.svc.SetDisabled(context.Background(), "alice", true); err != nil {
		t.Fatal(err)
	}
	release := user.HoldHashSlots(f.hasher)
	t.Cleanup(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := f.svc.VerifyPassword(ctx, "alice", alice.Password)
	wantKind(t, err, apierr.Unavailable)
}
