package oidc

import (
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// discoveryDoc is the provider metadata: the library's field set plus the
// RFC 9207 flag it lacks.
type discoveryDoc struct {
	oidc.DiscoveryConfiguration
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// Scopes the provider knows.
var knownScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}

// discoveryDoc is GET /.well-known/openid-configuration and
// /.well-known/oauth-authorization-server (served by the
// library through opServer.Discovery). It advertises only what is served:
// the code flow in query mode, S256, the four grants and the three client
// authentication methods (no implicit, no hybrid, no private_key_jwt, no
// request objects); introspection takes only the two with a secret, since
// a public client cannot introspect (RFC 7662 section 2.1). The library's
// own op.CreateDiscoveryConfig would advertise what its Provider
// configuration enables, which is not the SPEC's list, and lacks the RFC
// 9207 flag. The same document is RFC 8414's authorization server
// metadata (ServerMetadataPath).
func (e *Edge) discoveryDoc() discoveryDoc {
	auth := []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	doc := discoveryDoc{
		DiscoveryConfiguration: oidc.DiscoveryConfiguration{
			Issuer:                      e.issuer,
			AuthorizationEndpoint:       e.url(AuthorizePath),
			TokenEndpoint:               e.url(TokenPath),
			IntrospectionEndpoint:       e.url(IntrospectPath),
			UserinfoEndpoint:            e.url(UserinfoPath),
			RevocationEndpoint:          e.url(RevokePath),
			EndSessionEndpoint:          e.url(EndSessionPath),
			DeviceAuthorizationEndpoint: e.url(DeviceAuthPath),
			JwksURI:                     e.url(JWKSPath),
			ScopesSupported:             knownScopes,
			ResponseTypesSupported:      []string{string(oidc.ResponseTypeCode)},
			ResponseModesSupported:      []string{"query"},
			GrantTypesSupported: []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken,
				oidc.GrantTypeClientCredentials, oidc.GrantTypeDeviceCode},
			SubjectTypesSupported:                     []string{"public"},
			IDTokenSigningAlgValuesSupported:          []string{"RS256"},
			TokenEndpointAuthMethodsSupported:         auth,
			RevocationEndpointAuthMethodsSupported:    auth,
			IntrospectionEndpointAuthMethodsSupported: []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost},
			ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "amr",
				"preferred_username", "name", "picture", "bio", "email", "email_verified"},
			CodeChallengeMethodsSupported: []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256},
			RequestURIParameterSupported:  false,
			UILocalesSupported:            nil,
		},
		AuthorizationResponseIssParameterSupported: true,
	}
	return doc
}
