package keycache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
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

func (v *validator) CheckKey(_ context.Context, id int64) (*apikeyv1.APIKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls[fmt.Sprint("#|", id)]++
	if v.err != nil {
		return nil, v.err
	}
	return &apikeyv1.APIKey{Id: id}, nil
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
	// onRead, when set, runs after each reading: the cache reads the
	// clock first thing in every call, so a test learns from it that a
	// caller has arrived without sleeping.
	onRead func()
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	t, hook := c.t, c.onRead
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	return t
}

func (c *clock) setOnRead(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRead = f
}
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testStale is the stale limit of the caches under test.
const testStale = time.Minute

func setup(max int) (*Cache, *validator, *clock) {
	v := &validator{calls: map[string]int{}}
	c := &clock{t: time.Unix(1700000000, 0)}
	return newCache(v, MaxTTL, testStale, max, c.now), v, c
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
		{"a key checked by id: reused within the TTL, revoked after it", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			for range 5 {
				if k, err := c.CheckKey(ctx, 9); err != nil || k.GetId() != 9 {
					t.Fatalf("CheckKey = %v, %v", k, err)
				}
				clk.advance(90 * time.Millisecond)
			}
			if n := v.count("#", "9"); n != 1 {
				t.Fatalf("%d remote checks, want 1", n)
			}
			v.set(apierr.New(apierr.InvalidAPIKey))
			clk.advance(MaxTTL)
			if _, err := c.CheckKey(ctx, 9); !apierr.Is(err, apierr.InvalidAPIKey) {
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
	if c := New(&validator{calls: map[string]int{}}, time.Minute, time.Minute, 10); c.ttl != MaxTTL {
		t.Fatalf("ttl = %v, want it capped at %v", c.ttl, MaxTTL)
	}
}

// During an outage of the key service the last positive answer stands in,
// within limits.
func TestCacheStale(t *testing.T) {
	ctx := context.Background()
	down := apierr.Wrap(apierr.Unavailable, errors.New("postgres unreachable"))
	tests := []struct {
		name string
		run  func(t *testing.T, c *Cache, v *validator, clk *clock)
	}{
		{"a positive answer is served while the service is unavailable", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); err != nil {
				t.Fatal(err)
			}
			v.set(down)
			for range 5 {
				clk.advance(testStale / 10)
				k, err := c.ValidateKey(ctx, "k", "1.2.3.4")
				if err != nil || k.GetName() != "k" {
					t.Fatalf("during the outage: %v, %v; want the last answer", k, err)
				}
			}
		}},
		{"the outage is probed once per TTL, not per call", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			_, _ = c.ValidateKey(ctx, "k", "1.2.3.4")
			v.set(down)
			clk.advance(MaxTTL)
			for range 10 {
				if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); err != nil {
					t.Fatal(err)
				}
			}
			if n := v.count("k", "1.2.3.4"); n != 2 {
				t.Fatalf("%d remote calls, want 2", n)
			}
		}},
		{"not beyond the stale limit", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			_, _ = c.ValidateKey(ctx, "k", "1.2.3.4")
			v.set(down)
			clk.advance(testStale)
			if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("err = %v, want unavailable", err)
			}
		}},
		{"the stale limit counts from the last confirmation", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			_, _ = c.ValidateKey(ctx, "k", "1.2.3.4")
			clk.advance(testStale / 2)
			_, _ = c.ValidateKey(ctx, "k", "1.2.3.4")
			v.set(down)
			clk.advance(testStale * 3 / 4)
			if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); err != nil {
				t.Fatalf("err = %v, want the answer confirmed %v ago", err, testStale*3/4)
			}
		}},
		{"a refusal is never served stale, and ends the positive answer", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			_, _ = c.ValidateKey(ctx, "k", "1.2.3.4")
			clk.advance(MaxTTL)
			v.set(apierr.New(apierr.InvalidAPIKey))
			if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); !apierr.Is(err, apierr.InvalidAPIKey) {
				t.Fatalf("err = %v, want invalid_api_key", err)
			}
			v.set(down)
			clk.advance(MaxTTL)
			if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("err = %v, want unavailable", err)
			}
		}},
		{"nothing stale for a key or IP never seen", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			_, _ = c.ValidateKey(ctx, "k", "1.2.3.4")
			v.set(down)
			if _, err := c.ValidateKey(ctx, "k", "5.6.7.8"); !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("other IP: err = %v, want unavailable", err)
			}
			if _, err := c.ValidateKey(ctx, "other", "1.2.3.4"); !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("other key: err = %v, want unavailable", err)
			}
		}},
		{"an internal error is no outage", func(t *testing.T, c *Cache, v *validator, clk *clock) {
			_, _ = c.ValidateKey(ctx, "k", "1.2.3.4")
			v.set(apierr.Wrap(apierr.Internal, errors.New("bug")))
			clk.advance(MaxTTL)
			if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); !apierr.Is(err, apierr.Internal) {
				t.Fatalf("err = %v, want internal", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, v, clk := setup(100)
			tt.run(t, c, v, clk)
		})
	}
	t.Run("stale serving off", func(t *testing.T) {
		v := &validator{calls: map[string]int{}}
		clk := &clock{t: time.Unix(1700000000, 0)}
		c := newCache(v, MaxTTL, 0, 10, clk.now)
		_, _ = c.ValidateKey(ctx, "k", "1.2.3.4")
		v.set(down)
		clk.advance(MaxTTL)
		if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); !apierr.Is(err, apierr.Unavailable) {
			t.Fatalf("err = %v, want unavailable", err)
		}
	})
}

