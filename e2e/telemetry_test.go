package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
)

// metrics is one scrape of a component's /metrics, parsed.
type metrics map[string]*dto.MetricFamily

// scrape reads /metrics of component ("gateway", "auth", "user",
// "apikey") of the instance whose environment is env.
func scrape(t testing.TB, env map[string]string, component string) metrics {
	t.Helper()
	addr := env["MOREID_"+strings.ToUpper(component)+"_METRICS_ADDR"]
	if addr == "" {
		t.Fatalf("no metrics address for %s in the suite's environment", component)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", component, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d", component, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: not the Prometheus text format: %v", component, err)
	}
	return fams
}

// value sums the series of name whose labels include want: the value of a
// counter, gauge or untyped metric, the sample count of a histogram or
// summary. found is false when no series matches.
func (m metrics) value(name string, want map[string]string) (sum float64, found bool) {
	fam := m[name]
	if fam == nil {
		return 0, false
	}
	for _, s := range fam.GetMetric() {
		if !hasLabels(s, want) {
			continue
		}
		found = true
		switch {
		case s.Counter != nil:
			sum += s.GetCounter().GetValue()
		case s.Gauge != nil:
			sum += s.GetGauge().GetValue()
		case s.Untyped != nil:
			sum += s.GetUntyped().GetValue()
		case s.Histogram != nil:
			sum += float64(s.GetHistogram().GetSampleCount())
		case s.Summary != nil:
			sum += float64(s.GetSummary().GetSampleCount())
		}
	}
	return sum, found
}

// labelValues lists every value label takes in name's series.
func (m metrics) labelValues(name, label string) []string {
	var vals []string
	for _, s := range m[name].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == label && !slices.Contains(vals, l.GetValue()) {
				vals = append(vals, l.GetValue())
			}
		}
	}
	sort.Strings(vals)
	return vals
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		ok := false
		for _, l := range s.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// rpcCount is how many calls of method (full gRPC name) a component
// answered with code ("OK", "Unauthenticated", ...).
func rpcCount(m metrics, method, code string) float64 {
	n, _ := m.value("moreid_grpc_server_handled_total", map[string]string{"method": method, "code": code})
	return n
}

const (
	rpcAuthLogin      = "/moreid.auth.v1.AuthService/Login"
	rpcAuthToken      = "/moreid.auth.v1.AuthService/Token"
	rpcVerifyPassword = "/moreid.user.v1.UserService/VerifyPassword"
	rpcValidateKey    = "/moreid.apikey.v1.APIKeyService/ValidateKey"
)

