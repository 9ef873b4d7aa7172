package signing

import (
	"crypto/rsa"
	"time"
)

// Key is one row of oidc_signing_keys, with its private key once opened
// (nil when it could not be: a KEK that is not configured).
type Key struct {
	KID        string
	Alg        string
	PublicJWK  []byte // JSON
	Private    *rsa.PrivateKey
	CreatedAt  time.Time
	ActivateAt time.Time
	RetiredAt  *time.Time // nil while no newer key has taken over
}

// The states ListSigningKeys shows.
const (
	StateNext    = "next"    // published, not signing yet
	StateCurrent = "current" // signs now
	StateRetired = "retired" // a newer key signs; still published for its tokens
	StateExpired = "expired" // every token it signed has expired: no longer published
)

// Rules decide, from the rows and the clock alone, which key signs and which
// are published, so every replica answers the same with no coordination.
type Rules struct {
	// Propagation is how long a rotated-in key is published before it signs,
	// and how long a retired key may still sign (a gateway that read the
	// JWKS just before the switch).
	Propagation time.Duration
	// Lifetime is the longest a signed token lives: max(ID token TTL,
	// access token TTL). A retired key stays published that long.
	Lifetime time.Duration
}

// Signer is the key that signs at now: the one with the newest activate_at
// not after now. ok is false when no key is active yet.
func Signer(keys []Key, now time.Time) (Key, bool) {
	var best Key
	found := false
	for _, k := range keys {
		if k.ActivateAt.After(now) {
			continue
		}
		if !found || k.ActivateAt.After(best.ActivateAt) || (k.ActivateAt.Equal(best.ActivateAt) && k.KID > best.KID) {
			best, found = k, true
		}
	}
	return best, found
}

// ExpSlack is how far beyond now+Lifetime a signed token's exp may reach:
// the signer computes exp from its own clock.
const ExpSlack = time.Minute

// Published reports whether k belongs in the JWKS at now: published ahead of
// signing, not retired, or retired less recently than the last token it may
// sign can live. A retired key still signs for Propagation (MaySign), and
// that token lives Lifetime (+ExpSlack), so it stays published that long.
func (r Rules) Published(k Key, now time.Time) bool {
	return k.ActivateAt.After(now) || k.RetiredAt == nil || k.RetiredAt.Add(r.Propagation+r.Lifetime+ExpSlack).After(now)
}

// MaySign reports whether a signing request naming k is honoured at now:
// k has activated and is the signer, or retired less than Propagation ago,
// so a gateway that still names it (its JWKS read is a few seconds old)
// is not refused. signer is Signer's answer.
func (r Rules) MaySign(k Key, signer Key, now time.Time) bool {
	if k.ActivateAt.After(now) || k.Private == nil {
		return false
	}
	if k.KID == signer.KID {
		return true
	}
	return k.RetiredAt != nil && k.RetiredAt.Add(r.Propagation).After(now)
}

// State is k's state at now among keys (for ListSigningKeys).
func (r Rules) State(k Key, keys []Key, now time.Time) string {
	signer, ok := Signer(keys, now)
	switch {
	case k.ActivateAt.After(now):
		return StateNext
	case ok && signer.KID == k.KID:
		return StateCurrent
	case r.Published(k, now):
		return StateRetired
	default:
		return StateExpired
	}
}
