package redisdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/telemetry/telemetrytest"
	"github.com/moreline/moreid/platform/testenv"
)

// busy counts its runs in KEYS[1], then keeps Redis busy for ARGV[1] ms: a
// reply as slow as a loaded or failing-over server's.
var busy = redis.NewScript(`
redis.call('INCR', KEYS[1])
local t0 = redis.call('TIME')
local start = t0[1] * 1000000 + t0[2]
while true do
  local t = redis.call('TIME')
  if t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1]) * 1000 then break end
end
return 1
`)

// A reply slower than usual but within MOREID_REDIS_TIMEOUT is waited for,
// and one beyond it fails without the command having been sent twice (the
// old 500 ms read timeout re-sent it while the first run was going on).
func TestSlowReplies(t *testing.T) {
	srv := testenv.StartRedis(t)
	const timeout = 2 * time.Second
	tel, reg := telemetrytest.New(t)
	client, err := redisdb.Open(context.Background(), srv.URL, timeout, tel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	// A patient client, to read the counters once Redis is free again.
	reader := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port), ReadTimeout: 30 * time.Second})
	t.Cleanup(func() { _ = reader.Close() })

	cases := []struct {
		name string
		busy time.Duration
		ok   bool
		// errors is moreid_store_errors_total{store=redis} afterwards.
		errors int
	}{
		{"within the timeout", 1200 * time.Millisecond, true, 0},
		{"beyond the timeout", 3 * time.Second, false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := "runs:" + tc.name
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			callErr := busy.Run(ctx, client, []string{key}, tc.busy.Milliseconds()).Err()
			took := time.Since(start)
			if tc.ok && callErr != nil {
				t.Fatalf("a reply after %s with a %s timeout: %v", tc.busy, timeout, callErr)
			}
			if !tc.ok && callErr == nil {
				t.Fatalf("a reply after %s with a %s timeout succeeded", tc.busy, timeout)
			}
			if !tc.ok && took > timeout+time.Second {
				t.Errorf("failed after %s, want about %s", took.Round(time.Millisecond), timeout)
			}
			runs, err := reader.Get(context.Background(), key).Int()
			if err != nil {
				t.Fatal(err)
			}
			if runs != 1 {
				t.Fatalf("the script ran %d times, want once", runs)
			}
			if got := int(reg.Counter("moreid_store_errors_total", "store", "redis")); got != tc.errors {
				t.Errorf("moreid_store_errors_total{store=redis} = %d, want %d", got, tc.errors)
			}
			t.Logf("busy %s: answered after %s (err %v), ran once", tc.busy, took.Round(time.Millisecond), callErr)
		})
	}
}
