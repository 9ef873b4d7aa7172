package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/moreline/moreid/platform/audit"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
)

// TestAuditTrail: creating, disabling and enabling users, done or refused,
// is recorded with the user concerned, the admin caller's IP and, on
// failure, the error kind; the password never is. Calls on the internal
// listener record nothing here (auth records sign-ins and profile updates).
func TestAuditTrail(t *testing.T) {
	s := newSuite(t)
	const ip = "127.0.0.1"
	steps := []struct {
		name string
		call func(context.Context) error
		want []audit.Event
	}{
		{"create", func(c context.Context) error {
			_, err := s.adminUsers.CreateUser(c, alice)
			return err
		}, []audit.Event{{Event: audit.UserCreated, Outcome: audit.Success, UserID: "alice", ClientIP: ip}}},
		{"create again", func(c context.Context) error {
			_, err := s.adminUsers.CreateUser(c, alice)
			return err
		}, []audit.Event{{Event: audit.UserCreated, Outcome: audit.Failure, UserID: "alice", ClientIP: ip, Detail: "conflict"}}},
		{"create invalid", func(c context.Context) error {
			_, err := s.adminUsers.CreateUser(c, &userv1.CreateUserRequest{UserId: "bob", Username: "Bob", Email: "no-at-sign", Password: "bob-password"})
			return err
		}, []audit.Event{{Event: audit.UserCreated, Outcome: audit.Failure, UserID: "bob", ClientIP: ip, Detail: "invalid_request"}}},
		{"disable", func(c context.Context) error {
			_, err := s.adminUsers.SetUserDisabled(c, &userv1.SetUserDisabledRequest{UserId: "alice", Disabled: true})
			return err
		}, []audit.Event{{Event: audit.UserDisabled, Outcome: audit.Success, UserID: "alice", ClientIP: ip}}},
		{"disable unknown", func(c context.Context) error {
			_, err := s.adminUsers.SetUserDisabled(c, &userv1.SetUserDisabledRequest{UserId: "nobody", Disabled: true})
			return err
		}, []audit.Event{{Event: audit.UserDisabled, Outcome: audit.Failure, UserID: "nobody", ClientIP: ip, Detail: "not_found"}}},
		{"enable", func(c context.Context) error {
			_, err := s.adminUsers.SetUserDisabled(c, &userv1.SetUserDisabledRequest{UserId: "alice"})
			return err
		}, []audit.Event{{Event: audit.UserEnabled, Outcome: audit.Success, UserID: "alice", ClientIP: ip}}},
		{"internal calls", func(c context.Context) error {
			_, err := s.users.VerifyPassword(c, &userv1.VerifyPasswordRequest{UserId: "alice", Password: alice.Password})
			if err != nil {
				return err
			}
			_, err = s.users.UpdateProfile(c, &userv1.UpdateProfileRequest{UserId: "alice", Bio: ptr("hi")})
			return err
		}, nil},
	}
	var want []audit.Event
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			_ = st.call(callCtx(t)) // the outcome is what the trail must show
			want = append(want, st.want...)
			if got := s.trail.Events(); !slices.Equal(got, want) {
				t.Errorf("recorded\n %+v\nwant\n %+v", got, want)
			}
		})
	}
	for _, e := range s.trail.Events() {
		if strings.Contains(e.Event+e.Outcome+e.UserID+e.ClientIP+e.Detail, "password") {
			t.Errorf("event %+v carries a password", e)
		}
	}
}
