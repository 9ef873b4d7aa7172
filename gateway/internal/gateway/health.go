package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/run"
)

// readyTimeout is how long /readyz waits for the backend's health answer:
// longer than the backend's own probes take (grpcx bounds them at 1 s), so
// that a backend answering NOT_SERVING slowly still counts as reachable.
const readyTimeout = 2 * time.Second

// live answers /healthz: the process runs and serves HTTP.
func live(w http.ResponseWriter, r *http.Request) {
	if !readOnly(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, body{Success: true, Message: "ok"})
}

// readiness answers /readyz from the probe of the gateway's own dependency:
// its connection to auth (grpcx.ConnectionProbe in app).
func readiness(probe grpcx.Probe, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !readOnly(w, r) {
			return
		}
		// Shutting down: out of the load balancers first, while the
		// listener serves on (platform/run).
		if run.Draining(r.Context()) {
			writeKind(w, r, apierr.Unavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := probe(ctx); err != nil {
			log.Warn("not ready", "error", err.Error())
			writeKind(w, r, apierr.Unavailable)
			return
		}
		writeJSON(w, http.StatusOK, body{Success: true, Message: "ok"})
	}
}

// readOnly admits GET and HEAD and answers anything else 405.
func readOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeKind(w, r, apierr.MethodNotAllowed)
	return false
}
