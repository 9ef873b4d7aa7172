package pgdb_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
)

// A frozen Postgres (SIGSTOP: connections open, nothing answers) fails
// every bounded call within its bound, whether the call holds a pooled
// connection, waits for one (the pool is smaller than the burst) or opens a
// new one, and calls succeed again once Postgres thaws.
func TestBoundOnAHungPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	const conns, burst = 2, 8
	db := pgdbtest.Open(t, testenv.PostgresOn(t, pg.URL), conns)
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
