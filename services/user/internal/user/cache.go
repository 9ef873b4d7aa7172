package user

import (
	"sync"
	"time"
)

// ProfileCache keeps recently read profiles in memory, so that GetUser (the
// read behind every userinfo, token/user and user/info call) does not cost
// a Postgres round trip each time.
//
// It is correct only together with invalidation, and it is built so that
// missing an invalidation is not silent:
//   - Service forgets a user right after its own write commits;
//   - a listener (pgstore.Listener) forgets users that any replica changed,
//     from the users table's NOTIFY, and turns the cache off (SetLive(false):
//     every read goes to Postgres) whenever it is not connected, flushing it
//     again when it is back, since notifications sent in between are lost;
//   - a read that raced with an invalidation does not store what it read:
//     each fill carries the generation it started under, and every
//     invalidation moves the generation on.
//
// Entries also expire after ttl, a backstop rather than the mechanism. A
// nil *ProfileCache is valid and caches nothing.
type ProfileCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.RWMutex
	live    bool
	gen     uint64
	entries map[string]cachedProfile
}

type cachedProfile struct {
	user    User
	expires time.Time
}

// NewProfileCache returns a cache of at most max profiles, each kept at most
// ttl; it starts off until SetLive(true). max ≤ 0 gives nil: no cache.
func NewProfileCache(ttl time.Duration, max int) *ProfileCache {
	if max <= 0 || ttl <= 0 {
		return nil
	}
	return &ProfileCache{ttl: ttl, max: max, now: time.Now, entries: make(map[string]cachedProfile)}
}

// lookup returns the cached profile of userID, or the generation a fill
// after a database read must present to store.
func (c *ProfileCache) lookup(userID string) (u User, gen uint64, hit bool) {
	if c == nil {
		return User{}, 0, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[userID]
	if ok && c.live && c.now().Before(e.expires) {
		return e.user, c.gen, true
	}
	return User{}, c.gen, false
}

// fill stores u unless the cache is off or anything was invalidated since
// gen was handed out: the read may then predate the change.
func (c *ProfileCache) fill(u User, gen uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || gen != c.gen {
		return
	}
	if _, ok := c.entries[u.UserID]; !ok && len(c.entries) >= c.max {
		c.evictOne()
	}
	c.entries[u.UserID] = cachedProfile{user: u, expires: c.now().Add(c.ttl)}
}

// evictOne drops an expired entry if the first few looked at include one,
// else any: map iteration order is random, which is all the policy needs
// for a cache whose entries are cheap to reload.
func (c *ProfileCache) evictOne() {
	now := c.now()
	var victim string
	n := 0
	for id, e := range c.entries {
		victim = id
		if !now.Before(e.expires) || n == 8 {
			break
		}
		n++
	}
	delete(c.entries, victim)
}

// Forget drops userID's profile after it changed.
func (c *ProfileCache) Forget(userID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, userID)
}

// SetLive turns the cache on (the invalidation feed is connected) or off
// (it is not); either way it starts empty, because changes made while the
// feed was down were never announced to it.
func (c *ProfileCache) SetLive(live bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = live
	clear(c.entries)
}
