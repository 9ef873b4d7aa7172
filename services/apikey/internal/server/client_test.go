package server_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	"github.com/moreline/moreid/services/apikey/internal/server"
)

var clientIDFormat = regexp.MustCompile(`^mlc_[0-9a-f]{32}$`)

// TestClients: keys as OAuth clients over the wire. Every record returned
// carries the client fields; a public client gets no key and is refused by
// ValidateKey; GetClient answers only for active keys.
func TestClients(t *testing.T) {
	s := startWithDB(t)
	admin := apikeyv1.NewAPIKeyAdminServiceClient(s.admin)
	keys := apikeyv1.NewAPIKeyServiceClient(s.internal)

	conf, err := admin.CreateAPIKey(ctx(t), &apikeyv1.CreateAPIKeyRequest{
		Name:                   "web",
		RedirectUris:           []string{"https://web.example/cb"},
		PostLogoutRedirectUris: []string{"https://web.example/bye"},
	})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := admin.CreateAPIKey(ctx(t), &apikeyv1.CreateAPIKeyRequest{
		Name: "native", Public: true, RedirectUris: []string{"com.example.app:/cb", "http://127.0.0.1/cb"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, p := conf.GetApiKey(), pub.GetApiKey()
	if !keyFormat.MatchString(conf.GetKey()) || !clientIDFormat.MatchString(c.GetClientId()) || c.GetPublic() ||
		!slices.Equal(c.GetRedirectUris(), []string{"https://web.example/cb"}) ||
		!slices.Equal(c.GetPostLogoutRedirectUris(), []string{"https://web.example/bye"}) {
		t.Fatalf("confidential client created as %v, key %q", c, conf.GetKey())
	}
	if pub.GetKey() != "" || !clientIDFormat.MatchString(p.GetClientId()) || !p.GetPublic() || p.GetClientId() == c.GetClientId() ||
		!slices.Equal(p.GetRedirectUris(), []string{"com.example.app:/cb", "http://127.0.0.1/cb"}) {
		t.Fatalf("public client created as %v, key %q", p, pub.GetKey())
	}

	same := func(t *testing.T, what string, got, want *apikeyv1.APIKey) {
		t.Helper()
		if got.GetId() != want.GetId() || got.GetClientId() != want.GetClientId() || got.GetPublic() != want.GetPublic() ||
			!slices.Equal(got.GetRedirectUris(), want.GetRedirectUris()) ||
			!slices.Equal(got.GetPostLogoutRedirectUris(), want.GetPostLogoutRedirectUris()) || got.GetName() != want.GetName() {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}

	t.Run("every record carries the client fields", func(t *testing.T) {
		v, err := keys.ValidateKey(ctx(t), &apikeyv1.ValidateKeyRequest{Key: conf.GetKey(), ClientIp: "192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		same(t, "ValidateKey", v.GetApiKey(), c)
		ck, err := keys.CheckKey(ctx(t), &apikeyv1.CheckKeyRequest{Id: p.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		same(t, "CheckKey", ck.GetApiKey(), p)
		list, err := admin.ListAPIKeys(ctx(t), &apikeyv1.ListAPIKeysRequest{})
		if err != nil || len(list.GetApiKeys()) != 2 {
			t.Fatalf("list = %v, %v", list, err)
		}
		same(t, "list[0]", list.GetApiKeys()[0], c)
		same(t, "list[1]", list.GetApiKeys()[1], p)
	})

	t.Run("GetClient", func(t *testing.T) {
		for _, want := range []*apikeyv1.APIKey{c, p} {
			got, err := keys.GetClient(ctx(t), &apikeyv1.GetClientRequest{ClientId: want.GetClientId()})
			if err != nil {
				t.Fatal(err)
			}
			same(t, "GetClient", got.GetApiKey(), want)
		}
	})

	t.Run("SetRedirectURIs", func(t *testing.T) {
		r, err := admin.SetRedirectURIs(ctx(t), &apikeyv1.SetRedirectURIsRequest{Id: c.GetId(), Uris: []string{"https://web.example/v2/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.GetApiKey().GetRedirectUris(), []string{"https://web.example/v2/cb"}) ||
			!slices.Equal(r.GetApiKey().GetPostLogoutRedirectUris(), []string{"https://web.example/bye"}) {
			t.Fatalf("after setting redirect URIs: %v", r.GetApiKey())
		}
		r, err = admin.SetRedirectURIs(ctx(t), &apikeyv1.SetRedirectURIsRequest{Id: c.GetId(), PostLogout: true})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.GetApiKey().GetRedirectUris(), []string{"https://web.example/v2/cb"}) || len(r.GetApiKey().GetPostLogoutRedirectUris()) != 0 {
			t.Fatalf("after clearing post-logout URIs: %v", r.GetApiKey())
		}
		got, err := keys.GetClient(ctx(t), &apikeyv1.GetClientRequest{ClientId: c.GetClientId()})
		if err != nil {
			t.Fatal(err)
		}
		same(t, "GetClient after SetRedirectURIs", got.GetApiKey(), r.GetApiKey())
	})

	t.Run("public client refused by ValidateKey", func(t *testing.T) {
		// Its key was never shown; an empty one is what a caller holding
		// only the create response could send.
		_, err := keys.ValidateKey(ctx(t), &apikeyv1.ValidateKeyRequest{Key: pub.GetKey(), ClientIp: "192.0.2.1"})
		wantStatus(t, err, codes.Unauthenticated, apierr.InvalidAPIKey)
	})

	t.Run("GetClient of a revoked key", func(t *testing.T) {
		if _, err := admin.RevokeAPIKey(ctx(t), &apikeyv1.RevokeAPIKeyRequest{Id: p.GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err := keys.GetClient(ctx(t), &apikeyv1.GetClientRequest{ClientId: p.GetClientId()})
		wantStatus(t, err, codes.NotFound, apierr.NotFound)
	})
	for _, id := range []string{"mlc_" + strings.Repeat("0", 32), "", "mlc_x", c.GetClientId() + "'--", strings.ToUpper(c.GetClientId())} {
		t.Run("GetClient of unknown or malformed "+id, func(t *testing.T) {
			_, err := keys.GetClient(ctx(t), &apikeyv1.GetClientRequest{ClientId: id})
			if d := wantStatus(t, err, codes.NotFound, apierr.NotFound); !strings.Contains(d.Message, "客户端") {
				t.Errorf("message %q does not name the client", d.Message)
			}
		})
	}
}

func TestClientAdminErrors(t *testing.T) {
	s := startWithDB(t)
	admin := apikeyv1.NewAPIKeyAdminServiceClient(s.admin)
	created, err := admin.CreateAPIKey(ctx(t), &apikeyv1.CreateAPIKeyRequest{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetApiKey().GetId()
	for _, tc := range []struct {
		name      string
		call      func(context.Context) error
		code      codes.Code
		kind      apierr.Kind
		inMessage string
	}{
		{"create with http redirect URI", func(c context.Context) error {
			_, err := admin.CreateAPIKey(c, &apikeyv1.CreateAPIKeyRequest{Name: "a", RedirectUris: []string{"http://app.example/cb"}})
			return err
		}, codes.InvalidArgument, apierr.InvalidRequest, "http://app.example/cb"},
		{"create with fragment in post-logout URI", func(c context.Context) error {
			_, err := admin.CreateAPIKey(c, &apikeyv1.CreateAPIKeyRequest{Name: "a", PostLogoutRedirectUris: []string{"https://app.example/#x"}})
			return err
		}, codes.InvalidArgument, apierr.InvalidRequest, "https://app.example/#x"},
		{"set redirect URIs of unknown", func(c context.Context) error {
			_, err := admin.SetRedirectURIs(c, &apikeyv1.SetRedirectURIsRequest{Id: id + 100, Uris: []string{"https://a.example/cb"}})
			return err
		}, codes.NotFound, apierr.NotFound, "API密钥不存在"},
		{"set private-use scheme on a confidential client", func(c context.Context) error {
			_, err := admin.SetRedirectURIs(c, &apikeyv1.SetRedirectURIsRequest{Id: id, Uris: []string{"com.example.app:/cb"}})
			return err
		}, codes.InvalidArgument, apierr.InvalidRequest, "com.example.app:/cb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := wantStatus(t, tc.call(ctx(t)), tc.code, tc.kind)
			if !strings.Contains(d.Message, tc.inMessage) {
				t.Errorf("message %q lacks %q", d.Message, tc.inMessage)
			}
		})
	}
}

// TestClientRPCsOnTheirListeners: SetRedirectURIs is an admin RPC, absent
// from the internal listener; GetClient is auth's, absent from the admin
// one.
func TestClientRPCsOnTheirListeners(t *testing.T) {
	s := startWithDB(t)
	_, err := apikeyv1.NewAPIKeyAdminServiceClient(s.internal).SetRedirectURIs(ctx(t), &apikeyv1.SetRedirectURIsRequest{Id: 1})
	if code := status.Code(err); code != codes.Unimplemented {
		t.Errorf("SetRedirectURIs on the internal listener: %s, want Unimplemented", code)
	}
	_, err = apikeyv1.NewAPIKeyServiceClient(s.admin).GetClient(ctx(t), &apikeyv1.GetClientRequest{ClientId: "mlc_" + strings.Repeat("0", 32)})
	if code := status.Code(err); code != codes.Unimplemented {
		t.Errorf("GetClient on the admin listener: %s, want Unimplemented", code)
	}
}

// TestRedirectURIsAudit: SetRedirectURIs is recorded like SetWhitelist, with
// which list changed; GetClient records nothing (auth records the flows).
func TestRedirectURIsAudit(t *testing.T) {
	s := startWithDB(t)
	admin := apikeyv1.NewAPIKeyAdminServiceClient(s.admin)
	created, err := admin.CreateAPIKey(ctx(t), &apikeyv1.CreateAPIKeyRequest{Name: "app", Public: true})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetApiKey().GetId()
	want := []audit.Event{{Event: audit.KeyCreated, Outcome: audit.Success, APIKeyID: id, ClientIP: "127.0.0.1"}}
	for _, st := range []struct {
		name string
		call func(context.Context) error
		want audit.Event
	}{
		{"redirect URIs set", func(c context.Context) error {
			_, err := admin.SetRedirectURIs(c, &apikeyv1.SetRedirectURIsRequest{Id: id, Uris: []string{"com.example.app:/cb"}})
			return err
		}, audit.Event{Event: server.EventRedirectURIs, Outcome: audit.Success, APIKeyID: id, ClientIP: "127.0.0.1", Detail: "redirect"}},
		{"post-logout URIs set", func(c context.Context) error {
			_, err := admin.SetRedirectURIs(c, &apikeyv1.SetRedirectURIsRequest{Id: id, PostLogout: true})
			return err
		}, audit.Event{Event: server.EventRedirectURIs, Outcome: audit.Success, APIKeyID: id, ClientIP: "127.0.0.1", Detail: "post_logout"}},
		{"refused", func(c context.Context) error {
			_, err := admin.SetRedirectURIs(c, &apikeyv1.SetRedirectURIsRequest{Id: id, Uris: []string{"ftp://x"}})
			return err
		}, audit.Event{Event: server.EventRedirectURIs, Outcome: audit.Failure, APIKeyID: id, ClientIP: "127.0.0.1", Detail: "invalid_request"}},
		{"unknown key", func(c context.Context) error {
			_, err := admin.SetRedirectURIs(c, &apikeyv1.SetRedirectURIsRequest{Id: id + 7})
			return err
		}, audit.Event{Event: server.EventRedirectURIs, Outcome: audit.Failure, APIKeyID: id + 7, ClientIP: "127.0.0.1", Detail: "not_found"}},
		{"GetClient", func(c context.Context) error {
			_, err := apikeyv1.NewAPIKeyServiceClient(s.internal).GetClient(c, &apikeyv1.GetClientRequest{ClientId: created.GetApiKey().GetClientId()})
			return err
		}, audit.Event{}},
	} {
		t.Run(st.name, func(t *testing.T) {
			_ = st.call(ctx(t)) // the outcome is what the trail must show
			if st.want != (audit.Event{}) {
				want = append(want, st.want)
			}
			if got := s.trail.Events(); !slices.Equal(got, want) {
				t.Errorf("recorded\n %+v\nwant\n %+v", got, want)
			}
		})
	}
}
