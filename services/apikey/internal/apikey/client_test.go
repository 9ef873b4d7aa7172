package apikey_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/services/apikey/internal/apikey"
)

var clientIDFormat = regexp.MustCompile(`^mlc_[0-9a-f]{32}$`)

func TestCleanRedirectURIs(t *testing.T) {
	long := "https://app.example/cb?x=" + strings.Repeat("a", apikey.MaxRedirectURILen-len("https://app.example/cb?x="))
	tests := []struct {
		name      string
		uri       string
		public    bool   // registered by a public client
		inMessage string // "" when the URI is accepted
	}{
		{"https", "https://app.example/cb", false, ""},
		{"https with port, query and percent-encoding", "https://app.example:8443/o/cb?tenant=a%20b&x=1", false, ""},
		{"https IPv6 host", "https://[2001:db8::1]/cb", false, ""},
		{"https bare host", "https://app.example", false, ""},
		{"http localhost", "http://localhost:8080/cb", false, ""},
		{"http LOCALHOST", "http://LOCALHOST/cb", false, ""},
		{"http 127.0.0.1", "http://127.0.0.1:53117/cb", false, ""},
		{"http other 127/8 address", "http://127.20.30.40/cb", false, ""},
		{"http [::1]", "http://[::1]:9000/cb", true, ""},
		{"private-use scheme, public client", "com.example.app:/oauth2redirect", true, ""},
		{"private-use scheme with authority, public client", "com.example.app://cb", true, ""},
		{"exactly the length limit", long, false, ""},

		{"private-use scheme, confidential client", "com.example.app:/cb", false, "公开客户端"},
		{"private-use scheme without a dot", "myapp:/cb", true, "https"},
		{"private-use scheme with nothing after it", "com.example.app:", true, "路径"},
		{"http on a public host", "http://app.example/cb", false, "回环"},
		{"http on a private address", "http://192.168.1.10/cb", true, "回环"},
		{"http on 0.0.0.0", "http://0.0.0.0/cb", false, "回环"},
		{"http on a localhost subdomain", "http://localhost.app.example/cb", false, "回环"},
		{"http on an IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/cb", false, "回环"},
		{"http on a zoned loopback", "http://[::1%25lo]/cb", false, "回环"},
		{"http on a short 127 form", "http://127.1/cb", false, "回环"},
		{"fragment", "https://app.example/cb#frag", false, "片段"},
		{"empty fragment", "https://app.example/cb#", false, "片段"},
		{"userinfo", "https://user:pw@app.example/cb", false, "用户信息"},
		{"userinfo without password", "https://user@app.example/cb", false, "用户信息"},
		{"relative", "/cb", false, "绝对URI"},
		{"scheme-relative", "//app.example/cb", false, "绝对URI"},
		{"https without host", "https:///cb", false, "主机"},
		{"https opaque", "https:app.example", false, "主机"},
		{"javascript", "javascript:alert(1)", true, "https"},
		{"data", "data:text/html,x", true, "https"},
		{"blank inside", "https://app.example/c b", false, "ASCII"},
		{"tab inside", "https://app.example/\tcb", false, "ASCII"},
		{"newline inside", "https://app.example/cb\nx", false, "ASCII"},
		{"non-ASCII", "https://应用.example/cb", false, "ASCII"},
		{"one byte over the limit", long + "a", false, "2000"},
		{"unparseable", "https://app.example:port/cb", false, "绝对URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := apikey.CleanRedirectURIs([]string{tt.uri}, tt.public)
			if tt.inMessage == "" {
				if err != nil || !slices.Equal(got, []string{tt.uri}) {
					t.Fatalf("CleanRedirectURIs(%q) = %q, %v; want it stored as given", tt.uri, got, err)
				}
				return
			}
			wantKind(t, err, apierr.InvalidRequest)
			msg := err.(*apierr.Error).Message
			if !strings.Contains(msg, tt.inMessage) {
				t.Errorf("message %q lacks %q", msg, tt.inMessage)
			}
			// The bad URI is named (shortened when long), quoted so that
			// a control character cannot break the message.
			name := tt.uri
			if r := []rune(name); len(r) > 200 {
				name = string(r[:200]) + "…"
			}
			if !strings.Contains(msg, "重定向URI") || !strings.Contains(msg, strconv.Quote(name)) {
				t.Errorf("message %q does not name the URI %q", msg, name)
			}
		})
	}

	t.Run("list: trimmed, blanks and repeats dropped, order kept", func(t *testing.T) {
		got, err := apikey.CleanRedirectURIs([]string{" https://b.example/cb ", "", "  ", "https://a.example/cb", "https://b.example/cb"}, false)
		if err != nil || !slices.Equal(got, []string{"https://b.example/cb", "https://a.example/cb"}) {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("list: case and trailing slash are not normalised", func(t *testing.T) {
		in := []string{"https://App.example/cb", "https://app.example/cb", "https://app.example/cb/"}
		got, err := apikey.CleanRedirectURIs(in, false)
		if err != nil || !slices.Equal(got, in) {
			t.Fatalf("got %q, %v; want three distinct exact strings", got, err)
		}
	})
	t.Run("list: the first bad entry is named", func(t *testing.T) {
		_, err := apikey.CleanRedirectURIs([]string{"https://ok.example/cb", "http://bad.example/cb", "ftp://worse.example"}, false)
		wantKind(t, err, apierr.InvalidRequest)
		if msg := err.(*apierr.Error).Message; !strings.Contains(msg, "http://bad.example/cb") || strings.Contains(msg, "worse") {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("list: at most 20", func(t *testing.T) {
		var uris []string
		for i := range apikey.MaxRedirectURIs + 1 {
			uris = append(uris, "https://app.example/cb"+strings.Repeat("x", i))
		}
		if got, err := apikey.CleanRedirectURIs(uris[:apikey.MaxRedirectURIs], false); err != nil || len(got) != apikey.MaxRedirectURIs {
			t.Fatalf("20 URIs: %d, %v", len(got), err)
		}
		_, err := apikey.CleanRedirectURIs(uris, false)
		wantKind(t, err, apierr.InvalidRequest)
		if msg := err.(*apierr.Error).Message; !strings.Contains(msg, "20") {
			t.Errorf("message %q does not give the limit", msg)
		}
	})
	t.Run("empty list", func(t *testing.T) {
		if got, err := apikey.CleanRedirectURIs(nil, false); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("got %#v, %v; want an empty, non-nil list", got, err)
		}
	})
}

func TestCreateClient(t *testing.T) {
	svc, db := newService(t)
	ctx := context.Background()

	conf, key := create(t, svc, apikey.CreateRequest{
		Name:                   "web",
		RedirectURIs:           []string{" https://web.example/cb ", "http://localhost:3000/cb"},
		PostLogoutRedirectURIs: []string{"https://web.example/bye"},
	})
	pub, pubKey := create(t, svc, apikey.CreateRequest{Name: "native", Public: true, RedirectURIs: []string{"com.example.app:/cb"}})
	plain, _ := create(t, svc, apikey.CreateRequest{Name: "plain"})

	t.Run("client ids", func(t *testing.T) {
		ids := map[string]bool{}
		for _, k := range []apikey.Key{conf, pub, plain} {
			if !clientIDFormat.MatchString(k.ClientID) || ids[k.ClientID] {
				t.Errorf("client_id %q: want a distinct mlc_ and 32 hex", k.ClientID)
			}
			ids[k.ClientID] = true
		}
		if strings.Contains(conf.ClientID, key[3:11]) || strings.Contains(conf.ClientID, secret.Hash(key)[:8]) {
			t.Errorf("client_id %q shares characters with the key or its hash", conf.ClientID)
		}
	})
	t.Run("confidential client", func(t *testing.T) {
		if !keyFormat.MatchString(key) || conf.Public ||
			!slices.Equal(conf.RedirectURIs, []string{"https://web.example/cb", "http://localhost:3000/cb"}) ||
			!slices.Equal(conf.PostLogoutRedirectURIs, []string{"https://web.example/bye"}) {
			t.Fatalf("created %+v, key %q", conf, key)
		}
		if _, err := svc.Validate(ctx, key, "192.0.2.1"); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})
	t.Run("public client", func(t *testing.T) {
		if pubKey != "" {
			t.Fatalf("Create returned a key for a public client")
		}
		if !pub.Public || !slices.Equal(pub.RedirectURIs, []string{"com.example.app:/cb"}) || len(pub.PostLogoutRedirectURIs) != 0 {
			t.Fatalf("created %+v", pub)
		}
		// Still a unique random hash on the row, so nothing can present
		// an empty or guessable secret for it.
		var hash string
		if err := db.Raw("SELECT key_hash FROM api_keys WHERE id = ?", pub.ID).Scan(&hash).Error; err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hash) || hash == secret.Hash("") {
			t.Fatalf("key_hash of the public client = %q", hash)
		}
		// Check still answers for it: the tokens of a public client end
		// when its key is revoked, like every other key's.
		if got, err := svc.Check(ctx, pub.ID); err != nil || got.ID != pub.ID {
			t.Fatalf("Check = %+v, %v", got, err)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		if plain.Public || plain.RedirectURIs == nil || len(plain.RedirectURIs) != 0 || len(plain.PostLogoutRedirectURIs) != 0 {
			t.Fatalf("created %+v", plain)
		}
	})
	t.Run("list carries the client fields", func(t *testing.T) {
		keys, err := svc.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 3 || keys[0].ClientID != conf.ClientID || !slices.Equal(keys[0].RedirectURIs, conf.RedirectURIs) ||
			!slices.Equal(keys[0].PostLogoutRedirectURIs, conf.PostLogoutRedirectURIs) || !keys[1].Public || keys[1].ClientID != pub.ClientID {
			t.Fatalf("List = %+v", keys)
		}
	})

	t.Run("bad URIs are refused and nothing is stored", func(t *testing.T) {
		before := countRows(t, db)
		for _, req := range []apikey.CreateRequest{
			{Name: "a", RedirectURIs: []string{"https://ok.example/cb", "http://evil.example/cb"}},
			{Name: "a", PostLogoutRedirectURIs: []string{"https://ok.example/bye#x"}},
			{Name: "a", RedirectURIs: []string{"com.example.app:/cb"}}, // confidential
		} {
			_, k, err := svc.Create(ctx, req)
			wantKind(t, err, apierr.InvalidRequest)
			if k != "" {
				t.Errorf("a key was returned with the error")
			}
		}
		if n := countRows(t, db); n != before {
			t.Fatalf("%d rows stored by refused requests", n-before)
		}
	})
}

// A public client's key was never shown; should it leak from the database
// anyway, it still does not open /api/oauth.
func TestValidateRefusesPublicClient(t *testing.T) {
	svc, db := newService(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		public bool
		want   apierr.Kind // "" for accepted
	}{
		{"confidential", false, ""},
		{"public", true, apierr.InvalidAPIKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The secret is made here and written as the row's hash, the
			// way a leaked public key would be presented.
			k, _ := create(t, svc, apikey.CreateRequest{Name: tc.name, Public: tc.public})
			key := secret.New("ml_", 64, secret.Hex)
			if err := db.Exec("UPDATE api_keys SET key_hash = ? WHERE id = ?", secret.Hash(key), k.ID).Error; err != nil {
				t.Fatal(err)
			}
			got, err := svc.Validate(ctx, key, "192.0.2.1")
			if tc.want == "" {
				if err != nil || got.ID != k.ID {
					t.Fatalf("Validate = %+v, %v", got, err)
				}
				return
			}
			wantKind(t, err, tc.want)
		})
	}
}

func TestClient(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	active, _ := create(t, svc, apikey.CreateRequest{Name: "active", RedirectURIs: []string{"https://a.example/cb"}})
	public, _ := create(t, svc, apikey.CreateRequest{Name: "public", Public: true})
	revoked, _ := create(t, svc, apikey.CreateRequest{Name: "revoked"})
	if _, err := svc.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		clientID string
		want     int64 // the key found; 0 for NotFound
	}{
		{"active", active.ClientID, active.ID},
		{"public", public.ClientID, public.ID},
		{"revoked", revoked.ClientID, 0},
		{"unknown", secret.New("mlc_", 32, secret.Hex), 0},
		{"empty", "", 0},
		{"upper case", strings.ToUpper(active.ClientID), 0},
		{"upper hex", "mlc_" + strings.ToUpper(active.ClientID[4:]), 0},
		{"surrounding blank", " " + active.ClientID, 0},
		{"too long", active.ClientID + "0", 0},
		{"too short", active.ClientID[:len(active.ClientID)-1], 0},
		{"SQL", "mlc_' OR '1'='1", 0},
		{"LIKE pattern", "mlc_%", 0},
		{"the key prefix", active.Prefix, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := svc.Client(ctx, tt.clientID)
			if tt.want == 0 {
				wantKind(t, err, apierr.NotFound)
				return
			}
			if err != nil || k.ID != tt.want || k.ClientID != tt.clientID {
				t.Fatalf("Client = %+v, %v; want key %d", k, err, tt.want)
			}
		})
	}
	t.Run("record", func(t *testing.T) {
		k, err := svc.Client(ctx, active.ClientID)
		if err != nil || k.Name != "active" || !slices.Equal(k.RedirectURIs, []string{"https://a.example/cb"}) || k.Public {
			t.Fatalf("Client = %+v, %v", k, err)
		}
	})
}

// A malformed client id is refused before the store is asked.
func TestClientMalformedNeverQueries(t *testing.T) {
	svc := apikey.New(panicStore{})
	for _, id := range []string{"", "mlc_", "mlc_XYZ", "ml_" + strings.Repeat("a", 32), "mlc_" + strings.Repeat("g", 32), strings.Repeat("a", 36)} {
		t.Run(id, func(t *testing.T) {
			_, err := svc.Client(context.Background(), id)
			wantKind(t, err, apierr.NotFound)
		})
	}
}

func TestSetRedirectURIs(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	conf, _ := create(t, svc, apikey.CreateRequest{Name: "web", RedirectURIs: []string{"https://web.example/cb"}})
	pub, _ := create(t, svc, apikey.CreateRequest{Name: "native", Public: true})

	stored := func(t *testing.T, id int64) apikey.Key {
		t.Helper()
		k, err := svc.Check(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	tests := []struct {
		name                 string
		id                   int64
		uris                 []string
		postLogout           bool
		want                 apierr.Kind // "" for success
		wantRedirect, wantPL []string    // stored afterwards
	}{
		{"replace", conf.ID, []string{"https://web.example/v2/cb", " http://127.0.0.1:8080/cb"}, false, "",
			[]string{"https://web.example/v2/cb", "http://127.0.0.1:8080/cb"}, []string{}},
		{"post-logout list, redirect list kept", conf.ID, []string{"https://web.example/bye"}, true, "",
			[]string{"https://web.example/v2/cb", "http://127.0.0.1:8080/cb"}, []string{"https://web.example/bye"}},
		{"bad URI refused, lists unchanged", conf.ID, []string{"https://web.example/ok", "http://web.example/cb"}, false, apierr.InvalidRequest,
			[]string{"https://web.example/v2/cb", "http://127.0.0.1:8080/cb"}, []string{"https://web.example/bye"}},
		{"private-use scheme refused for a confidential client", conf.ID, []string{"com.example.web:/cb"}, true, apierr.InvalidRequest,
			[]string{"https://web.example/v2/cb", "http://127.0.0.1:8080/cb"}, []string{"https://web.example/bye"}},
		{"clear redirect list", conf.ID, nil, false, "", []string{}, []string{"https://web.example/bye"}},
		{"clear with a blank entry", conf.ID, []string{" "}, true, "", []string{}, []string{}},
		{"private-use scheme for a public client", pub.ID, []string{"com.example.app:/cb"}, false, "", []string{"com.example.app:/cb"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := svc.SetRedirectURIs(ctx, tt.id, tt.uris, tt.postLogout)
			if tt.want != "" {
				wantKind(t, err, tt.want)
			} else if err != nil {
				t.Fatal(err)
			} else if !slices.Equal(got.RedirectURIs, tt.wantRedirect) || !slices.Equal(got.PostLogoutRedirectURIs, tt.wantPL) {
				t.Fatalf("returned redirect %q post-logout %q", got.RedirectURIs, got.PostLogoutRedirectURIs)
			}
			k := stored(t, tt.id)
			if !slices.Equal(k.RedirectURIs, tt.wantRedirect) || !slices.Equal(k.PostLogoutRedirectURIs, tt.wantPL) {
				t.Fatalf("stored redirect %q post-logout %q, want %q and %q", k.RedirectURIs, k.PostLogoutRedirectURIs, tt.wantRedirect, tt.wantPL)
			}
		})
	}
	t.Run("unknown id", func(t *testing.T) {
		for _, id := range []int64{pub.ID + 1000, 0, -1} {
			_, err := svc.SetRedirectURIs(ctx, id, []string{"https://a.example/cb"}, false)
			wantKind(t, err, apierr.NotFound)
			var e *apierr.Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, "API密钥不存在") {
				t.Errorf("error %v does not say the key does not exist", err)
			}
		}
	})
	t.Run("revoked key may be changed and stays revoked", func(t *testing.T) {
		if _, err := svc.Revoke(ctx, conf.ID); err != nil {
			t.Fatal(err)
		}
		got, err := svc.SetRedirectURIs(ctx, conf.ID, []string{"https://web.example/cb"}, false)
		if err != nil || !got.Revoked() {
			t.Fatalf("SetRedirectURIs on a revoked key = %+v, %v", got, err)
		}
	})
}
