package gateway

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/proto/wire"
)

// TestPageUnsendableInput covers what FuzzConfirmationPage found: values
// that protobuf (strings must be UTF-8) or gRPC metadata (printable ASCII)
// cannot carry made the backend call fail inside the gRPC client, which the
// page answered as an internal error (500). They are the client's mistake:
// 400, and the backend is never called.
func TestPageUnsendableInput(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())
	csrf := wire.CSRFToken(aliceSession)
	tests := []struct {
		name   string
		target string     // GET when form is nil
		form   url.Values // POST
	}{
		{name: "uca not UTF-8 in the query", target: "?uca=%F9"},
		{name: "uca not UTF-8 in the form", form: url.Values{"action": {"deny"}, "uca": {"uca_\xf9"}, "csrf_token": {csrf}}},
		{name: "user_id not UTF-8", form: url.Values{"action": {"login"}, "uca": {"uca_input"}, "csrf_token": {csrf}, "user_id": {"\xffalice"}, "password": {alicePass}}},
		{name: "password not UTF-8", form: url.Values{"action": {"login"}, "uca": {"uca_input"}, "csrf_token": {csrf}, "user_id": {"alice"}, "password": {"pw\xc3"}}},
		{name: "uca and user_id each half a character", form: url.Values{"action": {"login"}, "uca": {"uca_\xe4"}, "csrf_token": {csrf}, "user_id": {"\xbb\xa4"}, "password": {alicePass}}},
		{name: "csrf_token with a control byte", form: url.Values{"action": {"confirm"}, "uca": {"uca_input"}, "csrf_token": {"\x01" + csrf}}},
		{name: "csrf_token not ASCII", form: url.Values{"action": {"deny"}, "uca": {"uca_input"}, "csrf_token": {"令牌"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := newBrowser(t, srv)
			// The sign-in form's double-submit cookie, so that a login gets
			// past the CSRF check when its token matches.
			br.c.Jar.SetCookies(br.pageURL(), []*http.Cookie{{Name: "moreid_csrf", Value: csrf, Path: page.Path}})
			br.c.Jar.SetCookies(br.base, []*http.Cookie{{Name: wire.SessionCookie, Value: aliceSession, Path: "/"}})
			b.confirm.record(t.Context(), "none")

			var p htmlPage
			if tt.form == nil {
				req, err := http.NewRequest("GET", srv.URL+page.Path+tt.target, nil)
				if err != nil {
					t.Fatal(err)
				}
				p = br.do(req)
			} else {
				p = br.post(tt.form, nil)
			}
			assertPageBasics(t, p)
			if p.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", p.status)
			}
			if got, want := text(p.mustID(t, "error-message")), apierr.DefaultMessage(apierr.InvalidRequest); got != want {
				t.Fatalf("message %q, want %q", got, want)
			}
			if m, _ := b.confirm.last(); m != "none" {
				t.Fatalf("the backend was called (%s)", m)
			}
		})
	}
}
