package redisstore_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/testenv"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
)

func newStore(t *testing.T) (*redisstore.Store, redis.UniversalClient, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	return redisstore.New(rdb, prefix, redisdb.DefaultTimeout), rdb, prefix
}

func hash() string { return secret.Hash(secret.New("", 32, secret.Alphanumeric)) }

// pttl asserts the key's native TTL is within (want-slack, want].
func pttl(t *testing.T, rdb redis.UniversalClient, key string, want time.Duration) {
	t.Helper()
	got, err := rdb.PTTL(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("PTTL %s: %v", key, err)
	}
	if got > want || got <= want-5*time.Second {
		t.Fatalf("PTTL %s = %v, want about %v", key, got, want)
	}
}

func value(t *testing.T, rdb redis.UniversalClient, key string) map[string]any {
	t.Helper()
	b, err := rdb.Get(context.Background(), key).Bytes()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("value of %s is not JSON: %s", key, b)
	}
	return m
}

func TestRecordLayout(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	sh, ch, th := hash(), hash(), hash()

	if err := s.PutState(ctx, sh, 42, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCode(ctx, ch, oauth.CodeRecord{KeyID: 42, StateHash: sh, User: 7, UserID: "alice"}, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, th, oauth.TokenRecord{KeyID: 42, KeyName: "app", User: 7, UserID: "alice", IssuedAt: 1700000000}, 90*time.Minute); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		key  string
		ttl  time.Duration
		want map[string]any
	}{
		{prefix + "state:{" + sh + "}", 10 * time.Minute, map[string]any{"k": 42.0}},
		{prefix + "code:{" + ch + "}", 10 * time.Minute, map[string]any{"k": 42.0, "s": sh, "u": 7.0, "uid": "alice"}},
		{prefix + "token:" + th, 90 * time.Minute, map[string]any{"k": 42.0, "kn": "app", "u": 7.0, "uid": "alice", "iat": 1700000000.0, "exp": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.key[len(prefix):len(prefix)+5], func(t *testing.T) {
			pttl(t, rdb, tt.key, tt.ttl)
			got := value(t, rdb, tt.key)
			if len(got) != len(tt.want) {
				t.Fatalf("value = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if v == nil { // present, value checked elsewhere
					if _, ok := got[k]; !ok {
						t.Fatalf("value = %v, want a %q field", got, k)
					}
					continue
				}
				if got[k] != v {
					t.Fatalf("value = %v, want %v", got, tt.want)
				}
			}
		})
	}

	t.Run("read back", func(t *testing.T) {
		st, found, err := s.State(ctx, sh)
		if err != nil || !found || st.KeyID != 42 || st.TTL <= 9*time.Minute || st.TTL > 10*time.Minute {
			t.Fatalf("State = %+v, %v, %v", st, found, err)
		}
		rec, found, err := s.Code(ctx, ch)
		if err != nil || !found || rec != (oauth.CodeRecord{KeyID: 42, StateHash: sh, User: 7, UserID: "alice"}) {
			t.Fatalf("Code = %+v, %v, %v", rec, found, err)
		}
		if _, found, err := s.State(ctx, hash()); err != nil || found {
			t.Fatalf("unknown state: found=%v err=%v", found, err)
		}
		if _, found, err := s.Code(ctx, hash()); err != nil || found {
			t.Fatalf("unknown code: found=%v err=%v", found, err)
		}
	})
}

func TestConsumeState(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	sh := hash()
	if err := s.PutState(ctx, sh, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		keyID int64
		want  bool
	}{
		{"another key cannot consume it", 2, false},
		{"its key consumes it", 1, true},
		{"only once", 1, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := s.ConsumeState(ctx, sh, st.keyID)
			if err != nil || got != st.want {
				t.Fatalf("ConsumeState = %v, %v; want %v", got, err, st.want)
			}
		})
	}

	t.Run("concurrently exactly once", func(t *testing.T) {
		sh := hash()
		if err := s.PutState(ctx, sh, 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				if ok, err := s.ConsumeState(ctx, sh, 1); err == nil && ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d consumptions, want 1", wins.Load())
		}
	})
}

