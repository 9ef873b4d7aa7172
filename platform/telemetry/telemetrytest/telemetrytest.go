// Package telemetrytest gives a test a Telemetry of its own, on a fresh
// registry, and reads what it recorded the way a scrape would.
package telemetrytest

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/moreline/moreid/platform/telemetry"
)

// Registry is a Telemetry's registry, read by a test.
type Registry struct {
	t   testing.TB
	reg *prometheus.Registry
}

// New returns a Telemetry (tracing off) on a registry of the test's own.
func New(t testing.TB) (*telemetry.Telemetry, Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	tel, err := telemetry.New(context.Background(), telemetry.Settings{}, reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	return tel, Registry{t: t, reg: reg}
}

// Gauge sums the gauges of metric name whose labels include labels (name,
// value, name, value...). No such series fails the test: a gauge at 0 and
// a gauge never set are not the same observation.
func (r Registry) Gauge(name string, labels ...string) float64 {
	r.t.Helper()
	sum, n := r.read(name, labels)
	if n == 0 {
		r.t.Fatalf("no %s series with labels %q", name, labels)
	}
	return sum
}

// Counter sums the counters of metric name whose labels include labels; a
// counter never incremented has no series yet and counts 0.
func (r Registry) Counter(name string, labels ...string) float64 {
	r.t.Helper()
	sum, _ := r.read(name, labels)
	return sum
}

func (r Registry) read(name string, labels []string) (sum float64, n int) {
	r.t.Helper()
	fams, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if has(m.GetLabel(), labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				n++
			}
		}
	}
	return sum, n
}

func has(got []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, l := range got {
			found = found || (l.GetName() == want[i] && l.GetValue() == want[i+1])
		}
		if !found {
			return false
		}
	}
	return true
}
