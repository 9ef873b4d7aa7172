// Package app builds the gateway's HTTP server over a connection to
// AuthService: a network one in cmd/gateway, an in-process one in a
// combined binary.
package app

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/gateway/internal/gateway"
	"github.com/moreline/moreid/gateway/internal/oidc"
	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/telemetry"
)

// Settings are the gateway's configuration.
type Settings struct {
	HTTPAddr string
	AuthAddr string
	Trusted  []netip.Prefix
	// CSRFKey signs the confirmation page's sign-in form tokens
	// (MOREID_CSRF_KEY). Unset, a random key of this process is used:
	// fine for one local gateway, but replicas behind one load balancer
	// must share it, or a form rendered by one is refused by another.
	CSRFKey []byte
	// CSRFKeyGenerated is set when CSRFKey was made up at start.
	CSRFKeyGenerated bool
	// Issuer is the OpenID Connect issuer (MOREID_ISSUER): the public
	// base URL of the gateway, scheme and host, no path.
	Issuer string
}

// ReadSettings reads the MOREID_* variables of the gateway, recording bad
// values in r (the caller checks r.Err once it has read everything).
func ReadSettings(r *config.Reader) Settings {
	s := Settings{
		HTTPAddr: r.String("MOREID_HTTP_ADDR", ":8080"),
		AuthAddr: r.String("MOREID_AUTH_ADDR", "127.0.0.1:9090"),
		Trusted:  r.Prefixes("MOREID_TRUSTED_PROXIES", nil),
		CSRFKey:  []byte(r.String("MOREID_CSRF_KEY", "")),
	}
	issuer := r.String("MOREID_ISSUER", oidc.DefaultIssuer)
	if v, err := oidc.ParseIssuer(issuer); err != nil {
		r.Fail("MOREID_ISSUER", issuer, err)
	} else {
		s.Issuer = v
	}
	switch {
	case len(s.CSRFKey) == 0:
		// crypto/rand.Read does not fail (it crashes the process if the
		// kernel has no randomness to give).
		s.CSRFKey, s.CSRFKeyGenerated = make([]byte, page.MinCSRFKeyLen), true
		_, _ = rand.Read(s.CSRFKey)
	case len(s.CSRFKey) < page.MinCSRFKeyLen:
		// A secret: the error names the variable, never its value.
		r.Fail("MOREID_CSRF_KEY", "", fmt.Errorf("must be at least %d bytes (value not shown)", page.MinCSRFKeyLen))
	}
	return s
}

// NewServer returns the gateway's HTTP server (without its listener) in
// front of AuthService on auth, recording its metrics and traces in tel.
func NewServer(auth grpc.ClientConnInterface, s Settings, log *slog.Logger, tel *telemetry.Telemetry) (*http.Server, error) {
	if s.CSRFKeyGenerated {
		log.Warn("MOREID_CSRF_KEY is not set: the sign-in form's tokens are signed with a key of this process only; set one shared key on every gateway replica")
	}
	// Ready while auth answers: auth's own readiness (Redis) is its own
	// pods' business, reported here only as moreid_downstream_up.
	ready := grpcx.ConnectionProbe("gateway", "auth", log, tel, healthpb.NewHealthClient(auth))
	handler, err := gateway.New(auth, s.Trusted, s.CSRFKey, log, tel, ready, gateway.WithIssuer(s.Issuer))
	if err != nil {
		return nil, err
	}
	return &http.Server{
		Handler:           tel.HTTPHandler(handler, "gateway"),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// Longer than the gateway's upstream timeout, so a slow backend
		// still gets its 503 written.
		WriteTimeout:   gateway.UpstreamTimeout + 5*time.Second,
		IdleTimeout:    90 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}, nil
}