// hung is a key service that answers only when the call's context ends
// (as a frozen Postgres behind it does), reporting unavailable then, and
// remembers how long each call was allowed.
type hung struct {
	mu      sync.Mutex
	allowed []time.Duration // 0: no deadline
	hang    bool
}

func (h *hung) CheckKey(ctx context.Context, id int64) (*apikeyv1.APIKey, error) {
	return h.ValidateKey(ctx, strconv.FormatInt(id, 10), "")
}

func (h *hung) ValidateKey(ctx context.Context, key, _ string) (*apikeyv1.APIKey, error) {
	h.mu.Lock()
	hang := h.hang
	allowed := time.Duration(0)
	if d, ok := ctx.Deadline(); ok {
		allowed = time.Until(d)
	}
	h.allowed = append(h.allowed, allowed)
	h.mu.Unlock()
	if !hang {
		return &apikeyv1.APIKey{Id: 1, Name: key}, nil
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second): // a test without the bound still ends
	}
	return nil, apierr.Wrap(apierr.Unavailable, errors.New("deadline exceeded"))
}

// While a positive answer could stand in, a hung key service holds the
// request for at most fallbackWait, not for the caller's whole deadline;
// with nothing to fall back on, the caller's deadline alone applies.
func TestHungKeyServiceFallsBackQuickly(t *testing.T) {
	h := &hung{}
	clk := &clock{t: time.Unix(1700000000, 0)}
	c := newCache(h, MaxTTL, testStale, 10, clk.now)
	ctx := context.Background()
	if _, err := c.ValidateKey(ctx, "k", "1.2.3.4"); err != nil {
		t.Fatal(err)
	}
	h.hang = true
	clk.advance(MaxTTL)
	k, err := c.ValidateKey(ctx, "k", "1.2.3.4")
	if err != nil || k.GetName() != "k" {
		t.Fatalf("hung key service: %v, %v; want the last answer", k, err)
	}
	if _, err := c.ValidateKey(ctx, "new", "1.2.3.4"); !apierr.Is(err, apierr.Unavailable) {
		t.Fatalf("unknown key, hung service: err = %v, want unavailable", err)
	}
	if got := h.allowed; len(got) != 3 || got[0] != 0 || got[1] <= 0 || got[1] > fallbackWait || got[2] != 0 {
		t.Fatalf("time allowed per call %v, want [none, ≤ %s, none]", got, fallbackWait)
	}
}

// gated is a key service whose calls wait until release is closed (or their
// context ends), so that a test decides when the first answer arrives. It
// counts calls, signals each on entered, and records whether a call's
// context had ended when it answered.
type gated struct {
	release chan struct{}
	entered chan struct{}
	err     error // the verdict, nil for a valid key

	mu    sync.Mutex
	calls int
	ended []error
}

func newGated(verdict error) *gated {
	return &gated{release: make(chan struct{}), entered: make(chan struct{}, 1000), err: verdict}
}

func (g *gated) ValidateKey(ctx context.Context, key, _ string) (*apikeyv1.APIKey, error) {
	return g.answer(ctx, &apikeyv1.APIKey{Id: 1, Name: key})
}

func (g *gated) CheckKey(ctx context.Context, id int64) (*apikeyv1.APIKey, error) {
	return g.answer(ctx, &apikeyv1.APIKey{Id: id, Name: "k"})
}

