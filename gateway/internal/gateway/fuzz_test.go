package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/gateway/internal/apidocs"
	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
)

// The fuzz targets of SPEC's "no input yields a 500 or a panic": every
// request goes through the real handler (New) to a real gRPC backend with the
// fakes of backend_test.go. Their seed corpora are in testdata/fuzz; `go
// test` runs the seeds as ordinary tests.
//
//	go test -run='^$' -fuzz='^FuzzRequestDecoding$' -fuzztime=10s ./internal/gateway/
//	go test -run='^$' -fuzz='^FuzzConfirmationPage$' -fuzztime=10s ./internal/gateway/

// fuzzEndpoints are the documented JSON endpoints; the fuzzed index picks
// one. newFuzzRig checks that the list covers every documented path.
var fuzzEndpoints = []struct{ method, path string }{
	{http.MethodGet, "/api/oauth/authorize"},
	{http.MethodPost, "/api/oauth/login"},
	{http.MethodPost, "/api/oauth/token"},
	{http.MethodPost, "/api/oauth/user/info"},
	{http.MethodPost, "/api/oauth/user/update"},
	{http.MethodPost, "/api/oauth/ucaoncecode"},
	{http.MethodPost, "/api/oauth/generate_login_code"},
	{http.MethodPost, "/api/oauth/login_safe"},
	{http.MethodGet, "/api/oauth/token/user"},
	{http.MethodGet, "/api/oauth/userinfo"},
}

// fuzzContentTypes are the Content-Type (and Accept) values a fuzzed index
// picks from; "" leaves the header out.
var fuzzContentTypes = []string{
	"application/json",
	"application/json; charset=utf-8",
	"",
	"text/plain",
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=x",
	"application/octet-stream",
	"application/json; charset=latin1",
	"*/*",
	"application/grpc",
	"text/html",
}

// fuzzRig is the gateway of one fuzz process, built once: a backend, the
// handler over it, and what the backend and the gateway's log reported
// during the current input. Inputs run one at a time in a process, so the
// rig is reset per input rather than rebuilt.
type fuzzRig struct {
	h       http.Handler
	confirm *fakeConfirmation

	mu       sync.Mutex
	backend  []int    // HTTP status of each backend error of this input
	panicked []string // panics the gateway recovered during this input
}

func newFuzzRig(f *testing.F) *fuzzRig {
	f.Helper()
	rig := &fuzzRig{}
	b := startBackend(f, rig.watchBackend)
	h, err := New(b.conn, nil, testCSRFKey, slog.New(rig), nil, grpcx.ServiceProbe(healthpb.NewHealthClient(b.conn)))
	if err != nil {
		f.Fatal(err)
	}
	rig.h, rig.confirm = h, b.confirm

	docs, err := apidocs.New()
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range docs.Paths() {
		if p != page.Path && !slices.ContainsFunc(fuzzEndpoints, func(e struct{ method, path string }) bool { return e.path == p }) {
			f.Fatalf("documented path %s is not fuzzed: add it to fuzzEndpoints", p)
		}
	}
	return rig
}

// watchBackend runs outside grpcx's interceptors, so it sees the status the
// gateway receives, and records the HTTP status that status stands for.
func (rig *fuzzRig) watchBackend(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	res, err := next(ctx, req)
	if err != nil {
		code := apierr.FromStatus(status.Convert(err)).HTTPStatus
		rig.mu.Lock()
		rig.backend = append(rig.backend, code)
		rig.mu.Unlock()
	}
	return res, err
}

// The rig is the gateway's slog.Handler: observe logs a recovered panic as
// the message "panic", which fails the input even though the client only
// sees a 500.
func (rig *fuzzRig) Enabled(context.Context, slog.Level) bool { return true }
func (rig *fuzzRig) WithAttrs([]slog.Attr) slog.Handler       { return rig }
func (rig *fuzzRig) WithGroup(string) slog.Handler            { return rig }
func (rig *fuzzRig) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "panic" {
		return nil
	}
	var value string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "panic" {
			value = a.Value.String()
		}
		return true
	})
	rig.mu.Lock()
	rig.panicked = append(rig.panicked, value)
	rig.mu.Unlock()
	return nil
}

// serve runs one request through the gateway and checks what every answer
// must satisfy: no panic, and no 5xx unless the backend itself answered an
// error of exactly that status (the fakes do so only for a few fixed inputs,
// e.g. login as "broken" or the UCA "uca_down").
func (rig *fuzzRig) serve(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rig.mu.Lock()
	rig.backend, rig.panicked = nil, nil
	rig.mu.Unlock()
	// A UCA spent by an earlier input stays live: each input's answer
	// depends on that input alone, and the spent set cannot grow.
	rig.confirm.spentMu.Lock()
	rig.confirm.spent = nil
	rig.confirm.spentMu.Unlock()

	rec := httptest.NewRecorder()
	rig.h.ServeHTTP(rec, req)

	rig.mu.Lock()
	backend, panicked := rig.backend, rig.panicked
	rig.mu.Unlock()
	if len(panicked) > 0 {
		t.Fatalf("%s %s: the gateway panicked: %s", req.Method, req.URL.Path, panicked)
	}
	if rec.Code >= 500 && !slices.Contains(backend, rec.Code) {
		t.Fatalf("%s %s: status %d, but the backend answered %v: %s", req.Method, req.URL.Path, rec.Code, backend, rec.Body.Bytes())
	}
	return rec
}

