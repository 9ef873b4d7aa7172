package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
)

var limits = oauth.Limits{PerUser: 3, PerAccount: 6, PerIP: 5, Window: time.Minute}

// everySubject is an attempt counted against every kind of subject.
func everySubject() oauth.Attempt {
	return oauth.Attempt{ID: secret.New("", 16, secret.Alphanumeric), KeyID: 1, StateHash: hash(), UCAHash: hash(), UserID: "alice", IP: "192.0.2.1"}
}

// attempt is a fresh attempt of a (a new id).
func attempt(a oauth.Attempt) oauth.Attempt {
	a.ID = secret.New("", 16, secret.Alphanumeric)
	return a
}

func reserveOK(t *testing.T, s *redisstore.Store, a oauth.Attempt) {
	t.Helper()
	v, err := s.Reserve(context.Background(), a, limits)
	if err != nil || !v.Granted {
		t.Fatalf("Reserve = %+v, %v; want granted", v, err)
	}
}

// failAttempt reserves a and counts it as a failure.
func failAttempt(t *testing.T, s *redisstore.Store, a oauth.Attempt) bool {
	t.Helper()
	a = attempt(a)
	reserveOK(t, s, a)
	burned, err := s.Fail(context.Background(), a, limits)
	if err != nil {
		t.Fatal(err)
	}
	return burned
}

func wantVerdict(t *testing.T, s *redisstore.Store, a oauth.Attempt, want oauth.Verdict) oauth.Verdict {
	t.Helper()
	v, err := s.Reserve(context.Background(), attempt(a), limits)
	if err != nil {
		t.Fatal(err)
	}
	got := v
	got.RetryAfter = 0
	if got != want {
		t.Fatalf("Reserve = %+v, want %+v", v, want)
	}
	return v
}

