// Package redisdb opens Moreid's Redis through go-redis's universal client,
// with every call bounded by MOREID_REDIS_TIMEOUT so that an outage fails
// fast instead of hanging, and, on Redis Cluster, a slot map that follows a
// failover as soon as commands start failing.
package redisdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/telemetry"
)

// DefaultTimeout is MOREID_REDIS_TIMEOUT's default: far above a healthy
// reply (well under a millisecond on a LAN) and a loaded one, so that a slow
// Redis only slows requests down, yet short enough that a dead one answers
// 503 in about two seconds.
const DefaultTimeout = 2 * time.Second

// Timeout reads MOREID_REDIS_TIMEOUT, the longest one Redis call may take
// (retries included) before the request fails with 503.
func Timeout(r *config.Reader) time.Duration {
	return r.Duration("MOREID_REDIS_TIMEOUT", DefaultTimeout)
}

// Options turns MOREID_REDIS_URL into universal-client options:
//
//	redis://[user:password@]host:6379/0                 a single node
//	redis://host1:6379?addr=host2:6379&addr=host3:6379  a Redis Cluster (seed nodes)
//	redis://sentinel1:26379/0?addr=sentinel2:26379&master_name=mymaster
//	                                                    Redis Sentinel
//
// rediss:// turns TLS on. timeout bounds each call (see Timeout); the
// connection's own timeouts derive from it.
func Options(rawURL string, timeout time.Duration) (*redis.UniversalOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("MOREID_REDIS_URL is not a URL")
	}
	q := u.Query()
	extra, master := q["addr"], q.Get("master_name")
	q.Del("addr")
	q.Del("master_name")
	u.RawQuery = q.Encode()
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("MOREID_REDIS_URL: %w", err)
	}
	return &redis.UniversalOptions{
		Addrs:      append([]string{opts.Addr}, extra...),
		MasterName: master,
		DB:         opts.DB,
		Username:   opts.Username,
		Password:   opts.Password,
		TLSConfig:  opts.TLSConfig,
		// The caller's deadline bounds the socket reads and writes too:
		// without this go-redis ignores it and re-sends a command after
		// its own read timeout, while the first one may still run.
		ContextTimeoutEnabled: true,
		// A reply may take the whole budget: a slow Redis makes a request
		// slower, and a read that times out has no time left for a retry
		// (the retry loop gives up at the context's deadline).
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		// A dial gets half, so that a dead node (a crashed Cluster master,
		// a pod gone from the network) leaves time to dial another.
		DialTimeout: timeout / 2,
		PoolTimeout: timeout,
		// One retry, for a connection that broke before the reply (a
		// restarted Redis, a failover): never past the deadline, since
		// every attempt runs under the caller's context.
		MaxRetries: 1,
		// go-redis otherwise retries a failed dial 5 times 100 ms apart,
		// which made a command against a dead Redis take ~830 ms.
		DialerRetries: 1,
		// RESP2: Moreid uses nothing of RESP3 (no client-side caching, no
		// push notifications), and under RESP3 go-redis checks every
		// connection for pending push frames before each command.
		Protocol: 2,
	}, nil
}

// Open connects to the Redis at rawURL (see Options), pinging it once. tel
// counts failed commands and, when tracing is on, traces every command; nil
// does neither.
func Open(ctx context.Context, rawURL string, timeout time.Duration, tel *telemetry.Telemetry) (redis.UniversalClient, error) {
	opts, err := Options(rawURL, timeout)
	if err != nil {
		return nil, err
	}
	client := redis.NewUniversalClient(opts)
	if tel != nil {
		client.AddHook(errorCounter{tel})
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		cc.AddHook(newSlotRefresher(cc.ReloadState, minReloadInterval))
	}
	if tp := tel.TracerProvider(); tp != nil {
		if err := redisotel.InstrumentTracing(client, redisotel.WithTracerProvider(tp)); err != nil {
			return nil, fmt.Errorf("redis tracing: %w", err)
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("ping redis %v: %w", opts.Addrs, err)
	}
	return client, nil
}

// errorCounter counts failed Redis commands in moreid_store_errors_total:
// only those Redis did not serve (see failed). A reply, even an error
// one, is an answer: redis.Nil ("no such key"), NOSCRIPT (a script not
// cached yet, which go-redis re-sends as EVAL) and an older server's
// refusal of CLIENT SETINFO on every new connection would otherwise be
// counted as outages.
type errorCounter struct{ tel *telemetry.Telemetry }

func (c errorCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if failed(err) {
			c.tel.StoreError(telemetry.Redis)
		}
		return conn, err
	}
}

func (c errorCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if failed(err) {
			c.tel.StoreError(telemetry.Redis)
		}
		return err
	}
}

func (c errorCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if failed(err) {
			c.tel.StoreError(telemetry.Redis)
		}
		return err
	}
}

// failed reports whether err means Redis did not serve the command:
// unreachable, too slow, or failing over (the errors that also make a
// Cluster's slot map suspect), or no pooled connection in time.
func failed(err error) bool { return staleSlots(err) || errors.Is(err, redis.ErrPoolTimeout) }

// minReloadInterval spaces the slot-map reloads a failing Cluster triggers:
// often enough that requests follow a promoted replica within a fraction of
// a second, rarely enough that a storm of failing commands costs the
// cluster a few CLUSTER SLOTS a second.
const minReloadInterval = 200 * time.Millisecond

// slotRefresher reloads a Cluster client's slot map when a command fails in
// a way that says the map may be stale: the node is unreachable (a crashed
// master keeps its slots in go-redis's map until the periodic reload, 60 s
// later, although its replica took over within seconds) or the cluster says
// it is reconfiguring. go-redis reloads by itself only on MOVED, ASK and
// READONLY replies, which a dead node never sends.
type slotRefresher struct {
	reload   func(context.Context)
	interval time.Duration
	now      func() time.Time
	last     atomic.Int64 // unix nanoseconds of the last reload asked for
}

func newSlotRefresher(reload func(context.Context), interval time.Duration) *slotRefresher {
	return &slotRefresher{reload: reload, interval: interval, now: time.Now}
}

// failed asks for a reload after err, at most once per interval. The
// reload itself runs in go-redis's background (ClusterClient.ReloadState).
func (r *slotRefresher) failed(ctx context.Context, err error) {
	if !staleSlots(err) {
		return
	}
	now := r.now().UnixNano()
	last := r.last.Load()
	if now-last < int64(r.interval) || !r.last.CompareAndSwap(last, now) {
		return
	}
	r.reload(ctx)
}

// staleSlots reports whether err means the node a command went to may no
// longer serve its slot: a connection that failed or timed out, or a
// cluster that is failing over.
func staleSlots(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) ||
		redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsMasterDownError(err) ||
		redis.IsLoadingError(err)
}

func (r *slotRefresher) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *slotRefresher) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		r.failed(ctx, err)
		return err
	}
}

func (r *slotRefresher) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		r.failed(ctx, err)
		return err
	}
}
