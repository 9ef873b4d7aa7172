package pgdb_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/telemetry/telemetrytest"
	"github.com/moreline/moreid/platform/testenv"
)

// feed records what a Listener delivered.
type feed struct {
	mu       sync.Mutex
	payloads []string
	live     []bool
	changed  chan struct{}
}

func newFeed() *feed { return &feed{changed: make(chan struct{}, 100)} }

func (f *feed) notify(p string) {
	f.mu.Lock()
	f.payloads = append(f.payloads, p)
	f.mu.Unlock()
	f.changed <- struct{}{}
}

func (f *feed) setLive(on bool) {
	f.mu.Lock()
	f.live = append(f.live, on)
	f.mu.Unlock()
	f.changed <- struct{}{}
}

// waitFor waits up to 5 s for cond over what was delivered.
func (f *feed) waitFor(t *testing.T, what string, cond func(payloads []string, live []bool) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		f.mu.Lock()
		ok := cond(f.payloads, f.live)
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-f.changed:
		case <-deadline:
			f.mu.Lock()
			defer f.mu.Unlock()
			t.Fatalf("waiting for %s: got payloads %q, live %v", what, f.payloads, f.live)
		}
	}
}

func liveIs(want ...bool) func([]string, []bool) bool {
	return func(_ []string, live []bool) bool {
		if len(live) != len(want) {
			return false
		}
		for i := range want {
			if live[i] != want[i] {
				return false
			}
		}
		return true
	}
}

// TestListener follows one listener through its life: live once LISTEN is
// in place, every notification delivered, off the moment its connection is
// killed, live again after reconnecting, and stopped promptly.
func TestListener(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	db := pgdbtest.Open(t, dsn, 2)

	f := newFeed()
	tel, reg := telemetrytest.New(t)
	gauge := func() float64 { return reg.Gauge("moreid_postgres_listener_live", "channel", "test_changes") }
	l := pgdb.NewListener(dsn, "test_changes", f.notify, f.setLive, slog.New(slog.NewTextHandler(io.Discard, nil)), tel)
	l.Retry = 50 * time.Millisecond
	// Quiet spells end in a ping every 20 ms: they must not be mistaken
	// for a lost connection (liveIs checks the exact on/off sequence).
	l.Quiet = 20 * time.Millisecond
	unit := l.Unit()
	served := make(chan error, 1)
	go func() { served <- unit.Serve() }()

	f.waitFor(t, "live", liveIs(true))
	// The gauge is set before the callback runs.
	if g := gauge(); g != 1 {
		t.Errorf("moreid_postgres_listener_live = %v while live, want 1", g)
	}
	// A few quiet spells, each ended by a ping, before the notifications:
	// waited for on Postgres's side (each ping is a new query_start of
	// the listening backend), so a loaded machine cannot make the test
	// pass without any ping having happened.
	pinged := map[time.Time]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(pinged) < 3; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the listener pinged %d times in 10 s of 20 ms quiet spells", len(pinged))
		}
		var at []time.Time
		if err := db.Raw(`SELECT query_start FROM pg_stat_activity WHERE datname = current_database()
			AND application_name = 'moreid listen test_changes' AND query = '-- ping'`).Scan(&at).Error; err != nil {
			t.Fatal(err)
		}
		for _, a := range at {
			pinged[a] = true
		}
	}
	for _, q := range []string{
		"SELECT pg_notify('test_changes', 'alice')",
		"SELECT pg_notify('other_channel', 'ignored')",
		"SELECT pg_notify('test_changes', 'bob')",
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	f.waitFor(t, "alice and bob", func(p []string, _ []bool) bool { return len(p) == 2 && p[0] == "alice" && p[1] == "bob" })

	// An operator (or a failover) ends the listening backend.
	var killed int
	if err := db.Raw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'moreid listen test_changes'`).Scan(&killed).Error; err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listening backends, want 1", killed)
	}
	f.waitFor(t, "off, then live again", liveIs(true, false, true))
	if err := db.Exec("SELECT pg_notify('test_changes', 'carol')").Error; err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "carol after the reconnect", func(p []string, _ []bool) bool { return len(p) == 3 && p[2] == "carol" })

	stopCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	unit.Stop(stopCtx)
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after Stop: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after Stop")
	}
	f.waitFor(t, "off after the stop", liveIs(true, false, true, false))
	if g := gauge(); g != 0 {
		t.Errorf("moreid_postgres_listener_live = %v after the stop, want 0", g)
	}
}
