// Package redisdb opens Moreid's Redis through go-redis's universal client,
// with short timeouts so that an outage fails fast instead of hanging.
package redisdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
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
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("ping redis %s: %w", opts.Addr, err)
	}
	return client, nil
}
