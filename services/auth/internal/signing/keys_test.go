package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const (
	testProp = time.Minute
	testLife = time.Hour
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newDB(t *testing.T, conns int) *gorm.DB {
	t.Helper()
	return pgdbtest.Open(t, testenv.Postgres(t), conns, Migrate)
}

func newKeys(t *testing.T, db *gorm.DB, c *clock, kek string) *Keys {
	t.Helper()
	keks, err := ParseKEKs(kek)
	if err != nil {
		t.Fatal(err)
	}
	return New(db, Config{Rules: Rules{Propagation: testProp, Lifetime: testLife}, KEKs: keks, Clock: c.Now}, quiet)
}

func kids(keys []Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.KID)
	}
	return out
}

// verify checks sig over input against the published JWK of kid.
func verify(t *testing.T, keys []Key, kid string, input, sig []byte) error {
	t.Helper()
	for _, k := range keys {
		if k.KID != kid {
			continue
		}
		var j struct{ Kty, Kid, Alg, Use, N, E string }
		if err := json.Unmarshal(k.PublicJWK, &j); err != nil {
			t.Fatal(err)
		}
		if j.Kty != "RSA" || j.Kid != kid || j.Alg != "RS256" || j.Use != "sig" {
			t.Fatalf("JWK %s", k.PublicJWK)
		}
		n, err1 := base64.RawURLEncoding.DecodeString(j.N)
		e, err2 := base64.RawURLEncoding.DecodeString(j.E)
		if err1 != nil || err2 != nil {
			t.Fatalf("JWK n/e not base64url: %s", k.PublicJWK)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() != 2048 {
			t.Fatalf("key of %d bits, want 2048", pub.N.BitLen())
		}
		sum := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	}
	t.Fatalf("kid %s not published (%v)", kid, kids(keys))
	return nil
}

// Replicas starting together on an empty table create one key between
// them, and every later start creates none.
func TestEnsureConcurrentFirstStarts(t *testing.T) {
	const replicas = 8
	db := newDB(t, replicas+2)
	c := &clock{now: t0}
	created := make([]bool, replicas)
	errs := make([]error, replicas)
	// Each replica's key is made before the race (generating an RSA key
	// takes long enough to spread the replicas out), and the pool's
	// connections are open, so the inserts meet in the database.
	rows := make([]row, replicas)
	k := newKeys(t, db, c, DevKEK)
	for i := range rows {
		var err error
		if rows[i], err = k.newRow(t0, t0); err != nil {
			t.Fatal(err)
		}
	}
	warm(t, db, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range replicas {
		wg.Go(func() {
			<-start
			err := k.store.insert(context.Background(), rows[i], true)
			created[i], errs[i] = err == nil, err
			if errors.Is(err, errExists) {
				errs[i] = nil
			}
		})
	}
	close(start)
	wg.Wait()
	n := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if created[i] {
			n++
		}
	}
	var stored int64
	if err := db.Raw("SELECT count(*) FROM oidc_signing_keys").Scan(&stored).Error; err != nil {
		t.Fatal(err)
	}
	if n != 1 || stored != 1 {
		t.Fatalf("%d replicas say they created a key, %d rows; want 1 and 1", n, stored)
	}
	again, err := newKeys(t, db, c, DevKEK).Ensure(context.Background())
	if err != nil || again {
		t.Fatalf("a later start created a key (%v, %v)", again, err)
	}
	// The first key signs at once.
	k = newKeys(t, db, c, DevKEK)
	pub, kid, err := k.JWKS(context.Background())
	if err != nil || kid == "" || len(pub) != 1 || pub[0].KID != kid {
		t.Fatalf("JWKS %v signing %q (%v), want the one key signing", kids(pub), kid, err)
	}
	if _, err := k.Sign(context.Background(), kid, []byte("a.b")); err != nil {
		t.Fatal(err)
	}
}

// A rotation publishes the next key at once and signs with it only after
// the propagation delay; the retired key stays published until every token
// it signed has expired, then leaves.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	db := newDB(t, 4)
	c := &clock{now: t0}
	k := newKeys(t, db, c, DevKEK)
	if _, err := k.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	_, first, err := k.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	next, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !next.ActivateAt.Equal(c.Now().Add(testProp)) {
		t.Fatalf("next activates at %s, want now + %s", next.ActivateAt, testProp)
	}
	input := []byte("header.payload")
	type step struct {
		name      string
		advance   time.Duration
		published []string
		signer    string
		firstSign bool
		nextSign  bool
	}
	steps := []step{
		{"right after the rotation", 0, []string{first, next.KID}, first, true, false},
		{"just before the switch", testProp - time.Microsecond, []string{first, next.KID}, first, true, false},
		{"the switch", time.Microsecond, []string{first, next.KID}, next.KID, true, true},
		{"stale signers no longer honoured", testProp, []string{first, next.KID}, next.KID, false, true},
		{"the first key's last tokens have expired", testLife + ExpSlack, []string{next.KID}, next.KID, false, true},
	}
	for _, s := range steps {
		c.Add(s.advance)
		// Another replica, whose cache is fresh, and the rotating one must
		// agree.
		for name, keys := range map[string]*Keys{"rotating replica": k, "other replica": newKeys(t, db, c, DevKEK)} {
			pub, signer, err := keys.JWKS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := kids(pub); !equal(got, s.published) || signer != s.signer {
				t.Errorf("%s, %s: JWKS %v signing %s, want %v signing %s", s.name, name, got, signer, s.published, s.signer)
			}
			for _, c := range []struct {
				kid  string
				want bool
			}{{first, s.firstSign}, {next.KID, s.nextSign}} {
				sig, err := keys.Sign(ctx, c.kid, input)
				switch {
				case c.want && err != nil:
					t.Errorf("%s, %s: sign with %s: %v", s.name, name, c.kid, err)
				case !c.want && !errors.Is(err, ErrCannotSign):
					t.Errorf("%s, %s: sign with %s: %v, want ErrCannotSign", s.name, name, c.kid, err)
				case c.want:
					all, _ := keys.List(ctx)
					var listed []Key
					for _, l := range all {
						listed = append(listed, l.Key)
					}
					if err := verify(t, listed, c.kid, input, sig); err != nil {
						t.Errorf("%s, %s: signature by %s does not verify: %v", s.name, name, c.kid, err)
					}
				}
			}
		}
	}
	listed, err := k.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, l := range listed {
		states[l.KID] = l.State
		if l.Private != nil {
			t.Error("List returned a private key")
		}
	}
	if states[first] != StateExpired || states[next.KID] != StateCurrent {
		t.Fatalf("states %v, want first expired and next current", states)
	}
}