// TestMetrics runs the password flow (and a few failures) and reads every
// component's /metrics the way Prometheus would.
func TestMetrics(t *testing.T) {
	f := startFlowSuite(t)
	state, code := f.app.login(t, "alice", alicePassword)
	tok := f.app.do(t, "POST", "/api/oauth/token", map[string]string{"code": code, "state": state})
	expectSuccess(t, tok, "获取访问令牌成功")
	for range 3 { // profile reads: the first one or two from Postgres, then from memory
		expectSuccess(t, f.app.do(t, "GET", "/api/oauth/userinfo", nil, "Authorization", "Bearer "+tok.str("access_token")), "获取用户信息成功")
	}
	expectError(t, f.app.do(t, "POST", "/api/oauth/login", map[string]string{
		"user_id": "alice", "password": "wrong-password", "state": f.app.authorize(t)}), 401, "invalid_credentials")
	rawPath := "/api/oauth/no-such-path-" + randomHex(t, 8)
	expectError(t, f.app.do(t, "GET", rawPath, nil), 404, "not_found")

	gateway := scrape(t, f.Env, "gateway")
	t.Run("gateway counts requests by route and status", func(t *testing.T) {
		n, _ := gateway.value("moreid_http_requests_total", map[string]string{"route": "/api/oauth/token", "method": "POST", "status": "200"})
		if n < 1 {
			t.Errorf("moreid_http_requests_total{route=\"/api/oauth/token\",status=\"200\"} = %v, want >= 1", n)
		}
		if n, _ := gateway.value("moreid_http_requests_total", map[string]string{"route": "/api/oauth/login", "status": "401"}); n < 1 {
			t.Errorf("the wrong password's 401 on /api/oauth/login is not counted (%v)", n)
		}
		fam := gateway["moreid_http_request_duration_seconds"]
		if fam.GetType() != dto.MetricType_HISTOGRAM {
			t.Fatalf("moreid_http_request_duration_seconds is %v, want a histogram", fam.GetType())
		}
		if n, _ := gateway.value("moreid_http_request_duration_seconds", map[string]string{"route": "/api/oauth/token"}); n < 1 {
			t.Errorf("no observation of /api/oauth/token in the duration histogram")
		}
	})
	t.Run("an unknown path is counted as other, never by its raw path", func(t *testing.T) {
		if n, _ := gateway.value("moreid_http_requests_total", map[string]string{"route": "other", "status": "404"}); n < 1 {
			t.Errorf("moreid_http_requests_total{route=\"other\",status=\"404\"} = %v, want >= 1", n)
		}
		for _, name := range []string{"moreid_http_requests_total", "moreid_http_request_duration_seconds"} {
			for _, route := range gateway.labelValues(name, "route") {
				if strings.Contains(route, "no-such-path") {
					t.Errorf("%s has a series for the raw path %q", name, route)
				}
			}
		}
	})

	services := []struct {
		component string
		method    string
	}{
		{"auth", rpcAuthToken},
		{"user", rpcVerifyPassword},
		{"apikey", rpcValidateKey},
	}
	scraped := map[string]metrics{"gateway": gateway}
	for _, svc := range services {
		scraped[svc.component] = scrape(t, f.Env, svc.component)
		t.Run(svc.component+" counts and times its RPCs", func(t *testing.T) {
			m := scraped[svc.component]
			if n := rpcCount(m, svc.method, "OK"); n < 1 {
				t.Errorf("moreid_grpc_server_handled_total{method=%q,code=\"OK\"} = %v, want >= 1; methods seen: %v",
					svc.method, n, m.labelValues("moreid_grpc_server_handled_total", "method"))
			}
			if fam := m["moreid_grpc_server_handling_seconds"]; fam.GetType() != dto.MetricType_HISTOGRAM {
				t.Errorf("moreid_grpc_server_handling_seconds is %v, want a histogram", fam.GetType())
			}
			if n, _ := m.value("moreid_grpc_server_handling_seconds", map[string]string{"method": svc.method}); n < 1 {
				t.Errorf("no observation of %s in moreid_grpc_server_handling_seconds", svc.method)
			}
		})
	}
	t.Run("a wrong password is counted as Unauthenticated", func(t *testing.T) {
		if n := rpcCount(scraped["auth"], rpcAuthLogin, "Unauthenticated"); n < 1 {
			t.Errorf("auth: Login code Unauthenticated = %v, want >= 1", n)
		}
		if n := rpcCount(scraped["user"], rpcVerifyPassword, "Unauthenticated"); n < 1 {
			t.Errorf("user: VerifyPassword code Unauthenticated = %v, want >= 1", n)
		}
	})
	t.Run("user reports its profile cache", func(t *testing.T) {
		m := scraped["user"]
		if v, found := m.value("moreid_postgres_listener_live", map[string]string{"channel": "moreid_users_changed"}); !found || v != 1 {
			t.Errorf("moreid_postgres_listener_live{channel=\"moreid_users_changed\"} = %v (found %v), want 1", v, found)
		}
		hits, _ := m.value("moreid_user_profile_cache_lookups_total", map[string]string{"result": "hit"})
		misses, _ := m.value("moreid_user_profile_cache_lookups_total", map[string]string{"result": "miss"})
		if hits < 1 || hits+misses < 3 {
			t.Errorf("moreid_user_profile_cache_lookups_total: %v hits, %v misses; want 3 userinfo reads, at least one from memory", hits, misses)
		}
	})
	t.Run("every component exposes its memory", func(t *testing.T) {
		for component, m := range scraped {
			if n, found := m.value("process_resident_memory_bytes", nil); !found || n <= 0 {
				t.Errorf("%s: process_resident_memory_bytes = %v (found %v)", component, n, found)
			}
		}
	})
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// traceReceiver is an OTLP/gRPC collector of the test's own: it keeps
// every span it is sent, with the service.name of the process that sent it.
type traceReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	service string
	span    *tracepb.Span
}

