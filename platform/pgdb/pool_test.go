package pgdb_test

import (
	"context"
	"sync"
	"testing"

	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
)

// TestPoolKeepsItsConnections checks that a burst of concurrent queries
// leaves every connection it opened idle for the next burst instead of
// closing them: reopening costs Postgres a backend fork and an
// authentication per connection, which is what held profile reads back.
func TestPoolKeepsItsConnections(t *testing.T) {
	const size = 8
	ctx := context.Background()
	db := pgdbtest.Open(t, testenv.Postgres(t), size)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}

	burst := func() {
		var wg sync.WaitGroup
		for range size {
			wg.Go(func() {
				// pg_sleep holds each connection long enough that the
				// burst needs all of them at once.
				if err := db.WithContext(ctx).Exec("SELECT pg_sleep(0.05)").Error; err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	burst()
	first := sqlDB.Stats()
	if first.OpenConnections != size || first.Idle != size {
		t.Fatalf("after a burst of %d: %d open, %d idle; want all %d kept idle", size, first.OpenConnections, first.Idle, size)
	}
	burst()
	second := sqlDB.Stats()
	if second.MaxIdleClosed != 0 {
		t.Errorf("%d connections closed for want of idle room", second.MaxIdleClosed)
	}
	if opened := second.OpenConnections; opened != size {
		t.Errorf("after the second burst: %d open, want the same %d", opened, size)
	}
}
