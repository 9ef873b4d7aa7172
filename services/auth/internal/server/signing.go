package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/ipset"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/services/auth/internal/oauth"
	"github.com/moreline/moreid/services/auth/internal/signing"
)

// EventSigningKey is the audit event of a signing key created, rotated, or
// a signature refused (detail says which).
const EventSigningKey = "oidc.signing_key"

// maxSigningInput bounds what SignJWT reads: an ID token's header and
// claims are well under a kilobyte.
const maxSigningInput = 16 << 10

// Signing implements OIDCService's SignJWT and GetJWKS; Server serves them
// beside the front channel's other calls (Server.WithSigning).
type Signing struct {
	keys         *signing.Keys
	issuer       string
	clients      oauth.ClientDirectory
	gateways     []netip.Prefix
	gatewayNames []string
	trail        audit.Recorder
}

// NewSigning returns SignJWT and GetJWKS over keys. Tokens must carry iss
// issuer and an aud that clients knows; only a caller inside gateways (and,
// with TLS and gatewayNames, presenting a gateway's certificate) is
// answered, as for the client-IP metadata of KeyInterceptor.
func NewSigning(keys *signing.Keys, issuer string, clients oauth.ClientDirectory, gateways []netip.Prefix, gatewayNames []string, trail audit.Recorder) *Signing {
	return &Signing{keys: keys, issuer: issuer, clients: clients, gateways: gateways, gatewayNames: gatewayNames, trail: trail}
}

// fromGateway reports whether the call comes from a gateway: the same test
// clientIP applies before it believes a client-IP claim.
func fromGateway(ctx context.Context, gateways []netip.Prefix, names []string) bool {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return false
	}
	ip, err := addrIP(p.Addr)
	if err != nil {
		return false
	}
	return ipset.Contains(gateways, ip) && gatewayCertificate(p, names)
}

// SignJWT implements OIDCService: an RS256 signature over a JWS signing
// input that is an ID token of this issuer for a live client, with a kid
// that may sign now. A signature is what an ID token is worth, so
// anything else is refused.
func (s *Signing) SignJWT(ctx context.Context, req *authv1.SignJWTRequest) (*authv1.SignJWTResponse, error) {
	if !fromGateway(ctx, s.gateways, s.gatewayNames) {
		s.refused(ctx, "not_gateway")
		return nil, apierr.Newf(apierr.Forbidden, "只有网关可以签名")
	}
	input := req.GetSigningInput()
	kid, err := s.check(ctx, input)
	if err != nil {
		return nil, err
	}
	sig, err := s.keys.Sign(ctx, kid, input)
	if errors.Is(err, signing.ErrCannotSign) {
		s.refused(ctx, "kid")
		return nil, apierr.Newf(apierr.InvalidRequest, "签名密钥不可用")
	}
	if err != nil {
		return nil, err
	}
	return &authv1.SignJWTResponse{Signature: sig}, nil
}

// header and claims are the parts of a signing input SignJWT reads.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

type claims struct {
	Iss string          `json:"iss"`
	Aud json.RawMessage `json:"aud"`
	Exp *json.Number    `json:"exp"`
}

// check parses input ("b64url(header).b64url(payload)") and returns its
// kid once the header asks for RS256 with a kid, iss is the
// issuer, exp is within the keys' retention, and every audience is a live
// client.
func (s *Signing) check(ctx context.Context, input []byte) (string, error) {
	bad := func(detail, msg string) (string, error) {
		s.refused(ctx, detail)
		return "", apierr.Newf(apierr.InvalidRequest, "%s", msg)
	}
	if len(input) == 0 || len(input) > maxSigningInput {
		return bad("input", "签名输入无效")
	}
	h64, p64, ok := bytes.Cut(input, []byte("."))
	if !ok || bytes.Contains(p64, []byte(".")) {
		return bad("input", "签名输入无效")
	}
	var h header
	if err := decodeSegment(h64, &h); err != nil {
		return bad("input", "签名输入无效")
	}
	if h.Alg != signing.AlgRS256 || h.Kid == "" {
		return bad("alg", "签名算法无效")
	}
	var c claims
	if err := decodeSegment(p64, &c); err != nil {
		return bad("input", "签名输入无效")
	}
	if c.Iss != s.issuer {
		return bad("iss", "签发者无效")
	}
	if c.Exp == nil {
		return bad("exp", "过期时间无效")
	}
	exp, err := c.Exp.Int64()
	// A token outliving its key's retention could not be verified to its
	// end: refuse it rather than publish the key longer.
	if err != nil || time.Unix(exp, 0).After(s.keys.Now().Add(s.keys.Lifetime()+signing.ExpSlack)) {
		return bad("exp", "过期时间无效")
	}
	aud, err := audiences(c.Aud)
	if err != nil || len(aud) == 0 {
		return bad("aud", "受众无效")
	}
	for _, a := range aud {
		live, err := clientLive(ctx, s.clients, a)
		if err != nil {
			return "", err
		}
		if !live {
			s.refused(ctx, "aud")
			return "", apierr.Newf(apierr.InvalidClient, "受众无效")
		}
	}
	return h.Kid, nil
}

