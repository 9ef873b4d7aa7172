package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/moreline/moreid/gateway/internal/clientip"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/telemetry"
)

// requestInfo is what the gateway knows about a request beyond the
// http.Request: computed once in observe, read by the metadata annotator and
// the access log.
type requestInfo struct {
	id       string
	clientIP netip.Addr
	proxied  bool        // the TCP peer is a trusted proxy
	kind     apierr.Kind // set when an error answer is written
	cause    string      // set when the answer is a fault of the gateway's own
}

type infoKey struct{}

// infoFrom returns the request's info. It lives under the gateway's own key,
// not logging.WithRequestID: the grpcx client interceptor would otherwise
// append the id to the metadata a second time.
func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(infoKey{}).(*requestInfo)
	return info
}

// observe is the outermost layer: it fixes the request id (echoed in the
// X-Request-Id response header) and the client IP, recovers panics into a
// 500 JSON answer and logs one line per request. The line holds the path
// only, never the query string (it may carry a one-time code), headers or
// bodies. tel counts the answer by route, method and status.
func observe(log *slog.Logger, tel *telemetry.Telemetry, trusted []netip.Prefix, routes map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		peer, _ := clientip.Parse(r.RemoteAddr)
		info := &requestInfo{
			id:       logging.CleanRequestID(r.Header.Get(logging.RequestIDHeader)),
			clientIP: clientip.Resolve(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted),
			proxied:  peer.IsValid() && ipset.Contains(trusted, peer),
		}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h := rec.Header()
		h.Set(logging.RequestIDHeader, info.id)
		// Answers carry tokens and codes: never cached (RFC 6749 5.1).
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic", "request_id", info.id, "path", r.URL.Path,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					writeKind(rec, r, apierr.Internal)
				}
			}
			route := "other"
			if routes[r.URL.Path] {
				route = r.URL.Path
			}
			tel.ObserveHTTP(route, r.Method, rec.status, time.Since(start))
			level := slog.LevelInfo
			if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
				level = slog.LevelDebug // probes every few seconds are noise
			}
			attrs := []slog.Attr{
				slog.String("request_id", info.id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("client_ip", addrString(info.clientIP)),
			}
			if info.kind != "" {
				attrs = append(attrs, slog.String("error", string(info.kind)))
			}
			if info.cause != "" {
				level = slog.LevelError
				attrs = append(attrs, slog.String("cause", info.cause))
			}
			log.LogAttrs(r.Context(), level, "http", attrs...)
		}()

		if !info.clientIP.IsValid() {
			// Only a non-TCP listener yields a peer that is not an address;
			// refuse rather than let the backend fall back to our own address.
			writeKind(rec, r, apierr.Internal)
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// secure reports whether the browser reached us over HTTPS: TLS here, or a
// trusted proxy that terminated it and says so in X-Forwarded-Proto (the
// value it appended last). The header of anyone else is ignored.
func secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	info := infoFrom(r.Context())
	if info == nil || !info.proxied {
		return false
	}
	values := r.Header.Values("X-Forwarded-Proto")
	if len(values) == 0 {
		return false
	}
	hops := strings.Split(values[len(values)-1], ",")
	return strings.EqualFold(strings.TrimSpace(hops[len(hops)-1]), "https")
}

// noteKind records the error kind of an answer written outside the mux.
func noteKind(r *http.Request, k apierr.Kind) {
	if info := infoFrom(r.Context()); info != nil {
		info.kind = k
	}
}

// noteCause records that the answer is a fault that originated in the
// gateway (auth unreachable), so the access line logs it at ERROR with its
// cause: the transport's text, which holds addresses but no request data.
func noteCause(r *http.Request, err error) {
	if info := infoFrom(r.Context()); info != nil {
		info.cause = err.Error()
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// recorder remembers the status and size of an answer for the access log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
