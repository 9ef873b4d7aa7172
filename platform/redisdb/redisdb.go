// Package redisdb opens Moreid's Redis through go-redis's universal client,
// with short timeouts so that an outage fails fast instead of hanging.
package redisdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/telemetry"
)

// Options turns MOREID_REDIS_URL into universal-client options:
//
//	redis://[user:password@]host:6379/0                 a single node
//	redis://host1:6379?addr=host2:6379&addr=host3:6379  a Redis Cluster (seed nodes)
//	redis://sentinel1:26379/0?addr=sentinel2:26379&master_name=mymaster
//	                                                    Redis Sentinel
//
// rediss:// turns TLS on. A command against a dead Redis fails within about
// half a second: the caller answers 503 instead of hanging.
func Options(rawURL string) (*redis.UniversalOptions, error) {
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
		Addrs:        append([]string{opts.Addr}, extra...),
		MasterName:   master,
		DB:           opts.DB,
		Username:     opts.Username,
		Password:     opts.Password,
		TLSConfig:    opts.TLSConfig,
		DialTimeout:  500 * time.Millisecond,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
		PoolTimeout:  time.Second,
		MaxRetries:   1,
		// go-redis otherwise retries a failed dial 5 times 100 ms apart,
		// which made a command against a dead Redis take ~830 ms.
		DialerRetries: 1,
		// RESP2: Moreid uses nothing of RESP3 (no client-side caching, no
		// push notifications), and under RESP3 go-redis checks every
		// connection for pending push frames before each command.
		Protocol: 2,
	}, nil
}

// Open connects to the Redis at rawURL (see Options), pinging it once.
func Open(ctx context.Context, rawURL string) (redis.UniversalClient, error) {
	opts, err := Options(rawURL)
	if err != nil {
		return nil, err
	}
	client := redis.NewUniversalClient(opts)
	client.AddHook(errorCounter{})
	if telemetry.TracingEnabled() {
		if err := redisotel.InstrumentTracing(client); err != nil {
			return nil, fmt.Errorf("redis tracing: %w", err)
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("ping redis %v: %w", opts.Addrs, err)
	}
	return client, nil
}

// errorCounter counts failed Redis commands in moreid_store_errors_total.
// redis.Nil ("no such key") is an answer, not a failure.
type errorCounter struct{}

func (errorCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			telemetry.StoreError(telemetry.Redis)
		}
		return conn, err
	}
}

func (errorCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && !errors.Is(err, redis.Nil) {
			telemetry.StoreError(telemetry.Redis)
		}
		return err
	}
}

func (errorCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err != nil && !errors.Is(err, redis.Nil) {
			telemetry.StoreError(telemetry.Redis)
		}
		return err
	}
}