// decodeSegment decodes one base64url (unpadded, RFC 7515) JSON segment.
func decodeSegment(seg []byte, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(string(seg))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// audiences reads aud: one string or an array of strings (RFC 7519
// section 4.1.3).
func audiences(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, err
	}
	return many, nil
}

func (s *Signing) refused(ctx context.Context, detail string) {
	s.trail.Record(ctx, audit.Event{Event: EventSigningKey, Outcome: audit.Denied, ClientIP: oauth.ClientIP(ctx), Detail: "sign:" + detail})
}

// GetJWKS implements OIDCService: the public keys to publish and the kid
// that signs now. Only the gateway asks (the JWKS is public, but this
// listener's other callers have no business with it).
func (s *Signing) GetJWKS(ctx context.Context, _ *authv1.GetJWKSRequest) (*authv1.GetJWKSResponse, error) {
	if !fromGateway(ctx, s.gateways, s.gatewayNames) {
		return nil, apierr.Newf(apierr.Forbidden, "只有网关可以读取签名公钥")
	}
	keys, kid, err := s.keys.JWKS(ctx)
	if err != nil {
		return nil, err
	}
	out := &authv1.GetJWKSResponse{SigningKid: kid}
	for _, k := range keys {
		out.Keys = append(out.Keys, signingKey(k, ""))
	}
	return out, nil
}

// SigningAdmin implements AuthAdminService's RotateSigningKey and
// ListSigningKeys; the type serving AuthAdminService delegates them.
type SigningAdmin struct {
	keys  *signing.Keys
	trail audit.Recorder
}

// NewSigningAdmin returns the operator's signing-key calls over keys.
func NewSigningAdmin(keys *signing.Keys, trail audit.Recorder) *SigningAdmin {
	return &SigningAdmin{keys: keys, trail: trail}
}

// RotateSigningKey implements AuthAdminService.
func (a *SigningAdmin) RotateSigningKey(ctx context.Context, _ *authv1.RotateSigningKeyRequest) (*authv1.RotateSigningKeyResponse, error) {
	k, err := a.keys.Rotate(ctx)
	if err != nil {
		a.trail.Record(ctx, audit.Event{Event: EventSigningKey, Outcome: audit.Failure, ClientIP: peerIP(ctx), Detail: "rotate"})
		return nil, err
	}
	a.trail.Record(ctx, audit.Event{Event: EventSigningKey, Outcome: audit.Success, ClientIP: peerIP(ctx), Detail: "rotate " + k.KID})
	return &authv1.RotateSigningKeyResponse{Key: signingKey(k, signing.StateNext)}, nil
}

// ListSigningKeys implements AuthAdminService.
func (a *SigningAdmin) ListSigningKeys(ctx context.Context, _ *authv1.ListSigningKeysRequest) (*authv1.ListSigningKeysResponse, error) {
	keys, err := a.keys.List(ctx)
	if err != nil {
		return nil, err
	}
	out := &authv1.ListSigningKeysResponse{}
	for _, k := range keys {
		out.Keys = append(out.Keys, signingKey(k.Key, k.State))
	}
	return out, nil
}

// signingKey is the public view of k: never its private part.
func signingKey(k signing.Key, state string) *authv1.SigningKey {
	out := &authv1.SigningKey{
		Kid: k.KID, Alg: k.Alg, Jwk: string(k.PublicJWK), State: state,
		CreatedAt: timestamppb.New(k.CreatedAt), ActivateAt: timestamppb.New(k.ActivateAt),
	}
	if k.RetiredAt != nil {
		out.RetiredAt = timestamppb.New(*k.RetiredAt)
	}
	return out
}

// clientLive reports whether clientID names a registered client whose key
// is not revoked: the key service's not_found means not; any other failure
// is the caller's to report (unavailable).
func clientLive(ctx context.Context, clients oauth.ClientDirectory, clientID string) (bool, error) {
	c, err := clients.Client(ctx, clientID)
	if apierr.Is(err, apierr.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return c.ClientID == clientID, nil
}
