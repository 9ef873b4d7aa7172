package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/testenv"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
)

// startCluster runs a Redis Cluster of three masters of the test's own and
// returns a client of it; the servers are killed when the test ends.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	c := testenv.StartRedisCluster(t, 3, 0)
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(n.Port))
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { rdb.Close() })
	rdb.ReloadState(context.Background())
	return rdb
}

// On a Redis Cluster every throttle step works: the keys of each script
// share a slot (no CROSSSLOT), the subjects of one attempt spread over
// the masters and are reserved in one pipeline, and a refusal drops the
// places granted on the other masters.
func TestThrottleOnCluster(t *testing.T) {
	rdb := startCluster(t)
	ctx := context.Background()
	s := redisstore.New(rdb, "moreid-test:", redisdb.DefaultTimeout)
	l := oauth.Limits{PerUser: 3, PerAccount: 6, PerIP: 5, Window: time.Minute}

	// Whole attempts across every subject: failures until the state burns.
	state := hash()
	if err := s.PutState(ctx, state, 1, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	a := oauth.Attempt{KeyID: 1, StateHash: state, UCAHash: hash(), UserID: "alice", IP: "192.0.2.1"}
	for i := range 3 {
		a := attempt(a)
		v, err := s.Reserve(ctx, a, l)
		if err != nil || !v.Granted {
			t.Fatalf("attempt %d: Reserve = %+v, %v", i, v, err)
		}
		if _, err := s.Fail(ctx, a, l); err != nil {
			t.Fatalf("attempt %d: Fail: %v", i, err)
		}
	}
	// The (user, address) limit refuses now; the places the other subjects
	// granted in the same pipeline are dropped again.
	v, err := s.Reserve(ctx, attempt(a), l)
	if err != nil || v.Granted || v.Limit != oauth.LimitUser {
		t.Fatalf("Reserve after 3 failures = %+v, %v; want refused by %q", v, err, oauth.LimitUser)
	}
	// From another address the same state, page and user are admitted: no
	// hold of the refused attempt was left behind (the UCA has 2 places
	// left, the state 2).
	for range 2 {
		b := attempt(oauth.Attempt{KeyID: 1, StateHash: state, UCAHash: a.UCAHash, UserID: "alice", IP: "192.0.2.2"})
		if v, err := s.Reserve(ctx, b, l); err != nil || !v.Granted {
			t.Fatalf("Reserve from another address = %+v, %v", v, err)
		}
		if err := s.Release(ctx, b, l); err != nil {
			t.Fatal(err)
		}
	}
	b := attempt(oauth.Attempt{KeyID: 1, StateHash: state, IP: "192.0.2.3"})
	if v, err := s.Reserve(ctx, b, l); err != nil || !v.Granted {
		t.Fatalf("Reserve = %+v, %v", v, err)
	}
	if burned, err := s.Fail(ctx, b, l); err != nil || burned {
		t.Fatalf("fourth failure on the state: burned %v, %v", burned, err)
	}
	c := attempt(oauth.Attempt{KeyID: 1, StateHash: state, IP: "192.0.2.3"})
	if v, err := s.Reserve(ctx, c, l); err != nil || !v.Granted {
		t.Fatalf("Reserve = %+v, %v", v, err)
	}
	if burned, err := s.Fail(ctx, c, l); err != nil || !burned {
		t.Fatalf("fifth failure on the state: burned %v, %v; want burned", burned, err)
	}

	// The per-key rate and the live-states cap.
	for i := range 3 {
		if n, err := s.CountKeyRequest(ctx, 7, 1000); err != nil || n != int64(i+1) {
			t.Fatalf("CountKeyRequest = %d, %v", n, err)
		}
	}
	for i := range 3 {
		wait, err := s.PutCountedState(ctx, hash(), 7, 10*time.Minute, 2)
		if err != nil || (wait > 0) != (i == 2) {
			t.Fatalf("PutCountedState %d = %v, %v", i, wait, err)
		}
	}
}
