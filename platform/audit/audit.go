// Package audit records security events in Moreid's append-only audit trail
// in Postgres. Services call Recorder.Record on the request path; the
// Writer queues events and inserts them in batches in the background, so a
// slow or unreachable Postgres never slows down or fails a sign-in.
package audit

import "context"

// Outcomes of an event.
const (
	Success   = "success"
	Failure   = "failure"
	Throttled = "throttled"
	Denied    = "denied"
)

// Event names. Keep them stable: operators search for them.
const (
	Login           = "login"             // password login (REST /login or gRPC)
	LoginSafe       = "login_safe"        // login code redeemed
	SignIn          = "signin"            // sign-in on the confirmation page
	LoginCodeIssued = "login_code.issued" // the user confirmed on the page
	ConfirmDenied   = "confirmation.denied"
	CodeIssued      = "code.issued"
	TokenIssued     = "token.issued"
	TokenRevoked    = "token.revoked"
	ProfileUpdated  = "user.updated"
	UserCreated     = "user.created"
	UserDisabled    = "user.disabled"
	UserEnabled     = "user.enabled"
	KeyCreated      = "apikey.created"
	KeyRevoked      = "apikey.revoked"
	KeyWhitelist    = "apikey.whitelist_changed"
)

// Event is one security event. It must never hold a secret: no password,
// key, code, token, session or cookie, not even a prefix of one.
type Event struct {
	Event    string
	Outcome  string
	UserID   string
	APIKeyID int64
	ClientIP string
	// Detail is a short reason: an error kind such as "invalid_credentials",
	// or which flow ("password", "safe").
	Detail string
}

// Recorder records events. Record never blocks for long and never fails
// the caller: the trail is written in the background.
type Recorder interface {
	Record(ctx context.Context, e Event)
}

// Discard drops every event; for tests of code that records events.
var Discard Recorder = discard{}

type discard struct{}

func (discard) Record(context.Context, Event) {}
