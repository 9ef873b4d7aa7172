package telemetry

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/config"
)

// TestProfilerOnlyWhenAsked: the metrics listener serves /debug/pprof/
// only with MOREID_PPROF=1; /metrics always.
func TestProfilerOnlyWhenAsked(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tests := []struct {
		name  string
		env   map[string]string
		pprof int
	}{
		{"default", map[string]string{}, http.StatusNotFound},
		{"MOREID_PPROF=0", map[string]string{"MOREID_PPROF": "0"}, http.StatusNotFound},
		{"MOREID_PPROF=1", map[string]string{"MOREID_PPROF": "1"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Port 0: the listener picks and keeps its own port.
			tt.env["MOREID_TEST_METRICS_ADDR"] = "127.0.0.1:0"
			tel, err := Setup(context.Background(), config.FromMap(tt.env), "test")
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			go func() { _ = tel.Metrics.Serve() }()
			t.Cleanup(func() { tel.Metrics.Stop(context.Background()); _ = tel.Close(context.Background()) })
			base := "http://" + tel.Metrics.Name[strings.LastIndex(tel.Metrics.Name, " ")+1:]
			c := &http.Client{Timeout: 20 * time.Second}
			for path, want := range map[string]int{
				"/metrics":               http.StatusOK,
				"/debug/pprof/":          tt.pprof,
				"/debug/pprof/cmdline":   tt.pprof,
				"/debug/pprof/heap":      tt.pprof,
				"/debug/pprof/goroutine": tt.pprof,
			} {
				resp, err := c.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
				}
			}
		})
	}
	t.Run("a typo is an error", func(t *testing.T) {
		if _, err := Setup(context.Background(), config.FromMap(map[string]string{"MOREID_PPROF": "on", "MOREID_TEST_METRICS_ADDR": "127.0.0.1:0"}), "test"); err == nil || !strings.Contains(err.Error(), "MOREID_PPROF") {
			t.Fatalf("Setup with MOREID_PPROF=on: %v, want an error naming it", err)
		}
	})
}
