package server_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/audit/audittest"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/services/auth/internal/remote"
	"github.com/moreline/moreid/services/auth/internal/server"
	"github.com/moreline/moreid/services/auth/internal/signing"
)

const (
	testIssuer   = "https://id.example.com"
	liveClient   = "mlc_live0000000000000000000000000000"
	liveClient2  = "mlc_live1111111111111111111111111111"
	revokedID    = "mlc_revoked00000000000000000000000000"
	signingProp  = time.Minute
	signingLife  = time.Hour
	loopbackOnly = "127.0.0.0/8"
)

// clientService is the API-key service's GetClient over a fixed set of
// clients, answering as the real one does: not_found for a revoked key.
type clientService struct {
	apikeyv1.UnimplementedAPIKeyServiceServer
	clients map[string]*apikeyv1.APIKey
}

func (c *clientService) GetClient(_ context.Context, req *apikeyv1.GetClientRequest) (*apikeyv1.GetClientResponse, error) {
	k, ok := c.clients[req.GetClientId()]
	if !ok || k.GetRevokedAt() != nil {
		return nil, apierr.New(apierr.NotFound)
	}
	return &apikeyv1.GetClientResponse{ApiKey: k}, nil
}

type signingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *signingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *signingClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type signingEnv struct {
	clock *signingClock
	oidc  authv1.OIDCServiceClient
	admin authv1.AuthAdminServiceClient
	trail *audittest.Recorder
}

// newSigningEnv serves the signing calls behind the real KeyInterceptor on
// loopback, with gateways the ranges whose callers count as the gateway,
// over a database of the test's own and a fake API-key service.
func newSigningEnv(t *testing.T, gateways string) *signingEnv {
	t.Helper()
	ctx := context.Background()
	keySrv := grpctest.NewServer()
	apikeyv1.RegisterAPIKeyServiceServer(keySrv, &clientService{clients: map[string]*apikeyv1.APIKey{
		liveClient:  {Id: 1, ClientId: liveClient},
		liveClient2: {Id: 2, ClientId: liveClient2},
		revokedID:   {Id: 3, ClientId: revokedID, RevokedAt: timestamppb.Now()},
	}})
	apikeys := apikeyv1.NewAPIKeyServiceClient(grpctest.Dial(t, grpctest.Serve(t, keySrv)))

	db := pgdbtest.Open(t, testenv.Postgres(t), 4, signing.Migrate)
	keks, err := signing.ParseKEKs(signing.DevKEK)
	if err != nil {
		t.Fatal(err)
	}
	c := &signingClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys := signing.New(db, signing.Config{
		Rules: signing.Rules{Propagation: signingProp, Lifetime: signingLife}, KEKs: keks, Clock: c.Now,
	}, log)
	if _, err := keys.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	trail := &audittest.Recorder{}
	gw := []netip.Prefix{netip.MustParsePrefix(gateways)}

	// Only the signing calls are exercised: the flows behind the other
	// methods are not needed (nil).
	srv := server.New(nil).WithSigning(
		server.NewSigning(keys, testIssuer, remote.NewKeys(apikeys), gw, nil, trail),
		server.NewSigningAdmin(keys, trail))
	pub := grpctest.NewServer(server.KeyInterceptor(remote.NewKeys(apikeys), gw))
	srv.Register(pub)
	admin := grpctest.NewServer()
	srv.RegisterAdmin(admin)
	return &signingEnv{
		clock: c,
		oidc:  authv1.NewOIDCServiceClient(grpctest.Dial(t, grpctest.Serve(t, pub))),
		admin: authv1.NewAuthAdminServiceClient(grpctest.Dial(t, grpctest.Serve(t, admin))),
		trail: trail,
	}
}

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// idToken is a signing input: header and claims as the gateway's library
// builds them.
func idToken(t *testing.T, hdr, claims map[string]any) []byte {
	return []byte(segment(t, hdr) + "." + segment(t, claims))
}

// verifyJWKS checks sig over input with the JWK of kid in jwks.
func verifyJWKS(t *testing.T, jwks *authv1.GetJWKSResponse, kid string, input, sig []byte) error {
	t.Helper()
	for _, k := range jwks.GetKeys() {
		if k.GetKid() != kid {
			continue
		}
		var j map[string]string
		if err := json.Unmarshal([]byte(k.GetJwk()), &j); err != nil {
			t.Fatal(err)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := j[private]; ok {
				t.Fatalf("the JWKS carries the private member %q", private)
			}
		}
		if j["kid"] != kid || j["alg"] != "RS256" || j["use"] != "sig" || j["kty"] != "RSA" {
			t.Fatalf("JWK %s", k.GetJwk())
		}
		n, _ := base64.RawURLEncoding.DecodeString(j["n"])
		e, _ := base64.RawURLEncoding.DecodeString(j["e"])
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		sum := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	}
	t.Fatalf("kid %s is not in the JWKS", kid)
	return nil
}

