// Package gateway is Moreid's REST edge: it serves the documented /api/oauth
// JSON paths by calling AuthService, ConfirmationService and TokenService
// over gRPC (grpc-gateway, mapped by gateway/api_config.yaml), the
// confirmation page (internal/page), the OpenAPI description and its
// reference (internal/apidocs), writes every error in the documented JSON
// shape, computes the client IP, limits bodies, logs one line per request
// and answers /healthz and /readyz.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"google.golang.org/grpc"

	"github.com/moreline/moreid/gateway/internal/apidocs"
	"github.com/moreline/moreid/gateway/internal/oidc"
	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/telemetry"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

// MaxBodyBytes is the largest request body accepted (SPEC section 2).
const MaxBodyBytes = 64 << 10

// UpstreamTimeout bounds one call to AuthService, so that a stuck backend
// turns into a 503 instead of a hanging client. A server's WriteTimeout must
// be longer.
const UpstreamTimeout = 15 * time.Second

// Option changes a default of New.
type Option func(*options)

type options struct{ issuer string }

// WithIssuer sets the OpenID Connect issuer (MOREID_ISSUER); the default
// is oidc.DefaultIssuer.
func WithIssuer(issuer string) Option { return func(o *options) { o.issuer = issuer } }

// New returns the gateway's HTTP handler. auth is the connection to the auth
// service (AuthService, ConfirmationService, TokenService); trusted are the proxies whose X-Forwarded-For is believed
// (MOREID_TRUSTED_PROXIES); csrfKey signs the confirmation page's sign-in
// form tokens (MOREID_CSRF_KEY); tel counts the answers (nil: not
// counted); ready tells /readyz whether the backend and its dependencies
// answer.
func New(auth grpc.ClientConnInterface, trusted []netip.Prefix, csrfKey []byte, log *slog.Logger, tel *telemetry.Telemetry, ready grpcx.Probe, opts ...Option) (http.Handler, error) {
	if auth == nil || log == nil || ready == nil {
		return nil, errors.New("gateway: auth connection, logger and readiness probe are required")
	}
	o := options{issuer: oidc.DefaultIssuer}
	for _, opt := range opts {
		opt(&o)
	}
	mux := newMux()
	ctx := context.Background()
	if err := authv1.RegisterAuthServiceHandlerClient(ctx, mux, authv1.NewAuthServiceClient(auth)); err != nil {
		return nil, fmt.Errorf("gateway: register AuthService: %w", err)
	}
	confirmations := authv1.NewConfirmationServiceClient(auth)
	if err := authv1.RegisterConfirmationServiceHandlerClient(ctx, mux, confirmations); err != nil {
		return nil, fmt.Errorf("gateway: register ConfirmationService: %w", err)
	}
	if err := authv1.RegisterTokenServiceHandlerClient(ctx, mux, authv1.NewTokenServiceClient(auth)); err != nil {
		return nil, fmt.Errorf("gateway: register TokenService: %w", err)
	}
	edge := page.Edge{Metadata: requestMD, Secure: secure, Failed: noteKind, Fault: noteCause}
	// One kit for every page: one look, one CSRF key, one session cookie.
	kit, err := page.NewKit(edge, csrfKey, log)
	if err != nil {
		return nil, fmt.Errorf("gateway: page kit: %w", err)
	}
	confirmation, err := page.OnKit(confirmations, kit)
	if err != nil {
		return nil, fmt.Errorf("gateway: confirmation page: %w", err)
	}
	provider, err := oidc.New(auth, oidc.Config{Issuer: o.issuer, Kit: kit, Log: log})
	if err != nil {
		return nil, fmt.Errorf("gateway: OpenID Connect: %w", err)
	}
	// Each OIDC endpoint reads (and bounds) its own form body.
	oidcHandler := withTimeout(provider)
	oidcPaths := map[string]bool{}
	for _, p := range provider.Paths() {
		oidcPaths[p] = true
	}
	docs, err := apidocs.New()
	if err != nil {
		return nil, fmt.Errorf("gateway: API reference: %w", err)
	}
	api := limitBody(withTimeout(mux))
	// The page reads its own (form) body, bounded in the page.
	pageHandler := withTimeout(confirmation)
	routes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			live(w, r)
		case "/readyz":
			readiness(ready, log)(w, r)
		case apidocs.SpecPath, apidocs.DocsPath:
			if readOnly(w, r) {
				docs.ServeHTTP(w, r)
			}
		case page.Path:
			pageHandler.ServeHTTP(w, r)
		case page.FaviconPath:
			if readOnly(w, r) {
				page.Favicon(w, r)
			}
		default:
			// Only the explicit OIDC paths: nothing of the provider may
			// shadow /healthz, /readyz or /api/oauth.
			if oidcPaths[r.URL.Path] {
				oidcHandler.ServeHTTP(w, r)
				return
			}
			api.ServeHTTP(w, r)
		}
	})
	// Metrics are labelled by route from this fixed set, never by the raw
	// path, so clients cannot grow the number of series.
	known := map[string]bool{"/healthz": true, "/readyz": true, apidocs.SpecPath: true, apidocs.DocsPath: true, page.Path: true, page.FaviconPath: true}
	for _, p := range docs.Paths() {
		known[p] = true
	}
	for p := range oidcPaths {
		known[p] = true
	}
	return observe(log, tel, trusted, known, routes), nil
}

// withTimeout bounds the backend call. grpc-gateway would also take a
// deadline from a client's Grpc-Timeout header; that header is dropped so
// that clients cannot shape internal deadlines.
func withTimeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Grpc-Timeout")
		ctx, cancel := context.WithTimeout(r.Context(), UpstreamTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
