// Package redisdb opens Moreid's Redis through go-redis's universal client,
// with short timeouts so that an outage fails fast instead of hanging.
package redisdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/telemetry"
)

// Open connects to the Redis at url ("redis://host:6379/0", "rediss://..."),
// pinging it once. Every command times out after a second at most.
func Open(ctx context.Context, url string) (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("MOREID_REDIS_URL: %w", err)
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        []string{opts.Addr},
		DB:           opts.DB,
		Username:     opts.Username,
		Password:     opts.Password,
		TLSConfig:    opts.TLSConfig,
		DialTimeout:  500 * time.Millisecond,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
		PoolTimeout:  time.Second,
		MaxRetries:   1,
	})
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
		return nil, fmt.Errorf("ping redis %s: %w", opts.Addr, err)
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
