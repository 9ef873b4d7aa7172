package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a Redis Cluster of the test's own: masters with replicas,
// every node a redis-server on a picked loopback port with its files in a
// directory of the test, killed when the test ends.
type RedisCluster struct {
	Nodes []*Server
	// URL names every node in MOREID_REDIS_URL's Cluster form
	// (redis://n1?addr=n2&addr=n3...).
	URL string
	// NodeTimeout is the cluster-node-timeout: how long a node may be
	// unreachable before the others fail it over.
	NodeTimeout time.Duration
}

// StartRedisCluster runs masters×(1+replicas) nodes, joins them with
// `redis-cli --cluster create`, and waits until the cluster serves every
// slot and every replica follows its master. A slow machine gets generous
// time for each step.
func StartRedisCluster(t DirTB, masters, replicas int) *RedisCluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not installed: %v", err)
	}
	c := &RedisCluster{NodeTimeout: 3 * time.Second}
	var addrs []string
	for range masters * (1 + replicas) {
		// The bus port is picked too: the default (port+10000) could fall
		// in the kernel's ephemeral range.
		port, bus := FreePort(t), FreePort(t)
		s := startRedis(t, port, t.TempDir(), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", strconv.Itoa(int(c.NodeTimeout.Milliseconds())))
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	u := url.URL{Scheme: "redis", Host: addrs[0], RawQuery: url.Values{"addr": addrs[1:]}.Encode()}
	c.URL = u.String()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitHealthy(t, 2*time.Minute)
	return c
}

// node is one line of CLUSTER NODES.
type node struct {
	addr      string // host:port
	id        string
	flags     []string
	master    string // the master's id, for a replica
	connected bool
	slots     bool
}

func (n node) has(flag string) bool {
	for _, f := range n.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// clusterNodes asks the node on port for its view of the cluster.
func clusterNodes(ctx context.Context, port int) ([]node, error) {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
	defer c.Close()
	out, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var nodes []node
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		nodes = append(nodes, node{
			id: f[0], addr: addr, flags: strings.Split(f[2], ","), master: f[3],
			connected: f[7] == "connected", slots: len(f) > 8,
		})
	}
	return nodes, nil
}

// Live are the nodes whose process runs (not killed by the test).
func (c *RedisCluster) live() []*Server {
	var out []*Server
	for _, s := range c.Nodes {
		if _, err := s.pids(); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// Masters are the nodes that serve slots now, as the first live node sees
// it.
func (c *RedisCluster) Masters(t TB) []*Server {
	t.Helper()
	live := c.live()
	if len(live) == 0 {
		t.Fatalf("no live cluster node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nodes, err := clusterNodes(ctx, live[0].Port)
	if err != nil {
		t.Fatalf("CLUSTER NODES: %v", err)
	}
	var out []*Server
	for _, n := range nodes {
		if n.has("master") && n.slots {
			for _, s := range c.Nodes {
				if n.addr == fmt.Sprintf("127.0.0.1:%d", s.Port) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// healthy reports whether every live node says the cluster is ok and sees
// every slot on a live, connected master that is not failing.
func (c *RedisCluster) healthy(ctx context.Context) (bool, string) {
	dead := map[string]bool{}
	for _, s := range c.Nodes {
		if _, err := s.pids(); err != nil {
			dead[fmt.Sprintf("127.0.0.1:%d", s.Port)] = true
		}
	}
	for _, s := range c.live() {
		rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.Port), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
		info, err := rc.ClusterInfo(ctx).Result()
		rc.Close()
		if err != nil {
			return false, fmt.Sprintf("node %d: %v", s.Port, err)
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return false, fmt.Sprintf("node %d: cluster info %q", s.Port, info)
		}
		nodes, err := clusterNodes(ctx, s.Port)
		if err != nil {
			return false, fmt.Sprintf("node %d: %v", s.Port, err)
		}
		for _, n := range nodes {
			failing := n.has("fail") || n.has("fail?")
			if n.has("master") && n.slots && (failing || !n.connected || dead[n.addr]) {
				return false, fmt.Sprintf("node %d sees master %s with slots failing or disconnected: %v", s.Port, n.addr, n.flags)
			}
		}
	}
	return true, ""
}

// waitHealthy waits until healthy holds, failing the test after within.
func (c *RedisCluster) waitHealthy(t TB, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	why := ""
	for ctx.Err() == nil {
		var ok bool
		if ok, why = c.healthy(ctx); ok && c.replicasInSync(ctx) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("redis cluster not healthy within %s: %s", within, why)
}

// replicasInSync reports whether every live replica's link to its master
// is up, so that a master's crash can be failed over.
func (c *RedisCluster) replicasInSync(ctx context.Context) bool {
	for _, s := range c.live() {
		rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.Port), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
		info, err := rc.Info(ctx, "replication").Result()
		rc.Close()
		if err != nil {
			return false
		}
		if strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up") {
			return false
		}
	}
	return true
}

// WaitFailover waits, after a master was killed, until its replica serves
// its slots in every live node's view, and returns when that was first
// seen. It fails the test after within.
func (c *RedisCluster) WaitFailover(t TB, within time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	why := ""
	for ctx.Err() == nil {
		var ok bool
		if ok, why = c.healthy(ctx); ok {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no failover within %s: %s", within, why)
	return time.Time{}
}
