// Package audittest provides an audit.Recorder for tests that check which
// security events code records.
package audittest

import (
	"context"
	"slices"
	"sync"

	"github.com/moreline/moreid/platform/audit"
)

// Recorder keeps the events recorded, in order. It is safe for concurrent
// use: servers under test record from their request goroutines.
type Recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

var _ audit.Recorder = (*Recorder)(nil)

// Record keeps e.
func (r *Recorder) Record(_ context.Context, e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of every event recorded so far.
func (r *Recorder) Events() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Take returns the events recorded since the last Take and forgets them,
// so a test can look at what each step alone recorded.
func (r *Recorder) Take() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}