func (r *traceReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := attrString(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				r.spans = append(r.spans, receivedSpan{service: service, span: sp})
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *traceReceiver) received() []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// startTraceReceiver serves a traceReceiver on a free loopback port and
// returns it with its address.
func startTraceReceiver(t *testing.T) (*traceReceiver, string) {
	t.Helper()
	srv := grpc.NewServer()
	r := &traceReceiver{}
	coltracepb.RegisterTraceServiceServer(srv, r)
	// Serve registers srv.Stop before the suite's own cleanup, so it runs
	// after the suite stopped (and flushed its last spans).
	return r, grpctest.Serve(t, srv)
}

func attrString(attrs []*commonpb.KeyValue, key string) string {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// traceParts names what a trace's spans come from: the services by their
// service.name, plus "redis" and "postgres" for database client spans.
func traceParts(spans []receivedSpan) map[string]int {
	parts := map[string]int{}
	for _, s := range spans {
		parts[s.service]++
		for _, key := range []string{"db.system", "db.system.name"} {
			switch attrString(s.span.GetAttributes(), key) {
			case "redis":
				parts["redis"]++
			case "postgresql", "postgres":
				parts["postgres"]++
			}
		}
	}
	return parts
}

// TestTracing follows one login through every service to Redis and
// Postgres, as exported over OTLP to a collector of the test's own. It
// pins the per-role shape: the trace it follows crosses processes, and in
// one process the in-process hops carry no gRPC spans (docs/ARCHITECTURE.md).
func TestTracing(t *testing.T) {
	receiver, addr := startTraceReceiver(t)
	s := harness.Start(t, harness.Options{Shape: harness.PerRole, Env: map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr,
		"OTEL_EXPORTER_OTLP_INSECURE": "true",
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	}})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Traced app"))

	state := app.authorize(t)
	// Let the key cache's entry (at most 500 ms) lapse, so that the login
	// asks the key service again within its own trace.
	time.Sleep(700 * time.Millisecond)
	login := app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": alicePassword, "state": state})
	expectSuccess(t, login, "登录成功")
	expectSuccess(t, app.do(t, "POST", "/api/oauth/token", map[string]string{"code": login.str("code"), "state": state}), "获取访问令牌成功")

	// The login's trace is the one holding auth's server span for Login.
	want := []string{"moreid-gateway", "moreid-auth", "moreid-user", "moreid-apikey", "redis", "postgres"}
	var parts map[string]int
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans := receiver.received()
		var traceID []byte
		for _, s := range spans {
			if s.service == "moreid-auth" && s.span.GetKind() == tracepb.Span_SPAN_KIND_SERVER &&
				strings.HasSuffix(s.span.GetName(), "AuthService/Login") {
				traceID = s.span.GetTraceId()
			}
		}
		var trace []receivedSpan
		for _, s := range spans {
			if traceID != nil && string(s.span.GetTraceId()) == string(traceID) {
				trace = append(trace, s)
			}
		}
		parts = traceParts(trace)
		missing := false
		for _, w := range want {
			if parts[w] == 0 {
				missing = true
			}
		}
		if !missing {
			t.Logf("the login's trace %x: %v", traceID, parts)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the login's trace (%x) holds %v, want spans of each of %v; all %d spans received:\n%s",
				traceID, parts, want, len(spans), describeSpans(spans))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describeSpans(spans []receivedSpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %x %s %q %v\n", s.span.GetTraceId(), s.service, s.span.GetName(), s.span.GetKind())
	}
	return b.String()
}
