// Package signing keeps the OpenID Connect ID token signing keys (SPEC
// section 8): RSA-2048 keys in auth's Postgres, their private parts sealed
// under the key-encryption key, the rule that picks the key that signs and
// the keys that are published, rotation, and the RS256 signature itself.
// No private key ever leaves auth.
package signing

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/apierr"
)

// AlgRS256 is the only algorithm the keys use.
const AlgRS256 = "RS256"

// rsaBits is the size of a new key: RSA-2048, what every relying party
// library accepts.
const rsaBits = 2048

// DefaultCacheTTL is how long opened keys are reused before the rows are
// read again. It must stay under the propagation delay, so that a key
// rotated in on another replica is in every cache before it signs.
const DefaultCacheTTL = 10 * time.Second

// minReload is the least time between two reads forced by a kid the cache
// does not know.
const minReload = time.Second

// Config is what Keys needs besides the database.
type Config struct {
	Rules
	KEKs *KEKs
	// Clock is the time source (time.Now in production).
	Clock func() time.Time
	// CacheTTL bounds how stale the opened keys may be (DefaultCacheTTL
	// when 0).
	CacheTTL time.Duration
	// Timeout bounds one Postgres call.
	Timeout time.Duration
}

// Keys are the signing keys of one auth replica.
type Keys struct {
	cfg   Config
	store store
	log   *slog.Logger

	mu       sync.Mutex
	cached   []Key
	loadedAt time.Time
	loaded   bool
}

// New returns the keys stored in db (migrated with Schema).
func New(db *gorm.DB, cfg Config, log *slog.Logger) *Keys {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	return &Keys{cfg: cfg, store: store{db: db, timeout: cfg.Timeout}, log: log}
}

// Ensure creates the first key, active at once, when there is none. Replicas
// starting together create one between them (an advisory lock); the others
// find it. created reports whether this call made it.
func (k *Keys) Ensure(ctx context.Context) (created bool, err error) {
	now := k.cfg.Clock()
	r, err := k.newRow(now, now)
	if err != nil {
		return false, err
	}
	err = k.store.insert(ctx, r, true)
	if errors.Is(err, errExists) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	k.invalidate()
	k.log.Info("created the first OIDC signing key", "kid", r.KID)
	return true, nil
}

// Rotate creates the next key: published at once, signing from now +
// Propagation, when every other key retires.
func (k *Keys) Rotate(ctx context.Context) (Key, error) {
	now := k.cfg.Clock()
	r, err := k.newRow(now, now.Add(k.cfg.Propagation))
	if err != nil {
		return Key{}, err
	}
	if err := k.store.insert(ctx, r, false); err != nil {
		return Key{}, err
	}
	k.invalidate()
	k.log.Info("rotated the OIDC signing key", "kid", r.KID, "activate_at", r.ActivateAt)
	return Key{KID: r.KID, Alg: r.Alg, PublicJWK: r.PublicJWK, CreatedAt: r.CreatedAt, ActivateAt: r.ActivateAt}, nil
}

// Listed is a key with its state, for the operator.
type Listed struct {
	Key
	State string
}

// List returns every key (private parts dropped) with its state at now,
// oldest first. It reads the rows, not the cache: an operator wants the
// truth.
func (k *Keys) List(ctx context.Context) ([]Listed, error) {
	rows, err := k.store.list(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]Key, len(rows))
	for i, r := range rows {
		keys[i] = public(r)
	}
	now := k.cfg.Clock()
	out := make([]Listed, len(keys))
	for i, key := range keys {
		out[i] = Listed{Key: key, State: k.cfg.State(key, keys, now)}
	}
	return out, nil
}

// JWKS returns the keys to publish at now (private parts dropped) and the
// kid that signs now ("" before any key is active).
func (k *Keys) JWKS(ctx context.Context) ([]Key, string, error) {
	keys, err := k.keys(ctx, false)
	if err != nil {
		return nil, "", err
	}
	now := k.cfg.Clock()
	var out []Key
	for _, key := range keys {
		if k.cfg.Published(key, now) {
			key.Private = nil
			out = append(out, key)
		}
	}
	signer, _ := Signer(keys, now)
	return out, signer.KID, nil
}

// ErrCannotSign is the refusal of a kid that may not sign now (unknown, not
// yet active, retired too long ago): the caller's JWKS view is wrong or
// forged.
var ErrCannotSign = errors.New("this key may not sign now")

// Sign returns the RS256 signature (RSASSA-PKCS1-v1_5, SHA-256) of input
// under the key kid, when that key may sign now.
func (k *Keys) Sign(ctx context.Context, kid string, input []byte) ([]byte, error) {
	key, err := k.signingKey(ctx, kid)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(input)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key.Private, crypto.SHA256, sum[:])
	if err != nil {
		return nil, apierr.Wrap(apierr.Internal, fmt.Errorf("sign: %w", err))
	}
	return sig, nil
}

