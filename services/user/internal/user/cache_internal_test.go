package user

import (
	"testing"
	"time"
)

// The cache's rules, one step sequence each: what a GetUser after those
// steps would be served (the cached username, or "" for a database read).
func TestProfileCacheRules(t *testing.T) {
	type step func(c *ProfileCache, clock *time.Time)
	read := func(id, name string) step { // a miss followed by its fill
		return func(c *ProfileCache, _ *time.Time) {
			if _, gen, hit := c.lookup(id); !hit {
				c.fill(User{UserID: id, Username: name}, gen)
			}
		}
	}
	// racingRead is a read whose database answer arrives only after
	// between ran: an invalidation in between must keep it out.
	racingRead := func(id, name string, between step) step {
		return func(c *ProfileCache, clock *time.Time) {
			_, gen, _ := c.lookup(id)
			between(c, clock)
			c.fill(User{UserID: id, Username: name}, gen)
		}
	}
	forget := func(id string) step { return func(c *ProfileCache, _ *time.Time) { c.Forget(id) } }
	live := func(on bool) step { return func(c *ProfileCache, _ *time.Time) { c.SetLive(on) } }
	wait := func(d time.Duration) step { return func(_ *ProfileCache, clock *time.Time) { *clock = clock.Add(d) } }

	tests := []struct {
		name  string
		steps []step
		id    string
		want  string
	}{
		{"a read is served from memory next time", []step{live(true), read("alice", "A1")}, "alice", "A1"},
		{"nothing is kept before the feed is live", []step{read("alice", "A1"), live(true)}, "alice", ""},
		{"going off empties the cache", []step{live(true), read("alice", "A1"), live(false), live(true)}, "alice", ""},
		{"off: reads are not kept", []step{live(true), live(false), read("alice", "A1")}, "alice", ""},
		{"a forgotten user is read again", []step{live(true), read("alice", "A1"), forget("alice")}, "alice", ""},
		{"forgetting one user keeps the others", []step{live(true), read("alice", "A1"), read("bob", "B1"), forget("alice")}, "bob", "B1"},
		{"a read racing with a change is not kept", []step{live(true), racingRead("alice", "A-old", forget("alice"))}, "alice", ""},
		{"a read racing with a reconnect is not kept", []step{live(true), racingRead("alice", "A-old", func(c *ProfileCache, _ *time.Time) { c.SetLive(false); c.SetLive(true) })}, "alice", ""},
		{"a read after the change is kept", []step{live(true), read("alice", "A1"), forget("alice"), read("alice", "A2")}, "alice", "A2"},
		{"an entry expires after the TTL", []step{live(true), read("alice", "A1"), wait(time.Minute)}, "alice", ""},
		{"an entry lives until the TTL", []step{live(true), read("alice", "A1"), wait(time.Minute - time.Second)}, "alice", "A1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := time.Unix(1_700_000_000, 0)
			c := NewProfileCache(time.Minute, 10)
			c.now = func() time.Time { return clock }
			for _, s := range tt.steps {
				s(c, &clock)
			}
			u, _, hit := c.lookup(tt.id)
			got := ""
			if hit {
				got = u.Username
			}
			if got != tt.want {
				t.Errorf("served %q, want %q (\"\" = read from the database)", got, tt.want)
			}
		})
	}
}

func TestProfileCacheStaysWithinItsSize(t *testing.T) {
	c := NewProfileCache(time.Minute, 3)
	c.SetLive(true)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		_, gen, _ := c.lookup(id)
		c.fill(User{UserID: id}, gen)
		if n := len(c.entries); n > 3 {
			t.Fatalf("after filling %s: %d entries, want at most 3", id, n)
		}
	}
	if _, _, hit := c.lookup("e"); !hit {
		t.Error("the newest entry was evicted instead of an older one")
	}
}

func TestNoProfileCache(t *testing.T) {
	for _, c := range []*ProfileCache{NewProfileCache(time.Minute, 0), NewProfileCache(0, 10)} {
		if c != nil {
			t.Fatalf("got a cache of %d/%v, want none", c.max, c.ttl)
		}
		// A nil cache is valid and keeps nothing.
		c.SetLive(true)
		_, gen, _ := c.lookup("a")
		c.fill(User{UserID: "a"}, gen)
		c.Forget("a")
		if _, _, hit := c.lookup("a"); hit {
			t.Error("a nil cache served a profile")
		}
	}
}
