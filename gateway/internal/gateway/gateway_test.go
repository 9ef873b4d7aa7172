package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/proto/wire"
)

const apiKey = "ml_" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

type request struct {
	method  string
	path    string
	body    string
	headers map[string]string
}

type response struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

// send issues one request with the app's API key (unless the test sets the
// header to "") and decodes the JSON body, numbers kept as json.Number so
// that a number and a numeric string can be told apart.
func send(t *testing.T, srv *httptest.Server, rq request) response {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequest(rq.method, srv.URL+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	for k, v := range rq.headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return do(t, srv.Client(), req)
}

func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{status: res.StatusCode, header: res.Header, raw: raw}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, body %s", req.Method, req.URL.Path, ct, raw)
	}
	if req.Method == http.MethodHead {
		return out
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&out.json); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v: %s", req.Method, req.URL.Path, err, raw)
	}
	return out
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// assertError checks the documented error shape.
func assertError(t *testing.T, r response, status int, kind apierr.Kind, message string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if got := keys(r.json); !reflect.DeepEqual(got, []string{"error", "message", "success"}) {
		t.Fatalf("error body fields %v: %s", got, r.raw)
	}
	if r.json["success"] != false || r.json["error"] != string(kind) {
		t.Fatalf("body %s, want success false and error %q", r.raw, kind)
	}
	if message == "" {
		message = apierr.DefaultMessage(kind)
	}
	if r.json["message"] != message {
		t.Fatalf("message %q, want %q", r.json["message"], message)
	}
}

