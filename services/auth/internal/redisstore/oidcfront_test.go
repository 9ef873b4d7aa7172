package redisstore_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
)

func authReqID() string { return "ar_" + secret.New("", 43, secret.Alphanumeric) }

func TestAuthRequestLayout(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	id := authReqID()
	age := int64(0)
	rec := oauth.AuthRequestRecord{ClientID: "mlc_a", KeyID: 1, KeyName: "app A", RedirectURI: "https://a.example/cb",
		Scopes: []string{"openid"}, State: "st", Nonce: "n", Challenge: "pc", Prompt: []string{"login"}, MaxAge: &age,
		LoginHint: "alice", CreatedAt: 1700000000}
	if err := s.PutAuthRequest(ctx, id, rec, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	key := prefix + "oidc:authreq:{" + id + "}"
	pttl(t, rdb, key, 10*time.Minute)
	want := map[string]any{"c": "mlc_a", "k": 1.0, "kn": "app A", "r": "https://a.example/cb", "sc": []any{"openid"},
		"s": "st", "n": "n", "pc": "pc", "p": []any{"login"}, "ma": 0.0, "lh": "alice", "t": 1700000000.0}
	got := value(t, rdb, key)
	if b1, b2 := mustJSON(t, got), mustJSON(t, want); b1 != b2 {
		t.Fatalf("value = %s, want %s", b1, b2)
	}
	back, found, err := s.AuthRequest(ctx, id)
	if err != nil || !found || back.TTL <= 9*time.Minute || *back.MaxAge != 0 || back.LoginHint != "alice" {
		t.Fatalf("AuthRequest = %+v, %v, %v", back, found, err)
	}
	if _, found, err := s.AuthRequest(ctx, authReqID()); err != nil || found {
		t.Fatalf("unknown: %v, %v", found, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// finishRace runs 64 concurrent finishers of one request, each with its
// own code, and checks that exactly one took it and that only its code is
// stored.
func finishRace(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, prefix string) {
	t.Helper()
	ctx := context.Background()
	id := authReqID()
	if err := s.PutAuthRequest(ctx, id, oauth.AuthRequestRecord{ClientID: "mlc_a", State: "st"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var wins atomic.Int64
	var mu sync.Mutex
	var winner string
	codes := make([]string, 64)
	for i := range 64 {
		codes[i] = hash()
		wg.Go(func() {
			rec, taken, err := s.FinishAuthRequest(ctx, id, codes[i], &oauth.OIDCCodeRecord{ClientID: "mlc_a", Grant: "g"}, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if taken {
				if rec.State != "st" {
					t.Errorf("taken record = %+v", rec)
				}
				wins.Add(1)
				mu.Lock()
				winner = codes[i]
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d finishers took the request, want 1", wins.Load())
	}
	for _, c := range codes {
		n, err := rdb.Exists(ctx, prefix+"oidc:code:{"+c+"}").Result()
		if err != nil {
			t.Fatal(err)
		}
		if (n == 1) != (c == winner) {
			t.Fatalf("code %s stored = %v, winner %v", c[:8], n == 1, c == winner)
		}
	}
	if n, _ := rdb.Exists(ctx, prefix+"oidc:authreq:{"+id+"}").Result(); n != 0 {
		t.Fatal("request still stored")
	}
}

func TestFinishAuthRequest(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	t.Run("64 concurrent finishers", func(t *testing.T) { finishRace(t, s, rdb, prefix) })
	t.Run("error finish leaves no code", func(t *testing.T) {
		id := authReqID()
		if err := s.PutAuthRequest(ctx, id, oauth.AuthRequestRecord{ClientID: "mlc_a"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, taken, err := s.FinishAuthRequest(ctx, id, "", nil, 0); err != nil || !taken {
			t.Fatalf("finish = %v, %v", taken, err)
		}
		if _, taken, err := s.FinishAuthRequest(ctx, id, "", nil, 0); err != nil || taken {
			t.Fatalf("second finish = %v, %v", taken, err)
		}
	})
	t.Run("code record", func(t *testing.T) {
		id, ch := authReqID(), hash()
		if err := s.PutAuthRequest(ctx, id, oauth.AuthRequestRecord{ClientID: "mlc_a"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		rec := oauth.OIDCCodeRecord{ClientID: "mlc_a", KeyID: 1, RedirectURI: "https://a.example/cb", Scopes: []string{"openid"},
			Challenge: "pc", User: 7, UserID: "alice", AuthTime: 1700000000, Grant: "grt_x"}
		if _, taken, err := s.FinishAuthRequest(ctx, id, ch, &rec, oauth.OIDCCodeTTL); err != nil || !taken {
			t.Fatalf("finish = %v, %v", taken, err)
		}
		key := prefix + "oidc:code:{" + ch + "}"
		pttl(t, rdb, key, oauth.OIDCCodeTTL)
		var got oauth.OIDCCodeRecord
		if err := json.Unmarshal([]byte(rdb.Get(ctx, key).Val()), &got); err != nil || got.Grant != "grt_x" || got.AuthTime != 1700000000 || got.Challenge != "pc" {
			t.Fatalf("code record = %+v, %v", got, err)
		}
	})
}

func TestConsent(t *testing.T) {
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	steps := []struct {
		client string
		scopes []string
		at     int64
		want   []string
	}{
		{"mlc_a", []string{"openid", "profile"}, 10, []string{"openid", "profile"}},
		{"mlc_a", []string{"openid", "email"}, 20, []string{"openid", "profile", "email"}},
		{"mlc_b", []string{"openid"}, 30, []string{"openid"}},
	}
	for _, st := range steps {
		if err := s.GrantConsent(ctx, 7, st.client, st.scopes, st.at); err != nil {
			t.Fatal(err)
		}
		got, found, err := s.RememberedConsent(ctx, 7, st.client)
		if err != nil || !found || !slices.Equal(got.Scopes, st.want) || got.GrantedAt != st.at {
			t.Fatalf("consent of %s = %+v, %v, %v; want %v at %d", st.client, got, found, err, st.want, st.at)
		}
	}
	if n := rdb.HLen(ctx, prefix+"oidc:consent:{7}").Val(); n != 2 {
		t.Fatalf("%d fields, want 2", n)
	}
	if d := rdb.PTTL(ctx, prefix+"oidc:consent:{7}").Val(); d != -1 {
		t.Fatalf("PTTL = %v, want none", d)
	}
	if _, found, err := s.RememberedConsent(ctx, 8, "mlc_a"); err != nil || found {
		t.Fatalf("another user's: %v, %v", found, err)
	}
	// 64 concurrent grants of different scopes lose none.
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if err := s.GrantConsent(ctx, 9, "mlc_a", []string{"s" + string(rune('A'+i))}, 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _, _ := s.RememberedConsent(ctx, 9, "mlc_a"); len(got.Scopes) != 64 {
		t.Fatalf("%d scopes after 64 grants", len(got.Scopes))
	}
}

// seedDevice writes a device record and its user-code index as
// StartDevice does, with extra fields the front channel does not know.
func seedDevice(t *testing.T, rdb redis.UniversalClient, prefix, userCodeHash string, rec map[string]any) string {
	t.Helper()
	dh := hash()
	b, _ := json.Marshal(rec)
	ctx := context.Background()
	if err := rdb.Set(ctx, prefix+"oidc:device:{"+dh+"}", b, 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, prefix+"oidc:usercode:{"+userCodeHash+"}", dh, 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	return dh
}

func TestDecideDevice(t *testing.T) {
	s, rdb, prefix := newStore(t)
	testDecideDevice(t, s, rdb, prefix)
}

func testDecideDevice(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	pending := func(scopes []string) map[string]any {
		return map[string]any{"c": "mlc_a", "k": 1, "kn": "app A", "sc": scopes, "ucd": "BCDF-GHJK", "st": "pending",
			"iv": 5, "lp": 1700000000123, "exp": 1700000600, "future": "kept"}
	}
	tests := []struct {
		name    string
		scopes  []string
		d       oauth.DeviceDecision
		wantSt  string
		wantU   int32
		wantUID string
	}{
		{"approve", []string{"openid", "profile"}, oauth.DeviceDecision{Approve: true, User: 7, UserID: "alice", AuthTime: 1700000100}, oauth.DeviceApproved, 7, "alice"},
		{"deny", []string{"openid"}, oauth.DeviceDecision{User: 7, UserID: "alice"}, oauth.DeviceDenied, 0, ""},
		{"approve with no scopes", []string{}, oauth.DeviceDecision{Approve: true, User: 8, UserID: "bob", AuthTime: 1}, oauth.DeviceApproved, 8, "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uh := hash()
			dh := seedDevice(t, rdb, prefix, uh, pending(tt.scopes))
			gotHash, rec, found, err := s.LookupDevice(ctx, uh)
			if err != nil || !found || gotHash != dh || rec.State != oauth.DevicePending {
				t.Fatalf("LookupDevice = %s, %+v, %v, %v", gotHash, rec, found, err)
			}
			decided, err := s.DecideDevice(ctx, dh, tt.d)
			if err != nil || !decided {
				t.Fatalf("DecideDevice = %v, %v", decided, err)
			}
			_, rec, found, err = s.LookupDevice(ctx, uh)
			if err != nil || !found || rec.State != tt.wantSt || rec.User != tt.wantU || rec.UserID != tt.wantUID ||
				!slices.Equal(rec.Scopes, tt.scopes) || rec.LastPoll != 1700000000123 || rec.ExpiresAt != 1700000600 || rec.Interval != 5 {
				t.Fatalf("after the decision: %+v, %v, %v", rec, found, err)
			}
			if tt.d.Approve && rec.AuthTime != tt.d.AuthTime {
				t.Fatalf("auth time %d, want %d", rec.AuthTime, tt.d.AuthTime)
			}
			if v := value(t, rdb, prefix+"oidc:device:{"+dh+"}"); v["future"] != "kept" {
				t.Fatalf("unknown field lost: %v", v)
			}
			pttl(t, rdb, prefix+"oidc:device:{"+dh+"}", 10*time.Minute)
			if decided, err := s.DecideDevice(ctx, dh, tt.d); err != nil || decided {
				t.Fatalf("second decision = %v, %v", decided, err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		if _, _, found, err := s.LookupDevice(ctx, hash()); err != nil || found {
			t.Fatalf("LookupDevice = %v, %v", found, err)
		}
		if decided, err := s.DecideDevice(ctx, hash(), oauth.DeviceDecision{Approve: true}); err != nil || decided {
			t.Fatalf("DecideDevice = %v, %v", decided, err)
		}
	})
	t.Run("64 concurrent decisions", func(t *testing.T) {
		dh := seedDevice(t, rdb, prefix, hash(), pending([]string{"openid"}))
		var wg sync.WaitGroup
		var wins atomic.Int64
		for i := range 64 {
			wg.Go(func() {
				decided, err := s.DecideDevice(ctx, dh, oauth.DeviceDecision{Approve: i%2 == 0, User: int32(i + 1), UserID: "u"})
				if err != nil {
					t.Error(err)
				}
				if decided {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d decisions, want 1", wins.Load())
		}
	})
}

func TestDeleteSession(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	h := hash()
	if err := s.PutSession(ctx, h, oauth.SessionRecord{User: 7, UserID: "alice"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second finds none: no error
		if err := s.DeleteSession(ctx, h); err != nil {
			t.Fatal(err)
		}
		if _, found, err := s.Session(ctx, h); err != nil || found {
			t.Fatalf("session: %v, %v", found, err)
		}
	}
}

// On a Redis Cluster the front channel's scripts each touch one slot (no
// CROSSSLOT) and the exactly-once finish holds across the masters.
func TestOIDCFrontOnCluster(t *testing.T) {
	rdb := startCluster(t)
	s := redisstore.New(rdb, "moreid-test:", redisdb.DefaultTimeout)
	finishRace(t, s, rdb, "moreid-test:")
	if err := s.GrantConsent(context.Background(), 7, "mlc_a", []string{"openid"}, 1); err != nil {
		t.Fatal(err)
	}
	testDecideDevice(t, s, rdb, "moreid-test:")
	testCountedAuthRequests(t, s, rdb, "moreid-test:")
}

func TestPutCountedAuthRequest(t *testing.T) {
	s, rdb, prefix := newStore(t)
	testCountedAuthRequests(t, s, rdb, prefix)
}

// testCountedAuthRequests: over the cap nothing is stored and the wait
// is at most a window.
func testCountedAuthRequests(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, prefix string) {
	t.Helper()
	ctx := context.Background()
	for i := range 3 {
		id := authReqID()
		wait, err := s.PutCountedAuthRequest(ctx, id, oauth.AuthRequestRecord{KeyID: 77}, 10*time.Minute, 2)
		if err != nil || (wait > 0) != (i == 2) || wait > 10*time.Minute {
			t.Fatalf("PutCountedAuthRequest %d = %v, %v", i, wait, err)
		}
		if n, _ := rdb.Exists(ctx, prefix+"oidc:authreq:{"+id+"}").Result(); (n == 1) != (i < 2) {
			t.Fatalf("request %d stored = %v", i, n == 1)
		}
	}
}
