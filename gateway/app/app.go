// Package app builds the gateway's HTTP server over a connection to
// AuthService: a network one in cmd/gateway, an in-process one in a
// combined binary.
package app

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/gateway/internal/gateway"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
)

// Settings are the gateway's configuration.
type Settings struct {
	HTTPAddr string
	AuthAddr string
	Trusted  []netip.Prefix
	Drain    time.Duration
}

// ReadSettings reads the MOREID_* variables of the gateway.
func ReadSettings(r *config.Reader) (Settings, error) {
	s := Settings{
		HTTPAddr: r.String("MOREID_HTTP_ADDR", ":8080"),
		AuthAddr: r.String("MOREID_AUTH_ADDR", "127.0.0.1:9090"),
		Trusted:  r.Prefixes("MOREID_TRUSTED_PROXIES", nil),
		Drain:    run.DrainTimeout(r),
	}
	return s, r.Err()
}

// NewServer returns the gateway's HTTP server (without its listener) in
// front of AuthService on auth.
func NewServer(auth grpc.ClientConnInterface, trusted []netip.Prefix, log *slog.Logger) (*http.Server, error) {
	// Ready while auth answers: auth's own readiness (Redis) is its own
	// pods' business, reported here only as moreid_downstream_up.
	ready := grpcx.ConnectionProbe("gateway", "auth", log, healthpb.NewHealthClient(auth))
	handler, err := gateway.New(auth, trusted, log, ready)
	if err != nil {
		return nil, err
	}
	return &http.Server{
		Handler:           telemetry.HTTPHandler(handler, "gateway"),
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
