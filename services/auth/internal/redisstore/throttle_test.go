package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/secret"
)

func TestFailureCounters(t *testing.T) {
	ctx := context.Background()
	// The steps build on each other, in order.
	s, rdb, prefix := newStore(t)
	t.Run("nothing counted", func(t *testing.T) {
		c, err := s.Failures(ctx, "alice", "192.0.2.1")
		if err != nil || c.User != 0 || c.IP != 0 {
			t.Fatalf("Failures = %+v, %v", c, err)
		}
	})
	t.Run("both counters count, with the window set on the first failure", func(t *testing.T) {
		for range 3 {
			if err := s.CountFailure(ctx, "alice", "192.0.2.1", time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		// A later failure with another window does not move the first.
		if err := s.CountFailure(ctx, "alice", "192.0.2.1", time.Hour); err != nil {
			t.Fatal(err)
		}
		c, err := s.Failures(ctx, "alice", "192.0.2.1")
		if err != nil || c.User != 4 || c.IP != 4 {
			t.Fatalf("Failures = %+v, %v; want 4 and 4", c, err)
		}
		for _, d := range []time.Duration{c.UserTTL, c.IPTTL} {
			if d <= 55*time.Second || d > time.Minute {
				t.Fatalf("window left %v, want about 1m", d)
			}
		}
		pttl(t, rdb, prefix+"fail:user:"+secret.Hash("alice"), time.Minute)
		pttl(t, rdb, prefix+"fail:ip:192.0.2.1", time.Minute)
	})
	t.Run("an empty subject is skipped", func(t *testing.T) {
		if err := s.CountFailure(ctx, "", "198.51.100.1", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.CountFailure(ctx, "bob", "", time.Minute); err != nil {
			t.Fatal(err)
		}
		c, err := s.Failures(ctx, "bob", "198.51.100.1")
		if err != nil || c.User != 1 || c.IP != 1 {
			t.Fatalf("Failures = %+v, %v; want 1 and 1", c, err)
		}
		if n, err := rdb.Keys(ctx, prefix+"fail:user:*").Result(); err != nil || len(n) != 2 {
			t.Fatalf("user counters %v, %v; want 2 (alice, bob)", n, err)
		}
	})
	t.Run("a counter without an expiry gets one", func(t *testing.T) {
		k := prefix + "fail:user:" + secret.Hash("carol")
		if err := rdb.Set(ctx, k, 3, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.CountFailure(ctx, "carol", "", time.Minute); err != nil {
			t.Fatal(err)
		}
		pttl(t, rdb, k, time.Minute)
	})
	t.Run("the keyspace names no user_id", func(t *testing.T) {
		iter := rdb.Scan(ctx, 0, prefix+"fail:*", 100).Iterator()
		for iter.Next(ctx) {
			for _, id := range []string{"alice", "bob", "carol"} {
				if strings.Contains(iter.Val(), id) {
					t.Errorf("key %s names %s", iter.Val(), id)
				}
			}
		}
	})
}

func TestCountStateFailure(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		owner, key int64
		fails      int
		wantBurned bool
		wantState  bool
	}{
		{"four failures leave the state", 1, 1, 4, false, true},
		{"the fifth burns it", 1, 1, 5, true, false},
		{"another key's failures count nothing", 1, 2, 6, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := hash()
			if err := s.PutState(ctx, sh, tt.owner, 10*time.Minute); err != nil {
				t.Fatal(err)
			}
			var burned bool
			for i := range tt.fails {
				b, err := s.CountStateFailure(ctx, sh, tt.key, 5)
				if err != nil {
					t.Fatal(err)
				}
				if b && i != tt.fails-1 {
					t.Fatalf("burned at failure %d", i+1)
				}
				burned = b
			}
			if burned != tt.wantBurned {
				t.Fatalf("burned = %v, want %v", burned, tt.wantBurned)
			}
			_, found, err := s.State(ctx, sh)
			if err != nil || found != tt.wantState {
				t.Fatalf("state found = %v, %v; want %v", found, err, tt.wantState)
			}
			if tt.wantState && tt.owner == tt.key {
				// The counter lives no longer than its state.
				if d, _ := rdb.PTTL(ctx, prefix+"state:{"+sh+"}:fails").Result(); d <= 0 || d > 10*time.Minute {
					t.Fatalf("failure counter PTTL = %v", d)
				}
			}
		})
	}
	t.Run("password and login code failures share the counter", func(t *testing.T) {
		sh := hash()
		if err := s.PutState(ctx, sh, 1, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := s.CountStateFailure(ctx, sh, 1, 5); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if _, _, err := s.RedeemLoginCode(ctx, sh, hash(), 1, 5); err != nil {
				t.Fatal(err)
			}
		}
		if _, found, _ := s.State(ctx, sh); found {
			t.Fatal("state survived five failures of both kinds")
		}
	})
}
