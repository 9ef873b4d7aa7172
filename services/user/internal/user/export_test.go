package user

import "sync"

// HoldHashSlots takes every computation slot of h, so that the next hash or
// verification waits, and returns the (idempotent) function that gives them
// back. Tests use it to observe that a code path really computes a hash.
func HoldHashSlots(h *Hasher) (release func()) {
	for range cap(h.sem) {
		h.sem <- struct{}{}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for range cap(h.sem) {
				<-h.sem
			}
		})
	}
}
