package telemetry

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moreline/moreid/platform/config"
)

// TestSettings: the metrics address, the profiler switch and the OTLP
// endpoint come from the Reader, and a bad value is an error naming its
// variable, not a silent default.
func TestSettings(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Settings
		wantErr string // a variable the error must name; "" for none
	}{
		{"defaults", map[string]string{}, Settings{MetricsAddr: "127.0.0.1:9101"}, ""},
		{"shared address", map[string]string{"MOREID_METRICS_ADDR": ":9100"}, Settings{MetricsAddr: ":9100"}, ""},
		{"own address first", map[string]string{"MOREID_METRICS_ADDR": ":9100", "MOREID_AUTH_METRICS_ADDR": ":9200"}, Settings{MetricsAddr: ":9200"}, ""},
		{"profiling", map[string]string{"MOREID_PPROF": "1"}, Settings{MetricsAddr: "127.0.0.1:9101", Profiling: true}, ""},
		{"profiling typo", map[string]string{"MOREID_PPROF": "on"}, Settings{MetricsAddr: "127.0.0.1:9101"}, "MOREID_PPROF"},
		{"endpoint", map[string]string{EnvOTLPEndpoint: "http://collector:4317"},
			Settings{MetricsAddr: "127.0.0.1:9101", TraceEndpoint: "http://collector:4317"}, ""},
		{"traces endpoint wins", map[string]string{EnvOTLPEndpoint: "http://collector:4317", EnvOTLPTracesEndpoint: "https://traces:4317"},
			Settings{MetricsAddr: "127.0.0.1:9101", TraceEndpoint: "https://traces:4317"}, ""},
		{"endpoint without a scheme", map[string]string{EnvOTLPEndpoint: "collector:4317"}, Settings{MetricsAddr: "127.0.0.1:9101"}, EnvOTLPEndpoint},
		{"traces endpoint not a URL", map[string]string{EnvOTLPTracesEndpoint: "::"}, Settings{MetricsAddr: "127.0.0.1:9101"}, EnvOTLPTracesEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := config.FromMap(tt.env)
			got := ReadSettings(r, "auth")
			if got != tt.want {
				t.Errorf("ReadSettings = %+v, want %+v", got, tt.want)
			}
			err := r.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

// TestTracingOnlyWithAnEndpoint: an endpoint turns tracing on in every
// instrumented place (a failure here would stop every component at
// start-up); without one nothing is traced.
func TestTracingOnlyWithAnEndpoint(t *testing.T) {
	for _, tt := range []struct {
		endpoint string
		on       bool
	}{
		{"", false},
		{"http://127.0.0.1:4317", true},
	} {
		t.Run(tt.endpoint, func(t *testing.T) {
			tel, err := New(context.Background(), Settings{TraceEndpoint: tt.endpoint}, prometheus.NewRegistry(), "test")
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = tel.Close(context.Background()) })
			if got := tel.Tracing(); got != tt.on {
				t.Errorf("Tracing() = %v, want %v", got, tt.on)
			}
			if got := len(tel.GRPCServerOptions()) > 0 && len(tel.GRPCDialOptions()) > 0; got != tt.on {
				t.Errorf("gRPC tracing options present = %v, want %v", got, tt.on)
			}
		})
	}
}
