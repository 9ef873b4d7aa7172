package e2e

import (
	"encoding/json"
	"errors"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
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

	// Each component writes its own events in its own background batches
	// (every 250 ms, each on its own ticker), so the test waits until every
	// event it asserts is listed, however the batches fall, rather than for
	// one component: waiting for auth's alone failed about one run in five.
	// The deadline is generous for a loaded machine; a passing run ends at
	// the first listing that holds them all.
	alices := []wantEvent{
		{"login", "success", "auth"},
		{"login", "failure", "auth"},
		{"code.issued", "success", "auth"},
		{"token.issued", "success", "auth"},
		{"user.created", "success", "user"},
	}
	// Key administration by the operator is on the trail too (startFlowSuite
	// created keys and revoked one).
	everyones := []wantEvent{
		{"user.created", "success", "user"},
		{"apikey.created", "success", "apikey"},
		{"apikey.revoked", "success", "apikey"},
	}
	var rows, allRows []auditRow
	var raw, all string
	list := func(args ...string) (string, []auditRow) {
		out := f.MustCtl(t, "", append([]string{"audit", "list", "--json"}, args...)...)
		var rows []auditRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("audit list --json %v: %v\n%s", args, err, out)
		}
		return out, rows
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		raw, rows = list("--user", "alice", "--since", "1h")
		all, allRows = list()
		if (hasAll(rows, alices) && hasAll(allRows, everyones)) || time.Now().After(deadline) {
			break
		}
	}
	if !hasAll(rows, alices) {
		t.Errorf("alice's trail lacks some of %v:\n%s", alices, raw)
	}
	if !hasAll(allRows, everyones) {
		t.Errorf("the trail lacks some of %v:\n%s", everyones, all)
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
	for name, secret := range map[string]string{
		"password": alicePassword, "wrong password": "not-her-password", "api key": f.app.key,
		"state": state, "code": code, "access token": tok.str("access_token"),
	} {
		if strings.Contains(raw+all, secret) {
			t.Errorf("the audit trail shows the %s", name)
		}
	}
}

// wantEvent is an event the trail must list, by the component that
// recorded it.
type wantEvent struct{ event, outcome, component string }

func hasAll(rows []auditRow, want []wantEvent) bool {
	for _, w := range want {
		if !slices.ContainsFunc(rows, func(r auditRow) bool {
			return r.Event == w.event && r.Outcome == w.outcome && r.Component == w.component
		}) {
			return false
		}
	}
	return true
}