func TestRedeemCode(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	put := func(t *testing.T, ttl time.Duration) (code, state string) {
		t.Helper()
		code, state = hash(), hash()
		if err := s.PutCode(ctx, code, oauth.CodeRecord{KeyID: 1, StateHash: state, User: 7, UserID: "alice"}, ttl); err != nil {
			t.Fatal(err)
		}
		return code, state
	}

	t.Run("bound key and state redeem it once", func(t *testing.T) {
		code, state := put(t, 10*time.Minute)
		tok := hash()
		r, err := s.RedeemCode(ctx, code, 1, state, tok)
		if err != nil || r.Outcome != oauth.Redeemed {
			t.Fatalf("RedeemCode = %+v, %v", r, err)
		}
		if _, found, _ := s.Code(ctx, code); found {
			t.Fatal("code still stored")
		}
		pttl(t, rdb, prefix+"code:{"+code+"}:used", 10*time.Minute)
		want := oauth.CodeUse{Token: tok, KeyID: 1, StateHash: state}
		if got, found, err := s.RedeemedBy(ctx, code); err != nil || !found || got != want {
			t.Fatalf("RedeemedBy = %+v, %v, %v; want %+v", got, found, err, want)
		}
		r, err = s.RedeemCode(ctx, code, 1, state, hash())
		if err != nil || r.Outcome != oauth.Replayed || r.Previous != want {
			t.Fatalf("second RedeemCode = %+v, %v; want replayed with the first token", r, err)
		}
	})
	t.Run("another key or state leaves it untouched", func(t *testing.T) {
		code, state := put(t, 10*time.Minute)
		for _, c := range []struct {
			key   int64
			state string
		}{{2, state}, {1, hash()}} {
			r, err := s.RedeemCode(ctx, code, c.key, c.state, hash())
			if err != nil || r.Outcome != oauth.Mismatch {
				t.Fatalf("RedeemCode = %+v, %v; want mismatch", r, err)
			}
		}
		if _, found, _ := s.RedeemedBy(ctx, code); found {
			t.Fatal("mismatch wrote a used marker")
		}
		if r, err := s.RedeemCode(ctx, code, 1, state, hash()); err != nil || r.Outcome != oauth.Redeemed {
			t.Fatalf("RedeemCode by its owner = %+v, %v", r, err)
		}
	})
	t.Run("unknown code", func(t *testing.T) {
		r, err := s.RedeemCode(ctx, hash(), 1, hash(), hash())
		if err != nil || r.Outcome != oauth.Missing {
			t.Fatalf("RedeemCode = %+v, %v; want missing", r, err)
		}
	})
	t.Run("marker lives at least a second", func(t *testing.T) {
		code, state := put(t, 50*time.Millisecond)
		if r, err := s.RedeemCode(ctx, code, 1, state, hash()); err != nil || r.Outcome != oauth.Redeemed {
			t.Fatalf("RedeemCode = %+v, %v", r, err)
		}
		got, err := rdb.PTTL(ctx, prefix+"code:{"+code+"}:used").Result()
		if err != nil || got < 900*time.Millisecond || got > time.Second {
			t.Fatalf("marker PTTL = %v, %v; want about 1s", got, err)
		}
	})
	t.Run("concurrently exactly once", func(t *testing.T) {
		code, state := put(t, 10*time.Minute)
		var wins, replays atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				r, err := s.RedeemCode(ctx, code, 1, state, hash())
				switch {
				case err != nil:
				case r.Outcome == oauth.Redeemed:
					wins.Add(1)
				case r.Outcome == oauth.Replayed:
					replays.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || replays.Load() != 63 {
			t.Fatalf("%d redeemed, %d replayed; want 1 and 63", wins.Load(), replays.Load())
		}
	})
}

// TestTokenLifetime checks the remaining lifetime a token read reports:
// from the record's own expiry for records this release writes, from Redis
// for records an older release wrote (no "exp"), and that a record past its
// expiry is gone even if Redis has not dropped it yet.
func TestTokenLifetime(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	raw := func(fields string, ttl time.Duration) string {
		h := hash()
		v := `{"k":1,"u":7,"uid":"alice","iat":1700000000` + fields + `}`
		if err := rdb.Set(ctx, prefix+"token:"+h, v, ttl).Err(); err != nil {
			t.Fatal(err)
		}
		return h
	}
	current := hash()
	if err := s.PutToken(ctx, current, oauth.TokenRecord{KeyID: 1, User: 7, UserID: "alice"}, 90*time.Minute); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Second).UnixMilli()
	tests := []struct {
		name      string
		hash      string
		wantFound bool
		wantTTL   time.Duration
	}{
		{"written by PutToken", current, true, 90 * time.Minute},
		{"written before records carried exp", raw("", 20*time.Minute), true, 20 * time.Minute},
		{"past its exp, still in Redis", raw(`,"exp":`+strconv.FormatInt(past, 10), time.Hour), false, 0},
		{"absent", hash(), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, found, err := s.Token(ctx, tt.hash)
			if err != nil || found != tt.wantFound {
				t.Fatalf("Token = %+v, %v, %v; want found %v", rec, found, err, tt.wantFound)
			}
			if !found {
				return
			}
			if rec.UserID != "alice" || rec.User != 7 || rec.KeyID != 1 {
				t.Errorf("record = %+v", rec)
			}
			if d := tt.wantTTL - rec.TTL; d < 0 || d > 2*time.Second {
				t.Errorf("TTL = %v, want about %v", rec.TTL, tt.wantTTL)
			}
		})
	}
}

