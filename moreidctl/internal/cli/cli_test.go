package cli

import (
	"encoding/json"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
)

const password = "Correct horse battery staple 密码"

func TestUserCreate(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string
		wantStderr []string
		wantSent   *userv1.CreateUserRequest // nil: the service must not be called
	}{
		{
			name:       "password from stdin, CRLF and later lines dropped",
			args:       []string{"user", "create", "--user-id", "alice", "--username", "Alice", "--email", "alice@example.com", "--password-stdin"},
			stdin:      password + "\r\nsecond line\n",
			wantStdout: "created user alice (id 1)\n",
			wantSent:   &userv1.CreateUserRequest{UserId: "alice", Username: "Alice", Email: "alice@example.com", Password: password},
		},
		{
			name:       "password without a final newline, flags as --flag=value",
			args:       []string{"user", "create", "--password-stdin", "--user-id=bob", "--username=Bob", "--email=bob@example.com"},
			stdin:      password,
			wantStdout: "created user bob (id 1)\n",
			wantSent:   &userv1.CreateUserRequest{UserId: "bob", Username: "Bob", Email: "bob@example.com", Password: password},
		},
		{
			name:       "service refusal is printed in its own words",
			args:       []string{"user", "create", "--user-id", "carol", "--username", "Carol", "--email", "not-an-email", "--password-stdin"},
			stdin:      password + "\n",
			wantCode:   1,
			wantStderr: []string{"create user carol", "邮箱格式错误", "invalid_request"},
			wantSent:   &userv1.CreateUserRequest{UserId: "carol", Username: "Carol", Email: "not-an-email", Password: password},
		},
		{
			name:       "empty password",
			args:       []string{"user", "create", "--user-id", "dave", "--username", "Dave", "--email", "d@example.com", "--password-stdin"},
			stdin:      "\r\n" + password + "\n",
			wantCode:   2,
			wantStderr: []string{"password on standard input is empty", "Usage:"},
		},
		{
			name:       "no stdin at all",
			args:       []string{"user", "create", "--user-id", "dave", "--username", "Dave", "--email", "d@example.com", "--password-stdin"},
			wantCode:   2,
			wantStderr: []string{"password on standard input is empty", "Usage:"},
		},
		{
			name:       "password over the limit",
			args:       []string{"user", "create", "--user-id", "dave", "--username", "Dave", "--email", "d@example.com", "--password-stdin"},
			stdin:      strings.Repeat("x", maxPasswordLine+1) + "\n",
			wantCode:   2,
			wantStderr: []string{"longer than 4096 bytes"},
		},
		{
			name:       "--password-stdin is required",
			args:       []string{"user", "create", "--user-id", "dave", "--username", "Dave", "--email", "d@example.com"},
			stdin:      password + "\n",
			wantCode:   2,
			wantStderr: []string{"--password-stdin is required", "Usage:"},
		},
		{
			name:       "a password flag does not exist",
			args:       []string{"user", "create", "--user-id", "dave", "--username", "Dave", "--email", "d@example.com", "--password=" + password},
			wantCode:   2,
			wantStderr: []string{"unknown flag --password (see 'moreidctl user create --help')", "Usage:"},
		},
		{
			name:       "missing --email",
			args:       []string{"user", "create", "--user-id", "dave", "--username", "Dave", "--password-stdin"},
			stdin:      password + "\n",
			wantCode:   2,
			wantStderr: []string{"--email is required", "Usage:"},
		},
		{
			name:       "blank --user-id",
			args:       []string{"user", "create", "--user-id", " ", "--username", "Dave", "--email", "d@example.com", "--password-stdin"},
			stdin:      password + "\n",
			wantCode:   2,
			wantStderr: []string{"--user-id is required"},
		},
		{
			name:       "stray argument",
			args:       []string{"user", "create", "dave", "--user-id", "dave", "--username", "Dave", "--email", "d@example.com", "--password-stdin"},
			stdin:      password + "\n",
			wantCode:   2,
			wantStderr: []string{`unexpected argument "dave"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			got := run(t, s.env, tt.stdin, tt.args...)
			if got.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got.code, tt.wantCode, got.stderr)
			}
			if got.stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got.stdout, tt.wantStdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
			if tt.wantCode == 0 && got.stderr != "" {
				t.Errorf("stderr on success: %q", got.stderr)
			}
			if strings.Contains(got.stdout+got.stderr, password) {
				t.Errorf("the password appears in the output:\n%s%s", got.stdout, got.stderr)
			}
			reqs := s.users.requests()
			switch {
			case tt.wantSent == nil && len(reqs) != 0:
				t.Errorf("service called %d times, want none", len(reqs))
			case tt.wantSent != nil && (len(reqs) != 1 || !proto.Equal(reqs[0], tt.wantSent)):
				t.Errorf("service received %v, want exactly %v", reqs, tt.wantSent)
			}
		})
	}
}

func TestUserCreateConflict(t *testing.T) {
	s := newSuite(t)
	args := []string{"user", "create", "--user-id", "alice", "--username", "Alice", "--email", "a@example.com", "--password-stdin"}
	if got := run(t, s.env, password+"\n", args...); got.code != 0 {
		t.Fatalf("first create: exit %d, stderr %s", got.code, got.stderr)
	}
	got := run(t, s.env, password+"\n", args...)
	if got.code != 1 || got.stdout != "" {
		t.Fatalf("second create: exit %d stdout %q, want 1 and nothing", got.code, got.stdout)
	}
	want := "moreidctl: create user alice: 用户ID已存在 (conflict)\n"
	if got.stderr != want {
		t.Errorf("stderr = %q, want %q", got.stderr, want)
	}
}

var keyPattern = regexp.MustCompile(`^ml_[0-9a-f]{64}$`)

func TestAPIKeyCreate(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantLines  []string // lines stdout must hold, besides the key
		wantStderr []string
		wantSent   *apikeyv1.CreateAPIKeyRequest // nil: the service must not be called
	}{
		{
			name: "defaults",
			args: []string{"apikey", "create", "--name", "Demo App"},
			wantLines: []string{"created API key 1", "name:           Demo App", "whitelist:      any IP", "password login: on",
				"redirect URIs:  none", "post-logout:    none", "client_id: CLIENT_ID"},
			wantSent: &apikeyv1.CreateAPIKeyRequest{Name: "Demo App"},
		},
		{
			name:      "whitelist trimmed and blanks dropped, password login off",
			args:      []string{"apikey", "create", "--whitelist", " 10.1.2.3/8, ::1 ,,", "--no-password-login", "--name=Shop"},
			wantLines: []string{"whitelist:      10.0.0.0/8,::1", "password login: off"},
			wantSent:  &apikeyv1.CreateAPIKeyRequest{Name: "Shop", Whitelist: []string{"10.1.2.3/8", "::1"}, DisablePasswordLogin: true},
		},
		{
			name:       "service refusal",
			args:       []string{"apikey", "create", "--name", strings.Repeat("n", 65)},
			wantCode:   1,
			wantStderr: []string{"名称过长", "invalid_request"},
			wantSent:   &apikeyv1.CreateAPIKeyRequest{Name: strings.Repeat("n", 65)},
		},
		{
			name:       "--name is required",
			args:       []string{"apikey", "create", "--whitelist", "10.0.0.1"},
			wantCode:   2,
			wantStderr: []string{"--name is required", "Usage:"},
		},
		{
			name:       "bad whitelist entry",
			args:       []string{"apikey", "create", "--name", "x", "--whitelist", "10.0.0.1,10.0.0.300"},
			wantCode:   2,
			wantStderr: []string{"--whitelist", `not an IP or CIDR: "10.0.0.300"`, "Usage:"},
		},
		{
			name:       "flag needs a value",
			args:       []string{"apikey", "create", "--name"},
			wantCode:   2,
			wantStderr: []string{"flag --name needs a value"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			got := run(t, s.env, "", tt.args...)
			if got.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got.code, tt.wantCode, got.stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
			calls := s.keys.received()
			switch {
			case tt.wantSent == nil && len(calls) != 0:
				t.Errorf("service called: %v", calls)
			case tt.wantSent != nil && (len(calls) != 1 || !proto.Equal(calls[0], tt.wantSent)):
				t.Errorf("service received %v, want exactly %v", calls, tt.wantSent)
			}
			if tt.wantCode != 0 {
				if got.stdout != "" {
					t.Errorf("stdout on failure: %q", got.stdout)
				}
				return
			}
			if got.stderr != "" {
				t.Errorf("stderr on success: %q", got.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(got.stdout, "\n"), "\n")
			last := lines[len(lines)-1]
			if !keyPattern.MatchString(last) || last != s.keys.secrets[0] {
				t.Errorf("last line %q is not the issued key %q", last, s.keys.secrets[0])
			}
			if n := strings.Count(got.stdout, last); n != 1 {
				t.Errorf("key printed %d times, want once", n)
			}
			want := append([]string{"prefix:         " + s.keys.secrets[0][:11]}, tt.wantLines...)
			for _, w := range want {
				w = strings.ReplaceAll(w, "CLIENT_ID", s.keys.keys[0].GetClientId())
				if !slices.Contains(lines, w) {
					t.Errorf("stdout lacks line %q:\n%s", w, got.stdout)
				}
			}
			if !strings.Contains(strings.ToLower(got.stdout), "shown only this once") {
				t.Errorf("no warning that the key is shown once:\n%s", got.stdout)
			}
		})
	}
}

// seedKeys issues three keys through the CLI: an open one, a whitelisted one
// and a revoked one, and returns their secrets.
func seedKeys(t *testing.T, s *suite) []string {
	t.Helper()
	for _, args := range [][]string{
		{"apikey", "create", "--name", "Open"},
		{"apikey", "create", "--name", "Office", "--whitelist", "192.168.1.0/24,2001:db8::1", "--no-password-login"},
		{"apikey", "create", "--name", "Old"},
		{"apikey", "revoke", "3"},
	} {
		if got := run(t, s.env, "", args...); got.code != 0 {
			t.Fatalf("%v: exit %d, stderr %s", args, got.code, got.stderr)
		}
	}
	return s.keys.secrets
}

func TestAPIKeyListJSON(t *testing.T) {
	t.Run("empty list is []", func(t *testing.T) {
		s := newSuite(t)
		got := run(t, s.env, "", "apikey", "list", "--json")
		if got.code != 0 || got.stdout != "[]\n" || got.stderr != "" {
			t.Fatalf("got exit %d stdout %q stderr %q, want 0 and \"[]\\n\"", got.code, got.stdout, got.stderr)
		}
	})
	t.Run("fields and types", func(t *testing.T) {
		s := newSuite(t)
		secrets := seedKeys(t, s)
		got := run(t, s.env, "", "apikey", "list", "--json")
		if got.code != 0 {
			t.Fatalf("exit %d, stderr %s", got.code, got.stderr)
		}
		for _, k := range secrets {
			if strings.Contains(got.stdout, k) {
				t.Fatalf("list shows a key")
			}
		}
		var items []map[string]any
		if err := json.Unmarshal([]byte(got.stdout), &items); err != nil {
			t.Fatalf("not a JSON array of objects: %v\n%s", err, got.stdout)
		}
		if len(items) != 3 {
			t.Fatalf("%d items, want 3", len(items))
		}
		wantFields := []string{"client_id", "created_at", "id", "name", "password_login", "post_logout_redirect_uris",
			"prefix", "public", "redirect_uris", "revoked", "whitelist"}
		wantWhitelist := [][]any{{}, {"192.168.1.0/24", "2001:db8::1"}, {}}
		for i, it := range items {
			var fields []string
			for f := range it {
				fields = append(fields, f)
			}
			slices.Sort(fields)
			if !slices.Equal(fields, wantFields) {
				t.Errorf("item %d fields %v, want exactly %v", i, fields, wantFields)
			}
			if id, ok := it["id"].(float64); !ok || id != float64(i+1) {
				t.Errorf("item %d id = %#v, want the number %d", i, it["id"], i+1)
			}
			if name, ok := it["name"].(string); !ok || name != []string{"Open", "Office", "Old"}[i] {
				t.Errorf("item %d name = %#v", i, it["name"])
			}
			if p, ok := it["prefix"].(string); !ok || p != secrets[i][:11] || !regexp.MustCompile(`^ml_[0-9a-f]{8}$`).MatchString(p) {
				t.Errorf("item %d prefix = %#v", i, it["prefix"])
			}
			wl, ok := it["whitelist"].([]any)
			if !ok || !slices.Equal(wl, wantWhitelist[i]) {
				t.Errorf("item %d whitelist = %#v, want the array %v", i, it["whitelist"], wantWhitelist[i])
			}
			ts, _ := it["created_at"].(string)
			if at, err := time.Parse(time.RFC3339, ts); err != nil || !at.Equal(baseTime.Add(time.Duration(i+1)*time.Minute)) {
				t.Errorf("item %d created_at = %#v, want RFC 3339 of the creation time", i, it["created_at"])
			}
			// Only Office was created with --no-password-login.
			if pl, ok := it["password_login"].(bool); !ok || pl != (i != 1) {
				t.Errorf("item %d password_login = %#v, want %v", i, it["password_login"], i != 1)
			}
			if r, ok := it["revoked"].(bool); !ok || r != (i == 2) {
				t.Errorf("item %d revoked = %#v", i, it["revoked"])
			}
		}
	})
}

func TestAPIKeyListTable(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		s := newSuite(t)
		got := run(t, s.env, "", "apikey", "list")
		if got.code != 0 || got.stdout != "no API keys\n" {
			t.Fatalf("got exit %d stdout %q", got.code, got.stdout)
		}
	})
	t.Run("rows", func(t *testing.T) {
		s := newSuite(t)
		secrets := seedKeys(t, s)
		got := run(t, s.env, "", "apikey", "list")
		if got.code != 0 || got.stderr != "" {
			t.Fatalf("exit %d, stderr %s", got.code, got.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(got.stdout, "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d lines, want a header and 3 rows:\n%s", len(lines), got.stdout)
		}
		for _, col := range []string{"ID", "NAME", "PREFIX", "CLIENT_ID", "WHITELIST", "CREATED", "STATUS"} {
			if !strings.Contains(lines[0], col) {
				t.Errorf("header lacks %s: %q", col, lines[0])
			}
		}
		want := [][]string{
			{"1", "Open", secrets[0][:11], s.keys.keys[0].GetClientId(), "any IP", "on", "2026-03-01T08:01:00Z", "active"},
			{"2", "Office", secrets[1][:11], s.keys.keys[1].GetClientId(), "192.168.1.0/24,2001:db8::1", "off", "active"},
			{"3", "Old", secrets[2][:11], s.keys.keys[2].GetClientId(), "revoked 2026-03-01T09:00:00Z"},
		}
		for i, cells := range want {
			for _, c := range cells {
				if !strings.Contains(lines[i+1], c) {
					t.Errorf("row %d lacks %q: %q", i+1, c, lines[i+1])
				}
			}
			if !strings.HasPrefix(lines[i+1], cells[0]+" ") {
				t.Errorf("row %d does not start with its id: %q", i+1, lines[i+1])
			}
		}
		for _, k := range secrets {
			if strings.Contains(got.stdout, k) {
				t.Errorf("list shows a key")
			}
		}
	})
}

func TestAPIKeyRevoke(t *testing.T) {
	list := &apikeyv1.ListAPIKeysRequest{}
	tests := []struct {
		name        string
		revokeFirst bool // key 1 is revoked before the command runs
		args        []string
		wantCode    int
		wantStdout  string
		wantStderr  []string
		wantSent    []proto.Message
	}{
		{
			name:       "revokes",
			args:       []string{"apikey", "revoke", "1"},
			wantStdout: "revoked API key 1 (Demo, PREFIX)\n",
			wantSent:   []proto.Message{list, &apikeyv1.RevokeAPIKeyRequest{Id: 1}},
		},
		{
			// Idempotent: the key is refused either way, so a retried
			// script succeeds, but the operator is told nothing changed
			// and when the key was revoked, instead of "revoked" again.
			name:        "already revoked",
			revokeFirst: true,
			args:        []string{"apikey", "revoke", "1"},
			wantStdout:  "API key 1 (Demo, PREFIX) was already revoked at 2026-03-01T09:00:00Z; nothing changed\n",
			wantSent:    []proto.Message{list},
		},
		{
			name:       "unknown id",
			args:       []string{"apikey", "revoke", "42"},
			wantCode:   1,
			wantStderr: []string{"moreidctl: revoke API key 42: API密钥不存在 (not_found)\n"},
			wantSent:   []proto.Message{list, &apikeyv1.RevokeAPIKeyRequest{Id: 42}},
		},
		{name: "missing KEY_ID", args: []string{"apikey", "revoke"}, wantCode: 2, wantStderr: []string{"KEY_ID is required", "Usage:\n  moreidctl apikey revoke KEY_ID"}},
		{name: "KEY_ID not a number", args: []string{"apikey", "revoke", "abc"}, wantCode: 2, wantStderr: []string{`KEY_ID must be a positive number`, `"abc"`, "Usage:"}},
		{name: "KEY_ID zero", args: []string{"apikey", "revoke", "0"}, wantCode: 2, wantStderr: []string{`KEY_ID must be a positive number`}},
		{name: "KEY_ID negative", args: []string{"apikey", "revoke", "--", "-3"}, wantCode: 2, wantStderr: []string{`KEY_ID must be a positive number`, `"-3"`}},
		{name: "two ids", args: []string{"apikey", "revoke", "1", "2"}, wantCode: 2, wantStderr: []string{`unexpected argument "2"`}},
		{name: "unknown flag", args: []string{"apikey", "revoke", "1", "--force"}, wantCode: 2, wantStderr: []string{"unknown flag --force"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			if got := run(t, s.env, "", "apikey", "create", "--name", "Demo"); got.code != 0 {
				t.Fatalf("create: %s", got.stderr)
			}
			before := 1 // the create
			if tt.revokeFirst {
				if got := run(t, s.env, "", "apikey", "revoke", "1"); got.code != 0 {
					t.Fatalf("first revoke: %s", got.stderr)
				}
				before = len(s.keys.received())
			}
			got := run(t, s.env, "", tt.args...)
			if got.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got.code, tt.wantCode, got.stderr)
			}
			if want := strings.ReplaceAll(tt.wantStdout, "PREFIX", s.keys.secrets[0][:11]); got.stdout != want {
				t.Errorf("stdout = %q, want %q", got.stdout, want)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
			calls := s.keys.received()[before:]
			if !slices.EqualFunc(calls, tt.wantSent, proto.Equal) {
				t.Errorf("service received %v, want exactly %v", calls, tt.wantSent)
			}
			if tt.wantCode == 0 && s.keys.keys[0].GetRevokedAt() == nil {
				t.Errorf("key not revoked")
			}
		})
	}
}

func TestAPIKeyWhitelist(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
		wantSent   proto.Message
	}{
		{
			name:       "sets a list, flag after KEY_ID",
			args:       []string{"apikey", "whitelist", "1", "--set", "10.0.0.1, 2001:db8::/32"},
			wantStdout: "API key 1 (Demo): whitelist set to 10.0.0.1,2001:db8::/32\n",
			wantSent:   &apikeyv1.SetWhitelistRequest{Id: 1, Whitelist: []string{"10.0.0.1", "2001:db8::/32"}},
		},
		{
			name:       "flag before KEY_ID",
			args:       []string{"apikey", "whitelist", "--set=192.168.0.0/16", "1"},
			wantStdout: "API key 1 (Demo): whitelist set to 192.168.0.0/16\n",
			wantSent:   &apikeyv1.SetWhitelistRequest{Id: 1, Whitelist: []string{"192.168.0.0/16"}},
		},
		{
			name:       `--set "" clears`,
			args:       []string{"apikey", "whitelist", "1", "--set", ""},
			wantStdout: "API key 1 (Demo): whitelist cleared, any IP may use it\n",
			wantSent:   &apikeyv1.SetWhitelistRequest{Id: 1},
		},
		{
			name:       "--set= clears",
			args:       []string{"apikey", "whitelist", "--set=", "1"},
			wantStdout: "API key 1 (Demo): whitelist cleared, any IP may use it\n",
			wantSent:   &apikeyv1.SetWhitelistRequest{Id: 1},
		},
		{
			name:       "unknown id",
			args:       []string{"apikey", "whitelist", "7", "--set", "10.0.0.1"},
			wantCode:   1,
			wantStderr: []string{"API密钥不存在", "not_found"},
			wantSent:   &apikeyv1.SetWhitelistRequest{Id: 7, Whitelist: []string{"10.0.0.1"}},
		},
		{name: "--set is required", args: []string{"apikey", "whitelist", "1"}, wantCode: 2, wantStderr: []string{"--set is required", "Usage:"}},
		{name: "bad entry", args: []string{"apikey", "whitelist", "1", "--set", "10.0.0.1,example.com"}, wantCode: 2, wantStderr: []string{`not an IP or CIDR: "example.com"`}},
		{name: "missing KEY_ID", args: []string{"apikey", "whitelist", "--set", "10.0.0.1"}, wantCode: 2, wantStderr: []string{"KEY_ID is required"}},
		{name: "bad KEY_ID", args: []string{"apikey", "whitelist", "1x", "--set", "10.0.0.1"}, wantCode: 2, wantStderr: []string{"KEY_ID must be a positive number"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			if got := run(t, s.env, "", "apikey", "create", "--name", "Demo", "--whitelist", "172.16.0.1"); got.code != 0 {
				t.Fatalf("create: %s", got.stderr)
			}
			got := run(t, s.env, "", tt.args...)
			if got.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got.code, tt.wantCode, got.stderr)
			}
			if got.stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got.stdout, tt.wantStdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
			calls := s.keys.received()[1:]
			switch {
			case tt.wantSent == nil && len(calls) != 0:
				t.Errorf("service called: %v", calls)
			case tt.wantSent != nil && (len(calls) != 1 || !proto.Equal(calls[0], tt.wantSent)):
				t.Errorf("service received %v, want exactly %v", calls, tt.wantSent)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	synopses := []string{
		"moreidctl user create --user-id ID --username NAME --email EMAIL --password-stdin",
		"moreidctl user disable USER_ID",
		"moreidctl user enable USER_ID",
		"moreidctl user revoke-tokens USER_ID",
		"moreidctl user withdraw-consent USER_ID [--client CLIENT_ID]",
		"moreidctl apikey create --name NAME [--whitelist IP_OR_CIDR[,...]] [--no-password-login] " +
			"[--redirect-uri URI]... [--post-logout-redirect-uri URI]... [--public]",
		"moreidctl apikey list [--json]",
		"moreidctl apikey revoke KEY_ID",
		"moreidctl apikey whitelist KEY_ID --set IP_OR_CIDR[,...]",
		"moreidctl apikey redirect-uris KEY_ID --set URI[,URI...] [--post-logout]",
		"moreidctl audit list [--user ID] [--since DURATION] [--limit N] [--json]",
		"moreidctl help",
		"moreidctl --version",
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // substring; "" means stderr must be empty
		fullUsage  bool   // the listing of every command is printed
	}{
		{name: "help", args: []string{"help"}, fullUsage: true},
		{name: "-h", args: []string{"-h"}, fullUsage: true},
		{name: "--help", args: []string{"--help"}, fullUsage: true},
		{name: "group help", args: []string{"apikey", "help"}, fullUsage: true},
		{name: "no command", args: nil, wantCode: 2, wantStderr: "no command given", fullUsage: true},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantStderr: `unknown command "frobnicate"`, fullUsage: true},
		{name: "missing subcommand", args: []string{"apikey"}, wantCode: 2, wantStderr: "create, list, revoke, whitelist, redirect-uris", fullUsage: true},
		{name: "missing user subcommand", args: []string{"user"}, wantCode: 2, wantStderr: "create, disable, enable, revoke-tokens, withdraw-consent", fullUsage: true},
		{name: "unknown subcommand", args: []string{"user", "delete"}, wantCode: 2, wantStderr: `unknown command "user delete"`, fullUsage: true},
		{name: "unknown flag", args: []string{"apikey", "list", "--yaml"}, wantCode: 2, wantStderr: "unknown flag --yaml (see 'moreidctl apikey list --help')"},
		{name: "stray argument", args: []string{"apikey", "list", "all"}, wantCode: 2, wantStderr: `unexpected argument "all"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			got := run(t, s.env, "", tt.args...)
			if got.code != tt.wantCode {
				t.Fatalf("exit %d, want %d", got.code, tt.wantCode)
			}
			usageOut := got.stdout
			if tt.wantCode != 0 {
				usageOut = got.stderr
				if got.stdout != "" {
					t.Errorf("stdout on a usage error: %q", got.stdout)
				}
				if !strings.Contains(got.stderr, tt.wantStderr) || !strings.Contains(got.stderr, "Usage:") {
					t.Errorf("stderr lacks %q and the usage:\n%s", tt.wantStderr, got.stderr)
				}
			} else if got.stderr != "" {
				t.Errorf("stderr = %q, want none", got.stderr)
			}
			if tt.fullUsage {
				for _, syn := range synopses {
					if !strings.Contains(usageOut, syn) {
						t.Errorf("usage lacks %q:\n%s", syn, usageOut)
					}
				}
			}
			if tt.fullUsage && !strings.Contains(usageOut, envAuthAdminAddr+" ") {
				t.Errorf("usage does not name %s:\n%s", envAuthAdminAddr, usageOut)
			}
			if n := len(s.keys.received()) + len(s.users.requests()) + len(s.users.disableRequests()) + len(s.auth.revoked()) + len(s.audit.requests()); n != 0 {
				t.Errorf("%d calls made, want none", n)
			}
		})
	}
}

