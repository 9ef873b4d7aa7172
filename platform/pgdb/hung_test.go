package pgdb_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/telemetry/telemetrytest"
	"github.com/moreline/moreid/platform/testenv"
)

// A frozen Postgres (SIGSTOP: connections open, nothing answers) fails
// every bounded call within its bound, whether the call holds a pooled
// connection, waits for one (the pool is smaller than the burst) or opens a
// new one, and calls succeed again once Postgres thaws.
func TestBoundOnAHungPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	const conns, burst = 2, 8
	tel, reg := telemetrytest.New(t)
	db, err := pgdb.Open(context.Background(), testenv.PostgresOn(t, pg.URL), pgdb.Options{MaxOpenConns: conns, Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqlDB.Close() })
	storeErrors := func() int { return int(reg.Counter("moreid_store_errors_total", "store", "postgres")) }
	const bound = 500 * time.Millisecond
	query := func() error {
		ctx, cancel := pgdb.Bound(context.Background(), db, bound)
		defer cancel()
		var one int
		if err := ctx.Raw("SELECT 1").Scan(&one).Error; err != nil {
			return pgdb.Classify("select", err)
		}
		return nil
	}
	if err := query(); err != nil {
		t.Fatal(err)
	}
	if n := storeErrors(); n != 0 {
		t.Fatalf("moreid_store_errors_total{store=postgres} = %d after a successful call, want 0", n)
	}

	pg.Pause(t)
	for round := range 2 {
		var wg sync.WaitGroup
		errs, took := make([]error, burst), make([]time.Duration, burst)
		for i := range burst {
			wg.Go(func() {
				start := time.Now()
				errs[i] = query()
				took[i] = time.Since(start)
			})
		}
		wg.Wait()
		for i := range burst {
			if !apierr.Is(errs[i], apierr.Unavailable) {
				t.Errorf("round %d call %d: %v, want unavailable", round, i, errs[i])
			}
			// Generous: the bound plus a slow machine's scheduling.
			if took[i] > bound+time.Second {
				t.Errorf("round %d call %d: failed after %s, want about %s", round, i, took[i].Round(time.Millisecond), bound)
			}
		}
		if n, want := storeErrors(), (round+1)*burst; n != want {
			t.Errorf("moreid_store_errors_total{store=postgres} = %d after round %d, want %d (one per failed call)", n, round, want)
		}
		t.Logf("round %d: %d calls on a frozen Postgres, slowest failed after %s (bound %s)", round, burst, slowest(took).Round(time.Millisecond), bound)
	}

	pg.Resume(t)
	deadline := time.Now().Add(15 * time.Second)
	for query() != nil {
		if time.Now().After(deadline) {
			t.Fatal("Postgres thawed 15 s ago, calls still fail")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func slowest(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
