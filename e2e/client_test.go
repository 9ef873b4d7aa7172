package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/proto/wire"
)

// apiClient speaks to the gateway as a third-party app does.
type apiClient struct {
	base string
	key  string
	hc   *http.Client
}

// grpcContext is ctx carrying the client's key in the x-api-key metadata,
// for calls to AuthService and TokenService over gRPC.
func (c *apiClient) grpcContext(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, wire.APIKey, c.key)
}

func newClient(base, key string) *apiClient {
	return &apiClient{base: base, key: key, hc: &http.Client{Timeout: 10 * time.Second}}
}

// answer is an HTTP response with its JSON body decoded.
type answer struct {
	Status int
	Header http.Header
	Raw    string
	Body   map[string]any
}

func (a answer) str(field string) string { s, _ := a.Body[field].(string); return s }

// do sends method path with body (a string sent as is, or anything else
// encoded as JSON) and extra headers given as name, value pairs.
func (c *apiClient) do(t testing.TB, method, path string, body any, headers ...string) answer {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		t.Fatalf("%s %s: answer %d is not a JSON object: %q", method, path, resp.StatusCode, raw)
	}
	return a
}

// authorize returns a fresh state.
func (c *apiClient) authorize(t testing.TB) string {
	t.Helper()
	a := c.do(t, "GET", "/api/oauth/authorize", nil)
	if a.Status != 200 || a.str("state") == "" {
		t.Fatalf("authorize: %d %s", a.Status, a.Raw)
	}
	return a.str("state")
}

// login runs authorize and login and returns the state and the code.
func (c *apiClient) login(t testing.TB, userID, password string) (state, code string) {
	t.Helper()
	state = c.authorize(t)
	a := c.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": userID, "password": password, "state": state})
	if a.Status != 200 || a.str("code") == "" {
		t.Fatalf("login: %d %s", a.Status, a.Raw)
	}
	return state, a.str("code")
}

// expectError asserts the documented error shape, status and machine code.
func expectError(t testing.TB, a answer, status int, code string) {
	t.Helper()
	if a.Status != status {
		t.Errorf("status %d, want %d; body %s", a.Status, status, a.Raw)
	}
	if a.Body["success"] != false {
		t.Errorf("success = %v, want false; body %s", a.Body["success"], a.Raw)
	}
	if msg, ok := a.Body["message"].(string); !ok || msg == "" {
		t.Errorf("no message; body %s", a.Raw)
	}
	if a.Body["error"] != code {
		t.Errorf("error = %v, want %q; body %s", a.Body["error"], code, a.Raw)
	}
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
}
