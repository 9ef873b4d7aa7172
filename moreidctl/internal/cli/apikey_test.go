package cli

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
)

var clientIDPattern = regexp.MustCompile(`^mlc_[0-9a-f]{32}$`)

// TestAPIKeyCreateClient: the OpenID Connect flags of apikey create, and
// what the last line holds: the key, or the client_id of a public client.
func TestAPIKeyCreateClient(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantLast   string   // "KEY" or "CLIENT_ID"
		wantLines  []string // CLIENT_ID is replaced by the created client id
		wantAbsent []string // substrings stdout must not hold
		wantStderr []string
		wantSent   *apikeyv1.CreateAPIKeyRequest // nil: the service must not be called
	}{
		{
			name: "confidential client with redirect URIs, each flag value whole",
			args: []string{"apikey", "create", "--name", "Web", "--redirect-uri", "https://web.example/cb?a=1,2",
				"--redirect-uri=http://127.0.0.1:8080/cb", "--post-logout-redirect-uri", "https://web.example/bye"},
			wantLast: "KEY",
			wantLines: []string{"created API key 1", "client_id: CLIENT_ID", "password login: on",
				"redirect URIs:  https://web.example/cb?a=1,2 http://127.0.0.1:8080/cb", "post-logout:    https://web.example/bye"},
			wantSent: &apikeyv1.CreateAPIKeyRequest{Name: "Web",
				RedirectUris:           []string{"https://web.example/cb?a=1,2", "http://127.0.0.1:8080/cb"},
				PostLogoutRedirectUris: []string{"https://web.example/bye"}},
		},
		{
			name:       "public client: client_id on the last line, no key, no prefix",
			args:       []string{"apikey", "create", "--public", "--name", "App", "--redirect-uri", "com.example.app:/cb"},
			wantLast:   "CLIENT_ID",
			wantLines:  []string{"created API key 1, a public client", "client_id: CLIENT_ID", "redirect URIs:  com.example.app:/cb", "post-logout:    none"},
			wantAbsent: []string{"prefix:", "ml_", "shown only this once", "password login"},
			wantSent:   &apikeyv1.CreateAPIKeyRequest{Name: "App", Public: true, RedirectUris: []string{"com.example.app:/cb"}},
		},
		{
			name:       "service refuses a URI",
			args:       []string{"apikey", "create", "--name", "Web", "--redirect-uri", "https://web.example/cb#x"},
			wantCode:   1,
			wantStderr: []string{"create API key \"Web\"", "重定向URI无效", "https://web.example/cb#x", "invalid_request"},
			wantSent:   &apikeyv1.CreateAPIKeyRequest{Name: "Web", RedirectUris: []string{"https://web.example/cb#x"}},
		},
		{
			name:       "--redirect-uri needs a value",
			args:       []string{"apikey", "create", "--name", "Web", "--redirect-uri"},
			wantCode:   2,
			wantStderr: []string{"flag --redirect-uri needs a value"},
		},
		{
			name:       "--public takes no value",
			args:       []string{"apikey", "create", "--name", "Web", "--public=maybe"},
			wantCode:   2,
			wantStderr: []string{`invalid boolean value "maybe" for flag --public`},
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
			k := s.keys.keys[0]
			if !clientIDPattern.MatchString(k.GetClientId()) {
				t.Fatalf("fake made client id %q", k.GetClientId())
			}
			lines := strings.Split(strings.TrimSuffix(got.stdout, "\n"), "\n")
			want := map[string]string{"KEY": s.keys.secrets[0], "CLIENT_ID": k.GetClientId()}[tt.wantLast]
			if last := lines[len(lines)-1]; last != want {
				t.Errorf("last line %q, want %q", last, want)
			}
			for _, w := range tt.wantLines {
				w = strings.ReplaceAll(w, "CLIENT_ID", k.GetClientId())
				if !slices.Contains(lines, w) {
					t.Errorf("stdout lacks line %q:\n%s", w, got.stdout)
				}
			}
			for _, a := range tt.wantAbsent {
				if strings.Contains(got.stdout, a) {
					t.Errorf("stdout holds %q:\n%s", a, got.stdout)
				}
			}
			if tt.wantLast == "CLIENT_ID" && strings.Contains(got.stdout, s.keys.secrets[0]) {
				t.Errorf("a public client's secret was printed")
			}
		})
	}
}

