package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/moreline/moreid/platform/audit"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
)

// TestAuditTrail: every admin change, done or refused, is recorded with the
// key concerned, the admin caller's IP and, on failure, the error kind; the
// key itself never is. Validating a key records nothing (auth records the
// sign-ins it is part of).
func TestAuditTrail(t *testing.T) {
	s := startWithDB(t)
	admin := apikeyv1.NewAPIKeyAdminServiceClient(s.admin)

	created, err := admin.CreateAPIKey(ctx(t), &apikeyv1.CreateAPIKeyRequest{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetApiKey().GetId()
	key := created.GetKey()

	steps := []struct {
		name string
		call func(context.Context) error
		want audit.Event
	}{
		{"create refused", func(c context.Context) error {
			_, err := admin.CreateAPIKey(c, &apikeyv1.CreateAPIKeyRequest{Name: " "})
			return err
		}, audit.Event{Event: audit.KeyCreated, Outcome: audit.Failure, ClientIP: "127.0.0.1", Detail: "invalid_request"}},
		{"whitelist set", func(c context.Context) error {
			_, err := admin.SetWhitelist(c, &apikeyv1.SetWhitelistRequest{Id: id, Whitelist: []string{"10.0.0.0/8"}})
			return err
		}, audit.Event{Event: audit.KeyWhitelist, Outcome: audit.Success, APIKeyID: id, ClientIP: "127.0.0.1"}},
		{"whitelist refused", func(c context.Context) error {
			_, err := admin.SetWhitelist(c, &apikeyv1.SetWhitelistRequest{Id: id, Whitelist: []string{"not-an-ip"}})
			return err
		}, audit.Event{Event: audit.KeyWhitelist, Outcome: audit.Failure, APIKeyID: id, ClientIP: "127.0.0.1", Detail: "invalid_request"}},
		{"validate", func(c context.Context) error {
			_, err := apikeyv1.NewAPIKeyServiceClient(s.internal).ValidateKey(c, &apikeyv1.ValidateKeyRequest{Key: key, ClientIp: "10.1.1.1"})
			return err
		}, audit.Event{}},
		{"revoke", func(c context.Context) error {
			_, err := admin.RevokeAPIKey(c, &apikeyv1.RevokeAPIKeyRequest{Id: id})
			return err
		}, audit.Event{Event: audit.KeyRevoked, Outcome: audit.Success, APIKeyID: id, ClientIP: "127.0.0.1"}},
		{"revoke unknown", func(c context.Context) error {
			_, err := admin.RevokeAPIKey(c, &apikeyv1.RevokeAPIKeyRequest{Id: id + 100})
			return err
		}, audit.Event{Event: audit.KeyRevoked, Outcome: audit.Failure, APIKeyID: id + 100, ClientIP: "127.0.0.1", Detail: "not_found"}},
	}

	want := []audit.Event{{Event: audit.KeyCreated, Outcome: audit.Success, APIKeyID: id, ClientIP: "127.0.0.1"}}
	if got := s.trail.Events(); !slices.Equal(got, want) {
		t.Fatalf("after create: %+v, want %+v", got, want)
	}
	for _, st := range steps {
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
	for _, e := range s.trail.Events() {
		if strings.Contains(e.Event+e.Outcome+e.UserID+e.ClientIP+e.Detail, key[3:11]) {
			t.Errorf("event %+v carries part of the key", e)
		}
	}
}
