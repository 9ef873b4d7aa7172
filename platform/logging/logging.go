// Package logging sets up structured JSON logs (log/slog) and carries the
// request id through contexts, HTTP and gRPC metadata. Nothing in this
// package logs request bodies or headers: secrets never reach the logs.
package logging

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/secret"
)

// RequestIDHeader is the HTTP header and (lower-cased) gRPC metadata key that
// carries the request id across the suite.
const RequestIDHeader = "X-Request-Id"

// MetadataKey is RequestIDHeader as gRPC metadata.
const MetadataKey = "x-request-id"

// EnvLevel is the variable Level reads.
const EnvLevel = "MOREID_LOG_LEVEL"

// Level reads MOREID_LOG_LEVEL: debug, info, warn or error, in any case
// (default info). Anything else is a configuration error, not info: a
// typo must not hide the debug lines someone turned on to find a fault.
func Level(r *config.Reader) slog.Level {
	v := r.String(EnvLevel, "info")
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	r.Fail(EnvLevel, v, errors.New("want debug, info, warn or error"))
	return slog.LevelInfo
}

// New returns a JSON logger for the named component at level (see Level),
// writing to stderr in batches (call Flush before exiting).
func New(component string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	return slog.New(h).With("component", component)
}

type ctxKey struct{}

// WithRequestID returns ctx carrying id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// NewRequestID returns a fresh random request id.
func NewRequestID() string { return secret.New("", 16, secret.Hex) }

// CleanRequestID keeps a client-supplied id only when it is short and made of
// safe characters, so that it cannot inject into logs; otherwise it returns a
// fresh id.
func CleanRequestID(id string) string {
	if id == "" || len(id) > 64 {
		return NewRequestID()
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return NewRequestID()
		}
	}
	return id
}
