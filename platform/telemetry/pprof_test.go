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
			r := config.FromMap(tt.env)
			s := ReadSettings(r, "test")
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			unit, err := MetricsServer(s.MetricsAddr, s.Profiling, NewRegistry())
			if err != nil {
				t.Fatalf("MetricsServer: %v", err)
			}
			go func() { _ = unit.Serve() }()
			t.Cleanup(func() { unit.Stop(context.Background()) })
			base := "http://" + unit.Name[strings.LastIndex(unit.Name, " ")+1:]
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
}
