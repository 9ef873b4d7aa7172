package redisstore_test

import (
	"context"
	mathrand "math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
)

// pickedPorts remembers every port pickPort handed out in this process, so
// two servers of one test never get the same one before either listens.
var pickedPorts sync.Map

// pickPort returns a loopback port below 20000 (far from the ephemeral
// range) on which nothing answers, never the same twice in this process.
// Nothing is bound and released to find it: a port that was never bound
// cannot be taken back from under the server that is about to use it.
func pickPort(t *testing.T) int {
	t.Helper()
	for range 500 {
		port := 12000 + mathrand.IntN(8000)
		if _, taken := pickedPorts.LoadOrStore(port, true); taken {
			continue
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			continue
		}
		return port
	}
	t.Fatal("no free loopback port found")
	return 0
}

// startCluster runs a Redis Cluster of three masters of the test's own
// (slots split by redis-cli) and returns a client of it. The servers are
// killed when the test ends, and only they.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server is not installed: %v", err)
	}
	var addrs []string
	for range 3 {
		port, bus, dir := pickPort(t), pickPort(t), t.TempDir()
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", dir+"/nodes.conf", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, a := range addrs {
		for {
			c := redis.NewClient(&redis.Options{Addr: a})
			err := c.Ping(ctx).Err()
			c.Close()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("redis-server %s did not start: %v", a, err)
			}
			time.Sleep(20 * time.Millisecond) // polling a start, no window raced
		}
	}
	create := exec.CommandContext(ctx, "redis-cli", append([]string{"--cluster", "create"}, append(addrs, "--cluster-replicas", "0", "--cluster-yes")...)...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { rdb.Close() })
	// Every node must know every slot's owner before the test starts.
	for _, a := range addrs {
		for {
			c := redis.NewClient(&redis.Options{Addr: a})
			info, err := c.ClusterInfo(ctx).Result()
			c.Close()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("cluster not ok on %s: %v %s", a, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	rdb.ReloadState(ctx)
	return rdb
}

// On a Redis Cluster every throttle step works: the keys of each script
// share a slot (no CROSSSLOT), the subjects of one attempt spread over
// the masters and are reserved in one pipeline, and a refusal drops the
// places granted on the other masters.
func TestThrottleOnCluster(t *testing.T) {
	rdb := startCluster(t)
	ctx := context.Background()
	s := redisstore.New(rdb, "moreid-test:")
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