func TestSuccessBodies(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())

	tests := []struct {
		name   string
		rq     request
		fields []string
		want   map[string]any
		user   map[string]any
	}{
		{
			name:   "authorize",
			rq:     request{method: "GET", path: "/api/oauth/authorize"},
			fields: []string{"message", "state", "success"},
			want:   map[string]any{"success": true, "message": "授权初始化成功", "state": "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"},
		},
		{
			name:   "login",
			rq:     request{method: "POST", path: "/api/oauth/login", body: `{"user_id":"alice","password":"pw","state":"s"}`},
			fields: []string{"code", "message", "success", "user"},
			want:   map[string]any{"success": true, "message": "登录成功", "code": "code_0123456789abcdef0123456789abcdef"},
			user:   map[string]any{"id": json.Number("1"), "username": "Alice", "user_id": "alice", "email": "alice@example.com"},
		},
		{
			name:   "token",
			rq:     request{method: "POST", path: "/api/oauth/token", body: `{"code":"code_x","state":"s"}`},
			fields: []string{"access_token", "expires_in", "message", "success", "token_type"},
			want: map[string]any{"success": true, "message": "获取访问令牌成功", "access_token": "token_" + strings.Repeat("a", 56),
				"token_type": "Bearer", "expires_in": json.Number("3600")},
		},
		{
			name:   "user info",
			rq:     request{method: "POST", path: "/api/oauth/user/info", body: `{"user_id":"alice"}`},
			fields: []string{"message", "success", "user"},
			want:   map[string]any{"success": true, "message": "获取用户信息成功"},
			user:   map[string]any{"username": "Alice", "avatar_url": "https://example.com/a.svg"},
		},
		{
			name:   "unknown fields ignored",
			rq:     request{method: "POST", path: "/api/oauth/login", body: `{"user_id":"alice","password":"pw","state":"s","remember":true,"extra":{"a":[1,2]}}`},
			fields: []string{"code", "message", "success", "user"},
			want:   map[string]any{"success": true, "message": "登录成功"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, srv, tt.rq)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			if got := keys(r.json); !reflect.DeepEqual(got, tt.fields) {
				t.Fatalf("fields %v, want %v: %s", got, tt.fields, r.raw)
			}
			for k, v := range tt.want {
				if r.json[k] != v {
					t.Errorf("%s = %#v, want %#v", k, r.json[k], v)
				}
			}
			if tt.user != nil {
				if u, _ := r.json["user"].(map[string]any); !reflect.DeepEqual(u, tt.user) {
					t.Errorf("user = %#v, want %#v", r.json["user"], tt.user)
				}
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())
	login := func(userID string) request {
		return request{method: "POST", path: "/api/oauth/login", body: fmt.Sprintf(`{"user_id":%q,"password":"pw","state":"s"}`, userID)}
	}
	tests := []struct {
		name       string
		rq         request
		status     int
		kind       apierr.Kind
		message    string // "" means the kind's default
		retryAfter string
	}{
		{name: "missing field passes the backend's message", rq: login(""), status: 400, kind: apierr.InvalidRequest, message: "缺少必要参数: user_id"},
		{name: "empty body reaches the backend", rq: request{method: "POST", path: "/api/oauth/token"}, status: 400, kind: apierr.InvalidRequest},
		{name: "no API key", rq: request{method: "GET", path: "/api/oauth/authorize", headers: map[string]string{"X-API-Key": ""}}, status: 401, kind: apierr.InvalidAPIKey},
		{name: "wrong password", rq: login("wrong-password"), status: 401, kind: apierr.InvalidCredentials},
		{name: "IP not in whitelist", rq: login("outside-whitelist"), status: 403, kind: apierr.IPNotAllowed},
		{name: "unknown user", rq: request{method: "POST", path: "/api/oauth/user/info", body: `{"user_id":"nobody"}`}, status: 404, kind: apierr.NotFound},
		{name: "invalid state", rq: login("stale-state"), status: 408, kind: apierr.InvalidState},
		{name: "invalid code", rq: login("used-code"), status: 409, kind: apierr.InvalidCode},
		{name: "rate limited", rq: login("throttled"), status: 429, kind: apierr.RateLimited, retryAfter: "42"},
		{name: "internal failure hides its cause", rq: login("broken"), status: 500, kind: apierr.Internal},
		{name: "backend panic hides its cause", rq: login("panics"), status: 500, kind: apierr.Internal},
		{name: "dependency down", rq: login("redis-down"), status: 503, kind: apierr.Unavailable},
		{name: "unknown path", rq: request{method: "GET", path: "/api/oauth/nope"}, status: 404, kind: apierr.NotFound},
		{name: "root path", rq: request{method: "GET", path: "/"}, status: 404, kind: apierr.NotFound},
		{name: "longer path", rq: request{method: "POST", path: "/api/oauth/user/info/x", body: `{}`}, status: 404, kind: apierr.NotFound},
		{name: "POST on GET path", rq: request{method: "POST", path: "/api/oauth/authorize", body: `{}`}, status: 405, kind: apierr.MethodNotAllowed},
		{name: "form POST on GET path (no fallback)", rq: request{method: "POST", path: "/api/oauth/authorize", body: "a=b",
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, status: 405, kind: apierr.MethodNotAllowed},
		{name: "method override ignored", rq: request{method: "POST", path: "/api/oauth/authorize", body: "a=b",
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-HTTP-Method-Override": "GET"}}, status: 405, kind: apierr.MethodNotAllowed},
		{name: "GET on POST path", rq: request{method: "GET", path: "/api/oauth/login"}, status: 405, kind: apierr.MethodNotAllowed},
		{name: "PUT on POST path", rq: request{method: "PUT", path: "/api/oauth/token", body: `{}`}, status: 405, kind: apierr.MethodNotAllowed},
		{name: "DELETE on user info", rq: request{method: "DELETE", path: "/api/oauth/user/info"}, status: 405, kind: apierr.MethodNotAllowed},
		{name: "malformed JSON", rq: request{method: "POST", path: "/api/oauth/login", body: `{"user_id":`}, status: 400, kind: apierr.InvalidRequest},
		{name: "JSON array", rq: request{method: "POST", path: "/api/oauth/login", body: `[{"user_id":"alice","password":"pw","state":"s"}]`}, status: 400, kind: apierr.InvalidRequest},
		{name: "JSON string", rq: request{method: "POST", path: "/api/oauth/token", body: `"code"`}, status: 400, kind: apierr.InvalidRequest},
		{name: "wrong field type", rq: request{method: "POST", path: "/api/oauth/login", body: `{"user_id":123,"password":"pw","state":"s"}`}, status: 400, kind: apierr.InvalidRequest},
		{name: "object for string", rq: request{method: "POST", path: "/api/oauth/user/info", body: `{"user_id":{"x":1}}`}, status: 400, kind: apierr.InvalidRequest},
		{name: "trailing garbage", rq: request{method: "POST", path: "/api/oauth/login", body: `{"user_id":"alice","password":"pw","state":"s"} {}`}, status: 400, kind: apierr.InvalidRequest},
		{name: "form body", rq: request{method: "POST", path: "/api/oauth/login", body: "user_id=alice&password=pw",
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, status: 400, kind: apierr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, srv, tt.rq)
			assertError(t, r, tt.status, tt.kind, tt.message)
			if got := r.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if strings.Contains(string(r.raw), "10.9.8.7") || strings.Contains(string(r.raw), "pq:") {
				t.Errorf("body reveals internals: %s", r.raw)
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the answer")
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())
	const object = `{"user_id":"alice","password":"pw","state":"s"}`
	pad := func(n int) string { return object + strings.Repeat(" ", n-len(object)) }
	bigField := `{"user_id":"alice","password":"pw","state":"s","junk":"` + strings.Repeat("x", MaxBodyBytes) + `"}`

	tests := []struct {
		name    string
		body    string
		chunked bool
		status  int
	}{
		{name: "exactly the limit", body: pad(MaxBodyBytes), status: 200},
		{name: "exactly the limit, chunked", body: pad(MaxBodyBytes), chunked: true, status: 200},
		{name: "one byte over, padding after a valid object", body: pad(MaxBodyBytes + 1), status: 400},
		{name: "one byte over, chunked", body: pad(MaxBodyBytes + 1), chunked: true, status: 400},
		{name: "large unknown field", body: bigField, status: 400},
		{name: "large unknown field, chunked", body: bigField, chunked: true, status: 400},
		{name: "megabyte, chunked", body: pad(1 << 20), chunked: true, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", srv.URL+"/api/oauth/login", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-API-Key", apiKey)
			if tt.chunked {
				// An unknown length makes the client send chunked, without
				// Content-Length.
				req.Body = io.NopCloser(strings.NewReader(tt.body))
				req.ContentLength = -1
			}
			r := do(t, srv.Client(), req)
			if tt.status == 200 {
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.raw)
				}
				return
			}
			assertError(t, r, tt.status, apierr.InvalidRequest, "")
		})
	}

	t.Run("announced length over the limit is refused before the body", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		// The header promises 1 MiB; only a few bytes follow. The answer
		// must come without waiting for the rest.
		fmt.Fprintf(conn, "POST /api/oauth/login HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"user_id\":", apiKey, 1<<20)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != 400 || !strings.Contains(string(raw), `"error":"invalid_request"`) {
			t.Fatalf("status %d body %s", res.StatusCode, raw)
		}
	})
}

func TestMetadata(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())

	r := send(t, srv, request{method: "POST", path: "/api/oauth/user/info", body: `{"user_id":"alice"}`, headers: map[string]string{
		"Authorization":                     "Bearer token_abc",
		"X-Request-Id":                      "req-42.a_b",
		"X-Moreid-Client-Ip":                "6.6.6.6",
		"Grpc-Metadata-X-Moreid-Client-Ip":  "6.6.6.6",
		"Grpc-Metadata-X-Api-Key":           "ml_forged",
		"Grpc-Metadata-Foo":                 "bar",
		"X-Forwarded-For":                   "6.6.6.6",
		"X-Forwarded-Host":                  "evil.example",
		"Cookie":                            "session=s3cret",
		"User-Agent":                        "test-agent",
		"Grpc-Timeout":                      "1n",
		"Grpc-Metadata-Grpcgateway-Cookie":  "x",
		"Grpc-Metadata-Authorization":       "Bearer forged",
		"Grpc-Metadata-X-Forwarded-For":     "6.6.6.6",
		"Grpc-Metadata-X-Request-Id":        "forged",
		"Grpc-Metadata-X-Moreid-Client-Ip2": "x",
	}})
	if r.status != 200 {
		t.Fatalf("status %d: %s (a client Grpc-Timeout must not shorten the call)", r.status, r.raw)
	}
	md := b.auth.lastMD()
	want := map[string][]string{
		wire.APIKey:     {apiKey},
		"authorization": {"Bearer token_abc"},
		"x-request-id":  {"req-42.a_b"},
		wire.ClientIP:   {"127.0.0.1"},
	}
	for k, v := range want {
		if got := md.Get(k); !reflect.DeepEqual(got, v) {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
	// Only gRPC's own keys may accompany them.
	allowed := map[string]bool{":authority": true, "content-type": true, "user-agent": true, "grpc-accept-encoding": true}
	for k := range md {
		if _, ok := want[k]; !ok && !allowed[k] {
			t.Errorf("unexpected metadata %s = %q", k, md.Get(k))
		}
	}
	if got := r.header.Get("X-Request-Id"); got != "req-42.a_b" {
		t.Errorf("X-Request-Id answer %q", got)
	}
	for h := range r.header {
		if strings.HasPrefix(h, "Grpc-") {
			t.Errorf("answer leaks backend header %s", h)
		}
	}

	t.Run("unsafe request id replaced", func(t *testing.T) {
		r := send(t, srv, request{method: "GET", path: "/api/oauth/authorize", headers: map[string]string{"X-Request-Id": "has space{}"}})
		id := r.header.Get("X-Request-Id")
		if id == "" || id == "has space{}" {
			t.Fatalf("X-Request-Id answer %q", id)
		}
		if got := b.auth.lastMD().Get("x-request-id"); !reflect.DeepEqual(got, []string{id}) {
			t.Fatalf("backend got request id %q, answer says %q", got, id)
		}
	})
}

func TestClientIPMetadata(t *testing.T) {
	tests := []struct {
		name    string
		trusted string
		xff     []string
		want    string
	}{
		{name: "untrusted peer, forged header", trusted: "", xff: []string{"6.6.6.6"}, want: "127.0.0.1"},
		{name: "untrusted peer, forged chain", trusted: "10.0.0.0/8", xff: []string{"6.6.6.6, 10.0.0.1"}, want: "127.0.0.1"},
		{name: "trusted peer, no header", trusted: "127.0.0.0/8", want: "127.0.0.1"},
		{name: "trusted peer, right-most untrusted hop", trusted: "127.0.0.0/8, 10.0.0.0/8",
			xff: []string{"6.6.6.6, 198.51.100.9", "10.1.1.1"}, want: "198.51.100.9"},
		{name: "trusted peer, IPv6 hop", trusted: "127.0.0.1", xff: []string{"[2001:db8::9]:1234"}, want: "2001:db8::9"},
		{name: "trusted peer, garbage hop", trusted: "127.0.0.1", xff: []string{"6.6.6.6, unknown"}, want: "127.0.0.1"},
	}
	b := startBackend(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trusted, err := ipset.ParseList(tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			srv := startGateway(t, b.conn, trusted, slog.New(slog.NewJSONHandler(&logs, nil)))
			req, _ := http.NewRequest("GET", srv.URL+"/api/oauth/authorize", nil)
			req.Header.Set("X-API-Key", apiKey)
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if r := do(t, srv.Client(), req); r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			md := b.auth.lastMD()
			if got := md.Get(wire.ClientIP); !reflect.DeepEqual(got, []string{tt.want}) {
				t.Fatalf("%s = %q, want %s", wire.ClientIP, got, tt.want)
			}
			if got := md.Get("x-forwarded-for"); len(got) != 0 {
				t.Fatalf("x-forwarded-for reached the backend: %q", got)
			}
			line := waitLogLine(t, &logs, "/api/oauth/authorize")
			if line["client_ip"] != tt.want {
				t.Fatalf("logged client_ip %v, want %s", line["client_ip"], tt.want)
			}
		})
	}
}

// waitLogLine returns the access-log line for path. The line is written as
// the handler returns, which may be just after the client has its answer.
func waitLogLine(t *testing.T, logs *logBuffer, path string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // generous: a loaded machine
	for {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http" && m["path"] == path {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for %s in:\n%s", path, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAccessLog(t *testing.T) {
	b := startBackend(t)
	var logs logBuffer
	srv := startGateway(t, b.conn, nil, slog.New(slog.NewJSONHandler(&logs, nil)))
	const secret = "code_SECRETSECRETSECRETSECRETSECRE"
	r := send(t, srv, request{method: "POST", path: "/api/oauth/token?code=" + secret, body: `{"code":"` + secret + `","state":"s"}`,
		headers: map[string]string{"X-Request-Id": "log-test-1", "Authorization": "Bearer token_topsecret"}})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	line := waitLogLine(t, &logs, "/api/oauth/token")
	want := map[string]any{"request_id": "log-test-1", "method": "POST", "status": float64(200),
		"bytes": float64(len(r.raw)), "client_ip": "127.0.0.1"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %#v, want %#v", k, line[k], v)
		}
	}
	if _, ok := line["latency_ms"].(float64); !ok {
		t.Errorf("log latency_ms = %#v", line["latency_ms"])
	}
	all := logs.String()
	for _, s := range []string{secret, apiKey, "token_topsecret", "token_aaaa"} {
		if strings.Contains(all, s) {
			t.Errorf("log contains secret %q:\n%s", s, all)
		}
	}

	t.Run("error kind logged", func(t *testing.T) {
		send(t, srv, request{method: "GET", path: "/api/oauth/missing"})
		if line := waitLogLine(t, &logs, "/api/oauth/missing"); line["error"] != "not_found" || line["status"] != float64(404) {
			t.Fatalf("log line %v", line)
		}
	})
}

func TestHealth(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())

	// A gateway whose backend port is closed.
	dead := startGateway(t, grpctest.Dial(t, closedAddr(t)), nil, discard())

	ok := func(t *testing.T, r response) {
		t.Helper()
		if r.status != 200 || !reflect.DeepEqual(r.json, map[string]any{"success": true, "message": "ok"}) {
			t.Fatalf("status %d body %s", r.status, r.raw)
		}
	}
	get := func(s *httptest.Server, path string) request {
		return request{method: "GET", path: path, headers: map[string]string{"X-API-Key": ""}}
	}

	t.Run("healthz", func(t *testing.T) { ok(t, send(t, srv, get(srv, "/healthz"))) })
	t.Run("healthz without backend", func(t *testing.T) { ok(t, send(t, dead, get(dead, "/healthz"))) })
	t.Run("readyz serving", func(t *testing.T) { ok(t, send(t, srv, get(srv, "/readyz"))) })
	// Auth's own readiness (its Redis) does not cascade: the gateway is
	// ready while auth answers.
	t.Run("readyz while auth is not serving", func(t *testing.T) {
		b.healthy.Store(false)
		t.Cleanup(func() { b.healthy.Store(true) })
		ok(t, send(t, srv, get(srv, "/readyz")))
	})
	t.Run("readyz backend unreachable", func(t *testing.T) {
		assertError(t, send(t, dead, get(dead, "/readyz")), 503, apierr.Unavailable, "")
	})
	t.Run("API call backend unreachable", func(t *testing.T) {
		assertError(t, send(t, dead, request{method: "GET", path: "/api/oauth/authorize"}), 503, apierr.Unavailable, "")
	})
	t.Run("healthz wrong method", func(t *testing.T) {
		assertError(t, send(t, srv, request{method: "POST", path: "/healthz"}), 405, apierr.MethodNotAllowed, "")
	})
}

func TestPanicRecovered(t *testing.T) {
	srv := httptest.NewServer(observe(discard(), nil, nil, nil, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("something internal")
	})))
	t.Cleanup(srv.Close)
	r := send(t, srv, request{method: "GET", path: "/x"})
	assertError(t, r, 500, apierr.Internal, "")
	if strings.Contains(string(r.raw), "something internal") {
		t.Fatalf("panic text leaked: %s", r.raw)
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	if _, err := New(nil, []netip.Prefix{}, testCSRFKey, discard(), nil, nil); err == nil {
		t.Fatal("New without a connection succeeded")
	}
}
