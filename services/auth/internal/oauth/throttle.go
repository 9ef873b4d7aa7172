package oauth

import (
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/telemetry"
)

// Limits are the brute-force limits of SPEC section 5, counted in Redis and
// so shared by every instance (README "Brute-force policy"):
//
//   - PerUser wrong passwords per (user_id, client address) per window:
//     then that address is refused for that user until its window ends.
//   - PerIP failed sign-ins (any user, wrong login codes too) per client
//     address (IPv6: per /64) per window.
//   - PerAccount wrong passwords at one user_id from every address: above
//     it the account is not locked; each address may have one attempt at a
//     time at it and none once it has failed (until its own window ends),
//     so an address that never failed (the user's own) still signs in,
//     while guessing from many addresses slows down to one guess per
//     address and window.
//   - MaxStateFails wrong answers per state (then the state is burned) and
//     MaxUCAFails wrong passwords per UCA on the page (then the page
//     refuses further sign-ins for that UCA; a signed-in user can still
//     confirm it).
//
// Every attempt reserves its place on each of these before the password or
// login code is looked at, so N parallel guesses cost what N sequential
// ones do; a success gives its place back, a failure keeps it.
type Limits struct {
	PerUser    int           // MOREID_LOGIN_MAX_FAILURES_PER_USER
	PerAccount int           // MOREID_LOGIN_MAX_FAILURES_PER_ACCOUNT
	PerIP      int           // MOREID_LOGIN_MAX_FAILURES_PER_IP
	Window     time.Duration // MOREID_LOGIN_FAILURE_WINDOW
	// KeyStates caps the states one API key may hold at once (states it was
	// issued within a state's lifetime, an upper bound); 0 is no cap.
	// MOREID_KEY_MAX_STATES.
	KeyStates int
}

// DefaultLimits: 10 failures per user_id and address, 50 per address, 100
// per user_id from everywhere, in 15 minutes. The address limit is higher
// because many users can share one (offices, carrier NAT).
var DefaultLimits = Limits{PerUser: 10, PerAccount: 100, PerIP: 50, Window: 15 * time.Minute}

// withDefaults fills the unset fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	if l.PerUser <= 0 {
		l.PerUser = DefaultLimits.PerUser
	}
	if l.PerAccount <= 0 {
		l.PerAccount = DefaultLimits.PerAccount
	}
	if l.PerIP <= 0 {
		l.PerIP = DefaultLimits.PerIP
	}
	if l.Window <= 0 {
		l.Window = DefaultLimits.Window
	}
	return l
}

// MaxStateFails is how many failed logins (wrong passwords or wrong login
// codes) burn a state, and MaxUCAFails how many wrong passwords on a UCA's
// page end sign-ins there (SPEC section 5).
const (
	MaxStateFails = 5
	MaxUCAFails   = 5
)

// Names of the limits, as moreid_throttled_total, audit details and the store
// know them.
const (
	LimitUser    = "user" // per (user_id, client address)
	LimitAccount = "account"
	LimitIP      = "ip"
	LimitState   = "state"
	LimitUCA     = "uca"
	LimitKeyRate = "key_rate"
	LimitStates  = "key_states"
)

// maxSlotWait bounds how long an attempt waits for a place held by
// attempts in flight (the request's own deadline usually ends it first).
const maxSlotWait = 30 * time.Second

// Attempt is one sign-in attempt: the subjects it is counted against ("" for
// none) and the id naming its reservations.
type Attempt struct {
	ID        string
	KeyID     int64  // the state's key
	StateHash string // a password login's or login_safe's state
	UCAHash   string // the page's UCA
	UserID    string // with IP: the per-(user, address) and account limits
	IP        string // a client address subject (address or IPv6 /64)
}

// Verdict is what a reservation found.
type Verdict struct {
	Granted bool
	// NoState: the state is unknown, expired or another key's.
	NoState bool
	// Busy: attempts in flight fill the limit; the attempt may be admitted
	// when they end.
	Busy bool
	// Limit names the limit that refused or is busy.
	Limit string
	// RetryAfter is the time left in the refusing limit's window.
	RetryAfter time.Duration
}

// Join combines the verdicts of one attempt's subjects. The answer must
// not depend on the order of parallel attempts beyond what the counters
// say, so it is fixed here: a missing state first (invalid_state, as
// without any limit), then refusals (the longest wait), then busy.
func Join(vs ...Verdict) Verdict {
	out := Verdict{Granted: true}
	rank := func(v Verdict) int {
		switch {
		case v.NoState:
			return 3
		case !v.Granted && !v.Busy:
			return 2
		case v.Busy:
			return 1
		}
		return 0
	}
	for _, v := range vs {
		if r := rank(v); r > rank(out) || (r == 2 && rank(out) == 2 && v.RetryAfter > out.RetryAfter) {
			out = v
		}
	}
	return out
}

type clientIPCtx struct{}

// WithClientIP returns ctx carrying the caller's client IP, as the server's
// interceptor resolved it (ARCHITECTURE "API keys on gRPC").
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPCtx{}, ip)
}

// ClientIP is the caller's client IP, "" when unknown (then no per-IP limit
// applies: only in-process callers have none).
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPCtx{}).(string)
	return ip
}

