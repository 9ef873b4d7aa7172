package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

// keySet is one answer of GetJWKS, parsed.
type keySet struct {
	raw     []json.RawMessage // the public JWKs as auth published them
	keys    []jose.JSONWebKey
	signing *jose.JSONWebKey // the key that signs now (public part)
}

// keyCache holds GetJWKS for a few seconds: the JWKS endpoint and every ID
// token need it, and a rotation (the next key is published long before it
// signs) is seen within the cache's lifetime.
type keyCache struct {
	client authv1.OIDCServiceClient
	now    func() time.Time
	ttl    time.Duration

	mu      sync.Mutex
	set     *keySet
	fetched time.Time
}

func newKeyCache(client authv1.OIDCServiceClient, now func() time.Time, ttl time.Duration) *keyCache {
	return &keyCache{client: client, now: now, ttl: ttl}
}

// get returns the cached set, fetching it when older than the ttl. md is
// the request's metadata (client IP, request id) for auth's logs.
func (c *keyCache) get(ctx context.Context) (*keySet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set != nil && c.now().Sub(c.fetched) < c.ttl {
		return c.set, nil
	}
	res, err := c.client.GetJWKS(ctx, &authv1.GetJWKSRequest{})
	if err != nil {
		return nil, err
	}
	set := &keySet{}
	for _, k := range res.GetKeys() {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON([]byte(k.GetJwk())); err != nil {
			return nil, fmt.Errorf("oidc: key %q from auth is not a JWK: %w", k.GetKid(), err)
		}
		if !jwk.IsPublic() {
			return nil, fmt.Errorf("oidc: key %q from auth is not a public key", k.GetKid())
		}
		if jwk.KeyID == "" {
			jwk.KeyID = k.GetKid()
		}
		if jwk.Algorithm == "" {
			jwk.Algorithm = k.GetAlg()
		}
		if jwk.Use == "" {
			jwk.Use = "sig"
		}
		set.keys = append(set.keys, jwk)
		out, err := jwk.MarshalJSON()
		if err != nil {
			return nil, err
		}
		set.raw = append(set.raw, out)
	}
	for i := range set.keys {
		if set.keys[i].KeyID == res.GetSigningKid() {
			set.signing = &set.keys[i]
		}
	}
	if set.signing == nil {
		return nil, errors.New("oidc: auth names no published signing key")
	}
	c.set, c.fetched = set, c.now()
	return set, nil
}

// remoteSigner is a go-jose OpaqueSigner whose private key lives in auth:
// go-jose builds the JWS and hands the signing input to SignPayload, which
// asks OIDCService.SignJWT for the signature. The gateway never holds a
// private key. It is made per request, because SignPayload has no context.
type remoteSigner struct {
	ctx    context.Context
	client authv1.OIDCServiceClient
	public *jose.JSONWebKey
}

func (s *remoteSigner) Public() *jose.JSONWebKey { return s.public }

func (s *remoteSigner) Algs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.SignatureAlgorithm(s.public.Algorithm)}
}

func (s *remoteSigner) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if string(alg) != s.public.Algorithm {
		return nil, jose.ErrUnsupportedAlgorithm
	}
	res, err := s.client.SignJWT(s.ctx, &authv1.SignJWTRequest{SigningInput: payload})
	if err != nil {
		return nil, err
	}
	return res.GetSignature(), nil
}

// sign returns the compact JWS of claims, signed by auth's current key,
// with its kid and typ JWT in the header.
func (e *Edge) sign(ctx context.Context, claims any) (string, error) {
	set, err := e.keys.get(ctx)
	if err != nil {
		return "", err
	}
	alg := jose.SignatureAlgorithm(set.signing.Algorithm)
	if alg == "" {
		alg = jose.RS256
	}
	pub := *set.signing
	pub.Algorithm = string(alg)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: &remoteSigner{ctx: ctx, client: e.front, public: &pub}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
