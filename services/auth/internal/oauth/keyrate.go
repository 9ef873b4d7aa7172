package oauth

import (
	"context"
	"time"

	"github.com/moreline/moreid/platform/telemetry"
)

// KeyRateStore counts an API key's requests per second, for every
// instance at once.
type KeyRateStore interface {
	// CountKeyRequest adds one to the key's counter of the given unix
	// second and returns it.
	CountKeyRequest(ctx context.Context, keyID, second int64) (int64, error)
}

// KeyRate limits the AuthService requests of each API key to a number per
// second (MOREID_KEY_RATE_LIMIT), in a fixed one-second window counted in
// Redis, so the limit means the same however many replicas serve the key
// and however the balancer spreads its calls. It costs one Redis round
// trip per call, only when on.
type KeyRate struct {
	store     KeyRateStore
	perSecond int64
	now       func() time.Time
	tel       *telemetry.Telemetry
}

// NewKeyRate returns the limiter of perSecond requests (0: no limit) by the
// clock now, counting refusals in tel (nil: not counted).
func NewKeyRate(store KeyRateStore, perSecond int, now func() time.Time, tel *telemetry.Telemetry) *KeyRate {
	return &KeyRate{store: store, perSecond: int64(perSecond), now: now, tel: tel}
}

// Admit counts a request of key and refuses it with rate_limited
// (Retry-After: the rest of this second, rounded up to 1) beyond the limit.
func (r *KeyRate) Admit(ctx context.Context, keyID int64) error {
	if r == nil || r.perSecond <= 0 {
		return nil
	}
	n, err := r.store.CountKeyRequest(ctx, keyID, r.now().Unix())
	if err != nil {
		return err
	}
	if n > r.perSecond {
		return throttled(r.tel, LimitKeyRate, time.Second)
	}
	return nil
}