// ipSubject is what a client IP is counted as: the address itself for
// IPv4, its /64 for IPv6, since anyone with one IPv6 address usually holds
// the whole /64 and could otherwise rotate through it.
func ipSubject(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// throttledBy is the cause of a rate_limited error: which limit refused.
// Logged and audited, never shown.
type throttledBy string

func (t throttledBy) Error() string { return "refused by the " + string(t) + " limit" }

// throttled is the rate_limited answer of limit, Retry-After rounded up,
// counted in tel.
func throttled(tel *telemetry.Telemetry, limit string, wait time.Duration) error {
	tel.Throttled(limit)
	return &apierr.Error{Kind: apierr.RateLimited, Err: throttledBy(limit), RetryAfterSeconds: max(1, int(seconds(wait)))}
}

// attempt is a granted reservation, to be settled once the answer is known.
type attempt struct {
	Attempt
	unlock func()
}

// reserve admits an attempt on the subjects of a (the caller's client IP is
// added), before anything secret is checked: granted, or invalid_state, or
// rate_limited. An attempt that finds a limit filled by attempts in
// flight waits for them (a login storm of one account from one NAT
// address is legitimate, and so is a double-submitted form) rather than
// being refused; it is refused only by counted failures, so whoever sends
// a burst gets the answers a sequence would have got.
//
// Why no answer depends on which parallel check ran first: an attempt's
// answer is decided by its reservation, taken before its secret is
// checked, or by its secret once it holds one. Without a reservation it is
// invalid_state or rate_limited whatever its password. With one, a state
// holds failures + holds <= MaxStateFails and is deleted only when counted
// failures reach MaxStateFails, which cannot happen while this attempt
// holds a place: so a right password (or login code) with a reservation
// always finds its state and gets its code, unless another right answer
// consumed the state first.
func (s *Service) reserve(ctx context.Context, a Attempt) (*attempt, error) {
	a.ID = secret.New("", 16, secret.Alphanumeric)
	// Waiting attempts of this replica queue here, in order, instead of
	// asking Redis again and again; Redis still decides.
	unlock, err := s.gates.lock(ctx, a, s.limits)
	if err != nil {
		return nil, waitEnded(err)
	}
	wait, deadline := 5*time.Millisecond, time.Now().Add(maxSlotWait)
	for {
		v, err := s.store.Reserve(ctx, a, s.limits)
		if err != nil {
			unlock()
			return nil, err
		}
		switch {
		case v.Granted:
			return &attempt{Attempt: a, unlock: unlock}, nil
		case v.NoState:
			unlock()
			return nil, apierr.New(apierr.InvalidState)
		case !v.Busy:
			unlock()
			return nil, throttled(s.tel, v.Limit, v.RetryAfter)
		}
		// Busy with another replica's attempts: ask again shortly.
		t := time.NewTimer(wait/2 + mathrand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			unlock()
			return nil, waitEnded(ctx.Err())
		case <-t.C:
		}
		if time.Now().After(deadline) {
			unlock()
			return nil, throttled(s.tel, v.Limit, time.Second)
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// waitEnded is the answer to an attempt whose caller stopped waiting for a
// place (its deadline passed, or it went away): the service is too busy.
func waitEnded(err error) error {
	return apierr.Wrap(apierr.Unavailable, fmt.Errorf("waiting for a sign-in place: %w", err))
}

// settle ends an attempt: a failure (wrong password or login code) keeps
// its places as counted failures, and may burn its state; anything else
// gives them back. A failure that cannot be counted is the request's error;
// a release that fails is only logged: the answer stands. Either way the
// store keeps trying to give the places back (redisstore dropLater), and
// their lease ends them at the latest.
func (s *Service) settle(ctx context.Context, a *attempt, failed bool) error {
	defer a.unlock()
	// Settled even when the request was cancelled meanwhile.
	ctx = context.WithoutCancel(ctx)
	if !failed {
		if err := s.store.Release(ctx, a.Attempt, s.limits); err != nil {
			s.log.WarnContext(ctx, "release sign-in attempt", "error", err.Error())
		}
		return nil
	}
	burned, err := s.store.Fail(ctx, a.Attempt, s.limits)
	if err != nil {
		return err
	}
	if burned {
		s.tel.Throttled(LimitState)
		s.log.WarnContext(ctx, "too many failed logins; state burned", "state", short(a.StateHash), "key", a.KeyID)
	}
	return nil
}

// gates queue one replica's attempts at the same (user, address) and the
// same address, at most as many at a time as their limits admit in all.
type gates struct {
	mu sync.Mutex
	m  map[string]*gate
}

type gate struct {
	slots chan struct{}
	users int
}

// lock takes a place on a's per-(user, address) and per-address gates, in
// that order (every attempt takes them in the same order: no deadlock),
// and returns what gives them back.
func (g *gates) lock(ctx context.Context, a Attempt, l Limits) (unlock func(), err error) {
	type place struct {
		key string
		n   int
	}
	var want []place
	if a.UserID != "" && a.IP != "" {
		want = append(want, place{"u\x00" + a.UserID + "\x00" + a.IP, l.PerUser})
	}
	if a.IP != "" {
		want = append(want, place{"i\x00" + a.IP, l.PerIP})
	}
	var held []string
	unlock = func() {
		for _, k := range held {
			g.leave(k)
		}
	}
	for _, p := range want {
		if err := g.enter(ctx, p.key, p.n); err != nil {
			unlock()
			return nil, err
		}
		held = append(held, p.key)
	}
	return unlock, nil
}

func (g *gates) enter(ctx context.Context, key string, n int) error {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*gate{}
	}
	gt := g.m[key]
	if gt == nil {
		gt = &gate{slots: make(chan struct{}, n)}
		g.m[key] = gt
	}
	gt.users++
	g.mu.Unlock()
	select {
	case gt.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		g.forget(key, gt)
		return ctx.Err()
	}
}

func (g *gates) leave(key string) {
	g.mu.Lock()
	gt := g.m[key]
	g.mu.Unlock()
	<-gt.slots
	g.forget(key, gt)
}

// forget drops a gate nobody uses any more, so the map holds only the
// subjects with attempts in flight.
func (g *gates) forget(key string, gt *gate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gt.users--
	if gt.users == 0 {
		delete(g.m, key)
	}
}