func TestDeleteToken(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	th := hash()
	if err := s.PutToken(ctx, th, oauth.TokenRecord{KeyID: 1, UserID: "alice"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	rec, existed, err := s.DeleteToken(ctx, th)
	if err != nil || !existed || rec.UserID != "alice" || rec.KeyID != 1 {
		t.Fatalf("DeleteToken = %+v, %v, %v; want the deleted record", rec, existed, err)
	}
	if n, _ := rdb.Exists(ctx, prefix+"token:"+th).Result(); n != 0 {
		t.Fatal("token still stored")
	}
	if _, existed, err := s.DeleteToken(ctx, th); err != nil || existed {
		t.Fatalf("deleting an absent token: %v, %v", existed, err)
	}
}

func TestRedisDown(t *testing.T) {
	down := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:       []string{"127.0.0.1:1"},
		DialTimeout: 500 * time.Millisecond,
		MaxRetries:  1,
	})
	t.Cleanup(func() { _ = down.Close() })
	s := redisstore.New(down, "moreidtest:down:", redisdb.DefaultTimeout)
	ctx := context.Background()
	ops := []struct {
		name string
		op   func() error
	}{
		{"PutState", func() error { return s.PutState(ctx, hash(), 1, time.Minute) }},
		{"State", func() error { _, _, err := s.State(ctx, hash()); return err }},
		{"ConsumeState", func() error { _, err := s.ConsumeState(ctx, hash(), 1); return err }},
		{"PutCode", func() error { return s.PutCode(ctx, hash(), oauth.CodeRecord{}, time.Minute) }},
		{"Code", func() error { _, _, err := s.Code(ctx, hash()); return err }},
		{"DeleteCode", func() error { return s.DeleteCode(ctx, hash()) }},
		{"LoginCode", func() error { _, _, err := s.LoginCode(ctx, hash(), hash()); return err }},
		{"DeleteLoginCode", func() error { return s.DeleteLoginCode(ctx, hash(), hash()) }},
		{"RedeemedBy", func() error { _, _, err := s.RedeemedBy(ctx, hash()); return err }},
		{"RedeemCode", func() error { _, err := s.RedeemCode(ctx, hash(), 1, hash(), hash()); return err }},
		{"PutToken", func() error { return s.PutToken(ctx, hash(), oauth.TokenRecord{}, time.Minute) }},
		{"DeleteToken", func() error { _, _, err := s.DeleteToken(ctx, hash()); return err }},
		{"Token", func() error { _, _, err := s.Token(ctx, hash()); return err }},
		{"DeleteUserTokens", func() error { _, err := s.DeleteUserTokens(ctx, "alice"); return err }},
		{"PutUCA", func() error { return s.PutUCA(ctx, hash(), oauth.UCARecord{}, time.Minute) }},
		{"UCA", func() error { _, _, err := s.UCA(ctx, hash()); return err }},
		{"TakeUCA", func() error { _, _, err := s.TakeUCA(ctx, hash()); return err }},
		{"PutLoginCode", func() error { return s.PutLoginCode(ctx, hash(), hash(), oauth.LoginCodeRecord{}, time.Minute) }},
		{"RedeemLoginCode", func() error { _, _, err := s.RedeemLoginCode(ctx, hash(), hash(), 1); return err }},
		{"PutSession", func() error { return s.PutSession(ctx, hash(), oauth.SessionRecord{}, time.Minute) }},
		{"Session", func() error { _, _, err := s.Session(ctx, hash()); return err }},
		{"Reserve", func() error { _, err := s.Reserve(ctx, everySubject(), oauth.DefaultLimits); return err }},
		{"Release", func() error { return s.Release(ctx, everySubject(), oauth.DefaultLimits) }},
		{"Fail", func() error { _, err := s.Fail(ctx, everySubject(), oauth.DefaultLimits); return err }},
		{"PutCountedState", func() error { _, err := s.PutCountedState(ctx, hash(), 1, time.Minute, 10); return err }},
		{"CountKeyRequest", func() error { _, err := s.CountKeyRequest(ctx, 1, 1); return err }},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			t.Parallel()
			if err := o.op(); !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("err = %v, want unavailable", err)
			}
		})
	}
}