// headerValue is the value a handler behind net/http's server gets for a
// raw header value: the server refuses (400) a request whose header holds
// control bytes other than tab before any handler runs, and it trims blanks
// around the value. Stripping those bytes instead of skipping the input
// keeps the rest of it useful. Bytes >= 0x80 (obs-text) do pass a real
// server and are kept.
func headerValue(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c >= ' ' || c == '\t') && c != 0x7f {
			b = append(b, c)
		}
	}
	return strings.Trim(string(b), " \t")
}

// rawQuery is the query a real server can receive: the request line cannot
// hold control bytes or blanks (url.ParseRequestURI and the line split
// refuse them), everything else arrives as sent.
func rawQuery(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c > ' ' && c != 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

func setHeader(h http.Header, key, value string) {
	if v := headerValue(value); v != "" {
		h.Set(key, v)
	}
}

func pick(list []string, i uint8) string { return list[int(i)%len(list)] }

// FuzzRequestDecoding sends fuzzed requests to every documented JSON
// endpoint: any body bytes, Content-Type and Accept, query string and
// API key, Authorization and Cookie values. Every answer must be a JSON
// object in the documented shape, never a 5xx of the gateway's making.
func FuzzRequestDecoding(f *testing.F) {
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, endpoint, types uint8, query string, body []byte, key, authorization, cookie string) {
		ep := fuzzEndpoints[int(endpoint)%len(fuzzEndpoints)]
		req := httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body))
		req.URL.RawQuery = rawQuery(query)
		setHeader(req.Header, "Content-Type", pick(fuzzContentTypes, types&0x0f))
		setHeader(req.Header, "Accept", pick(fuzzContentTypes, types>>4))
		setHeader(req.Header, "X-API-Key", key)
		setHeader(req.Header, "Authorization", authorization)
		setHeader(req.Header, "Cookie", cookie)

		rec := rig.serve(t, req)
		where := fmt.Sprintf("%s %s: status %d", ep.method, ep.path, rec.Code)
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s: Content-Type %q: %q", where, ct, rec.Body.Bytes())
		}
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got == nil {
			t.Fatalf("%s: body is not one JSON object (%v): %q", where, err, rec.Body.Bytes())
		}
		success, ok := got["success"].(bool)
		if !ok {
			t.Fatalf("%s: success is not a boolean: %s", where, rec.Body.Bytes())
		}
		if _, ok := got["message"].(string); !ok {
			t.Fatalf("%s: message is not a string: %s", where, rec.Body.Bytes())
		}
		if ok := rec.Code == http.StatusOK; success != ok {
			t.Fatalf("%s: success %v: %s", where, success, rec.Body.Bytes())
		}
		if _, ok := got["error"].(string); !success && !ok {
			t.Fatalf("%s: error answer without an error kind: %s", where, rec.Body.Bytes())
		}
	})
}

// FuzzConfirmationPage sends fuzzed GETs and POSTs to the confirmation page:
// any query, form body and Content-Type, cookies and Origin. Every answer is
// an HTML page (or the 303 of a successful sign-in), never a 5xx of the
// gateway's making.
func FuzzConfirmationPage(f *testing.F) {
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, post bool, contentType uint8, query string, form []byte, cookie, origin string) {
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, page.Path, bytes.NewReader(form))
		req.URL.RawQuery = rawQuery(query)
		setHeader(req.Header, "Content-Type", pick(fuzzContentTypes, contentType))
		setHeader(req.Header, "Cookie", cookie)
		setHeader(req.Header, "Origin", origin)

		rec := rig.serve(t, req)
		where := fmt.Sprintf("%s %s: status %d", method, page.Path, rec.Code)
		if rec.Code == http.StatusSeeOther {
			// Only a sign-in redirects, back to the page of its UCA.
			if loc := rec.Header().Get("Location"); !post || !strings.HasPrefix(loc, page.Path+"?uca=") {
				t.Fatalf("%s: redirect to %q", where, loc)
			}
			return
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Fatalf("%s: Content-Type %q: %q", where, ct, rec.Body.Bytes())
		}
		if !bytes.Contains(rec.Body.Bytes(), []byte("</html>")) {
			t.Fatalf("%s: not a whole page: %q", where, rec.Body.Bytes())
		}
	})
}