// TestAuditFloodIsAggregated: 1000 wrong-password sign-ins at one user from
// one address, 64 at a time released together, leave O(1) rows in the
// trail (per outcome and minute: the first at once, the repeats as one
// counted row) whose counts add up to 1000. Each row used to be a request.
func TestAuditFloodIsAggregated(t *testing.T) {
	f := startFlowSuite(t)
	const attempts, workers = 1000, 64
	states := make(chan string, attempts)
	for range attempts {
		states <- f.app.authorize(t)
	}
	close(states)

	var mu sync.Mutex
	statuses := map[int]int{}
	var ready, wg sync.WaitGroup
	release := make(chan struct{})
	ready.Add(workers)
	began := time.Now()
	for range workers {
		wg.Go(func() {
			ready.Done()
			<-release
			for state := range states {
				a := f.app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": "guess", "state": state})
				mu.Lock()
				statuses[a.Status]++
				mu.Unlock()
			}
		})
	}
	ready.Wait()
	close(release)
	wg.Wait()
	elapsed := time.Since(began)
	for status := range statuses {
		if status != 401 && status != 429 {
			t.Errorf("answers by status %v: want only 401 and 429", statuses)
		}
	}

	// Stopping auth writes what it is still counting.
	auth := f.Proc("auth", 0)
	if err := auth.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := auth.Wait(30 * time.Second); code != 0 {
		t.Fatalf("auth exited %d", code)
	}
	db := pgdbtest.Open(t, f.DSN, 1)
	var rows int64
	if err := db.Raw(`SELECT count(*) FROM audit_events WHERE event = 'login' AND user_id = 'alice'`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	// Two rows per kind (failure, throttled by each limit) and minute.
	windows := int64(elapsed/time.Minute) + 2
	if limit := 2 * 3 * windows; rows > limit {
		t.Fatalf("%d login rows for %d attempts in %v, want at most %d", rows, attempts, elapsed.Round(time.Second), limit)
	}
	var events int64
	if err := db.Raw(`SELECT coalesce(sum(count), 0) FROM audit_events WHERE event = 'login' AND user_id = 'alice'`).Scan(&events).Error; err != nil {
		t.Fatal(err)
	}
	if events != attempts {
		t.Errorf("the rows count %d sign-ins, want %d", events, attempts)
	}
	t.Logf("%d attempts in %v (answers %v): %d audit rows counting %d events", attempts, elapsed.Round(time.Millisecond), statuses, rows, events)
}

// TestServicesServeAsTheRestrictedRole: every connection the suite holds is
// the serving role's, which cannot disarm the trail.
func TestServicesServeAsTheRestrictedRole(t *testing.T) {
	f := startFlowSuite(t)
	f.app.login(t, "alice", alicePassword)
	owner := pgdbtest.Open(t, f.DSN, 1)
	serving, err := url.Parse(f.ServingDSN)
	if err != nil {
		t.Fatal(err)
	}
	// The owner's connections of the start-up migrations are closed, but a
	// backend leaves pg_stat_activity only once its process has exited,
	// which a loaded machine may delay: a connection still held after 10 s
	// is one the suite keeps.
	var users []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		users = nil
		if err := owner.Raw(`SELECT DISTINCT usename FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY 1`).Scan(&users).Error; err != nil {
			t.Fatal(err)
		}
		if len(users) == 1 && users[0] == serving.User.Username() || time.Now().After(deadline) {
			break
		}
	}
	if len(users) != 1 || users[0] != serving.User.Username() {
		t.Errorf("the suite connects as %v, want only %s", users, serving.User.Username())
	}
	db := pgdbtest.Open(t, f.ServingDSN, 1)
	for _, stmt := range []string{
		`ALTER TABLE audit_events DISABLE TRIGGER ALL`,
		`DROP TRIGGER audit_events_no_update_delete ON audit_events`,
		`UPDATE audit_events SET outcome = 'success'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
	} {
		var pgErr *pgconn.PgError
		if err := db.Exec(stmt).Error; !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as the serving role: %v, want 42501", stmt, err)
		}
	}
}

// TestAuditPruneThroughTheCLI: the operator drops old months with moreidctl
// as the owner; the services' role is refused; recent events stay listed.
func TestAuditPruneThroughTheCLI(t *testing.T) {
	f := startFlowSuite(t)
	f.app.login(t, "alice", alicePassword)
	owner := pgdbtest.Open(t, f.DSN, 1)
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for _, m := range []int{-3, -2} {
		at := month.AddDate(0, m, 0).Add(time.Hour)
		if err := owner.Exec(`SELECT audit_ensure_partition(?)`, at).Error; err != nil {
			t.Fatal(err)
		}
		if err := owner.Exec(`INSERT INTO audit_events (at, event, outcome, user_id) VALUES (?, 'login', 'failure', 'old')`, at).Error; err != nil {
			t.Fatal(err)
		}
	}
	before := month.AddDate(0, -1, 0).Format(time.DateOnly)
	ctl := func(dsn string, args ...string) (string, string, int) {
		cmd := exec.Command(harness.Bin(t, "moreidctl"), args...)
		cmd.Env = append(f.Environ(), "MOREID_POSTGRES_OWNER_DSN="+dsn)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}

	if out, errOut, code := ctl(f.ServingDSN, "audit", "prune", "--before", before); code != 1 || !strings.Contains(errOut, "does not own the audit trail") {
		t.Errorf("prune as the serving role: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := ctl(f.DSN, "audit", "prune", "--before", before)
	if code != 0 {
		t.Fatalf("prune: exit %d\n%s%s", code, out, errOut)
	}
	for _, m := range []int{-3, -2} {
		if want := "dropped " + month.AddDate(0, m, 0).Format("2006-01"); !strings.Contains(out, want) {
			t.Errorf("prune said %q, want %q", out, want)
		}
	}
	if _, errOut, code := ctl(f.DSN, "audit", "prune", "--before", now.AddDate(0, 1, 0).Format(time.DateOnly)); code != 2 {
		t.Errorf("prune with a future date: exit %d, want 2 (%s)", code, errOut)
	}
	list := f.MustCtl(t, "", "audit", "list", "--since", "200d", "--json")
	if strings.Contains(list, `"user_id": "old"`) || !strings.Contains(list, `"user_id": "alice"`) {
		t.Errorf("after pruning the trail lists:\n%s", list)
	}
}