func (g *gated) answer(ctx context.Context, k *apikeyv1.APIKey) (*apikeyv1.APIKey, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
	case <-time.After(10 * time.Second): // a broken test ends instead of hanging
		return nil, apierr.Wrap(apierr.Internal, errors.New("never released"))
	}
	g.mu.Lock()
	g.ended = append(g.ended, ctx.Err())
	g.mu.Unlock()
	if err := ctx.Err(); err != nil {
		// What remote.Keys reports for a cancelled gRPC call.
		return nil, apierr.Wrap(apierr.Unavailable, err)
	}
	if g.err != nil {
		return nil, g.err
	}
	return k, nil
}

func (g *gated) stats() (int, []error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls, append([]error(nil), g.ended...)
}

// lookups are the two questions the cache answers, with the key they are
// about: a key and client IP, and a key by id (the tokens issued to it).
var lookups = []struct {
	name string
	call func(ctx context.Context, c *Cache) (*apikeyv1.APIKey, error)
}{
	{"ValidateKey", func(ctx context.Context, c *Cache) (*apikeyv1.APIKey, error) {
		return c.ValidateKey(ctx, "k", "1.2.3.4")
	}},
	{"CheckKey", func(ctx context.Context, c *Cache) (*apikeyv1.APIKey, error) { return c.CheckKey(ctx, 1) }},
}

// A burst of requests for one key and IP on a cold cache (a new app, the
// TTL ending under load) costs the key service one query, and every request
// gets its answer, a refusal included.
func TestConcurrentMissesShareOneCall(t *testing.T) {
	const callers = 100
	verdicts := []struct {
		name    string
		verdict error
	}{
		{"valid key", nil},
		{"refused key", apierr.New(apierr.InvalidAPIKey)},
	}
	for _, l := range lookups {
		for _, v := range verdicts {
			t.Run(l.name+"/"+v.name, func(t *testing.T) {
				g := newGated(v.verdict)
				clk := &clock{t: time.Unix(1700000000, 0)}
				c := newCache(g, MaxTTL, testStale, 100, clk.now)
				// The key service answers once every caller has
				// missed the cache (read the clock): without
				// sharing, each of them would be asking it.
				var reads atomic.Int32
				clk.setOnRead(func() {
					if reads.Add(1) == callers {
						close(g.release)
					}
				})
				start := make(chan struct{})
				keys := make([]*apikeyv1.APIKey, callers)
				errs := make([]error, callers)
				var wg sync.WaitGroup
				for i := range callers {
					wg.Go(func() {
						<-start
						keys[i], errs[i] = l.call(context.Background(), c)
					})
				}
				close(start)
				wg.Wait()
				if n, _ := g.stats(); n != 1 {
					t.Fatalf("%d calls to the key service for %d concurrent misses, want 1", n, callers)
				}
				for i := range callers {
					if v.verdict == nil && (errs[i] != nil || keys[i].GetName() != "k") {
						t.Fatalf("caller %d: %v, %v; want the key", i, keys[i], errs[i])
					}
					if v.verdict != nil && !apierr.Is(errs[i], apierr.InvalidAPIKey) {
						t.Fatalf("caller %d: err = %v, want invalid_api_key", i, errs[i])
					}
				}
			})
		}
	}
}

// A caller that gives up (client gone, deadline passed) while the shared
// call is running gets its own prompt error, and the call goes on for the
// callers still waiting.
func TestCancelledCallerLeavesTheSharedCall(t *testing.T) {
	for _, l := range lookups {
		t.Run(l.name, func(t *testing.T) {
			g := newGated(nil)
			clk := &clock{t: time.Unix(1700000000, 0)}
			c := newCache(g, MaxTTL, testStale, 100, clk.now)

			ctx, cancel := context.WithCancel(context.Background())
			first := make(chan error, 1)
			go func() {
				_, err := l.call(ctx, c)
				first <- err
			}()
			<-g.entered
			cancel()
			// The key service has not answered yet (release is still
			// open): the first caller returns on its own context.
			if err := <-first; !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("cancelled caller: err = %v, want unavailable", err)
			}

			missed := make(chan struct{})
			var once sync.Once
			clk.setOnRead(func() { once.Do(func() { close(missed) }) })
			type result struct {
				key *apikeyv1.APIKey
				err error
			}
			second := make(chan result, 1)
			go func() {
				k, err := l.call(context.Background(), c)
				second <- result{k, err}
			}()
			<-missed
			close(g.release)
			if r := <-second; r.err != nil || r.key.GetName() != "k" {
				t.Fatalf("caller still waiting: %v, %v; want the key", r.key, r.err)
			}
			n, ended := g.stats()
			if n != 1 {
				t.Fatalf("%d calls to the key service, want 1 (the first one, not cancelled)", n)
			}
			if ended[0] != nil {
				t.Fatalf("the shared call's context ended (%v) with the caller that started it", ended[0])
			}
		})
	}
}
