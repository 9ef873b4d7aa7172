package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

func listKeys(t *testing.T, s *harness.Suite) []map[string]any {
	t.Helper()
	var keys []map[string]any
	out := s.MustCtl(t, "", "apikey", "list", "--json")
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("apikey list --json is not a JSON array: %v\n%s", err, out)
	}
	return keys
}

func jsonNumber(v any) string {
	if f, ok := v.(float64); ok {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprint(v)
}

func TestOperatorCLI(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	key := s.CreateKey(t, "CLI app", "--whitelist", "10.1.2.3,2001:db8::/48")
	if !strings.HasPrefix(key, "ml_") || len(key) != 67 {
		t.Fatalf("the last line of apikey create is %q, want the key", key)
	}
	app := newClient(s.BaseURL, key)

	t.Run("list --json", func(t *testing.T) {
		keys := listKeys(t, s)
		if len(keys) != 1 {
			t.Fatalf("%d keys, want 1: %v", len(keys), keys)
		}
		k := keys[0]
		if _, ok := k["id"].(float64); !ok {
			t.Errorf("id %#v is not a number", k["id"])
		}
		if k["name"] != "CLI app" || k["prefix"] != key[:11] || k["revoked"] != false {
			t.Errorf("record %v", k)
		}
		if wl, _ := k["whitelist"].([]any); len(wl) != 2 || wl[0] != "10.1.2.3" || wl[1] != "2001:db8::/48" {
			t.Errorf("whitelist %v", k["whitelist"])
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(k["created_at"])); err != nil {
			t.Errorf("created_at %v: %v", k["created_at"], err)
		}
		if strings.Contains(s.MustCtl(t, "", "apikey", "list"), key) {
			t.Error("apikey list shows the key itself")
		}
	})

	id := keyID(t, s, "CLI app")
	t.Run("whitelist set and cleared", func(t *testing.T) {
		expectError(t, app.do(t, "GET", "/api/oauth/authorize", nil), 403, "ip_not_allowed")
		s.MustCtl(t, "", "apikey", "whitelist", id, "--set", "127.0.0.1")
		waitFor(t, func() bool { return app.do(t, "GET", "/api/oauth/authorize", nil).Status == 200 })
		s.MustCtl(t, "", "apikey", "whitelist", id, "--set", "")
		if wl, _ := listKeys(t, s)[0]["whitelist"].([]any); len(wl) != 0 {
			t.Errorf("whitelist after --set \"\": %v", wl)
		}
		waitFor(t, func() bool { return app.do(t, "GET", "/api/oauth/authorize", nil).Status == 200 })
	})

	t.Run("revocation takes effect within 1 s", func(t *testing.T) {
		if a := app.do(t, "GET", "/api/oauth/authorize", nil); a.Status != 200 {
			t.Fatalf("before revocation: %d %s", a.Status, a.Raw)
		}
		s.MustCtl(t, "", "apikey", "revoke", id)
		revoked := time.Now()
		for app.do(t, "GET", "/api/oauth/authorize", nil).Status != 401 {
			if time.Since(revoked) > time.Second {
				t.Fatal("the revoked key still works after 1 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if k := listKeys(t, s)[0]; k["revoked"] != true {
			t.Errorf("list says revoked=%v", k["revoked"])
		}
	})

	t.Run("errors go to stderr with a non-zero status", func(t *testing.T) {
		for _, args := range [][]string{
			{"apikey", "revoke", "999999"},
			{"apikey", "frobnicate"},
			{"user", "create", "--user-id", "alice", "--username", "Again", "--email", "a@example.com", "--password-stdin"},
			{"apikey", "create", "--name", "bad", "--whitelist", "not-an-ip"},
		} {
			out, errOut, code := s.Ctl(t, "another-password-1\n", args...)
			if code == 0 || errOut == "" || strings.Contains(out+errOut, "another-password-1") {
				t.Errorf("moreidctl %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
		}
	})
}

// waitFor polls cond for up to 2 s (settings changes reach the in-process
// key cache within its 500 ms lifetime).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 2 s")
}

// TestDumpsHoldNoSecrets runs the flow, then reads every byte Postgres and
// Redis hold for the suite and looks for the secrets in clear.
func TestDumpsHoldNoSecrets(t *testing.T) {
	f := startFlowSuite(t)
	state, code := f.app.login(t, "alice", alicePassword)
	tok := f.app.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	pending := f.app.authorize(t) // a state still waiting in Redis
	_, unredeemed := f.app.login(t, "alice", alicePassword)
	secrets := map[string]string{
		"password": alicePassword, "api key": f.app.key, "other api key": f.other.key,
		"state": state, "pending state": pending, "code": code, "unredeemed code": unredeemed,
		"access token": tok.str("access_token"),
	}

	dump, err := exec.Command("pg_dump", "--dbname", f.DSN).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !strings.Contains(string(dump), "alice@example.com") {
		t.Fatal("the dump does not hold the users table: wrong database?")
	}

	ctx := context.Background()
	var redisDump strings.Builder
	keys, err := f.Redis.Keys(ctx, f.RedisPrefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("redis keys under %s: %v (%d keys)", f.RedisPrefix, err, len(keys))
	}
	for _, k := range keys {
		v, _ := f.Redis.Get(ctx, k).Result()
		redisDump.WriteString(k + "=" + v + "\n")
	}
	for name, secret := range secrets {
		if secret == "" {
			t.Fatalf("%s is empty", name)
		}
		if strings.Contains(string(dump), secret) {
			t.Errorf("the Postgres dump holds the %s in clear", name)
		}
		if strings.Contains(redisDump.String(), secret) {
			t.Errorf("Redis holds the %s in clear", name)
		}
	}
}

// TestGRPCFlow signs a user in through AuthService directly, as an internal
// service would.
func TestGRPCFlow(t *testing.T) {
	f := startFlowSuite(t)
	conn, err := grpcx.Dial(f.Env["MOREID_AUTH_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	auth := authv1.NewAuthServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, wire.APIKey, f.app.key)

	st, err := auth.Authorize(ctx, &authv1.AuthorizeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	login, err := auth.Login(ctx, &authv1.LoginRequest{UserId: "alice", Password: alicePassword, State: st.GetState()})
	if err != nil {
		t.Fatal(err)
	}
	if login.GetUser().GetUserId() != "alice" || login.GetUser().GetId() < 1 {
		t.Errorf("login user %v", login.GetUser())
	}
	tok, err := auth.Token(ctx, &authv1.TokenRequest{Code: login.GetCode(), State: st.GetState()})
	if err != nil {
		t.Fatal(err)
	}
	if tok.GetTokenType() != "Bearer" || tok.GetExpiresIn() != 3600 || !strings.HasPrefix(tok.GetAccessToken(), "token_") {
		t.Errorf("token %v", tok)
	}
	profile, err := auth.GetPublicProfile(ctx, &authv1.GetPublicProfileRequest{UserId: "alice"})
	if err != nil || profile.GetUser().GetUsername() != "Alice" {
		t.Fatalf("profile %v, %v", profile, err)
	}

	cases := []struct {
		name   string
		call   func(context.Context) error
		code   codes.Code
		reason apierr.Kind
	}{
		{"reused code", func(ctx context.Context) error {
			_, err := auth.Token(ctx, &authv1.TokenRequest{Code: login.GetCode(), State: st.GetState()})
			return err
		}, codes.Aborted, apierr.InvalidCode},
		{"used state", func(ctx context.Context) error {
			_, err := auth.Login(ctx, &authv1.LoginRequest{UserId: "alice", Password: alicePassword, State: st.GetState()})
			return err
		}, codes.FailedPrecondition, apierr.InvalidState},
		{"no key", func(context.Context) error {
			_, err := auth.Authorize(context.Background(), &authv1.AuthorizeRequest{})
			return err
		}, codes.Unauthenticated, apierr.InvalidAPIKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctx)
			st := status.Convert(err)
			if st.Code() != tc.code || apierr.FromStatus(st).Kind != tc.reason {
				t.Fatalf("got %v (%s), want %v (%s)", st.Code(), apierr.FromStatus(st).Kind, tc.code, tc.reason)
			}
		})
	}
}
