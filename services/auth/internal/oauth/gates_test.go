package oauth

import (
	"context"
	"testing"
	"time"
)

// The local gates admit a limit's number of attempts at a subject at once,
// queue the rest, and forget a subject nobody waits for.
func TestGates(t *testing.T) {
	var g gates
	l := Limits{PerUser: 2, PerIP: 3}
	a := Attempt{UserID: "alice", IP: "192.0.2.1"}
	ctx := context.Background()
	var unlocks []func()
	for range 2 {
		u, err := g.lock(ctx, a, l)
		if err != nil {
			t.Fatal(err)
		}
		unlocks = append(unlocks, u)
	}
	// A third at the same user and address waits (here: until its
	// context ends, which it does at once).
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.lock(done, a, l); err == nil {
		t.Fatal("a third attempt entered a gate of two")
	}
	// Another user at the same address takes the address's last place.
	u, err := g.lock(ctx, Attempt{UserID: "bob", IP: "192.0.2.1"}, l)
	if err != nil {
		t.Fatal(err)
	}
	unlocks = append(unlocks, u)
	// A waiter enters as soon as a place is given back.
	entered := make(chan func())
	go func() {
		u, err := g.lock(ctx, a, l)
		if err != nil {
			t.Error(err)
		}
		entered <- u
	}()
	unlocks[0]()
	select {
	case u := <-entered:
		unlocks[0] = u
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter never entered")
	}
	for _, u := range unlocks {
		u()
	}
	if len(g.m) != 0 {
		t.Fatalf("%d gates left with nobody in them", len(g.m))
	}
}
