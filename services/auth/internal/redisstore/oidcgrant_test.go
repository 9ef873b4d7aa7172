package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/redisstore"
)

// directory is a pure in-memory user and key directory for the flows over
// the real store: alice is user 7, key 1 is client "mlc_a".
type directory struct{ disabled atomic.Bool }

func (d *directory) VerifyPassword(context.Context, string, string) (oauth.User, error) {
	return oauth.User{}, apierr.New(apierr.InvalidCredentials)
}

func (d *directory) GetUser(_ context.Context, userID string) (oauth.User, error) {
	if userID != "alice" {
		return oauth.User{}, apierr.New(apierr.NotFound)
	}
	return oauth.User{ID: 7, UserID: "alice", Username: "Alice", Disabled: d.disabled.Load()}, nil
}

func (d *directory) UpdateProfile(context.Context, string, oauth.ProfileChange) (oauth.User, error) {
	return oauth.User{}, apierr.New(apierr.Unavailable)
}

func (d *directory) KeyActive(_ context.Context, id int64) (bool, error) {
	return id == 1 || id == 2, nil
}

func (d *directory) Client(_ context.Context, id string) (oauth.Client, error) {
	switch id {
	case clientA.ClientID:
		return clientA, nil
	case clientB.ClientID:
		return clientB, nil
	}
	return oauth.Client{}, apierr.New(apierr.NotFound)
}

var (
	clientA = oauth.Client{KeyID: 1, ClientID: "mlc_a", Name: "app A", RedirectURIs: []string{"https://a.example/cb"}}
	clientB = oauth.Client{KeyID: 2, ClientID: "mlc_b", Name: "app B", RedirectURIs: []string{"https://b.example/cb"}}
)

const (
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more"
	redirect = "https://a.example/cb"
)

func challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// oidcEnv is the flows over a real store on rdb.
type oidcEnv struct {
	flows  *oauth.Service
	store  *redisstore.Store
	rdb    redis.UniversalClient
	prefix string
	dir    *directory
}

