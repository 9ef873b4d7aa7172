package server_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/audit/audittest"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

func TestAuditEvents(t *testing.T) {
	rec := &audittest.Recorder{}
	e := newEnv(t, options{events: rec, limits: oauth.Limits{PerUser: 2, PerIP: 50, Window: time.Minute}})
	const ip = "198.51.100.7"
	// secrets collects every secret handed out, to check no event holds one.
	var secrets []string
	keep := func(s ...string) { secrets = append(secrets, s...) }
	ev := func(name, outcome, userID string, keyID int64, detail string) audit.Event {
		return audit.Event{Event: name, Outcome: outcome, UserID: userID, APIKeyID: keyID, ClientIP: ip, Detail: detail}
	}
	// Authorize and CreateUCA record nothing; a case that needs more setup
	// drops its events with rec.Take() before the calls under test.
	tests := []struct {
		name string
		run  func(t *testing.T)
		want []audit.Event
	}{
		{"password flow", func(t *testing.T) {
			state := e.authorize(t, keyA)
			l, err := e.auth.Login(from(t, keyA, ip), &authv1.LoginRequest{UserId: aliceID, Password: alicePass, State: state})
			if err != nil {
				t.Fatal(err)
			}
			tk, err := e.auth.Token(from(t, keyA, ip), &authv1.TokenRequest{Code: l.GetCode(), State: state})
			if err != nil {
				t.Fatal(err)
			}
			keep(state, l.GetCode(), tk.GetAccessToken())
		}, []audit.Event{
			ev(audit.CodeIssued, audit.Success, aliceID, 1, "password"),
			ev(audit.Login, audit.Success, aliceID, 1, "password"),
			ev(audit.TokenIssued, audit.Success, aliceID, 1, ""),
		}},
		{"failed login", func(t *testing.T) {
			err := e.loginFrom(t, ip, bobID, "wrong password", e.authorize(t, keyA))
			wantErr(t, err, apierr.InvalidCredentials)
		}, []audit.Event{
			ev(audit.Login, audit.Failure, bobID, 1, "invalid_credentials"),
		}},
		{"throttled login", func(t *testing.T) {
			// bob failed once above; the limit is 2.
			wantErr(t, e.loginFrom(t, ip, bobID, "wrong again", e.authorize(t, keyA)), apierr.InvalidCredentials)
			wantErr(t, e.loginFrom(t, ip, bobID, bobPass, e.authorize(t, keyA)), apierr.RateLimited)
		}, []audit.Event{
			ev(audit.Login, audit.Failure, bobID, 1, "invalid_credentials"),
			ev(audit.Login, audit.Throttled, bobID, 1, "user"),
		}},
		{"replayed code", func(t *testing.T) {
			state := e.authorize(t, keyB)
			code := e.login(t, keyB, state)
			keep(state, code, e.token(t, keyB, code, state))
			rec.Take()
			_, err := e.auth.Token(from(t, keyB, ip), &authv1.TokenRequest{Code: code, State: state})
			wantErr(t, err, apierr.InvalidCode)
		}, []audit.Event{
			ev(audit.TokenRevoked, audit.Success, aliceID, 2, "code_replay"),
			ev(audit.TokenIssued, audit.Failure, "", 2, "invalid_code"),
		}},
		{"safe flow", func(t *testing.T) {
			state := e.authorize(t, keyA)
			uca := e.createUCA(t, keyA, state)
			s, err := e.conf.SignIn(from(t, "", ip), &authv1.SignInRequest{Uca: uca, UserId: aliceID, Password: alicePass})
			if err != nil {
				t.Fatal(err)
			}
			b := as(t, "", wire.ClientIP, ip, wire.Session, s.GetSession(), wire.CSRF, s.GetCsrfToken())
			g, err := e.conf.GenerateLoginCode(b, &authv1.GenerateLoginCodeRequest{Uca: uca})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.auth.LoginSafe(from(t, keyA, ip), &authv1.LoginSafeRequest{State: state, LoginCode: "0000000000"})
			wantErr(t, err, apierr.InvalidCode)
			r, err := e.auth.LoginSafe(from(t, keyA, ip), &authv1.LoginSafeRequest{State: state, LoginCode: g.GetLoginCode()})
			if err != nil {
				t.Fatal(err)
			}
			denied := e.createUCA(t, keyB, e.authorize(t, keyB))
			if _, err := e.conf.DenyConfirmation(b, &authv1.DenyConfirmationRequest{Uca: denied}); err != nil {
				t.Fatal(err)
			}
			keep(state, uca, denied, s.GetSession(), s.GetCsrfToken(), g.GetLoginCode(), r.GetCode())
		}, []audit.Event{
			ev(audit.SignIn, audit.Success, aliceID, 1, "password"),
			ev(audit.LoginCodeIssued, audit.Success, aliceID, 1, ""),
			ev(audit.LoginSafe, audit.Failure, "", 1, "invalid_code"),
			ev(audit.CodeIssued, audit.Success, aliceID, 1, "safe"),
			ev(audit.LoginSafe, audit.Success, aliceID, 1, "safe"),
			ev(audit.ConfirmDenied, audit.Success, aliceID, 2, ""),
		}},
		{"profile update and token revocations", func(t *testing.T) {
			tok := e.accessToken(t, keyB, aliceID, alicePass)
			other := e.accessToken(t, keyA, aliceID, alicePass)
			keep(tok, other)
			rec.Take()
			ctx := as(t, keyB, wire.ClientIP, ip, wire.Authorization, "Bearer "+tok)
			if _, err := e.auth.UpdateUser(ctx, &authv1.UpdateUserRequest{UserId: aliceID, State: e.authorize(t, keyB), Bio: ptr("new bio")}); err != nil {
				t.Fatal(err)
			}
			_, err := e.auth.UpdateUser(ctx, &authv1.UpdateUserRequest{UserId: bobID, State: e.authorize(t, keyB), Bio: ptr("not mine")})
			wantErr(t, err, apierr.Forbidden)
			if _, err := e.tokens.RevokeToken(from(t, keyB, ip), &authv1.RevokeTokenRequest{Token: tok}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.admin.RevokeUserTokens(as(t, ""), &authv1.RevokeUserTokensRequest{UserId: aliceID}); err != nil {
				t.Fatal(err)
			}
		}, []audit.Event{
			ev(audit.ProfileUpdated, audit.Success, aliceID, 2, ""),
			ev(audit.ProfileUpdated, audit.Failure, bobID, 2, "forbidden"),
			ev(audit.TokenRevoked, audit.Success, aliceID, 2, "revoke_token"),
			{Event: audit.TokenRevoked, Outcome: audit.Success, UserID: aliceID, ClientIP: "127.0.0.1", Detail: "admin"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.Take()
			tt.run(t)
			got := rec.Take()
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("events:\n%s\nwant:\n%s", dump(got), dump(tt.want))
			}
			text := dump(got)
			for _, s := range append(secrets, alicePass, bobPass, keyA, keyB) {
				if strings.Contains(text, s) {
					t.Errorf("an event holds a secret")
				}
			}
		})
	}
}

func dump(events []audit.Event) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("  ")
		b.WriteString(strings.Join([]string{e.Event, e.Outcome, e.UserID, strconv.FormatInt(e.APIKeyID, 10), e.ClientIP, e.Detail}, " | "))
		b.WriteString("\n")
	}
	return b.String()
}
