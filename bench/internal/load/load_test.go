package load

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestClosed(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		op         func(n int64) error // n: the call's 1-based number
		wantErrors func(calls int64, r Result) bool
	}{
		{"every request succeeds", func(int64) error { return nil },
			func(calls int64, r Result) bool { return r.Errors == 0 && r.Hist.TotalCount() == calls }},
		{"failures are counted, not timed", func(n int64) error {
			if n%2 == 0 {
				return boom
			}
			return nil
		}, func(calls int64, r Result) bool {
			return r.Errors == calls/2 && r.Hist.TotalCount() == calls-calls/2 && errors.Is(r.FirstErr, boom)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			r := Closed(context.Background(), 4, 50*time.Millisecond, func(context.Context) error {
				time.Sleep(time.Millisecond)
				return tt.op(calls.Add(1))
			})
			if calls.Load() == 0 {
				t.Fatal("no request made")
			}
			if !tt.wantErrors(calls.Load(), r) {
				t.Errorf("calls %d: %d timed, %d errors (first %v)", calls.Load(), r.Hist.TotalCount(), r.Errors, r.FirstErr)
			}
		})
	}
}

// Running out of prepared inputs ends the phase early, and the requests
// that found none are neither timed nor errors.
func TestClosedStopsWhenExhausted(t *testing.T) {
	var left atomic.Int64
	left.Store(30)
	r := Closed(context.Background(), 4, time.Minute, func(context.Context) error {
		if left.Add(-1) < 0 {
			return ErrExhausted
		}
		return nil
	})
	if r.Hist.TotalCount() != 30 || r.Errors != 0 {
		t.Errorf("%d timed, %d errors; want 30 and 0", r.Hist.TotalCount(), r.Errors)
	}
	if r.Elapsed >= time.Minute {
		t.Errorf("the phase ran its whole duration (%v) with no inputs left", r.Elapsed)
	}
}

func TestOpenMakesRateTimesDuration(t *testing.T) {
	var calls atomic.Int64
	r := Open(context.Background(), 1000, 100*time.Millisecond, 16, func(context.Context) error {
		calls.Add(1)
		return nil
	})
	if calls.Load() != 100 || r.Hist.TotalCount() != 100 {
		t.Errorf("%d calls, %d timed; want 100 (1000/s for 100 ms)", calls.Load(), r.Hist.TotalCount())
	}
}

// When the server cannot keep up, latency counts from when each request
// was due: with one request in flight at a time, each taking at least
// 5 ms, the 50th request (due at 49 ms) cannot end before 250 ms.
func TestOpenCountsTheWaitOfLateRequests(t *testing.T) {
	r := Open(context.Background(), 1000, 50*time.Millisecond, 1, func(context.Context) error {
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	if got := time.Duration(r.Hist.Max()) * time.Microsecond; got < 200*time.Millisecond {
		t.Errorf("max latency %v: the queueing delay was not counted (want ≥ 200 ms)", got)
	}
}

func TestOpenCountsExhaustion(t *testing.T) {
	r := Open(context.Background(), 1000, 20*time.Millisecond, 4, func(context.Context) error { return ErrExhausted })
	if r.Exhausted != 20 || r.Errors != 0 || r.Hist.TotalCount() != 0 {
		t.Errorf("exhausted %d, errors %d, timed %d; want 20, 0, 0", r.Exhausted, r.Errors, r.Hist.TotalCount())
	}
}
