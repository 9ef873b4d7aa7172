package server_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// clock is a settable clock for the per-key rate's one-second windows.
type clock struct{ unixNano atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.unixNano.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time      { return time.Unix(0, c.unixNano.Load()) }
func (c *clock) add(d time.Duration) { c.unixNano.Add(int64(d)) }

func TestKeyRateLimit(t *testing.T) {
	c := newClock()
	e := newEnv(t, options{keyRate: 50, now: c.now})
	authorize := func(key string) func(int) error {
		return func(int) error {
			_, err := e.auth.Authorize(as(t, key), &authv1.AuthorizeRequest{})
			return err
		}
	}
	got := burst(60, authorize(keyA))
	if got[""] != 50 || got[apierr.RateLimited] != 10 {
		t.Fatalf("answers %v; want 50 successes and 10 rate_limited", got)
	}
	_, err := e.auth.Authorize(as(t, keyA), &authv1.AuthorizeRequest{})
	wantErr(t, err, apierr.RateLimited)
	if n := retryAfter(t, err); n != 1 {
		t.Fatalf("Retry-After %d, want 1", n)
	}
	// Another key has its own rate; so has the next second.
	if got := burst(50, authorize(keyB)); got[""] != 50 {
		t.Fatalf("another key: %v", got)
	}
	c.add(time.Second)
	e.authorize(t, keyA)
	// Keyless calls (the page) and invalid keys are not counted against a key.
	_, err = e.auth.Authorize(as(t, "ml_"+"nope"), &authv1.AuthorizeRequest{})
	wantErr(t, err, apierr.InvalidAPIKey)
}

func TestKeyRateLimitOffByDefault(t *testing.T) {
	e := newEnv(t, options{})
	if got := burst(200, func(int) error {
		_, err := e.auth.Authorize(as(t, keyA), &authv1.AuthorizeRequest{})
		return err
	}); got[""] != 200 {
		t.Fatalf("answers %v without a limit", got)
	}
}

// A key's live states are capped: authorize beyond the cap answers 429,
// in parallel too, and stores nothing.
func TestKeyStatesCap(t *testing.T) {
	e := newEnv(t, options{limits: oauth.Limits{KeyStates: 50}})
	got := burst(60, func(int) error {
		_, err := e.auth.Authorize(as(t, keyA), &authv1.AuthorizeRequest{})
		return err
	})
	if got[""] != 50 || got[apierr.RateLimited] != 10 {
		t.Fatalf("answers %v; want 50 states and 10 rate_limited", got)
	}
	if n := countKeys(t, e, e.prefix+"state:*"); n != 50 {
		t.Fatalf("%d states stored, want 50", n)
	}
	_, err := e.auth.Authorize(as(t, keyA), &authv1.AuthorizeRequest{})
	wantErr(t, err, apierr.RateLimited)
	if n := retryAfter(t, err); n < 1 || n > int(oauth.StateTTL/time.Second) {
		t.Fatalf("Retry-After %d", n)
	}
	e.authorize(t, keyB)
}
