package server

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/ipset"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
	"github.com/moreline/moreid/services/auth/internal/keycache"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

var (
	authMethodPrefix = "/" + authv1.AuthService_ServiceDesc.ServiceName + "/"
	// The auth service's own services: AuthService, ConfirmationService,
	// TokenService (not health).
	// The prefix comes from the generated descriptor, so renaming the proto
	// package cannot leave this check matching nothing.
	ownMethodPrefix = "/" + string(authv1.File_moreid_auth_v1_auth_proto.Package()) + "."
	// keyedTokenMethods are the TokenService calls about a token on behalf
	// of an app: they answer only about the caller key's own tokens (RFC
	// 7662 section 2.1 wants the introspecting party authenticated).
	// GetUserinfo is the token holder's own call and takes no key.
	keyedTokenMethods = map[string]bool{
		authv1.TokenService_IntrospectToken_FullMethodName: true,
		authv1.TokenService_RevokeToken_FullMethodName:     true,
	}
	// optionalKeyMethods take no key, but a key that is sent must be
	// valid: the newest upstream document lists X-API-Key on every
	// endpoint, and an app that sends one must not have it silently
	// ignored (an invalid or revoked key would otherwise look accepted).
	// The method itself then checks that the key is the UCA's own.
	optionalKeyMethods = map[string]bool{
		authv1.ConfirmationService_GenerateLoginCode_FullMethodName: true,
	}
	// oidcClientPrefix is the OpenID Connect back channel: a confidential
	// client's calls carry its secret as the key (checked here, whitelist
	// included); a public client's carry none, and OIDCClients.caller
	// admits them by x-oidc-client-id.
	oidcClientPrefix = "/" + authv1.OIDCClientService_ServiceDesc.ServiceName + "/"
)

// KeyInterceptor admits an AuthService call, and TokenService's
// IntrospectToken and RevokeToken, only with an API key that keys accepts
// for the caller's client IP, and puts the key's record in the context.
// ConfirmationService's GenerateLoginCode is keyless, but a key sent with
// it is checked the same way and put in the context.
// Every call of the auth service's own services (the keyless
// ConfirmationService and GetUserinfo too) gets the client IP in its
// context, for the brute-force limits and the audit trail. Other services
// on the same server (health) are left alone.
// The client IP is x-moreid-client-ip when the gRPC peer is inside gateways
// (the gateway computed it from the TCP peer and trusted proxies) and, on a
// TLS connection when gatewayNames are given, presented a certificate with
// one of those DNS names; else the peer's own address. The names matter
// once other pods of the network may call auth (internal callers share the
// pod CIDR with the gateways): only the gateway's certificate vouches for
// a client IP.
func KeyInterceptor(keys keycache.Validator, gateways []netip.Prefix, gatewayNames ...string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, ownMethodPrefix) {
			return next(ctx, req)
		}
		ip, err := clientIP(ctx, gateways, gatewayNames)
		if err != nil {
			return nil, err
		}
		ctx = oauth.WithClientIP(ctx, ip.String())
		key := incoming(ctx, wire.APIKey)
		if optionalKeyMethods[info.FullMethod] && key == "" {
			return next(ctx, req)
		}
		if strings.HasPrefix(info.FullMethod, oidcClientPrefix) {
			if key == "" {
				return next(ctx, req)
			}
			k, err := keys.ValidateKey(ctx, key, ip.String())
			if apierr.Is(err, apierr.InvalidAPIKey) {
				// The token endpoint's answer to a bad secret (RFC 6749
				// section 5.2); ip_not_allowed stays what it is.
				return nil, apierr.New(apierr.InvalidClient)
			}
			if err != nil {
				return nil, err
			}
			return next(WithKey(ctx, k), req)
		}
		if !strings.HasPrefix(info.FullMethod, authMethodPrefix) && !keyedTokenMethods[info.FullMethod] && !optionalKeyMethods[info.FullMethod] {
			return next(ctx, req)
		}
		if key == "" {
			return nil, apierr.New(apierr.InvalidAPIKey)
		}
		k, err := keys.ValidateKey(ctx, key, ip.String())
		if err != nil {
			// The key service's verdict (invalid_api_key, ip_not_allowed)
			// is returned as it is.
			return nil, err
		}
		return next(WithKey(ctx, k), req)
	}
}

func clientIP(ctx context.Context, gateways []netip.Prefix, gatewayNames []string) (netip.Addr, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}, apierr.Newf(apierr.Internal, "无法确定客户端地址")
	}
	peerIP, err := addrIP(p.Addr)
	if err != nil {
		return netip.Addr{}, apierr.Wrap(apierr.Internal, err)
	}
	if !ipset.Contains(gateways, peerIP) || !gatewayCertificate(p, gatewayNames) {
		// Anyone else's claim about the client IP is ignored.
		return peerIP, nil
	}
	vals := metadata.ValueFromIncomingContext(ctx, wire.ClientIP)
	switch len(vals) {
	case 0:
		// An internal caller inside the gateway ranges calling directly.
		return peerIP, nil
	case 1:
		a, err := netip.ParseAddr(strings.TrimSpace(vals[0]))
		if err != nil {
			return netip.Addr{}, apierr.Newf(apierr.InvalidRequest, "客户端IP元数据无效")
		}
		return a.Unmap().WithZone(""), nil
	default:
		// The gateway sets it exactly once; several values are not its.
		return netip.Addr{}, apierr.Newf(apierr.InvalidRequest, "客户端IP元数据无效")
	}
}

// gatewayCertificate reports whether the peer may speak for a gateway: on a
// TLS connection its verified certificate must carry one of names (when
// any are given); a connection without TLS (in-process, or plaintext,
// which only loopback or MOREID_ALLOW_PLAINTEXT allow) is judged by its
// address alone.
func gatewayCertificate(p *peer.Peer, names []string) bool {
	if len(names) == 0 {
		return true
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return true
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return false
	}
	for _, n := range info.State.VerifiedChains[0][0].DNSNames {
		if slices.Contains(names, n) {
			return true
		}
	}
	return false
}

// peerIP is the gRPC peer's address, "" when unknown; for the admin
// listener, whose callers connect directly.
func peerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	a, err := addrIP(p.Addr)
	if err != nil {
		return ""
	}
	return a.String()
}

func addrIP(a net.Addr) (netip.Addr, error) {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap().WithZone(""), nil
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap().WithZone(""), nil
}
