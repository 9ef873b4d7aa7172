package keycache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
)

// validator answers from a settable verdict and counts calls per (key, ip).
type validator struct {
	mu    sync.Mutex
	err   error
	calls map[string]int
}

func (v *validator) ValidateKey(_ context.Context, key, ip string) (*apikeyv1.APIKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls[key+"|"+ip]++
	if v.err != nil {
		return nil, v.err
	}
	return &apikeyv1.APIKey{Id: 1, Name: key}, nil
}

func (v *validator) set(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err = err
}

func (v *validator) count(key, ip string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls[key+"|"+ip]
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(max int) (*Cache, *validator, *clock) {
	v := &validator{calls: map[string]int{}}
	c := &clock{t: time.Unix(1700000000, 0)}
	return newCache(v, MaxTTL, max, c.now), v, c
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, c *Cache, v *validator, clk *clock)
	}{
		{"answers are reused within the TTL", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			for range 5 {
				if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); err != nil {
					t.Fatal(err)
				}
				clk.advance(90 * time.Millisecond)
			}
			if n := v.count("k", "1.2.3.4"); n != 1 {
				t.Fatalf("%d remote calls, want 1", n)
			}
		}},
		{"a revocation is seen after the TTL", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); err != nil {
				t.Fatal(err)
			}
			v.set(apierr.New(apierr.InvalidAPIKey))
			clk.advance(MaxTTL)
			if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); !apierr.Is(err, apierr.InvalidAPIKey) {
				t.Fatalf("err = %v, want invalid_api_key", err)
			}
		}},
		{"refusals are cached too", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			v.set(apierr.New(apierr.IPNotAllowed))
			for range 3 {
				if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); !apierr.Is(err, apierr.IPNotAllowed) {
					t.Fatalf("err = %v, want ip_not_allowed", err)
				}
			}
			if n := v.count("k", "1.2.3.4"); n != 1 {
				t.Fatalf("%d remote calls, want 1", n)
			}
		}},
		{"outages are not cached", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			v.set(apierr.Wrap(apierr.Unavailable, errors.New("connection refused")))
			for range 3 {
				if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); !apierr.Is(err, apierr.Unavailable) {
					t.Fatalf("err = %v, want unavailable", err)
				}
			}
			if n := v.count("k", "1.2.3.4"); n != 3 {
				t.Fatalf("%d remote calls, want 3", n)
			}
		}},
		{"the client IP is part of the cache key", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			_, _ = c.ValidateKey(ctx, "k", "1.2.3.4")
			v.set(apierr.New(apierr.IPNotAllowed))
			if _, err := c.ValidateKey(ctx, "k", "5.6.7.8"); !apierr.Is(err, apierr.IPNotAllowed) {
				t.Fatalf("err = %v, want ip_not_allowed for another IP", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, v, clk := setup(100)
			tt.run(t, c, v, clk)
		})
	}
}

func TestCacheBounded(t *testing.T) {
	c, _, _ := setup(10)
	for i := range 100 {
		_, _ = c.ValidateKey(context.Background(), fmt.Sprint("k", i), "1.2.3.4")
	}
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	if n > 10 {
		t.Fatalf("%d entries, bound is 10", n)
	}
}

func TestCacheConcurrent(t *testing.T) {
	c, v, _ := setup(16)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			for j := range 100 {
				if _, err := c.ValidateKey(context.Background(), fmt.Sprint("k", (i+j)%20), "1.2.3.4"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if v.count("k0", "1.2.3.4") == 0 {
		t.Fatal("validator never called")
	}
}

func TestTTLCapped(t *testing.T) {
	if c := New(&validator{calls: map[string]int{}}, time.Minute, 10); c.ttl != MaxTTL {
		t.Fatalf("ttl = %v, want it capped at %v", c.ttl, MaxTTL)
	}
}
