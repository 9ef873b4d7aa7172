package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
)

const contentTypeJSON = "application/json; charset=utf-8"

// body is the documented shape of every answer the gateway writes itself.
type body struct {
	Success bool        `json:"success"`
	Message string      `json:"message"`
	Error   apierr.Kind `json:"error,omitempty"`
}

// handleError is the mux's error handler: a gRPC status (from AuthService or
// from grpc-gateway itself, e.g. a malformed body) becomes the documented
// HTTP status and body. apierr.FromStatus replaces texts that did not come
// from a Moreid service, and every internal text, by the kind's Chinese
// default message.
func handleError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	var hs *runtime.HTTPStatusError
	if errors.As(err, &hs) {
		writeKind(w, r, apierr.KindOfHTTP(hs.HTTPStatus))
		return
	}
	if apierr.IsFault(err) && apierr.OriginatedHere(err) {
		// Auth not reached or not understood: the fault is the gateway's
		// own, and its access line is where it is logged at ERROR. A fault
		// auth answered was logged where it happened.
		noteCause(r, err)
	}
	writeDetails(w, r, apierr.FromStatus(status.Convert(err)))
}

// handleRoutingError answers unknown paths (404), wrong methods on known
// paths (405) and unroutable request targets (400).
func handleRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	writeKind(w, r, apierr.KindOfHTTP(httpStatus))
}

func writeKind(w http.ResponseWriter, r *http.Request, k apierr.Kind) {
	writeDetails(w, r, apierr.Details{Kind: k, Message: apierr.DefaultMessage(k), HTTPStatus: apierr.HTTPStatus(k)})
}

func writeDetails(w http.ResponseWriter, r *http.Request, d apierr.Details) {
	noteKind(r, d.Kind)
	h := w.Header()
	h.Del("Content-Length")
	if d.RetryAfter != "" {
		h.Set("Retry-After", d.RetryAfter)
	}
	if d.Kind == apierr.InvalidToken && d.HTTPStatus == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", bearerChallenge(r))
	}
	writeJSON(w, d.HTTPStatus, body{Message: d.Message, Error: d.Kind})
}

// bearerChallenge is the RFC 6750 section 3 challenge of a refused Bearer
// call: the bare scheme when no token came, error="invalid_token" when one
// did (the token itself is never echoed).
func bearerChallenge(r *http.Request) string {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(token) != "" {
		return `Bearer error="invalid_token"`
	}
	return "Bearer"
}

func writeJSON(w http.ResponseWriter, code int, b body) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b)
}
