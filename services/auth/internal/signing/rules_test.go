package signing

import (
	"crypto/rsa"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr(t time.Time) *time.Time { return &t }

// A rotation at t0 with 60 s propagation and a 1 h lifetime: old signs until
// t0+60s (and may still sign for 60 s more), new from t0+60s; old stays
// published until the last token it may sign has expired: t0+60s+60s+1h
// (+ExpSlack).
func TestRulesAtBoundaries(t *testing.T) {
	const prop, life = 60 * time.Second, time.Hour
	r := Rules{Propagation: prop, Lifetime: life}
	priv := &rsa.PrivateKey{}
	old := Key{KID: "old", ActivateAt: at(-24 * time.Hour), RetiredAt: ptr(at(prop)), Private: priv}
	next := Key{KID: "new", ActivateAt: at(prop), Private: priv}
	keys := []Key{old, next}
	tests := []struct {
		name         string
		now          time.Time
		signer       string
		oldPublished bool
		oldMaySign   bool
		newMaySign   bool
		oldState     string
		newState     string
	}{
		{"just rotated", at(0), "old", true, true, false, StateCurrent, StateNext},
		{"a moment before the switch", at(prop - time.Nanosecond), "old", true, true, false, StateCurrent, StateNext},
		{"the switch", at(prop), "new", true, true, true, StateRetired, StateCurrent},
		{"last moment a stale signer is honoured", at(2*prop - time.Nanosecond), "new", true, true, true, StateRetired, StateCurrent},
		{"stale signer refused", at(2 * prop), "new", true, false, true, StateRetired, StateCurrent},
		{"old's last token signed by a stale signer still verifies", at(2*prop + life - time.Nanosecond), "new", true, false, true, StateRetired, StateCurrent},
		{"last moment old is published", at(2*prop + life + ExpSlack - time.Nanosecond), "new", true, false, true, StateRetired, StateCurrent},
		{"old tokens all expired", at(2*prop + life + ExpSlack), "new", false, false, true, StateExpired, StateCurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := Signer(keys, tt.now)
			if !ok || s.KID != tt.signer {
				t.Errorf("signer %q (%v), want %q", s.KID, ok, tt.signer)
			}
			if got := r.Published(old, tt.now); got != tt.oldPublished {
				t.Errorf("old published %v, want %v", got, tt.oldPublished)
			}
			if !r.Published(next, tt.now) {
				t.Error("new not published")
			}
			if got := r.MaySign(old, s, tt.now); got != tt.oldMaySign {
				t.Errorf("old may sign %v, want %v", got, tt.oldMaySign)
			}
			if got := r.MaySign(next, s, tt.now); got != tt.newMaySign {
				t.Errorf("new may sign %v, want %v", got, tt.newMaySign)
			}
			if got := r.State(old, keys, tt.now); got != tt.oldState {
				t.Errorf("old state %s, want %s", got, tt.oldState)
			}
			if got := r.State(next, keys, tt.now); got != tt.newState {
				t.Errorf("new state %s, want %s", got, tt.newState)
			}
		})
	}
}

func TestSignerNone(t *testing.T) {
	tests := []struct {
		name string
		keys []Key
	}{
		{"no keys", nil},
		{"only a future key", []Key{{KID: "f", ActivateAt: at(time.Second)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, ok := Signer(tt.keys, t0); ok {
				t.Fatalf("signer %q, want none", k.KID)
			}
		})
	}
}

// A key whose private part could not be opened is published, never used.
func TestMaySignNeedsThePrivateKey(t *testing.T) {
	r := Rules{Propagation: time.Minute, Lifetime: time.Hour}
	k := Key{KID: "k", ActivateAt: at(-time.Minute)}
	if r.MaySign(k, k, t0) {
		t.Fatal("a key without its private part may sign")
	}
	if !r.Published(k, t0) {
		t.Fatal("a key without its private part is not published")
	}
}
