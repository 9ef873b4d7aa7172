package stats

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ { // 1 ms … 1000 ms, one each
		Record(h, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(h, 7, 10*time.Second)
	within := func(got, want time.Duration) bool { // three significant digits
		d := got - want
		return d >= -want/500 && d <= want/500
	}
	tests := []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", s.P50, 500 * time.Millisecond},
		{"p99", s.P99, 990 * time.Millisecond},
		{"p99.9", s.P999, 999 * time.Millisecond},
		{"max", s.Max, 1000 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !within(tt.got, tt.want) {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
	if s.Requests != 1000 || s.Errors != 7 {
		t.Errorf("requests %d errors %d, want 1000 and 7", s.Requests, s.Errors)
	}
	if s.RPS() != 100 {
		t.Errorf("RPS = %v, want 100 (1000 requests in 10 s)", s.RPS())
	}
}

func TestRecordClampsOutliers(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want time.Duration
	}{
		{"zero counts as 1 µs", 0, time.Microsecond},
		{"sub-microsecond counts as 1 µs", 300 * time.Nanosecond, time.Microsecond},
		{"beyond two minutes counts as two minutes", time.Hour, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram()
			Record(h, tt.d)
			s := Summarize(h, 0, time.Second)
			if s.Requests != 1 {
				t.Fatalf("recorded %d values, want 1", s.Requests)
			}
			if d := s.Max - tt.want; d < -tt.want/500 || d > tt.want/500 {
				t.Errorf("max = %v, want %v", s.Max, tt.want)
			}
		})
	}
}

func TestRPSOfAnEmptyPhase(t *testing.T) {
	if got := Summarize(NewHistogram(), 0, 0).RPS(); got != 0 {
		t.Errorf("RPS of a phase without time = %v, want 0", got)
	}
}
