package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/moreline/moreid/proto/gen/go/moreid/audit/v1"
)

// seedAudit gives the fake trail four events, newest first.
func seedAudit(s *suite) {
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(baseTime.Add(d)) }
	s.audit.events = []*auditv1.AuditEvent{
		{Id: 4, Time: at(3*time.Hour + 123456*time.Microsecond), Event: "login", Outcome: "throttled", UserId: "alice", ApiKeyId: 3,
			ClientIp: "2001:db8::5", Component: "auth", RequestId: "r4", Detail: "rate_limited",
			Count: 42, LastTime: at(3*time.Hour + 59*time.Second)},
		{Id: 3, Time: at(2 * time.Hour), Event: "login", Outcome: "failure", UserId: "evil\x1b[31m\tuser", ApiKeyId: 3,
			ClientIp: "192.0.2.1", Component: "auth", RequestId: "r3", Detail: "invalid_credentials", Count: 1},
		{Id: 2, Time: at(time.Hour), Event: "token.issued", Outcome: "success", UserId: "alice", ApiKeyId: 3,
			ClientIp: "192.0.2.1", Component: "auth", RequestId: "r2"},
		{Id: 1, Time: at(0), Event: "apikey.revoked", Outcome: "success", ApiKeyId: 7,
			ClientIp: "10.0.0.1", Component: "apikey", RequestId: "r1"},
	}
}

func TestAuditListTable(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStdout string
		wantStderr string
	}{
		{
			name: "everything, newest first",
			args: []string{"audit", "list"},
			wantStdout: "" +
				"TIME                  EVENT           OUTCOME    COUNT  USER                  KEY ID  CLIENT IP    DETAIL\n" +
				"2026-03-01T11:00:00Z  login           throttled  42     alice                 3       2001:db8::5  rate_limited\n" +
				"2026-03-01T10:00:00Z  login           failure    1      \"evil\\x1b[31m\\tuser\"  3       192.0.2.1    invalid_credentials\n" +
				"2026-03-01T09:00:00Z  token.issued    success    1      alice                 3       192.0.2.1    -\n" +
				"2026-03-01T08:00:00Z  apikey.revoked  success    1      -                     7       10.0.0.1     -\n",
		},
		{
			name: "one user",
			args: []string{"audit", "list", "--user", "alice"},
			wantStdout: "" +
				"TIME                  EVENT         OUTCOME    COUNT  USER   KEY ID  CLIENT IP    DETAIL\n" +
				"2026-03-01T11:00:00Z  login         throttled  42     alice  3       2001:db8::5  rate_limited\n" +
				"2026-03-01T09:00:00Z  token.issued  success    1      alice  3       192.0.2.1    -\n",
		},
		{
			name: "a full page says so on stderr",
			args: []string{"audit", "list", "--limit", "1"},
			wantStdout: "" +
				"TIME                  EVENT  OUTCOME    COUNT  USER   KEY ID  CLIENT IP    DETAIL\n" +
				"2026-03-01T11:00:00Z  login  throttled  42     alice  3       2001:db8::5  rate_limited\n",
			wantStderr: "showing the newest 1 events; older ones may exist (see --limit and --since)\n",
		},
		{
			name:       "nothing",
			args:       []string{"audit", "list", "--user", "nobody"},
			wantStdout: "no audit events\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			seedAudit(s)
			got := run(t, s.env, "", tt.args...)
			if got.code != 0 {
				t.Fatalf("exit %d, stderr %q", got.code, got.stderr)
			}
			if got.stdout != tt.wantStdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, tt.wantStdout)
			}
			if got.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", got.stderr, tt.wantStderr)
			}
		})
	}
}

func TestAuditListJSON(t *testing.T) {
	s := newSuite(t)
	seedAudit(s)
	got := run(t, s.env, "", "audit", "list", "--json")
	if got.code != 0 || got.stderr != "" {
		t.Fatalf("exit %d, stderr %q", got.code, got.stderr)
	}
	var events []map[string]any
	if err := json.Unmarshal([]byte(got.stdout), &events); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, got.stdout)
	}
	if len(events) != 4 {
		t.Fatalf("%d events, want 4", len(events))
	}
	wantKeys := []string{"api_key_id", "client_ip", "component", "count", "detail", "event", "last_time", "outcome", "request_id", "time", "user_id"}
	for i, e := range events {
		var keys []string
		for k := range e {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("event %d has fields %v, want exactly %v", i, keys, wantKeys)
		}
	}
	first := map[string]any{
		"time": "2026-03-01T11:00:00.123456Z", "event": "login", "outcome": "throttled", "user_id": "alice",
		"api_key_id": float64(3), "client_ip": "2001:db8::5", "component": "auth", "request_id": "r4", "detail": "rate_limited",
		"count": float64(42), "last_time": "2026-03-01T11:00:59Z",
	}
	for k, v := range first {
		if events[0][k] != v {
			t.Errorf("first event %s = %#v, want %#v", k, events[0][k], v)
		}
	}
	if events[1]["user_id"] != "evil\x1b[31m\tuser" {
		t.Errorf("user_id %q: JSON must carry the value as it is", events[1]["user_id"])
	}
	if events[3]["user_id"] != "" || events[3]["detail"] != "" || events[3]["api_key_id"] != float64(7) ||
		events[3]["count"] != float64(1) || events[3]["last_time"] != nil {
		t.Errorf("last event %v", events[3])
	}
	if _, err := time.Parse(time.RFC3339, events[3]["time"].(string)); err != nil {
		t.Errorf("time %q is not RFC 3339: %v", events[3]["time"], err)
	}

	t.Run("no key is null, nothing is []", func(t *testing.T) {
		s := newSuite(t)
		s.audit.events = []*auditv1.AuditEvent{{Time: timestamppb.New(baseTime), Event: "user.created", Outcome: "success", UserId: "bob", Component: "user"}}
		got := run(t, s.env, "", "audit", "list", "--json")
		if !strings.Contains(got.stdout, `"api_key_id": null`) {
			t.Errorf("stdout %s: want api_key_id null", got.stdout)
		}
		got = run(t, s.env, "", "audit", "list", "--json", "--user", "nobody")
		if got.code != 0 || got.stdout != "[]\n" {
			t.Errorf("exit %d stdout %q, want []", got.code, got.stdout)
		}
	})
}

