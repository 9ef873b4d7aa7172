// Package keycache remembers APIKeyService.ValidateKey answers for a very
// short time, so that a burst of calls from one app costs one round trip
// while a revocation still takes effect everywhere within a second
// (ARCHITECTURE "API keys on gRPC"). When the key service is unavailable
// (Postgres down), the last positive answer for a key and client IP is
// served for a bounded while, so that flows that need only Redis (redeeming
// an issued code) keep working through the outage.
package keycache

import (
	"context"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
)

// MaxTTL is the longest an answer may be reused while the key service
// answers: half of the one second SPEC section 5 allows for a revocation to
// take effect.
const MaxTTL = 500 * time.Millisecond

// fallbackWait is how long a call waits for the key service when a positive
// answer could stand in for it: a hung key service (Postgres frozen, its
// calls held until MOREID_POSTGRES_TIMEOUT) must not add its whole timeout
// to every request's own Postgres call. A healthy answer takes a few ms
// (p99 under `make bench` is tens of ms).
const fallbackWait = 250 * time.Millisecond

// DefaultStale is how long a positive answer may stand in for an
// unavailable key service (MOREID_KEY_CACHE_STALE).
const DefaultStale = 10 * time.Minute

// Validator answers whether key may be used from clientIP, and whether the
// key with an id is still active (for the tokens issued to it).
type Validator interface {
	ValidateKey(ctx context.Context, key, clientIP string) (*apikeyv1.APIKey, error)
	CheckKey(ctx context.Context, id int64) (*apikeyv1.APIKey, error)
}

type entry struct {
	key *apikeyv1.APIKey
	err error
	// expires ends the fresh reuse of the answer.
	expires time.Time
	// staleUntil ends its use during an outage; zero for refusals, which
	// are never served stale.
	staleUntil time.Time
}

// Cache is a Validator that reuses the answers of another one, positive and
// negative, for at most ttl, and positive ones for at most stale while the
// other one is unavailable. Concurrent misses for one entry share one call
// to the other one. It is safe for concurrent use.
type Cache struct {
	next  Validator
	ttl   time.Duration
	stale time.Duration
	max   int
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]entry
	// flights holds the calls to next in progress, by entry id.
	flights singleflight.Group
}

var _ Validator = (*Cache)(nil)

// New caches next's answers for ttl (capped at MaxTTL), serves positive ones
// for up to stale after they were last confirmed when next is unavailable
// (0 disables that), and holds at most max entries.
func New(next Validator, ttl, stale time.Duration, max int) *Cache {
	return newCache(next, ttl, stale, max, time.Now)
}

func newCache(next Validator, ttl, stale time.Duration, max int, now func() time.Time) *Cache {
	if ttl > MaxTTL {
		ttl = MaxTTL
	}
	if stale < 0 {
		stale = 0
	}
	if max < 1 {
		max = 1
	}
	return &Cache{next: next, ttl: ttl, stale: stale, max: max, now: now, entries: make(map[string]entry)}
}

// ValidateKey implements Validator.
func (c *Cache) ValidateKey(ctx context.Context, key, clientIP string) (*apikeyv1.APIKey, error) {
	// The map holds the key's hash, not the key.
	return c.answer(ctx, secret.Hash(key)+"|"+clientIP, func(ctx context.Context) (*apikeyv1.APIKey, error) {
		return c.next.ValidateKey(ctx, key, clientIP)
	})
}

// CheckKey implements Validator, with the same reuse rules as ValidateKey:
// a revoked key's tokens stop within a second too.
func (c *Cache) CheckKey(ctx context.Context, keyID int64) (*apikeyv1.APIKey, error) {
	return c.answer(ctx, "#"+strconv.FormatInt(keyID, 10), func(ctx context.Context) (*apikeyv1.APIKey, error) {
		return c.next.CheckKey(ctx, keyID)
	})
}

