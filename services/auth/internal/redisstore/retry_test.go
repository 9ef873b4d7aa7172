package redisstore_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/testenv"
	"github.com/moreline/moreid/platform/testenv/faultproxy"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
)

// readTimeout is the go-redis read timeout of the proxied client, and hold
// how long the proxy holds a reply back: far above it, so that a held reply
// always times out however slow the machine (a hold only ever makes a reply
// later).
const (
	readTimeout = 500 * time.Millisecond
	hold        = 3 * readTimeout
)

// slowStore is a store whose Redis replies pass through a fault proxy. Its
// client has platform/redisdb's options with go-redis's retries on
// (MaxRetries 1, as in production: a command whose reply timed out is sent
// again) and a known read timeout. direct reads the same keyspace without
// the proxy.
func slowStore(t *testing.T) (s *redisstore.Store, p *faultproxy.Proxy, direct redis.UniversalClient, prefix string) {
	t.Helper()
	direct, prefix = testenv.Redis(t)
	u, err := url.Parse(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	p = faultproxy.New(t, u.Host)
	u.Host = p.Addr
	opts, err := redisdb.Options(u.String(), redisdb.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	opts.ReadTimeout = readTimeout
	opts.MaxRetries = 1
	rdb := redis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return redisstore.New(rdb, prefix, redisdb.DefaultTimeout), p, direct, prefix
}

// consumer is one consuming call under test: prepare writes a record and
// returns the call; the call reports whether it got the record.
type consumer struct {
	name    string
	prepare func(t *testing.T, s *redisstore.Store) (call func() (bool, error), gone func() bool)
}

func consumers() []consumer {
	ctx := context.Background()
	return []consumer{
		{"ConsumeState", func(t *testing.T, s *redisstore.Store) (func() (bool, error), func() bool) {
			sh := hash()
			if err := s.PutState(ctx, sh, 1, time.Minute); err != nil {
				t.Fatal(err)
			}
			return func() (bool, error) { return s.ConsumeState(ctx, sh, 1) },
				func() bool { _, found, _ := s.State(ctx, sh); return !found }
		}},
		{"RedeemCode", func(t *testing.T, s *redisstore.Store) (func() (bool, error), func() bool) {
			ch, sh := hash(), hash()
			if err := s.PutCode(ctx, ch, oauth.CodeRecord{KeyID: 1, StateHash: sh, User: 7, UserID: "alice"}, time.Minute); err != nil {
				t.Fatal(err)
			}
			return func() (bool, error) {
					r, err := s.RedeemCode(ctx, ch, 1, sh, hash())
					return r.Outcome == oauth.Redeemed, err
				},
				func() bool { _, found, _ := s.Code(ctx, ch); return !found }
		}},
		{"TakeUCA", func(t *testing.T, s *redisstore.Store) (func() (bool, error), func() bool) {
			uh := hash()
			if err := s.PutUCA(ctx, uh, oauth.UCARecord{KeyID: 1, StateHash: "s"}, time.Minute); err != nil {
				t.Fatal(err)
			}
			return func() (bool, error) {
					rec, found, err := s.TakeUCA(ctx, uh)
					return found && rec.StateHash == "s", err
				},
				func() bool { _, found, _ := s.UCA(ctx, uh); return !found }
		}},
		{"RedeemLoginCode", func(t *testing.T, s *redisstore.Store) (func() (bool, error), func() bool) {
			sh, lh := hash(), hash()
			if err := s.PutState(ctx, sh, 1, time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := s.PutLoginCode(ctx, sh, lh, oauth.LoginCodeRecord{KeyID: 1, User: 7, UserID: "alice"}, time.Minute); err != nil {
				t.Fatal(err)
			}
			return func() (bool, error) {
					rec, o, err := s.RedeemLoginCode(ctx, sh, lh, 1)
					return o == oauth.LoginRedeemed && rec.UserID == "alice", err
				},
				func() bool { _, found, _ := s.LoginCode(ctx, sh, lh); return !found }
		}},
		{"DeleteToken", func(t *testing.T, s *redisstore.Store) (func() (bool, error), func() bool) {
			th := hash()
			if err := s.PutToken(ctx, th, oauth.TokenRecord{KeyID: 1, UserID: "alice"}, time.Minute); err != nil {
				t.Fatal(err)
			}
			return func() (bool, error) {
					rec, found, err := s.DeleteToken(ctx, th)
					return found && rec.UserID == "alice", err
				},
				func() bool { _, found, _ := s.Token(ctx, th); return !found }
		}},
	}
}

// A reply slower than the read timeout makes go-redis send the script
// again; the second run must answer what the first one did (the record is
// this call's), not "gone". When go-redis's retry is slow too, the store
// asks once more itself. Either way the call gets the record, exactly once.
func TestConsumingCallsSurviveSlowReplies(t *testing.T) {
	for _, held := range []struct {
		name    string
		replies int
		// minReasks: the store asks again at least this often (more
		// only if the machine is slow enough to delay a reply itself).
		minReasks int64
	}{
		{"first reply late: go-redis's retry answers", 1, 0},
		{"both replies late: the store's re-ask answers", 2, 1},
	} {
		for _, c := range consumers() {
			t.Run(held.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				s, p, _, _ := slowStore(t)
				call, gone := c.prepare(t, s)
				warmUp(t, s)
				before := p.Replies()
				p.DelayNext(held.replies, hold)
				began := time.Now()
				got, err := call()
				if err != nil || !got {
					t.Fatalf("call through a late reply = %v, %v; want the record", got, err)
				}
				t.Logf("answered in %v", time.Since(began).Round(time.Millisecond))
				if p.Replies()-before < int64(held.replies)+1 {
					t.Fatalf("%d replies forwarded: the late reply was never re-sent", p.Replies()-before)
				}
				if n := s.Reasks(); n < held.minReasks {
					t.Fatalf("%d re-asks by the store, want at least %d", n, held.minReasks)
				}
				if !gone() {
					t.Fatal("the record survived its consumption")
				}
				if again, err := call(); err != nil || again {
					t.Fatalf("a new attempt after the consumption = %v, %v; want nothing", again, err)
				}
			})
		}
	}
}

// When no reply arrives in time, the answer is unavailable, never a
// definite "gone" for a record this very call consumed.
func TestConsumingCallsUnavailableWhenEveryReplyIsLate(t *testing.T) {
	for _, c := range consumers() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, p, _, _ := slowStore(t)
			call, _ := c.prepare(t, s)
			p.DelayAll(hold)
			began := time.Now()
			got, err := call()
			p.DelayAll(0)
			if !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("call with every reply late = %v, %v; want unavailable", got, err)
			}
			t.Logf("unavailable after %v", time.Since(began).Round(time.Millisecond))
		})
	}
}

// warmUp runs every consuming script once, so that the calls under test
// find them in Redis's script cache: the late reply must be the script's,
// not a NOSCRIPT that go-redis answers by sending the script's text.
func warmUp(t *testing.T, s *redisstore.Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.ConsumeState(ctx, hash(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemCode(ctx, hash(), 1, hash(), hash()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TakeUCA(ctx, hash()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RedeemLoginCode(ctx, hash(), hash(), 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.DeleteToken(ctx, hash()); err != nil {
		t.Fatal(err)
	}
}