// TestAuditListRequest: the flags become the request: --since is counted
// back from now, days included.
func TestAuditListRequest(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantUser  string
		wantLimit int32
		wantSince time.Duration // 0: no since
	}{
		{"defaults", nil, "", 100, 0},
		{"user", []string{"--user", "alice"}, "alice", 100, 0},
		{"minutes", []string{"--since", "15m"}, "", 100, 15 * time.Minute},
		{"hours, as --flag=value", []string{"--since=24h"}, "", 100, 24 * time.Hour},
		{"days", []string{"--since", "7d"}, "", 100, 7 * 24 * time.Hour},
		{"days and hours", []string{"--since", "1d12h"}, "", 100, 36 * time.Hour},
		{"everything", []string{"--json", "--limit", "1000", "--since", "90s", "--user", "bob"}, "bob", 1000, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			before := time.Now()
			got := run(t, s.env, "", append([]string{"audit", "list"}, tt.args...)...)
			after := time.Now()
			if got.code != 0 {
				t.Fatalf("exit %d, stderr %q", got.code, got.stderr)
			}
			reqs := s.audit.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d calls, want 1", len(reqs))
			}
			r := reqs[0]
			if r.GetUserId() != tt.wantUser || r.GetLimit() != tt.wantLimit {
				t.Errorf("request %v, want user %q limit %d", r, tt.wantUser, tt.wantLimit)
			}
			switch {
			case tt.wantSince == 0 && r.GetSince() != nil:
				t.Errorf("since %v sent, want none", r.GetSince().AsTime())
			case tt.wantSince != 0:
				since := r.GetSince().AsTime()
				if r.GetSince() == nil || since.Before(before.Add(-tt.wantSince)) || since.After(after.Add(-tt.wantSince)) {
					t.Errorf("since %v, want now - %s", since, tt.wantSince)
				}
			}
		})
	}
}

func TestAuditListUsage(t *testing.T) {
	tests := []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"--since", "7x"}, `--since: "7x" is not a duration`},
		{[]string{"--since", "-5m"}, `--since: "-5m" is not a duration`},
		{[]string{"--since", "1d-5h"}, `--since: "1d-5h" is not a duration`},
		{[]string{"--since", "0"}, "want a positive duration"},
		{[]string{"--since", "0d"}, "want a positive duration"},
		{[]string{"--since", ""}, "want a positive duration"},
		{[]string{"--since", "d"}, `"d" is not a duration`},
		{[]string{"--since", "36501d"}, "more than a century"},
		{[]string{"--limit", "0"}, "--limit must be between 1 and 1000"},
		{[]string{"--limit", "1001"}, "--limit must be between 1 and 1000"},
		{[]string{"--user", " "}, "--user needs a user ID"},
		{[]string{"alice"}, `unexpected argument "alice"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			s := newSuite(t)
			got := run(t, s.env, "", append([]string{"audit", "list"}, tt.args...)...)
			if got.code != 2 || got.stdout != "" {
				t.Fatalf("exit %d stdout %q, want 2 and nothing", got.code, got.stdout)
			}
			if !strings.Contains(got.stderr, tt.wantStderr) || !strings.Contains(got.stderr, "moreidctl audit list") {
				t.Errorf("stderr lacks %q and the usage:\n%s", tt.wantStderr, got.stderr)
			}
			if n := len(s.audit.requests()); n != 0 {
				t.Errorf("%d calls made, want none", n)
			}
		})
	}
}

func TestAuditListWrongService(t *testing.T) {
	s := newSuite(t)
	// The auth variable pointed at the user admin listener by mistake.
	env := map[string]string{envAuthAdminAddr: s.env[envUserAdminAddr]}
	got := run(t, env, "", "audit", "list")
	if got.code != 1 || !strings.Contains(got.stderr, "is not the auth admin service") {
		t.Fatalf("exit %d stderr %q", got.code, got.stderr)
	}
}