// Lifetime is the longest a token signed now may live (Rules.Lifetime):
// a retired key is published that long, no longer.
func (k *Keys) Lifetime() time.Duration { return k.cfg.Lifetime }

// Now is the keys' clock.
func (k *Keys) Now() time.Time { return k.cfg.Clock() }

func (k *Keys) signingKey(ctx context.Context, kid string) (Key, error) {
	for _, force := range []bool{false, true} {
		keys, err := k.keys(ctx, force)
		if err != nil {
			return Key{}, err
		}
		now := k.cfg.Clock()
		signer, _ := Signer(keys, now)
		for _, key := range keys {
			if key.KID == kid {
				if !k.cfg.MaySign(key, signer, now) {
					return Key{}, ErrCannotSign
				}
				return key, nil
			}
		}
	}
	return Key{}, ErrCannotSign
}

// keys are the opened keys, from the cache while it is fresh. force reads
// the rows again (a kid the cache does not know), at most once a
// minReload. A failed read keeps serving the cache it has: the keys
// change only by rotation, so a stale answer is the right one for a while.
func (k *Keys) keys(ctx context.Context, force bool) ([]Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.cfg.Clock()
	age := now.Sub(k.loadedAt)
	if k.loaded && age >= 0 && (age < k.cfg.CacheTTL && (!force || age < minReload)) {
		return k.cached, nil
	}
	rows, err := k.store.list(ctx)
	if err != nil {
		if k.loaded {
			k.log.Warn("cannot read the signing keys, using the ones read before", "error", err.Error(), "age", age.String())
			return k.cached, nil
		}
		return nil, err
	}
	keys := make([]Key, 0, len(rows))
	for _, r := range rows {
		key := public(r)
		der, err := k.cfg.KEKs.Open(r.KID, r.KEKID, r.PrivateEnc)
		if err == nil {
			key.Private, err = parsePrivate(der)
		}
		if err != nil {
			// Still published (its tokens verify), never used to sign.
			k.log.Error("cannot open an OIDC signing key", "kid", r.KID, "kek_id", r.KEKID, "error", err.Error())
		}
		keys = append(keys, key)
	}
	k.cached, k.loadedAt, k.loaded = keys, now, true
	return keys, nil
}

func (k *Keys) invalidate() {
	k.mu.Lock()
	k.loaded = false
	k.mu.Unlock()
}

func parsePrivate(der []byte) (*rsa.PrivateKey, error) {
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	rk, ok := p.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("private key: not RSA")
	}
	return rk, nil
}

func public(r row) Key {
	key := Key{KID: r.KID, Alg: r.Alg, PublicJWK: r.PublicJWK, CreatedAt: r.CreatedAt, ActivateAt: r.ActivateAt}
	if r.RetiredAt.Valid {
		t := r.RetiredAt.Time
		key.RetiredAt = &t
	}
	return key
}

// newRow makes a fresh key, sealed, created at now and signing from
// activate.
func (k *Keys) newRow(now, activate time.Time) (row, error) {
	kid, err := newKID()
	if err != nil {
		return row{}, apierr.Wrap(apierr.Internal, err)
	}
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return row{}, apierr.Wrap(apierr.Internal, fmt.Errorf("generate signing key: %w", err))
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return row{}, apierr.Wrap(apierr.Internal, fmt.Errorf("encode signing key: %w", err))
	}
	sealed, kekID, err := k.cfg.KEKs.Seal(kid, der)
	if err != nil {
		return row{}, apierr.Wrap(apierr.Internal, fmt.Errorf("seal signing key: %w", err))
	}
	jwk, err := PublicJWK(kid, &priv.PublicKey)
	if err != nil {
		return row{}, apierr.Wrap(apierr.Internal, err)
	}
	// Postgres keeps microseconds: round here so the row read back is the
	// instant computed.
	return row{
		KID: kid, Alg: AlgRS256, PublicJWK: jwk, PrivateEnc: sealed, KEKID: kekID,
		CreatedAt: now.UTC().Truncate(time.Microsecond), ActivateAt: activate.UTC().Truncate(time.Microsecond),
	}, nil
}

// newKID is 16 random bytes, base64url: unguessable, so a kid names one key
// and says nothing of it.
func newKID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// jwk is the public JWK of an RS256 key (RFC 7517, RFC 7518 section 6.3.1).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// PublicJWK is the JSON JWK of pub named kid.
func PublicJWK(kid string, pub *rsa.PublicKey) ([]byte, error) {
	return json.Marshal(jwk{
		Kty: "RSA", Kid: kid, Alg: AlgRS256, Use: "sig",
		N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	})
}
