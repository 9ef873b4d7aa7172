package oauth

import (
	"context"
	"net/netip"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/telemetry"
)

// Limits are the brute-force limits of SPEC section 5: failed sign-ins
// (wrong passwords on /login and on the confirmation page, wrong login
// codes) counted per user_id and per client IP in fixed windows shared by
// every instance. At a limit every attempt is refused with rate_limited,
// a correct password included, until the window ends.
type Limits struct {
	PerUser int           // MOREID_LOGIN_MAX_FAILURES_PER_USER
	PerIP   int           // MOREID_LOGIN_MAX_FAILURES_PER_IP
	Window  time.Duration // MOREID_LOGIN_FAILURE_WINDOW
}

// DefaultLimits: 10 failures per user_id and 50 per client IP in 15
// minutes. The IP limit is higher because many users can share an address
// (offices, carrier NAT).
var DefaultLimits = Limits{PerUser: 10, PerIP: 50, Window: 15 * time.Minute}

// withDefaults fills the unset fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	if l.PerUser <= 0 {
		l.PerUser = DefaultLimits.PerUser
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
// codes) burn a state (SPEC section 5).
const MaxStateFails = 5

// Names of the limits, as telemetry.Throttled and audit details know them.
const (
	limitUser  = "user"
	limitIP    = "ip"
	limitState = "state"
)

// FailureCounts are the current failure counters of one user_id and one
// client IP, with the time left in their windows.
type FailureCounts struct {
	User    int64
	UserTTL time.Duration
	IP      int64
	IPTTL   time.Duration
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

func (t throttledBy) Error() string { return "refused by the " + string(t) + " failure limit" }

// checkLimits refuses with rate_limited, before any password or login code
// is looked at, when userID ("" for none) or the caller's IP is at its
// limit. Retry-After is the time left in the window, rounded up.
func (s *Service) checkLimits(ctx context.Context, userID string) error {
	ip := ipSubject(ClientIP(ctx))
	c, err := s.store.Failures(ctx, userID, ip)
	if err != nil {
		return err
	}
	var limit string
	var wait time.Duration
	if userID != "" && c.User >= int64(s.limits.PerUser) {
		limit, wait = limitUser, c.UserTTL
	}
	if ip != "" && c.IP >= int64(s.limits.PerIP) && (limit == "" || c.IPTTL > wait) {
		limit, wait = limitIP, c.IPTTL
	}
	if limit == "" {
		return nil
	}
	telemetry.Throttled(limit)
	return &apierr.Error{Kind: apierr.RateLimited, Err: throttledBy(limit), RetryAfterSeconds: max(1, int(seconds(wait)))}
}

// countFailure adds a failed sign-in to the counters of userID ("" for
// none) and the caller's IP. A success resets neither: the user counter
// says how many wrong guesses this account took in the window, and a
// window is short enough that a user who mistyped a few times is not
// hindered by the count.
func (s *Service) countFailure(ctx context.Context, userID string) error {
	return s.store.CountFailure(ctx, userID, ipSubject(ClientIP(ctx)), s.limits.Window)
}

// countStateFailure counts a failed login against a state; the
// MaxStateFails-th burns it.
func (s *Service) countStateFailure(ctx context.Context, key Key, stateHash string) error {
	burned, err := s.store.CountStateFailure(ctx, stateHash, key.ID, MaxStateFails)
	if err != nil {
		return err
	}
	if burned {
		s.stateBurned(ctx, key, stateHash)
	}
	return nil
}

func (s *Service) stateBurned(ctx context.Context, key Key, stateHash string) {
	telemetry.Throttled(limitState)
	s.log.WarnContext(ctx, "too many failed logins; state burned", "state", short(stateHash), "key", key.ID)
}
