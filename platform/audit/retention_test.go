package audit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
)

// clock is a settable time for a writer.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }

// summary is the trail grouped as an operator reads it: one line per row,
// "event outcome user ip count".
func summary(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var out []string
	if err := db.Raw(`SELECT concat_ws(' ', event, outcome, user_id, client_ip, count) FROM audit_events ORDER BY id`).
		Scan(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAggregation: 1000 throttled sign-ins of one user from one address,
// recorded by 100 goroutines released together, are two rows (the first,
// written at once, and the 999 repeats of its window); a second subject
// has rows of its own; every success is a row; the next window starts
// anew.
func TestAggregation(t *testing.T) {
	owner, serving := openRoles(t)
	start := time.Date(2026, 11, 30, 10, 0, 5, 0, time.UTC)
	clk := newClock(start)
	w := audit.NewWriter(serving, "auth", nil, audit.Clock(clk.now), audit.FlushInterval(10*time.Millisecond))
	u := w.Unit()
	done := make(chan error, 1)
	go func() { done <- u.Serve() }()

	const goroutines, each = 100, 10
	throttled := audit.Event{Event: audit.Login, Outcome: audit.Throttled, UserID: "victim", APIKeyID: 3, ClientIP: "203.0.113.9", Detail: "rate_limited"}
	var ready, wg sync.WaitGroup
	release := make(chan struct{})
	ready.Add(goroutines)
	for g := range goroutines {
		wg.Go(func() {
			ready.Done()
			<-release
			for range each {
				w.Record(context.Background(), throttled)
			}
			if g < 3 {
				w.Record(context.Background(), audit.Event{Event: audit.Login, Outcome: audit.Success, UserID: fmt.Sprintf("ok%d", g)})
			}
		})
	}
	ready.Wait()
	close(release)
	wg.Wait()
	for range 7 {
		w.Record(context.Background(), audit.Event{Event: audit.Login, Outcome: audit.Failure, UserID: "victim", ClientIP: "198.51.100.1", Detail: "invalid_credentials"})
	}
	// Successes and the first of each kind are written at once; the
	// window's repeats only when it ends.
	waitFor(t, "the successes and the firsts are written", func() bool { return len(summary(t, owner)) == 5 })
	clk.set(start.Add(time.Minute)) // the next window
	waitFor(t, "the window's counts are written", func() bool { return len(summary(t, owner)) == 7 })
	w.Record(context.Background(), throttled)
	w.Record(context.Background(), throttled)

	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u.Stop(stopCtx)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var groups []string
	if err := owner.Raw(`SELECT concat_ws(' ', outcome, user_id, nullif(client_ip, ''), w, count(*), sum(count))
		FROM (SELECT *, to_char(at AT TIME ZONE 'UTC', 'HH24:MI') AS w FROM audit_events) AS e
		GROUP BY outcome, user_id, client_ip, w ORDER BY 1`).Scan(&groups).Error; err != nil {
		t.Fatal(err)
	}
	// "outcome user ip window rows events"
	want := []string{
		"failure victim 198.51.100.1 10:00 2 7",
		"success ok0 10:00 1 1",
		"success ok1 10:00 1 1",
		"success ok2 10:00 1 1",
		"throttled victim 203.0.113.9 10:00 2 1000",
		"throttled victim 203.0.113.9 10:01 2 2",
	}
	if fmt.Sprint(groups) != fmt.Sprint(want) {
		t.Fatalf("rows by window\n %q\nwant\n %q", groups, want)
	}
	var first, last time.Time
	if err := owner.Raw(`SELECT at, last_at FROM audit_events WHERE count = 999`).Row().Scan(&first, &last); err != nil {
		t.Fatal(err)
	}
	if !first.Equal(start) || !last.Equal(start) {
		t.Errorf("first/last seen %v/%v, want %v", first, last, start)
	}
	if w.Dropped() != 0 {
		t.Errorf("dropped %d", w.Dropped())
	}
}

// TestPrune: whole months end, oldest first, as the owner; the month being
// written and later ones stay; a date in the future is refused; rows of the
// kept months are untouched.
func TestPrune(t *testing.T) {
	owner, serving := openRoles(t)
	ctx := context.Background()
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	clk := newClock(month)
	w := audit.NewWriter(serving, "auth", nil, audit.Clock(clk.now), audit.FlushInterval(10*time.Millisecond))
	u := w.Unit()
	go func() { _ = u.Serve() }()
	// One event in each of the last four months, written by the writer
	// (which creates each month's partition).
	for i := 3; i >= 0; i-- {
		clk.set(month.AddDate(0, -i, 0).Add(time.Hour))
		w.Record(ctx, audit.Event{Event: audit.Login, Outcome: audit.Success, UserID: fmt.Sprintf("m-%d", i)})
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u.Stop(stopCtx)
	users := func() []string {
		var out []string
		if err := owner.Raw(`SELECT user_id FROM audit_events ORDER BY at`).Scan(&out).Error; err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := fmt.Sprint(users()); got != "[m-3 m-2 m-1 m-0]" {
		t.Fatalf("rows %s before pruning", got)
	}
	name := func(monthsAgo int) string { return "audit_events_p" + month.AddDate(0, -monthsAgo, 0).Format("200601") }

	tests := []struct {
		name        string
		before      time.Time
		dryRun      bool
		wantDropped []string
		wantUsers   string
		wantKind    apierr.Kind
	}{
		{"a date in the future", now.Add(time.Hour), false, nil, "[m-3 m-2 m-1 m-0]", apierr.InvalidRequest},
		{"dry run", month.AddDate(0, -1, 0), true, []string{name(3), name(2)}, "[m-3 m-2 m-1 m-0]", ""},
		{"mid-month keeps that month", month.AddDate(0, -1, 0).Add(-time.Hour), false, []string{name(3)}, "[m-2 m-1 m-0]", ""},
		{"the first of a month drops the one before", month.AddDate(0, -1, 0), false, []string{name(2)}, "[m-1 m-0]", ""},
		{"nothing left that old", month.AddDate(0, -1, 0), false, nil, "[m-1 m-0]", ""},
		{"now keeps the current month", now, false, []string{name(1)}, "[m-0]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dropped, err := audit.Prune(ctx, owner, tt.before, now, tt.dryRun)
			if apierr.KindOf(err) != tt.wantKind && !(tt.wantKind == "" && err == nil) {
				t.Fatalf("Prune: %v, want kind %q", err, tt.wantKind)
			}
			var names []string
			for _, p := range dropped {
				names = append(names, p.Name)
				if !p.To.Equal(p.From.AddDate(0, 1, 0)) || p.To.After(tt.before) {
					t.Errorf("partition %s spans [%v, %v), beyond %v", p.Name, p.From, p.To, tt.before)
				}
			}
			if fmt.Sprint(names) != fmt.Sprint(tt.wantDropped) {
				t.Errorf("dropped %v, want %v", names, tt.wantDropped)
			}
			if got := fmt.Sprint(users()); got != tt.wantUsers {
				t.Errorf("rows left %s, want %s", got, tt.wantUsers)
			}
		})
	}
	// The trail still takes rows, as the serving role.
	if err := serving.Exec(`INSERT INTO audit_events (event, outcome) VALUES ('login', 'success')`).Error; err != nil {
		t.Errorf("insert after pruning: %v", err)
	}
}

// waitFor polls cond until it holds, for up to a generous 20 s (a loaded
// machine), never racing a fixed sleep against the writer.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