func TestReserve(t *testing.T) {
	ctx := context.Background()
	s, rdb, prefix := newStore(t)
	put := func(t *testing.T, keyID int64) string {
		t.Helper()
		h := hash()
		if err := s.PutState(ctx, h, keyID, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		return h
	}
	busy := func(limit string) oauth.Verdict { return oauth.Verdict{Busy: true, Limit: limit} }
	refused := func(limit string) oauth.Verdict { return oauth.Verdict{Limit: limit} }
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"per user and address: holds fill the limit, then failures refuse for the window", func(t *testing.T) {
			a := oauth.Attempt{UserID: "u1", IP: "192.0.2.1"}
			held := []oauth.Attempt{attempt(a), attempt(a), attempt(a)}
			for _, h := range held {
				reserveOK(t, s, h)
			}
			wantVerdict(t, s, a, busy(oauth.LimitUser))
			// A success gives its place back, a failure keeps it.
			if err := s.Release(ctx, held[0], limits); err != nil {
				t.Fatal(err)
			}
			reserveOK(t, s, attempt(a))
			for _, h := range held[1:] {
				if _, err := s.Fail(ctx, h, limits); err != nil {
					t.Fatal(err)
				}
			}
			wantVerdict(t, s, a, busy(oauth.LimitUser))
			v, err := s.Reserve(ctx, attempt(oauth.Attempt{UserID: "u1", IP: "192.0.2.1"}), limits)
			if err != nil || v.Granted {
				t.Fatalf("Reserve = %+v, %v", v, err)
			}
			// Another address, another user: not concerned.
			reserveOK(t, s, attempt(oauth.Attempt{UserID: "u1", IP: "192.0.2.2"}))
			reserveOK(t, s, attempt(oauth.Attempt{UserID: "u2", IP: "192.0.2.1"}))
		}},
		{"a failure sent twice (go-redis re-sending after a slow reply) is counted once", func(t *testing.T) {
			st := put(t, 1)
			for i := 1; i <= oauth.MaxStateFails; i++ {
				a := attempt(oauth.Attempt{KeyID: 1, StateHash: st})
				reserveOK(t, s, a)
				var burned bool
				for range 2 {
					b, err := s.Fail(ctx, a, limits)
					if err != nil {
						t.Fatal(err)
					}
					burned = burned || b
				}
				if burned != (i == oauth.MaxStateFails) {
					t.Fatalf("failure %d of %d (each sent twice): burned = %v", i, oauth.MaxStateFails, burned)
				}
			}
		}},
		{"per user and address: counted failures refuse with the window's rest", func(t *testing.T) {
			a := oauth.Attempt{UserID: "u3", IP: "192.0.2.3"}
			for range 3 {
				failAttempt(t, s, a)
			}
			v := wantVerdict(t, s, a, refused(oauth.LimitUser))
			if v.RetryAfter <= 50*time.Second || v.RetryAfter > time.Minute {
				t.Fatalf("RetryAfter %v, want the minute's rest", v.RetryAfter)
			}
			pttl(t, rdb, prefix+"fail:{"+secret.Hash("u3")+"}:ip:192.0.2.3", time.Minute)
			// The window ends (Redis expires the counter): admitted again.
			if err := rdb.PExpire(ctx, prefix+"fail:{"+secret.Hash("u3")+"}:ip:192.0.2.3", time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			for {
				if n, _ := rdb.Exists(ctx, prefix+"fail:{"+secret.Hash("u3")+"}:ip:192.0.2.3").Result(); n == 0 {
					break
				}
			}
			reserveOK(t, s, attempt(a))
		}},
		{"above the account's ceiling an address that failed waits, a clean one does not", func(t *testing.T) {
			for i := range 6 {
				failAttempt(t, s, oauth.Attempt{UserID: "victim", IP: "198.51.100." + strconv.Itoa(i)})
			}
			wantVerdict(t, s, oauth.Attempt{UserID: "victim", IP: "198.51.100.0"}, refused(oauth.LimitAccount))
			clean := attempt(oauth.Attempt{UserID: "victim", IP: "203.0.113.9"})
			reserveOK(t, s, clean)
			// One attempt at a time from it.
			wantVerdict(t, s, clean, busy(oauth.LimitUser))
			if err := s.Release(ctx, clean, limits); err != nil {
				t.Fatal(err)
			}
			reserveOK(t, s, attempt(clean))
		}},
		{"per address across users", func(t *testing.T) {
			for i := range 5 {
				failAttempt(t, s, oauth.Attempt{UserID: "guess" + strconv.Itoa(i), IP: "192.0.2.50"})
			}
			wantVerdict(t, s, oauth.Attempt{UserID: "bob", IP: "192.0.2.50"}, refused(oauth.LimitIP))
			wantVerdict(t, s, oauth.Attempt{IP: "192.0.2.50"}, refused(oauth.LimitIP))
		}},
		{"a refusal leaves no hold behind", func(t *testing.T) {
			for i := range 5 {
				failAttempt(t, s, oauth.Attempt{UserID: "g" + strconv.Itoa(i), IP: "192.0.2.60"})
			}
			st := put(t, 1)
			for range 10 {
				wantVerdict(t, s, oauth.Attempt{KeyID: 1, StateHash: st, UserID: "carol", IP: "192.0.2.60"}, refused(oauth.LimitIP))
			}
			if n, _ := rdb.ZCard(ctx, prefix+"state:{"+st+"}:held").Result(); n != 0 {
				t.Fatalf("%d holds left on the state", n)
			}
			if n, _ := rdb.ZCard(ctx, prefix+"fail:{"+secret.Hash("carol")+"}:ip:192.0.2.60:held").Result(); n != 0 {
				t.Fatalf("%d holds left on carol", n)
			}
		}},
		{"a state: unknown or another key's is no state", func(t *testing.T) {
			wantVerdict(t, s, oauth.Attempt{KeyID: 1, StateHash: hash()}, oauth.Verdict{NoState: true, Limit: oauth.LimitState})
			wantVerdict(t, s, oauth.Attempt{KeyID: 2, StateHash: put(t, 1)}, oauth.Verdict{NoState: true, Limit: oauth.LimitState})
		}},
		{"a state: five places; the fifth failure burns it", func(t *testing.T) {
			a := oauth.Attempt{KeyID: 1, StateHash: put(t, 1)}
			var held []oauth.Attempt
			for range 5 {
				h := attempt(a)
				reserveOK(t, s, h)
				held = append(held, h)
			}
			wantVerdict(t, s, a, busy(oauth.LimitState))
			for i, h := range held {
				burned, err := s.Fail(ctx, h, limits)
				if err != nil || burned != (i == 4) {
					t.Fatalf("failure %d: burned %v, %v", i+1, burned, err)
				}
			}
			wantVerdict(t, s, a, oauth.Verdict{NoState: true, Limit: oauth.LimitState})
			if n, _ := rdb.Exists(ctx, prefix+"state:{"+a.StateHash+"}:fails", prefix+"state:{"+a.StateHash+"}:held").Result(); n != 0 {
				t.Fatalf("%d counters of a burned state left", n)
			}
		}},
		{"a state: the counter lives no longer than the state", func(t *testing.T) {
			a := oauth.Attempt{KeyID: 1, StateHash: put(t, 1)}
			failAttempt(t, s, a)
			pttl(t, rdb, prefix+"state:{"+a.StateHash+"}:fails", 10*time.Minute)
		}},
		{"a UCA: five wrong passwords end sign-ins on it", func(t *testing.T) {
			a := oauth.Attempt{UCAHash: hash()}
			for range 5 {
				failAttempt(t, s, a)
			}
			wantVerdict(t, s, a, refused(oauth.LimitUCA))
			pttl(t, rdb, prefix+"ucafail:{"+a.UCAHash+"}", oauth.UCATTL)
		}},
		{"a hold of a replica that died lapses with its lease", func(t *testing.T) {
			a := oauth.Attempt{UserID: "u9", IP: "192.0.2.9"}
			for range 3 {
				reserveOK(t, s, attempt(a))
			}
			wantVerdict(t, s, a, busy(oauth.LimitUser))
			// Move the leases' ends into the past, as time would.
			k := prefix + "fail:{" + secret.Hash("u9") + "}:ip:192.0.2.9:held"
			ids, err := rdb.ZRange(ctx, k, 0, -1).Result()
			if err != nil || len(ids) != 3 {
				t.Fatalf("holds %v, %v", ids, err)
			}
			for _, id := range ids {
				rdb.ZAdd(ctx, k, redis.Z{Score: 1, Member: id})
			}
			reserveOK(t, s, attempt(a))
		}},
		{"the keyspace names no user_id", func(t *testing.T) {
			failAttempt(t, s, oauth.Attempt{UserID: "zelda", IP: "192.0.2.77"})
			keys, err := rdb.Keys(ctx, prefix+"*").Result()
			if err != nil || len(keys) == 0 {
				t.Fatal(keys, err)
			}
			for _, k := range keys {
				if strings.Contains(k, "zelda") {
					t.Errorf("key %s names the user", k)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// Parallel reservations are exact: of 100 at once, the limit's number is
// granted, whatever the interleaving.
func TestReserveParallel(t *testing.T) {
	s, _, _ := newStore(t)
	a := oauth.Attempt{UserID: "alice", IP: "192.0.2.1"}
	var mu sync.Mutex
	var granted []oauth.Attempt
	busy := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			at := attempt(a)
			v, err := s.Reserve(context.Background(), at, limits)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Error(err)
			case v.Granted:
				granted = append(granted, at)
			case v.Busy:
				busy++
			}
		})
	}
	close(start)
	wg.Wait()
	if len(granted) != limits.PerUser || busy != 100-limits.PerUser {
		t.Fatalf("%d granted, %d busy; want %d and %d", len(granted), busy, limits.PerUser, 100-limits.PerUser)
	}
}

func TestPutCountedState(t *testing.T) {
	ctx := context.Background()
	s, rdb, prefix := newStore(t)
	for i := range 3 {
		if wait, err := s.PutCountedState(ctx, hash(), 1, 10*time.Minute, 3); err != nil || wait != 0 {
			t.Fatalf("state %d: refused for %v, %v", i+1, wait, err)
		}
	}
	h := hash()
	wait, err := s.PutCountedState(ctx, h, 1, 10*time.Minute, 3)
	if err != nil || wait <= 0 || wait > 10*time.Minute {
		t.Fatalf("fourth state: refused for %v, %v; want up to a state's lifetime", wait, err)
	}
	if _, found, _ := s.State(ctx, h); found {
		t.Fatal("a refused state is stored")
	}
	// Another key is not concerned.
	if wait, err := s.PutCountedState(ctx, hash(), 2, 10*time.Minute, 3); err != nil || wait != 0 {
		t.Fatalf("another key: refused for %v, %v", wait, err)
	}
	keys, _ := rdb.Keys(ctx, prefix+"states:1:*").Result()
	for _, k := range keys {
		if n, _ := rdb.Get(ctx, k).Int(); n != 3 {
			t.Fatalf("%s = %d, want 3: a refused state is not counted", k, n)
		}
		pttl(t, rdb, k, 20*time.Minute)
	}
}

func TestCountKeyRequest(t *testing.T) {
	ctx := context.Background()
	s, rdb, prefix := newStore(t)
	for i := range 3 {
		if n, err := s.CountKeyRequest(ctx, 1, 1000); err != nil || n != int64(i+1) {
			t.Fatalf("request %d: %d, %v", i+1, n, err)
		}
	}
	if n, err := s.CountKeyRequest(ctx, 1, 1001); err != nil || n != 1 {
		t.Fatalf("next second: %d, %v", n, err)
	}
	if d, _ := rdb.PTTL(ctx, prefix+"rate:1:1000").Result(); d <= 0 || d > 2*time.Second {
		t.Fatalf("PTTL %v, want at most 2s", d)
	}
}

// However a state ends (consumed by a login or an update, redeemed with a
// login code, burned by its fifth failure) it leaves neither its failure
// counter nor its held set behind (stateLua's end_state), and an attempt
// that still held a place on it settles without counting anything.
func TestEveryEndOfAStateLeavesNothing(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	ends := []struct {
		name string
		// end ends the state, on which pending holds a place; it says
		// whether pending is still to be settled.
		end func(t *testing.T, a, pending oauth.Attempt) (unsettled bool)
	}{
		{"consumed", func(t *testing.T, a, _ oauth.Attempt) bool {
			if ok, err := s.ConsumeState(ctx, a.StateHash, a.KeyID); err != nil || !ok {
				t.Fatalf("ConsumeState = %v, %v", ok, err)
			}
			return true
		}},
		{"redeemed with a login code", func(t *testing.T, a, _ oauth.Attempt) bool {
			code := hash()
			if err := s.PutLoginCode(ctx, a.StateHash, code, oauth.LoginCodeRecord{KeyID: a.KeyID, User: 7, UserID: "alice"}, 5*time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, o, err := s.RedeemLoginCode(ctx, a.StateHash, code, a.KeyID); err != nil || o != oauth.LoginRedeemed {
				t.Fatalf("RedeemLoginCode = %v, %v", o, err)
			}
			return true
		}},
		{"burned", func(t *testing.T, a, pending oauth.Attempt) bool {
			// One failure is counted already; pending's is the fifth.
			for range oauth.MaxStateFails - 2 {
				if failAttempt(t, s, a) {
					t.Fatal("burned before the fifth failure")
				}
			}
			if burned, err := s.Fail(ctx, pending, limits); err != nil || !burned {
				t.Fatalf("the fifth failure: burned %v, %v", burned, err)
			}
			return false
		}},
	}
	for _, tt := range ends {
		t.Run(tt.name, func(t *testing.T) {
			a := oauth.Attempt{KeyID: 1, StateHash: hash()}
			if err := s.PutState(ctx, a.StateHash, a.KeyID, 10*time.Minute); err != nil {
				t.Fatal(err)
			}
			failAttempt(t, s, a) // a counter
			pending := attempt(a)
			reserveOK(t, s, pending) // a held place
			keys := []string{prefix + "state:{" + a.StateHash + "}", prefix + "state:{" + a.StateHash + "}:fails", prefix + "state:{" + a.StateHash + "}:held"}
			if n, _ := rdb.Exists(ctx, keys...).Result(); n != 3 {
				t.Fatalf("%d of the state's 3 records before its end", n)
			}

			unsettled := tt.end(t, a, pending)
			if n, _ := rdb.Exists(ctx, keys...).Result(); n != 0 {
				t.Fatalf("%d of the state's records left after its end", n)
			}
			if unsettled {
				if burned, err := s.Fail(ctx, pending, limits); err != nil || burned {
					t.Fatalf("the pending attempt's failure: burned %v, %v", burned, err)
				}
				if n, _ := rdb.Exists(ctx, keys...).Result(); n != 0 {
					t.Fatalf("the pending attempt's failure left %d records of an ended state", n)
				}
			}
			wantVerdict(t, s, a, oauth.Verdict{NoState: true, Limit: oauth.LimitState})
		})
	}
}
