package user_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/services/user/internal/pgstore"
	"github.com/moreline/moreid/services/user/internal/user"
)

// replica is one user-service instance over the fixture's database: its
// own profile cache, fed by its own change listener, over a store that
// counts the reads reaching Postgres.
type replica struct {
	svc   *user.Service
	reads atomic.Int64
}

type countingStore struct {
	user.Store
	reads *atomic.Int64
}

func (s countingStore) Get(ctx context.Context, userID string) (user.Record, error) {
	s.reads.Add(1)
	return s.Store.Get(ctx, userID)
}

// newReplica starts a replica whose listener waits retry before
// reconnecting.
func newReplica(t *testing.T, f *fixture, retry time.Duration) *replica {
	t.Helper()
	r := &replica{}
	cache := user.NewProfileCache(time.Minute, 100)
	r.svc = user.NewService(countingStore{Store: f.store, reads: &r.reads}, f.hasher, cache, avatar, nil, nil)
	l := pgdb.NewListener(f.dsn, pgstore.ChangesChannel, cache.Forget, cache.SetLive, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	l.Retry = retry
	unit := l.Unit()
	done := make(chan struct{})
	go func() { defer close(done); _ = unit.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		unit.Stop(ctx)
		<-done
	})
	return r
}

// get reads userID and says whether the read reached Postgres.
func (r *replica) get(t *testing.T, userID string) (user.User, bool) {
	t.Helper()
	before := r.reads.Load()
	u, err := r.svc.GetUser(context.Background(), userID)
	if err != nil {
		t.Fatalf("GetUser(%s): %v", userID, err)
	}
	return u, r.reads.Load() != before
}

// eventually polls GetUser until cond holds and returns how long that took
// (logged, not bounded: the deadline of 10 s only ends a broken test, and
// is generous for a loaded machine).
func (r *replica) eventually(t *testing.T, userID, what string, cond func(user.User) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		u, _ := r.get(t, userID)
		if cond(u) {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: still %+v after 10 s", what, u)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestProfileCacheAcrossReplicas checks what two replicas behind one load
// balancer must show: reads served from memory, and every change, made by
// either replica or by an operator in psql, seen by the other at once
// (within the notification's delivery, measured here).
func TestProfileCacheAcrossReplicas(t *testing.T) {
	f := newFixture(t, cheap)
	a, b := newReplica(t, f, 50*time.Millisecond), newReplica(t, f, 50*time.Millisecond)
	ctx := context.Background()
	f.create(t, alice)

	a.eventually(t, "alice", "the cache goes live", func(user.User) bool {
		_, db := a.get(t, "alice")
		return !db
	})
	for range 100 {
		if _, db := a.get(t, "alice"); db {
			t.Fatal("a cached profile was read from Postgres again")
		}
	}

	// Each change is made while a holds alice in memory.
	name := "爱丽丝·新"
	bio := "set in psql"
	changes := []struct {
		name   string
		change func() error
		seen   func(user.User) bool
	}{
		{"username changed on the other replica", func() error {
			_, err := b.svc.UpdateProfile(ctx, "alice", user.ProfileChange{Username: &name})
			return err
		}, func(u user.User) bool { return u.Username == name }},
		{"bio changed by an operator in psql", func() error {
			return f.db.Exec("UPDATE users SET bio = ? WHERE user_id = 'alice'", bio).Error
		}, func(u user.User) bool { return u.Bio == bio }},
		{"disabled on the other replica", func() error {
			_, err := b.svc.SetDisabled(ctx, "alice", true)
			return err
		}, func(u user.User) bool { return u.Disabled }},
		{"enabled again", func() error {
			_, err := b.svc.SetDisabled(ctx, "alice", false)
			return err
		}, func(u user.User) bool { return !u.Disabled }},
	}
	for _, c := range changes {
		a.get(t, "alice") // cached before the change
		if err := c.change(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		d := a.eventually(t, "alice", c.name, c.seen)
		t.Logf("%s: seen by the other replica after %v", c.name, d)
	}

	// A replica's own write is visible to its next read, with no wait.
	own := "changed here"
	if _, err := a.svc.UpdateProfile(ctx, "alice", user.ProfileChange{Bio: &own}); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.get(t, "alice"); u.Bio != own {
		t.Errorf("right after its own update the replica served bio %q", u.Bio)
	}
}

// TestProfileCacheOffWithoutItsFeed checks that a replica whose listener
// lost its connection serves nothing from memory: a change it was not told
// about is visible at once.
func TestProfileCacheOffWithoutItsFeed(t *testing.T) {
	f := newFixture(t, cheap)
	a := newReplica(t, f, time.Hour) // lost means lost for this test
	f.create(t, alice)
	a.eventually(t, "alice", "the cache goes live", func(user.User) bool {
		_, db := a.get(t, "alice")
		return !db
	})

	if err := f.db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'moreid listen ' || ?`, pgstore.ChangesChannel).Error; err != nil {
		t.Fatal(err)
	}
	a.eventually(t, "alice", "reads go to Postgres once the feed is lost", func(user.User) bool {
		_, db := a.get(t, "alice")
		return db
	})
	// Nobody listens now: this change is announced to no one.
	if err := f.db.Exec("UPDATE users SET username = 'unannounced' WHERE user_id = 'alice'").Error; err != nil {
		t.Fatal(err)
	}
	if u, db := a.get(t, "alice"); u.Username != "unannounced" || !db {
		t.Errorf("served %q (from Postgres: %v), want the unannounced change read from Postgres", u.Username, db)
	}
}