func newOIDC(t *testing.T, rdb redis.UniversalClient, prefix string) *oidcEnv {
	t.Helper()
	st := redisstore.New(rdb, prefix, redisdb.DefaultTimeout)
	dir := &directory{}
	flows := oauth.New(st, dir, dir, oauth.Lifetimes{Token: time.Hour, Session: time.Hour, Refresh: 24 * time.Hour}, oauth.Limits{}, audit.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	return &oidcEnv{flows: flows, store: st, rdb: rdb, prefix: prefix, dir: dir}
}

// putCode writes a code record as the front channel's Decide does.
func (e *oidcEnv) putCode(t *testing.T, rec oauth.OIDCCodeRecord) string {
	t.Helper()
	code := secret.New("", 43, secret.Alphanumeric)
	b, _ := json.Marshal(rec)
	if err := e.rdb.Set(context.Background(), e.prefix+"oidc:code:{"+secret.Hash(code)+"}", b, oauth.OIDCCodeTTL).Err(); err != nil {
		t.Fatal(err)
	}
	return code
}

func codeRec(scopes ...string) oauth.OIDCCodeRecord {
	return oauth.OIDCCodeRecord{ClientID: clientA.ClientID, KeyID: 1, KeyName: "app A", RedirectURI: redirect, Scopes: scopes,
		Nonce: "n-1", Challenge: challenge(verifier), User: 7, UserID: "alice", AuthTime: 1700000000, Grant: secret.New("", 22, secret.Alphanumeric)}
}

// approveDevice decides a device record as the verification page does.
func (e *oidcEnv) approveDevice(t *testing.T, deviceCode, state string) {
	t.Helper()
	ctx := context.Background()
	key := e.prefix + "oidc:device:{" + secret.Hash(deviceCode) + "}"
	b, err := e.rdb.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var rec oauth.DeviceRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec.State, rec.User, rec.UserID, rec.AuthTime = state, 7, "alice", 1700000000
	b, _ = json.Marshal(rec)
	if err := e.rdb.Set(ctx, key, b, redis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
}

// dead asserts that neither the access token nor the refresh token of g
// works any more.
func (e *oidcEnv) dead(t *testing.T, g oauth.Grant) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.flows.ResolveToken(ctx, g.AccessToken); !apierr.Is(err, apierr.InvalidToken) {
		t.Errorf("access token after revocation: %v, want invalid_token", err)
	}
	if g.RefreshToken != "" {
		if _, err := e.flows.Refresh(ctx, clientA, g.RefreshToken, nil); !apierr.Is(err, apierr.InvalidGrant) {
			t.Errorf("refresh after revocation: %v, want invalid_grant", err)
		}
	}
}

// race runs f 64 times at once and returns the successes.
func race(f func() (oauth.Grant, error)) (wins []oauth.Grant, errs []error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 64 {
		wg.Go(func() {
			<-start
			g, err := f()
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins = append(wins, g)
			} else {
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return wins, errs
}

func testOIDCRaces(t *testing.T, e *oidcEnv) {
	ctx := context.Background()
	t.Run("code", func(t *testing.T) {
		code := e.putCode(t, codeRec("openid", "offline_access"))
		wins, errs := race(func() (oauth.Grant, error) { return e.flows.RedeemCode(ctx, clientA, code, verifier, redirect) })
		if len(wins) != 1 {
			t.Fatalf("%d grants of one code, want 1 (errors %v)", len(wins), errs)
		}
		for _, err := range errs {
			if !apierr.Is(err, apierr.InvalidGrant) {
				t.Fatalf("loser: %v, want invalid_grant", err)
			}
		}
		if wins[0].RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		// The losers' replays revoked what the winner got.
		e.dead(t, wins[0])
	})
	t.Run("refresh", func(t *testing.T) {
		g, err := e.flows.RedeemCode(ctx, clientA, e.putCode(t, codeRec("openid", "offline_access")), verifier, redirect)
		if err != nil {
			t.Fatal(err)
		}
		wins, errs := race(func() (oauth.Grant, error) { return e.flows.Refresh(ctx, clientA, g.RefreshToken, nil) })
		if len(wins) != 1 {
			t.Fatalf("%d rotations of one refresh token, want 1 (errors %v)", len(wins), errs)
		}
		for _, err := range errs {
			if !apierr.Is(err, apierr.InvalidGrant) {
				t.Fatalf("loser: %v, want invalid_grant", err)
			}
		}
		e.dead(t, wins[0])
		e.dead(t, g)
	})
	t.Run("device", func(t *testing.T) {
		dc := secret.New("", 43, secret.Alphanumeric)
		if _, err := e.flows.StartDevice(ctx, clientA, dc, secret.New("", 8, "BCDFGHJKLMNPQRSTVWXZ"), []string{"openid"}, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		e.approveDevice(t, dc, oauth.DeviceApproved)
		wins, errs := race(func() (oauth.Grant, error) { return e.flows.PollDevice(ctx, clientA, dc) })
		if len(wins) != 1 {
			t.Fatalf("%d grants of one device code, want 1 (errors %v)", len(wins), errs)
		}
		if _, err := e.flows.ResolveToken(ctx, wins[0].AccessToken); err != nil {
			t.Fatalf("the device's token: %v", err)
		}
	})
}

// testUserEnds runs the operator's ends of a user's grants, whose steps
// span slots: revoke-tokens and consent withdrawal.
func testUserEnds(t *testing.T, e *oidcEnv) {
	ctx := context.Background()
	grant := func(t *testing.T) oauth.Grant {
		g, err := e.flows.RedeemCode(ctx, clientA, e.putCode(t, codeRec("openid", "offline_access")), verifier, redirect)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	t.Run("revoke-tokens", func(t *testing.T) {
		g := grant(t)
		// One family, which ends with the access token it minted.
		if n, err := e.flows.RevokeUserTokens(ctx, "alice"); err != nil || n != 1 {
			t.Fatalf("RevokeUserTokens = %d, %v", n, err)
		}
		e.dead(t, g)
	})
	t.Run("withdraw consent", func(t *testing.T) {
		g := grant(t)
		key := e.prefix + "oidc:consent:{7}"
		if err := e.rdb.HSet(ctx, key, clientA.ClientID, `{"sc":["openid"],"t":1}`, clientB.ClientID, `{"sc":["openid"],"t":1}`).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := e.flows.WithdrawConsent(ctx, "alice", clientA.ClientID); err != nil || n != 1 {
			t.Fatalf("WithdrawConsent = %d, %v", n, err)
		}
		e.dead(t, g)
		if left, err := e.rdb.HKeys(ctx, key).Result(); err != nil || len(left) != 1 || left[0] != clientB.ClientID {
			t.Fatalf("consents left = %v, %v", left, err)
		}
		if n, err := e.flows.WithdrawConsent(ctx, "alice", ""); err != nil || n != 1 {
			t.Fatalf("WithdrawConsent all = %d, %v", n, err)
		}
	})
}

func TestOIDCUserEnds(t *testing.T) {
	_, rdb, prefix := newStore(t)
	testUserEnds(t, newOIDC(t, rdb, prefix))
}

func TestOIDCUserEndsOnCluster(t *testing.T) {
	testUserEnds(t, newOIDC(t, startCluster(t), "moreid-test:"))
}

func TestOIDCRaces(t *testing.T) {
	_, rdb, prefix := newStore(t)
	testOIDCRaces(t, newOIDC(t, rdb, prefix))
}

func TestOIDCRacesOnCluster(t *testing.T) {
	testOIDCRaces(t, newOIDC(t, startCluster(t), "moreid-test:"))
}

// Each way a code can be presented, on a fresh code of client A.
func TestRedeemOIDCCode(t *testing.T) {
	_, rdb, prefix := newStore(t)
	e := newOIDC(t, rdb, prefix)
	ctx := context.Background()
	tests := []struct {
		name string
		rec  func(*oauth.OIDCCodeRecord)
		// first is the first attempt, then (when intact) the rightful one
		// must still succeed.
		client           oauth.Client
		verifier, uri    string
		want             apierr.Kind // "" success
		intact           bool
		replayBy         *oauth.Client
		replayRevokesAll bool
	}{
		{name: "ok", client: clientA, verifier: verifier, uri: redirect},
		{name: "other client", client: clientB, verifier: verifier, uri: redirect, want: apierr.InvalidGrant, intact: true},
		{name: "wrong verifier", client: clientA, verifier: verifier + "x", uri: redirect, want: apierr.InvalidGrant, intact: true},
		{name: "no verifier", client: clientA, uri: redirect, want: apierr.InvalidGrant, intact: true},
		{name: "verifier without challenge", rec: func(r *oauth.OIDCCodeRecord) { r.Challenge = "" }, client: clientA, verifier: verifier, uri: redirect, want: apierr.InvalidGrant},
		{name: "other redirect_uri", client: clientA, verifier: verifier, uri: "https://a.example/other", want: apierr.InvalidGrant, intact: true},
		{name: "same client replays", client: clientA, verifier: verifier, uri: redirect, replayBy: &clientA, replayRevokesAll: true},
		{name: "other client replays", client: clientA, verifier: verifier, uri: redirect, replayBy: &clientB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := codeRec("openid", "offline_access")
			if tt.rec != nil {
				tt.rec(&rec)
			}
			code := e.putCode(t, rec)
			g, err := e.flows.RedeemCode(ctx, tt.client, code, tt.verifier, tt.uri)
			if tt.want != "" {
				if !apierr.Is(err, tt.want) {
					t.Fatalf("RedeemCode = %v, want %s", err, tt.want)
				}
				_, err := e.flows.RedeemCode(ctx, clientA, code, verifier, redirect)
				if tt.intact != (err == nil) {
					t.Fatalf("rightful redemption afterwards: %v, want intact=%v", err, tt.intact)
				}
				return
			}
			if err != nil {
				t.Fatalf("RedeemCode: %v", err)
			}
			if g.Subject != "7" || g.Nonce != "n-1" || g.AuthTime != 1700000000 || g.RefreshToken == "" || g.ClientID != clientA.ClientID {
				t.Fatalf("grant = %+v", g)
			}
			at, err := e.flows.ResolveToken(ctx, g.AccessToken)
			if err != nil || at.Record.ClientID != clientA.ClientID || at.Record.Grant != rec.Grant || len(at.Record.Scopes) != 2 {
				t.Fatalf("access token = %+v, %v", at.Record, err)
			}
			if tt.replayBy == nil {
				return
			}
			if _, err := e.flows.RedeemCode(ctx, *tt.replayBy, code, verifier, redirect); !apierr.Is(err, apierr.InvalidGrant) {
				t.Fatalf("replay = %v, want invalid_grant", err)
			}
			if tt.replayRevokesAll {
				e.dead(t, g)
				return
			}
			if _, err := e.flows.ResolveToken(ctx, g.AccessToken); err != nil {
				t.Fatalf("another client's replay ended the token: %v", err)
			}
		})
	}
}

func TestOIDCRefresh(t *testing.T) {
	_, rdb, prefix := newStore(t)
	e := newOIDC(t, rdb, prefix)
	ctx := context.Background()
	grant := func(t *testing.T) oauth.Grant {
		g, err := e.flows.RedeemCode(ctx, clientA, e.putCode(t, codeRec("openid", "profile", "offline_access")), verifier, redirect)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	t.Run("rotation and reuse", func(t *testing.T) {
		g := grant(t)
		n, err := e.flows.Refresh(ctx, clientA, g.RefreshToken, []string{"openid"})
		if err != nil || n.RefreshToken == g.RefreshToken || len(n.Scopes) != 1 {
			t.Fatalf("Refresh = %+v, %v", n, err)
		}
		n2, err := e.flows.Refresh(ctx, clientA, n.RefreshToken, nil)
		if err != nil || len(n2.Scopes) != 3 {
			t.Fatalf("second Refresh = %+v, %v (narrowing is per request)", n2, err)
		}
		// The first token again: the family ends, with every access token.
		if _, err := e.flows.Refresh(ctx, clientA, g.RefreshToken, nil); !apierr.Is(err, apierr.InvalidGrant) {
			t.Fatalf("reuse = %v, want invalid_grant", err)
		}
		e.dead(t, n2)
		e.dead(t, n)
		e.dead(t, g)
	})
	tests := []struct {
		name   string
		call   func(g oauth.Grant) error
		want   apierr.Kind
		intact bool
	}{
		{"other client", func(g oauth.Grant) error { _, err := e.flows.Refresh(ctx, clientB, g.RefreshToken, nil); return err }, apierr.InvalidGrant, true},
		{"wider scope", func(g oauth.Grant) error {
			_, err := e.flows.Refresh(ctx, clientA, g.RefreshToken, []string{"email"})
			return err
		}, apierr.InvalidScope, true},
		{"unknown token", func(g oauth.Grant) error {
			_, err := e.flows.Refresh(ctx, clientA, g.RefreshToken[:len(g.RefreshToken)-1]+"!", nil)
			return err
		}, apierr.InvalidGrant, true},
		{"malformed", func(oauth.Grant) error { _, err := e.flows.Refresh(ctx, clientA, "mlrt_x", nil); return err }, apierr.InvalidGrant, true},
		{"disabled user", func(g oauth.Grant) error {
			e.dir.disabled.Store(true)
			defer e.dir.disabled.Store(false)
			_, err := e.flows.Refresh(ctx, clientA, g.RefreshToken, nil)
			return err
		}, apierr.InvalidGrant, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grant(t)
			if err := tt.call(g); !apierr.Is(err, tt.want) {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
			if _, err := e.flows.Refresh(ctx, clientA, g.RefreshToken, nil); (err == nil) != tt.intact {
				t.Fatalf("rightful refresh afterwards: %v, want intact=%v", err, tt.intact)
			}
		})
	}
	t.Run("revoke-tokens ends families", func(t *testing.T) {
		g := grant(t)
		n, err := e.flows.RevokeUserTokens(ctx, "alice")
		if err != nil || n < 2 {
			t.Fatalf("RevokeUserTokens = %d, %v", n, err)
		}
		e.dead(t, g)
	})
}

// The device poll's every state, with the clock the caller gives.
func TestPollDevice(t *testing.T) {
	s, rdb, prefix := newStore(t)
	e := newOIDC(t, rdb, prefix)
	ctx := context.Background()
	t0 := time.Unix(1800000000, 0)
	start := func(t *testing.T) string {
		t.Helper()
		dc := secret.New("", 43, secret.Alphanumeric)
		rec := oauth.DeviceRecord{ClientID: clientA.ClientID, KeyID: 1, Scopes: []string{}, State: oauth.DevicePending, Interval: 5, ExpiresAt: t0.Add(10 * time.Minute).Unix()}
		ok, err := s.PutDevice(ctx, secret.Hash(dc), hash(), rec, 10*time.Minute)
		if err != nil || !ok {
			t.Fatalf("PutDevice = %v, %v", ok, err)
		}
		return dc
	}
	type poll struct {
		client string
		after  time.Duration
		want   oauth.PollOutcome
	}
	tests := []struct {
		name   string
		decide string
		polls  []poll
	}{
		{"pending, then too fast", "", []poll{{"mlc_a", 0, oauth.PollPending}, {"mlc_a", 4 * time.Second, oauth.PollSlowDown}, {"mlc_a", 13 * time.Second, oauth.PollSlowDown}, {"mlc_a", 28 * time.Second, oauth.PollPending}}},
		{"other client", oauth.DeviceApproved, []poll{{"mlc_b", 0, oauth.PollMismatch}, {"mlc_a", 0, oauth.PollApproved}}},
		{"approved once", oauth.DeviceApproved, []poll{{"mlc_a", 0, oauth.PollApproved}, {"mlc_a", 10 * time.Second, oauth.PollRedeemed}}},
		{"denied", oauth.DeviceDenied, []poll{{"mlc_a", 0, oauth.PollDenied}, {"mlc_a", 10 * time.Second, oauth.PollExpired}}},
		{"expired", "", []poll{{"mlc_a", 10 * time.Minute, oauth.PollExpired}, {"mlc_a", 11 * time.Minute, oauth.PollExpired}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dc := start(t)
			if tt.decide != "" {
				e.approveDevice(t, dc, tt.decide)
			}
			for i, p := range tt.polls {
				got, err := s.PollDevice(ctx, secret.Hash(dc), p.client, t0.Add(p.after))
				if err != nil || got.Outcome != p.want {
					t.Fatalf("poll %d = %+v, %v; want %s", i, got, err, p.want)
				}
				if p.want == oauth.PollApproved && (got.Record.UserID != "alice" || got.Record.User != 7) {
					t.Fatalf("approved record = %+v", got.Record)
				}
			}
		})
	}
	t.Run("slow_down adds 5 seconds", func(t *testing.T) {
		dc := start(t)
		for i, want := range []int{0, 10, 15} {
			got, err := s.PollDevice(ctx, secret.Hash(dc), "mlc_a", t0.Add(time.Duration(i)*time.Second))
			if err != nil || got.Interval != want {
				t.Fatalf("poll %d = %+v, %v; want interval %d", i, got, err, want)
			}
		}
	})
	t.Run("unknown", func(t *testing.T) {
		got, err := s.PollDevice(ctx, hash(), "mlc_a", t0)
		if err != nil || got.Outcome != oauth.PollMissing {
			t.Fatalf("poll = %+v, %v", got, err)
		}
	})
	t.Run("user code clash", func(t *testing.T) {
		if _, err := e.flows.StartDevice(ctx, clientA, "dc-1", "wxyz-bcdf", nil, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := e.flows.StartDevice(ctx, clientB, "dc-2", "WXYZBCDF", nil, time.Minute); !apierr.Is(err, apierr.Conflict) {
			t.Fatalf("clash = %v, want conflict", err)
		}
	})
}

// oidcConsumers are the back channel's consuming calls, as consumers():
// each must survive a late reply (go-redis sends the script again) and
// answer what its first run did.
func oidcConsumers(direct redis.UniversalClient, prefix string) []consumer {
	ctx := context.Background()
	return []consumer{
		{"RedeemOIDCCode", func(t *testing.T, s *redisstore.Store) (func() (bool, error), func() bool) {
			e := &oidcEnv{store: s, rdb: direct, prefix: prefix}
			code := e.putCode(t, codeRec("openid"))
			h := secret.Hash(code)
			return func() (bool, error) {
					r, err := s.RedeemOIDCCode(ctx, h, clientA.ClientID)
					return r.Outcome == oauth.Redeemed, err
				},
				func() bool { _, found, _ := s.OIDCCode(ctx, h); return !found }
		}},
		{"RotateRefresh", func(t *testing.T, s *redisstore.Store) (func() (bool, error), func() bool) {
			fam, cur, next := secret.New("", 24, secret.Alphanumeric), hash(), hash()
			if err := s.PutFamily(ctx, fam, oauth.FamilyRecord{ClientID: "mlc_a", UserID: "alice"}, cur, hash(), time.Minute); err != nil {
				t.Fatal(err)
			}
			return func() (bool, error) {
					r, err := s.RotateRefresh(ctx, fam, cur, "mlc_a", next, hash(), time.Minute)
					return r.Outcome == oauth.Rotated, err
				},
				func() bool { f, _, _ := s.Family(ctx, fam); return f.Current == next }
		}},
		{"PollDevice", func(t *testing.T, s *redisstore.Store) (func() (bool, error), func() bool) {
			dh := hash()
			rec := oauth.DeviceRecord{ClientID: "mlc_a", State: oauth.DeviceApproved, UserID: "alice", Interval: 5, ExpiresAt: time.Now().Add(time.Minute).Unix()}
			if ok, err := s.PutDevice(ctx, dh, hash(), rec, time.Minute); err != nil || !ok {
				t.Fatal(ok, err)
			}
			now := time.Now()
			return func() (bool, error) {
					p, err := s.PollDevice(ctx, dh, "mlc_a", now)
					return p.Outcome == oauth.PollApproved, err
				},
				func() bool {
					b, _ := direct.Get(ctx, prefix+"oidc:device:{"+dh+"}").Bytes()
					var got oauth.DeviceRecord
					return json.Unmarshal(b, &got) == nil && got.State == oauth.DeviceRedeemed
				}
		}},
		{"RevokeFamily", func(t *testing.T, s *redisstore.Store) (func() (bool, error), func() bool) {
			fam, cur := secret.New("", 24, secret.Alphanumeric), hash()
			if err := s.PutFamily(ctx, fam, oauth.FamilyRecord{ClientID: "mlc_a", UserID: "alice"}, cur, hash(), time.Minute); err != nil {
				t.Fatal(err)
			}
			return func() (bool, error) { return s.RevokeFamily(ctx, fam, cur, "mlc_a") },
				func() bool { _, found, _ := s.Family(ctx, fam); return !found }
		}},
	}
}

func TestOIDCConsumingCallsSurviveSlowReplies(t *testing.T) {
	for i, c := range oidcConsumers(nil, "") {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, p, direct, prefix := slowStore(t)
			c := oidcConsumers(direct, prefix)[i]
			// The script is loaded by a first run on a record of its own,
			// so that the late reply is the script's, not a NOSCRIPT.
			warm, _ := c.prepare(t, s)
			if ok, err := warm(); err != nil || !ok {
				t.Fatalf("warm-up = %v, %v", ok, err)
			}
			call, gone := c.prepare(t, s)
			before := p.Replies()
			p.DelayNext(1, hold)
			got, err := call()
			if err != nil || !got {
				t.Fatalf("call through a late reply = %v, %v; want the record", got, err)
			}
			if p.Replies()-before < 2 {
				t.Fatalf("%d replies forwarded: the late reply was never re-sent", p.Replies()-before)
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