// answer returns the cached answer for id, or the answer of the one call in
// flight for id, starting it if there is none: a burst of misses for one key
// and IP (a cold cache, or the TTL ending under load) costs the key service
// one query, not one per request.
func (c *Cache) answer(ctx context.Context, id string, ask func(context.Context) (*apikeyv1.APIKey, error)) (*apikeyv1.APIKey, error) {
	now := c.now()
	e, ok, fresh := c.lookup(id, now)
	if fresh {
		return e.key, e.err
	}

	// The shared call runs without the cancellation of the caller that
	// happened to start it (its values, trace and metadata, are kept):
	// that caller leaving must not fail everyone who joined. Its length is
	// bounded by fetch (fallbackWait) and by the Validator (remote.Keys
	// gives every call its own timeout); each caller still waits no longer
	// than its own context allows.
	flight := c.flights.DoChan(id, func() (any, error) {
		return c.fetch(context.WithoutCancel(ctx), id, ask)
	})
	select {
	case r := <-flight:
		k, _ := r.Val.(*apikeyv1.APIKey)
		return k, r.Err
	case <-ctx.Done():
		// As when the caller's own call was cut short: an unavailable
		// answer, or the recent positive one where it may stand in.
		if ok && e.err == nil && now.Before(e.staleUntil) {
			return e.key, nil
		}
		return nil, apierr.Wrap(apierr.Unavailable, context.Cause(ctx))
	}
}

// fetch asks for a new answer for id and records it; it runs once per flight.
func (c *Cache) fetch(ctx context.Context, id string, ask func(context.Context) (*apikeyv1.APIKey, error)) (*apikeyv1.APIKey, error) {
	now := c.now()
	// A caller that missed just before the previous flight recorded its
	// answer starts a flight of its own; that answer serves it without
	// another call.
	e, ok, fresh := c.lookup(id, now)
	if fresh {
		return e.key, e.err
	}

	callCtx := ctx
	if ok && e.err == nil && now.Before(e.staleUntil) {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, fallbackWait)
		defer cancel()
	}
	k, err := ask(callCtx)
	if err != nil && !isAnswer(err) {
		// An outage or a cancelled call says nothing about the key. Only
		// an unavailable key service falls back to a positive answer that
		// is recent enough; a refusal seen since has replaced it.
		if ok && e.err == nil && apierr.Is(err, apierr.Unavailable) && now.Before(e.staleUntil) {
			c.mu.Lock()
			defer c.mu.Unlock()
			// Until the next fresh deadline, reuse the stale answer
			// without asking again: an outage should not multiply the
			// calls to a service that is already struggling.
			e.expires = now.Add(c.ttl)
			c.entries[id] = e
			return e.key, nil
		}
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.makeRoom(now)
	ne := entry{key: k, err: err, expires: now.Add(c.ttl)}
	if err == nil {
		ne.staleUntil = now.Add(c.stale)
	}
	c.entries[id] = ne
	return k, err
}

// lookup returns id's entry, whether there is one, and whether it may
// still be served as it is at now.
func (c *Cache) lookup(id string, now time.Time) (e entry, ok, fresh bool) {
	c.mu.Lock()
	e, ok = c.entries[id]
	c.mu.Unlock()
	return e, ok, ok && now.Before(e.expires)
}

// makeRoom keeps the map under its bound: entries of no further use go
// first, then arbitrary ones (map order), which at worst costs a round trip
// (or, during an outage, a stale answer).
func (c *Cache) makeRoom(now time.Time) {
	if len(c.entries) < c.max {
		return
	}
	for id, e := range c.entries {
		if !now.Before(e.expires) && !now.Before(e.staleUntil) {
			delete(c.entries, id)
		}
	}
	for id := range c.entries {
		if len(c.entries) < c.max {
			return
		}
		delete(c.entries, id)
	}
}

// isAnswer reports whether err is the key service's verdict on the key
// (invalid_api_key, ip_not_allowed, ...) rather than a failure to decide.
func isAnswer(err error) bool {
	k := apierr.KindOf(err)
	return k != apierr.Internal && k != apierr.Unavailable
}