func TestCommandHelp(t *testing.T) {
	for _, c := range commands {
		t.Run(c.path(), func(t *testing.T) {
			got := run(t, nil, "", append(strings.Fields(c.path()), "-h")...)
			if got.code != 0 || got.stderr != "" {
				t.Fatalf("exit %d stderr %q", got.code, got.stderr)
			}
			if !strings.HasPrefix(got.stdout, "Usage:\n  moreidctl "+c.synopsis+"\n") {
				t.Errorf("stdout = %q", got.stdout)
			}
		})
	}
}

// TestUnreachable: with nothing listening, or a listener that never
// answers, every command fails within its time limit naming the address and
// the variable to fix.
func TestUnreachable(t *testing.T) {
	// A TCP listener that accepts and then says nothing: the gRPC handshake
	// never completes, so only the time limit ends the call.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	refused := map[string]string{envUserAdminAddr: "127.0.0.1:1", envAPIKeyAdminAddr: "127.0.0.1:1", envAuthAdminAddr: "127.0.0.1:1"}
	hanging := map[string]string{envUserAdminAddr: silent.Addr().String(), envAPIKeyAdminAddr: silent.Addr().String(),
		envAuthAdminAddr: silent.Addr().String(), envTimeout: "300ms"}
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantStderr []string
		within     time.Duration
	}{
		{
			name:       "user create, refused",
			env:        refused,
			args:       []string{"user", "create", "--user-id", "a", "--username", "A", "--email", "a@example.com", "--password-stdin"},
			wantStderr: []string{"create user a: cannot reach the user admin service at 127.0.0.1:1", envUserAdminAddr},
			within:     defaultTimeout,
		},
		{
			name:       "apikey list, refused",
			env:        refused,
			args:       []string{"apikey", "list", "--json"},
			wantStderr: []string{"list API keys: cannot reach the API-key admin service at 127.0.0.1:1", envAPIKeyAdminAddr},
			within:     defaultTimeout,
		},
		{
			name:       "user revoke-tokens, refused",
			env:        refused,
			args:       []string{"user", "revoke-tokens", "alice"},
			wantStderr: []string{"revoke the access tokens of user alice: cannot reach the auth admin service at 127.0.0.1:1", envAuthAdminAddr},
			within:     defaultTimeout,
		},
		{
			name:       "user withdraw-consent, refused",
			env:        refused,
			args:       []string{"user", "withdraw-consent", "alice", "--client", "mlc_1"},
			wantStderr: []string{"withdraw the consent of user alice to client mlc_1: cannot reach the auth admin service at 127.0.0.1:1", envAuthAdminAddr},
			within:     defaultTimeout,
		},
		{
			name:       "audit list, refused",
			env:        refused,
			args:       []string{"audit", "list", "--user", "alice"},
			wantStderr: []string{"list audit events of user alice: cannot reach the auth admin service at 127.0.0.1:1", envAuthAdminAddr},
			within:     defaultTimeout,
		},
		{
			name:       "audit list, silent server",
			env:        hanging,
			args:       []string{"audit", "list", "--json"},
			wantStderr: []string{"list audit events: no answer from the auth admin service at " + silent.Addr().String() + " within 300ms"},
			within:     5 * time.Second,
		},
		{
			name:       "user revoke-tokens, silent server",
			env:        hanging,
			args:       []string{"user", "revoke-tokens", "alice"},
			wantStderr: []string{"no answer from the auth admin service at " + silent.Addr().String() + " within 300ms"},
			within:     5 * time.Second,
		},
		{
			name:       "user withdraw-consent, silent server",
			env:        hanging,
			args:       []string{"user", "withdraw-consent", "alice"},
			wantStderr: []string{"withdraw the consent of user alice: no answer from the auth admin service at " + silent.Addr().String() + " within 300ms"},
			within:     5 * time.Second,
		},
		{
			name:       "apikey revoke, silent server",
			env:        hanging,
			args:       []string{"apikey", "revoke", "1"},
			wantStderr: []string{"revoke API key 1: no answer from the API-key admin service at " + silent.Addr().String() + " within 300ms"},
			within:     5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got := run(t, tt.env, password+"\n", tt.args...)
			if elapsed := time.Since(start); elapsed > tt.within {
				t.Errorf("took %s, want under %s", elapsed, tt.within)
			}
			if got.code != 1 || got.stdout != "" {
				t.Fatalf("exit %d stdout %q, want 1 and nothing", got.code, got.stdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
			if strings.Contains(got.stderr, password) {
				t.Errorf("password in stderr")
			}
		})
	}
}

func TestWrongService(t *testing.T) {
	s := newSuite(t)
	// The API-key variable pointed at the user admin listener by mistake.
	env := map[string]string{envAPIKeyAdminAddr: s.env[envUserAdminAddr]}
	got := run(t, env, "", "apikey", "list")
	if got.code != 1 || !strings.Contains(got.stderr, "is not the API-key admin service") {
		t.Fatalf("exit %d stderr %q", got.code, got.stderr)
	}
}

func TestBadTimeoutSetting(t *testing.T) {
	s := newSuite(t)
	s.env[envTimeout] = "soon"
	got := run(t, s.env, "", "apikey", "list")
	if got.code != 1 || !strings.Contains(got.stderr, envTimeout) {
		t.Fatalf("exit %d stderr %q", got.code, got.stderr)
	}
	if len(s.keys.received()) != 0 {
		t.Errorf("called the service despite the bad setting")
	}
}
