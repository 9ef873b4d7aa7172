package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// auditRow is one element of `moreidctl audit list --json`.
type auditRow struct {
	Time      string `json:"time"`
	Event     string `json:"event"`
	Outcome   string `json:"outcome"`
	UserID    string `json:"user_id"`
	APIKeyID  *int64 `json:"api_key_id"`
	ClientIP  string `json:"client_ip"`
	Component string `json:"component"`
	Detail    string `json:"detail"`
}

// TestAuditTrailThroughTheCLI runs the flows against the real suite and
// reads the trail back as an operator would.
func TestAuditTrailThroughTheCLI(t *testing.T) {
	f := startFlowSuite(t)
	state, code := f.app.login(t, "alice", alicePassword)
	tok := f.app.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	wrong := f.app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": "not-her-password", "state": f.app.authorize(t)})
	expectError(t, wrong, 401, "invalid_credentials")

	want := []struct{ event, outcome, component string }{
		{"login", "success", "auth"},
		{"login", "failure", "auth"},
		{"code.issued", "success", "auth"},
		{"token.issued", "success", "auth"},
	}
	var rows []auditRow
	var raw string
	// The trail is written in the background (batches every 250 ms).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		raw = f.MustCtl(t, "", "audit", "list", "--user", "alice", "--since", "1h", "--json")
		rows = nil
		if err := json.Unmarshal([]byte(raw), &rows); err != nil {
			t.Fatalf("audit list --json: %v\n%s", err, raw)
		}
		if hasAll(rows, want) || time.Now().After(deadline) {
			break
		}
	}
	if !hasAll(rows, want) {
		t.Fatalf("alice's trail lacks some of %v:\n%s", want, raw)
	}
	for _, r := range rows {
		if r.UserID != "alice" {
			t.Errorf("--user alice listed %+v", r)
		}
		if r.Event == "login" && (r.ClientIP != "127.0.0.1" || r.APIKeyID == nil) {
			t.Errorf("login event without client IP or key: %+v", r)
		}
		if r.Event == "login" && r.Outcome == "failure" && r.Detail != "invalid_credentials" {
			t.Errorf("failed login detail %q", r.Detail)
		}
	}

	// Key administration by the operator is on the trail too.
	all := f.MustCtl(t, "", "audit", "list", "--json")
	for _, event := range []string{"apikey.created", "apikey.revoked", "user.created"} {
		if !strings.Contains(all, `"event": "`+event+`"`) && !strings.Contains(all, `"event":"`+event+`"`) {
			t.Errorf("the trail lacks %s:\n%s", event, all)
		}
	}
	for name, secret := range map[string]string{
		"password": alicePassword, "wrong password": "not-her-password", "api key": f.app.key,
		"state": state, "code": code, "access token": tok.str("access_token"),
	} {
		if strings.Contains(raw+all, secret) {
			t.Errorf("the audit trail shows the %s", name)
		}
	}
}

func hasAll(rows []auditRow, want []struct{ event, outcome, component string }) bool {
	for _, w := range want {
		found := false
		for _, r := range rows {
			if r.Event == w.event && r.Outcome == w.outcome && r.Component == w.component {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
