// Package stats records request latencies in HDR histograms and reduces
// them to the figures the benchmark report prints.
package stats

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to 2 minutes with three
// significant digits: a login storm's queueing delay (seconds) and a cached
// lookup (tens of µs) fit the same histogram without losing precision.
const (
	lowest  = 1
	highest = int64(2 * time.Minute / time.Microsecond)
	sigfigs = 3
)

// NewHistogram returns an empty latency histogram.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(lowest, highest, sigfigs)
}

// Record adds one latency to h, clamped into the histogram's range so that
// an outlier is counted rather than dropped.
func Record(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < lowest {
		us = lowest
	}
	if us > highest {
		us = highest
	}
	_ = h.RecordValue(us)
}

// Summary is what the report shows of one measured phase.
type Summary struct {
	Requests int64 // successful requests, the ones whose latency counts
	Errors   int64
	Elapsed  time.Duration
	P50      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
}

// Summarize reduces a phase's histogram (successful requests only), its
// error count and its wall time to a Summary.
func Summarize(h *hdrhistogram.Histogram, errors int64, elapsed time.Duration) Summary {
	q := func(p float64) time.Duration { return time.Duration(h.ValueAtQuantile(p)) * time.Microsecond }
	return Summary{
		Requests: h.TotalCount(),
		Errors:   errors,
		Elapsed:  elapsed,
		P50:      q(50),
		P99:      q(99),
		P999:     q(99.9),
		Max:      time.Duration(h.Max()) * time.Microsecond,
	}
}

// RPS is the successful requests per second of the phase (0 for an empty
// phase).
func (s Summary) RPS() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Requests) / s.Elapsed.Seconds()
}
