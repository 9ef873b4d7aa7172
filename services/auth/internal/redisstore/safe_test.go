package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moreline/moreid/services/auth/internal/oauth"
)

func TestSafeRecordLayout(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	sh, uh, lh, ssh := hash(), hash(), hash(), hash()
	if err := s.PutUCA(ctx, uh, oauth.UCARecord{KeyID: 42, StateHash: sh, App: "app A"}, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLoginCode(ctx, sh, lh, oauth.LoginCodeRecord{KeyID: 42, User: 7, UserID: "alice"}, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, ssh, oauth.SessionRecord{User: 7, UserID: "alice", IssuedAt: 1700000000}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  string
		ttl  time.Duration
		want map[string]any
	}{
		{"uca", prefix + "uca:" + uh, 3 * time.Minute, map[string]any{"k": 42.0, "s": sh, "app": "app A"}},
		{"login code", prefix + "logincode:{" + sh + "}:" + lh, 5 * time.Minute, map[string]any{"k": 42.0, "u": 7.0, "uid": "alice"}},
		{"session", prefix + "session:" + ssh, 24 * time.Hour, map[string]any{"u": 7.0, "uid": "alice", "iat": 1700000000.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pttl(t, rdb, tt.key, tt.ttl)
			got := value(t, rdb, tt.key)
			if len(got) != len(tt.want) {
				t.Fatalf("value = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("value = %v, want %v", got, tt.want)
				}
			}
		})
	}
	t.Run("read back", func(t *testing.T) {
		u, found, err := s.UCA(ctx, uh)
		if err != nil || !found || u.KeyID != 42 || u.StateHash != sh || u.App != "app A" || u.TTL <= 2*time.Minute || u.TTL > 3*time.Minute {
			t.Fatalf("UCA = %+v, %v, %v", u, found, err)
		}
		sess, found, err := s.Session(ctx, ssh)
		if err != nil || !found || sess != (oauth.SessionRecord{User: 7, UserID: "alice", IssuedAt: 1700000000}) {
			t.Fatalf("Session = %+v, %v, %v", sess, found, err)
		}
		if _, found, err := s.UCA(ctx, hash()); err != nil || found {
			t.Fatalf("unknown UCA: %v, %v", found, err)
		}
		if _, found, err := s.Session(ctx, hash()); err != nil || found {
			t.Fatalf("unknown session: %v, %v", found, err)
		}
	})
}

func TestTakeUCA(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	uh := hash()
	if err := s.PutUCA(ctx, uh, oauth.UCARecord{KeyID: 1, StateHash: "s"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			rec, found, err := s.TakeUCA(ctx, uh)
			if err == nil && found && rec.StateHash == "s" {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d takes of one UCA, want 1", wins.Load())
	}
	if _, found, err := s.UCA(ctx, uh); err != nil || found {
		t.Fatalf("UCA after take: %v, %v", found, err)
	}
}

func TestRedeemLoginCode(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	setup := func(t *testing.T) (state, code string) {
		t.Helper()
		state, code = hash(), hash()
		if err := s.PutState(ctx, state, 1, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.PutLoginCode(ctx, state, code, oauth.LoginCodeRecord{KeyID: 1, User: 7, UserID: "alice"}, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		return state, code
	}
	exists := func(t *testing.T, key string) bool {
		t.Helper()
		n, err := rdb.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	t.Run("right code consumes code, state and counter", func(t *testing.T) {
		state, code := setup(t)
		if _, o, err := s.RedeemLoginCode(ctx, state, hash(), 1); err != nil || o != oauth.LoginWrong {
			t.Fatalf("wrong code: %v, %v", o, err)
		}
		// The failure is counted under the attempt's reservation.
		failAttempt(t, s, oauth.Attempt{KeyID: 1, StateHash: state})
		pttl(t, rdb, prefix+"state:{"+state+"}:fails", 10*time.Minute)
		rec, o, err := s.RedeemLoginCode(ctx, state, code, 1)
		if err != nil || o != oauth.LoginRedeemed || rec != (oauth.LoginCodeRecord{KeyID: 1, User: 7, UserID: "alice"}) {
			t.Fatalf("RedeemLoginCode = %+v, %v, %v", rec, o, err)
		}
		for _, k := range []string{"state:{" + state + "}", "state:{" + state + "}:fails", "logincode:{" + state + "}:" + code} {
			if exists(t, prefix+k) {
				t.Fatalf("%s still stored", k)
			}
		}
		if _, o, err := s.RedeemLoginCode(ctx, state, code, 1); err != nil || o != oauth.LoginNoState {
			t.Fatalf("second redemption: %v, %v", o, err)
		}
	})
	t.Run("another key counts nothing and redeems nothing", func(t *testing.T) {
		state, code := setup(t)
		for range 6 {
			if _, o, err := s.RedeemLoginCode(ctx, state, code, 2); err != nil || o != oauth.LoginNoState {
				t.Fatalf("foreign key: %v, %v", o, err)
			}
		}
		if exists(t, prefix+"state:{"+state+"}:fails") {
			t.Fatal("a foreign key's attempts were counted")
		}
		if _, o, err := s.RedeemLoginCode(ctx, state, code, 1); err != nil || o != oauth.LoginRedeemed {
			t.Fatalf("owner: %v, %v", o, err)
		}
	})
	t.Run("a wrong code is only reported", func(t *testing.T) {
		state, code := setup(t)
		for range 6 {
			if _, o, err := s.RedeemLoginCode(ctx, state, hash(), 1); err != nil || o != oauth.LoginWrong {
				t.Fatalf("wrong code: %v, %v", o, err)
			}
		}
		if _, o, err := s.RedeemLoginCode(ctx, state, code, 1); err != nil || o != oauth.LoginRedeemed {
			t.Fatalf("right code after wrong ones: %v, %v", o, err)
		}
	})
	t.Run("concurrently exactly once", func(t *testing.T) {
		state, code := setup(t)
		var wins atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				if _, o, err := s.RedeemLoginCode(ctx, state, code, 1); err == nil && o == oauth.LoginRedeemed {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d redemptions, want 1", wins.Load())
		}
	})
}

func TestUserTokens(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	put := func(t *testing.T, user string, ttl time.Duration) string {
		t.Helper()
		h := hash()
		if err := s.PutToken(ctx, h, oauth.TokenRecord{KeyID: 1, UserID: user}, ttl); err != nil {
			t.Fatal(err)
		}
		return h
	}
	a1, a2, a3 := put(t, "alice", time.Hour), put(t, "alice", time.Hour), put(t, "alice", time.Hour)
	b1 := put(t, "bob", time.Hour)

	t.Run("the index lives as long as the tokens", func(t *testing.T) {
		pttl(t, rdb, prefix+"usertokens:alice", time.Hour)
		rec, found, err := s.Token(ctx, a1)
		if err != nil || !found || rec.UserID != "alice" || rec.TTL <= 59*time.Minute || rec.TTL > time.Hour {
			t.Fatalf("Token = %+v, %v, %v", rec, found, err)
		}
	})
	t.Run("deleting a token unindexes it", func(t *testing.T) {
		if _, existed, err := s.DeleteToken(ctx, a3); err != nil || !existed {
			t.Fatalf("DeleteToken = %v, %v", existed, err)
		}
		if ok, _ := rdb.SIsMember(ctx, prefix+"usertokens:alice", a3).Result(); ok {
			t.Fatal("deleted token still indexed")
		}
	})
	t.Run("deleting a user's tokens counts live ones and spares others", func(t *testing.T) {
		// An expired token leaves a stale index entry: not counted.
		// Its shorter lifetime is ended now by an expiry in the past, with
		// no wait for it.
		stale := put(t, "alice", time.Minute)
		if err := rdb.PExpireAt(ctx, prefix+"token:"+stale, time.Unix(1, 0)).Err(); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := s.Token(ctx, stale); found {
			t.Fatal("short-lived token did not expire")
		}
		// ... and did not shorten the index's lifetime.
		pttl(t, rdb, prefix+"usertokens:alice", time.Hour)
		n, err := s.DeleteUserTokens(ctx, "alice")
		if err != nil || n != 2 {
			t.Fatalf("DeleteUserTokens = %d, %v; want 2", n, err)
		}
		for _, h := range []string{a1, a2} {
			if _, found, _ := s.Token(ctx, h); found {
				t.Fatal("alice's token survived")
			}
		}
		if _, found, _ := s.Token(ctx, b1); !found {
			t.Fatal("bob's token was deleted")
		}
		if n, err := s.DeleteUserTokens(ctx, "alice"); err != nil || n != 0 {
			t.Fatalf("second DeleteUserTokens = %d, %v; want 0", n, err)
		}
	})
}
