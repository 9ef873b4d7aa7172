package user_test

import (
	"context"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/telemetry/telemetrytest"
	"github.com/moreline/moreid/services/user/internal/user"
)

// TestProfileLookupsCounted: every GetUser is counted on the Telemetry
// passed in, as a hit when the profile came from memory and a miss when it
// was read from Postgres.
func TestProfileLookupsCounted(t *testing.T) {
	f := newFixture(t, cheap)
	f.create(t, alice)
	tel, reg := telemetrytest.New(t)
	cache := user.NewProfileCache(time.Minute, 100)
	cache.SetLive(true) // as the change listener does once connected
	svc := user.NewService(f.store, f.hasher, cache, avatar, nil, tel)
	for range 3 {
		if _, err := svc.GetUser(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
	}
	for result, want := range map[string]float64{"miss": 1, "hit": 2} {
		if got := reg.Counter("moreid_user_profile_cache_lookups_total", "result", result); got != want {
			t.Errorf("moreid_user_profile_cache_lookups_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}