func TestAPIKeyRedirectURIs(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
		wantSent   proto.Message // nil: the service must not be called
	}{
		{
			name:       "sets the redirect list",
			args:       []string{"apikey", "redirect-uris", "1", "--set", "https://a.example/cb, http://localhost:8080/cb"},
			wantStdout: "API key 1 (Demo): redirect URIs set to https://a.example/cb http://localhost:8080/cb\n",
			wantSent:   &apikeyv1.SetRedirectURIsRequest{Id: 1, Uris: []string{"https://a.example/cb", "http://localhost:8080/cb"}},
		},
		{
			name:       "a comma inside a URI stays in it",
			args:       []string{"apikey", "redirect-uris", "--set=https://a.example/cb?ids=1,2,3,com.example.app:/cb", "1"},
			wantStdout: "API key 1 (Demo): redirect URIs set to https://a.example/cb?ids=1,2,3 com.example.app:/cb\n",
			wantSent:   &apikeyv1.SetRedirectURIsRequest{Id: 1, Uris: []string{"https://a.example/cb?ids=1,2,3", "com.example.app:/cb"}},
		},
		{
			name:       "--post-logout sets the other list",
			args:       []string{"apikey", "redirect-uris", "1", "--post-logout", "--set", "https://a.example/bye"},
			wantStdout: "API key 1 (Demo): post-logout redirect URIs set to https://a.example/bye\n",
			wantSent:   &apikeyv1.SetRedirectURIsRequest{Id: 1, Uris: []string{"https://a.example/bye"}, PostLogout: true},
		},
		{
			name:       `--set "" clears`,
			args:       []string{"apikey", "redirect-uris", "1", "--set", ""},
			wantStdout: "API key 1 (Demo): redirect URIs cleared\n",
			wantSent:   &apikeyv1.SetRedirectURIsRequest{Id: 1},
		},
		{
			name:       "--set of blanks and commas clears",
			args:       []string{"apikey", "redirect-uris", "1", "--post-logout", "--set= , ,"},
			wantStdout: "API key 1 (Demo): post-logout redirect URIs cleared\n",
			wantSent:   &apikeyv1.SetRedirectURIsRequest{Id: 1, PostLogout: true},
		},
		{
			name:       "service refusal",
			args:       []string{"apikey", "redirect-uris", "1", "--set", "https://a.example/cb#frag"},
			wantCode:   1,
			wantStderr: []string{"set the redirect URIs of API key 1", "重定向URI无效", "https://a.example/cb#frag", "invalid_request"},
			wantSent:   &apikeyv1.SetRedirectURIsRequest{Id: 1, Uris: []string{"https://a.example/cb#frag"}},
		},
		{
			name:       "unknown id",
			args:       []string{"apikey", "redirect-uris", "7", "--post-logout", "--set", "https://a.example/bye"},
			wantCode:   1,
			wantStderr: []string{"set the post-logout redirect URIs of API key 7", "API密钥不存在", "not_found"},
			wantSent:   &apikeyv1.SetRedirectURIsRequest{Id: 7, Uris: []string{"https://a.example/bye"}, PostLogout: true},
		},
		{name: "--set is required", args: []string{"apikey", "redirect-uris", "1"}, wantCode: 2, wantStderr: []string{"--set is required", "Usage:\n  moreidctl apikey redirect-uris KEY_ID"}},
		{name: "--set is required with --post-logout", args: []string{"apikey", "redirect-uris", "1", "--post-logout"}, wantCode: 2, wantStderr: []string{"--set is required"}},
		{name: "missing KEY_ID", args: []string{"apikey", "redirect-uris", "--set", "https://a.example/cb"}, wantCode: 2, wantStderr: []string{"KEY_ID is required"}},
		{name: "bad KEY_ID", args: []string{"apikey", "redirect-uris", "x1", "--set", "https://a.example/cb"}, wantCode: 2, wantStderr: []string{"KEY_ID must be a positive number"}},
		{name: "unknown flag", args: []string{"apikey", "redirect-uris", "1", "--add", "https://a.example/cb"}, wantCode: 2, wantStderr: []string{"unknown flag --add (see 'moreidctl apikey redirect-uris --help')"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			if got := run(t, s.env, "", "apikey", "create", "--name", "Demo"); got.code != 0 {
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

func TestSplitURIs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,, ", nil},
		{"https://a.example/cb", []string{"https://a.example/cb"}},
		{" https://a.example/cb ,https://b.example/cb", []string{"https://a.example/cb", "https://b.example/cb"}},
		{"https://a.example/cb?x=1,2", []string{"https://a.example/cb?x=1,2"}},
		{"https://a.example/cb?x=1,,2", []string{"https://a.example/cb?x=1,,2"}},
		{"https://a.example/cb?x=1, ,2", []string{"https://a.example/cb?x=1, ,2"}}, // sent as typed; the service refuses the blank
		{"https://a.example/cb,, ,https://b.example/cb,", []string{"https://a.example/cb", "https://b.example/cb"}},
		{"https://a.example/cb?x=1,2,com.example.app:/cb", []string{"https://a.example/cb?x=1,2", "com.example.app:/cb"}},
		{"https://a.example/cb?x=a,b:c", []string{"https://a.example/cb?x=a", "b:c"}}, // a scheme-like piece starts a URI
		{"x=1,https://a.example/cb", []string{"x=1", "https://a.example/cb"}},         // the first piece is sent; the service refuses it
		{"https://a.example/cb,1http://b", []string{"https://a.example/cb,1http://b"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := splitURIs(tt.in); !slices.Equal(got, tt.want) {
				t.Fatalf("splitURIs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestAPIKeyListClients: list --json gives the client fields with their
// types (lists never null); the table gives the client_id and no prefix for
// a public client, whose key nobody holds.
func TestAPIKeyListClients(t *testing.T) {
	s := newSuite(t)
	for _, args := range [][]string{
		{"apikey", "create", "--name", "Web", "--redirect-uri", "https://web.example/cb", "--post-logout-redirect-uri", "https://web.example/bye"},
		{"apikey", "create", "--name", "App", "--public", "--redirect-uri", "com.example.app:/cb"},
		{"apikey", "create", "--name", "Plain"},
	} {
		if got := run(t, s.env, "", args...); got.code != 0 {
			t.Fatalf("%v: exit %d, stderr %s", args, got.code, got.stderr)
		}
	}
	t.Run("json", func(t *testing.T) {
		got := run(t, s.env, "", "apikey", "list", "--json")
		if got.code != 0 {
			t.Fatalf("exit %d, stderr %s", got.code, got.stderr)
		}
		var items []map[string]any
		if err := json.Unmarshal([]byte(got.stdout), &items); err != nil || len(items) != 3 {
			t.Fatalf("not 3 JSON objects: %v\n%s", err, got.stdout)
		}
		want := []struct {
			public             bool
			redirect, postLout []any
		}{
			{false, []any{"https://web.example/cb"}, []any{"https://web.example/bye"}},
			{true, []any{"com.example.app:/cb"}, []any{}},
			{false, []any{}, []any{}},
		}
		for i, it := range items {
			if id, ok := it["client_id"].(string); !ok || id != s.keys.keys[i].GetClientId() || !clientIDPattern.MatchString(id) {
				t.Errorf("item %d client_id = %#v", i, it["client_id"])
			}
			if p, ok := it["public"].(bool); !ok || p != want[i].public {
				t.Errorf("item %d public = %#v, want %v", i, it["public"], want[i].public)
			}
			if r, ok := it["redirect_uris"].([]any); !ok || !slices.Equal(r, want[i].redirect) {
				t.Errorf("item %d redirect_uris = %#v, want the array %v", i, it["redirect_uris"], want[i].redirect)
			}
			if r, ok := it["post_logout_redirect_uris"].([]any); !ok || !slices.Equal(r, want[i].postLout) {
				t.Errorf("item %d post_logout_redirect_uris = %#v, want the array %v", i, it["post_logout_redirect_uris"], want[i].postLout)
			}
		}
	})
	t.Run("table", func(t *testing.T) {
		got := run(t, s.env, "", "apikey", "list")
		lines := strings.Split(strings.TrimSuffix(got.stdout, "\n"), "\n")
		if got.code != 0 || len(lines) != 4 {
			t.Fatalf("exit %d, stdout:\n%s", got.code, got.stdout)
		}
		for i, k := range s.keys.keys {
			row := strings.Fields(lines[i+1])
			prefix := k.GetPrefix()
			if k.GetPublic() {
				prefix = "(public)"
			}
			if len(row) < 4 || row[2] != prefix || row[3] != k.GetClientId() {
				t.Errorf("row %d = %q, want prefix %s then client_id %s", i+1, lines[i+1], prefix, k.GetClientId())
			}
		}
		if strings.Contains(got.stdout, s.keys.keys[1].GetPrefix()) {
			t.Errorf("the table shows the prefix of a public client's unseen key:\n%s", got.stdout)
		}
	})
}