// warm opens n pooled connections at once, so a race starts on open ones.
func warm(t *testing.T, db *gorm.DB, n int) {
	t.Helper()
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxIdleConns(n)
	var wg sync.WaitGroup
	hold := make(chan struct{})
	for range n {
		wg.Go(func() {
			conn, err := sqlDB.Conn(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			<-hold
			_ = conn.Close()
		})
	}
	// Until every goroutine holds its connection (a poll, not a race
	// window: the test only waits for a state).
	for sqlDB.Stats().OpenConnections < n && !t.Failed() {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

// Opened keys are cached: a rotation by another replica reaches this one
// once its cache is older than CacheTTL, well before the new key signs.
func TestCacheSeesAnotherReplicasRotation(t *testing.T) {
	ctx := context.Background()
	db := newDB(t, 4)
	c := &clock{now: t0}
	a, b := newKeys(t, db, c, DevKEK), newKeys(t, db, c, DevKEK)
	if _, err := a.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.JWKS(ctx); err != nil { // b caches one key
		t.Fatal(err)
	}
	next, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := b.JWKS(ctx)
	if len(pub) != 1 {
		t.Fatalf("b's fresh cache has %v, want the one key it read", kids(pub))
	}
	c.Add(DefaultCacheTTL)
	pub, _, _ = b.JWKS(ctx)
	if got := kids(pub); len(got) != 2 || got[1] != next.KID {
		t.Fatalf("after %s b publishes %v, want the next key %s too", DefaultCacheTTL, got, next.KID)
	}
}

// The sealed private key is neither the PKCS#8 DER nor its base64, and a
// replica with the wrong KEK publishes the keys but signs with none.
func TestPrivatePartSealed(t *testing.T) {
	ctx := context.Background()
	db := newDB(t, 4)
	c := &clock{now: t0}
	k := newKeys(t, db, c, DevKEK)
	if _, err := k.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := k.keys(ctx, true)
	if err != nil || len(keys) != 1 || keys[0].Private == nil {
		t.Fatalf("keys %v (%v), want one opened key", kids(keys), err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(keys[0].Private)
	if err != nil {
		t.Fatal(err)
	}
	var enc []byte
	var kekID string
	if err := db.Raw("SELECT private_enc, kek_id FROM oidc_signing_keys").Row().Scan(&enc, &kekID); err != nil {
		t.Fatal(err)
	}
	// The PKCS#8 header (SEQUENCE, version 0, rsaEncryption OID) and the
	// key itself, raw and in base64.
	for name, needle := range map[string][]byte{
		"DER":              der,
		"DER header":       der[:26],
		"base64 DER":       []byte(base64.StdEncoding.EncodeToString(der)[:64]),
		"base64url DER":    []byte(base64.RawURLEncoding.EncodeToString(der)[:64]),
		"PEM label":        []byte("PRIVATE KEY"),
		"private exponent": keys[0].Private.D.Bytes()[:32],
	} {
		if bytes.Contains(enc, needle) {
			t.Errorf("private_enc contains the %s", name)
		}
	}
	if kekID != KEKID(mustDecode(t, DevKEK)) {
		t.Errorf("kek_id %s, want the dev KEK's", kekID)
	}

	other := newKeys(t, db, c, b64(key(9)))
	pub, kid, err := other.JWKS(ctx)
	if err != nil || len(pub) != 1 {
		t.Fatalf("wrong-KEK replica publishes %v (%v), want the key", kids(pub), err)
	}
	if _, err := other.Sign(ctx, kid, []byte("a.b")); !errors.Is(err, ErrCannotSign) {
		t.Fatalf("wrong-KEK replica signs: %v", err)
	}
}

// The serving role gets exactly what it needs: it creates, rotates and
// reads keys but cannot delete one.
func TestServingRolePrivileges(t *testing.T) {
	ctx := context.Background()
	owner, serving := testenv.PostgresRoles(t)
	db := pgdbtest.OpenServing(t, owner, serving, 2, Schema)
	c := &clock{now: t0}
	k := newKeys(t, db, c, DevKEK)
	if _, err := k.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if l, err := k.List(ctx); err != nil || len(l) != 2 {
		t.Fatalf("list %d keys (%v), want 2", len(l), err)
	}
	if err := db.Exec("DELETE FROM oidc_signing_keys").Error; err == nil {
		t.Fatal("the serving role deleted signing keys")
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