func TestSignJWT(t *testing.T) {
	ctx := context.Background()
	e := newSigningEnv(t, loopbackOnly)
	jwks, err := e.oidc.GetJWKS(ctx, &authv1.GetJWKSRequest{})
	if err != nil {
		t.Fatal(err)
	}
	kid := jwks.GetSigningKid()
	if kid == "" || len(jwks.GetKeys()) != 1 {
		t.Fatalf("JWKS %v signing %q, want the first key signing", jwks.GetKeys(), kid)
	}
	exp := e.clock.Now().Add(5 * time.Minute).Unix()
	hdr := map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}
	good := map[string]any{"iss": testIssuer, "sub": "7", "aud": []string{liveClient}, "exp": exp, "iat": exp - 300}
	with := func(base map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for kk, vv := range base {
			out[kk] = vv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name  string
		input []byte
		want  apierr.Kind // "" for a valid signature
	}{
		{"an ID token", idToken(t, hdr, good), ""},
		{"aud a single string", idToken(t, hdr, with(good, "aud", liveClient)), ""},
		{"two live audiences", idToken(t, hdr, with(good, "aud", []string{liveClient, liveClient2})), ""},
		{"wrong iss", idToken(t, hdr, with(good, "iss", "https://evil.example.com")), apierr.InvalidRequest},
		{"iss with a trailing slash", idToken(t, hdr, with(good, "iss", testIssuer+"/")), apierr.InvalidRequest},
		{"no iss", idToken(t, hdr, with(good, "iss", nil)), apierr.InvalidRequest},
		{"unknown kid", idToken(t, with(hdr, "kid", "bm90LWEta2V5"), good), apierr.InvalidRequest},
		{"no kid", idToken(t, with(hdr, "kid", nil), good), apierr.InvalidRequest},
		{"alg HS256", idToken(t, with(hdr, "alg", "HS256"), good), apierr.InvalidRequest},
		{"alg none", idToken(t, with(hdr, "alg", "none"), good), apierr.InvalidRequest},
		{"unknown client", idToken(t, hdr, with(good, "aud", "mlc_nobody")), apierr.InvalidClient},
		{"revoked client", idToken(t, hdr, with(good, "aud", revokedID)), apierr.InvalidClient},
		{"one of two audiences unknown", idToken(t, hdr, with(good, "aud", []string{liveClient, "mlc_nobody"})), apierr.InvalidClient},
		{"no aud", idToken(t, hdr, with(good, "aud", nil)), apierr.InvalidRequest},
		{"empty aud", idToken(t, hdr, with(good, "aud", []string{})), apierr.InvalidRequest},
		{"no exp", idToken(t, hdr, with(good, "exp", nil)), apierr.InvalidRequest},
		{"exp beyond the key's retention", idToken(t, hdr, with(good, "exp", e.clock.Now().Add(3*signingLife).Unix())), apierr.InvalidRequest},
		{"a whole JWS", append(idToken(t, hdr, good), []byte(".c2ln")...), apierr.InvalidRequest},
		{"not a JWS", []byte("hello"), apierr.InvalidRequest},
		{"payload not base64url", []byte(segment(t, hdr) + ".***"), apierr.InvalidRequest},
		{"payload not JSON", []byte(segment(t, hdr) + "." + base64.RawURLEncoding.EncodeToString([]byte("nope"))), apierr.InvalidRequest},
		{"empty", nil, apierr.InvalidRequest},
		{"too large", []byte(segment(t, hdr) + "." + strings.Repeat("A", 20000)), apierr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.oidc.SignJWT(ctx, &authv1.SignJWTRequest{SigningInput: tt.input})
			if tt.want != "" {
				if got := apierr.KindOf(apierr.FromTransport(err)); got != tt.want {
					t.Fatalf("SignJWT: %v (kind %q), want %s", err, got, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyJWKS(t, jwks, kid, tt.input, resp.GetSignature()); err != nil {
				t.Fatalf("the signature does not verify: %v", err)
			}
		})
	}
	var refused int
	for _, ev := range e.trail.Events() {
		if ev.Event == server.EventSigningKey && ev.Outcome == audit.Denied {
			refused++
		}
	}
	if want := len(tests) - 3; refused != want {
		t.Errorf("%d refusals in the audit trail, want %d", refused, want)
	}
}

// Only the gateway gets signatures or the JWKS: any other caller of auth's
// public listener is refused, however good its request.
func TestSigningOnlyForTheGateway(t *testing.T) {
	ctx := context.Background()
	e := newSigningEnv(t, "10.0.0.0/8") // loopback, the test's address, is not a gateway
	_, err := e.oidc.GetJWKS(ctx, &authv1.GetJWKSRequest{})
	if got := apierr.KindOf(apierr.FromTransport(err)); got != apierr.Forbidden {
		t.Fatalf("GetJWKS: %v, want forbidden", err)
	}
	keys, err := e.admin.ListSigningKeys(ctx, &authv1.ListSigningKeysRequest{})
	if err != nil || len(keys.GetKeys()) != 1 {
		t.Fatalf("ListSigningKeys: %v (%v)", keys, err)
	}
	kid := keys.GetKeys()[0].GetKid()
	input := idToken(t, map[string]any{"alg": "RS256", "kid": kid},
		map[string]any{"iss": testIssuer, "aud": liveClient, "exp": e.clock.Now().Add(time.Minute).Unix()})
	_, err = e.oidc.SignJWT(ctx, &authv1.SignJWTRequest{SigningInput: input})
	if got := apierr.KindOf(apierr.FromTransport(err)); got != apierr.Forbidden {
		t.Fatalf("SignJWT: %v, want forbidden", err)
	}
}

// Through the admin calls: the rotated-in key is published (state next)
// before it signs, signs after the propagation delay, and the retired key
// leaves the JWKS once its tokens have expired.
func TestRotateSigningKey(t *testing.T) {
	ctx := context.Background()
	e := newSigningEnv(t, loopbackOnly)
	before, err := e.oidc.GetJWKS(ctx, &authv1.GetJWKSRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first := before.GetSigningKid()
	rot, err := e.admin.RotateSigningKey(ctx, &authv1.RotateSigningKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	next := rot.GetKey()
	if next.GetState() != signing.StateNext || !next.GetActivateAt().AsTime().Equal(e.clock.Now().Add(signingProp)) {
		t.Fatalf("rotated-in key %v, want state next activating in %s", next, signingProp)
	}
	sign := func(kid string) error {
		input := idToken(t, map[string]any{"alg": "RS256", "kid": kid},
			map[string]any{"iss": testIssuer, "aud": liveClient, "exp": e.clock.Now().Add(time.Minute).Unix()})
		_, err := e.oidc.SignJWT(ctx, &authv1.SignJWTRequest{SigningInput: input})
		return err
	}
	steps := []struct {
		name      string
		advance   time.Duration
		published []string
		signer    string
		states    map[string]string
		mayFirst  bool
		mayNext   bool
	}{
		{"published ahead", 0, []string{first, next.GetKid()}, first,
			map[string]string{first: signing.StateCurrent, next.GetKid(): signing.StateNext}, true, false},
		{"the switch", signingProp, []string{first, next.GetKid()}, next.GetKid(),
			map[string]string{first: signing.StateRetired, next.GetKid(): signing.StateCurrent}, true, true},
		{"stale kid refused", signingProp, []string{first, next.GetKid()}, next.GetKid(),
			map[string]string{first: signing.StateRetired, next.GetKid(): signing.StateCurrent}, false, true},
		{"first key's last tokens expired", signingLife + signing.ExpSlack, []string{next.GetKid()}, next.GetKid(),
			map[string]string{first: signing.StateExpired, next.GetKid(): signing.StateCurrent}, false, true},
	}
	for _, s := range steps {
		e.clock.Add(s.advance)
		jwks, err := e.oidc.GetJWKS(ctx, &authv1.GetJWKSRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range jwks.GetKeys() {
			got = append(got, k.GetKid())
		}
		if strings.Join(got, ",") != strings.Join(s.published, ",") || jwks.GetSigningKid() != s.signer {
			t.Errorf("%s: JWKS %v signing %s, want %v signing %s", s.name, got, jwks.GetSigningKid(), s.published, s.signer)
		}
		list, err := e.admin.ListSigningKeys(ctx, &authv1.ListSigningKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range list.GetKeys() {
			if k.GetState() != s.states[k.GetKid()] {
				t.Errorf("%s: %s is %s, want %s", s.name, k.GetKid(), k.GetState(), s.states[k.GetKid()])
			}
		}
		for kid, may := range map[string]bool{first: s.mayFirst, next.GetKid(): s.mayNext} {
			err := sign(kid)
			if may != (err == nil) {
				t.Errorf("%s: signing with %s: %v, want allowed=%v", s.name, kid, err, may)
			}
		}
	}
	var rotated bool
	for _, ev := range e.trail.Events() {
		rotated = rotated || (ev.Event == server.EventSigningKey && ev.Outcome == audit.Success && strings.HasPrefix(ev.Detail, "rotate "))
	}
	if !rotated {
		t.Error("the rotation is not in the audit trail")
	}
}
