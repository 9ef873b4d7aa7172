// Package load drives an operation under load: closed-loop (a fixed number
// of workers, each starting its next request when the previous one ends,
// which finds the peak throughput) and open-loop (requests started at a
// constant rate whatever the answers' speed, which shows the latency a
// client sees at a given load).
package load

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/moreline/moreid/bench/internal/stats"
)

// ErrExhausted is what an operation returns when it has no prepared input
// left (no fresh state or code): the worker stops, and the request is
// neither timed nor counted as an error.
var ErrExhausted = errors.New("load: prepared inputs exhausted")

// Op is one timed request (or one timed sequence of requests, for a flow).
type Op func(ctx context.Context) error

// Result is what a phase measured.
type Result struct {
	Hist      *hdrhistogram.Histogram // latencies of successful requests
	Errors    int64
	Exhausted int64 // open loop: requests not made for want of input
	FirstErr  error
	Elapsed   time.Duration
}

// Summary reduces the result to the report's figures.
func (r Result) Summary() stats.Summary {
	return stats.Summarize(r.Hist, r.Errors, r.Elapsed)
}

// tally is one goroutine's share of a Result, merged at the end so that
// workers never contend on a lock while measuring.
type tally struct {
	hist     *hdrhistogram.Histogram
	errors   int64
	firstErr error
}

func (t *tally) add(err error, d time.Duration) {
	if err != nil {
		t.errors++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	stats.Record(t.hist, d)
}

// Closed runs op back to back on workers goroutines for d (or until ctx
// ends, or every worker ran out of input). Requests started before the
// deadline are waited for and counted; Elapsed runs until the last ends.
func Closed(ctx context.Context, workers int, d time.Duration, op Op) Result {
	tallies := make([]tally, workers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range tallies {
		tallies[w].hist = stats.NewHistogram()
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				err := op(ctx)
				if errors.Is(err, ErrExhausted) {
					return
				}
				t.add(err, time.Since(t0))
			}
		}(&tallies[w])
	}
	wg.Wait()
	r := Result{Hist: stats.NewHistogram(), Elapsed: time.Since(start)}
	for _, t := range tallies {
		r.Hist.Merge(t.hist)
		r.Errors += t.errors
		if r.FirstErr == nil {
			r.FirstErr = t.firstErr
		}
	}
	return r
}

// Open starts op at a constant rate (per second) for d, with at most
// maxInFlight requests outstanding. Each latency is measured from the
// moment the request was due, not from when it could start: when the
// server falls behind, the wait shows in the figures instead of silently
// lowering the rate (coordinated omission).
func Open(ctx context.Context, rate float64, d time.Duration, maxInFlight int, op Op) Result {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu   sync.Mutex
		t    = tally{hist: stats.NewHistogram()}
		exh  int64
		wg   sync.WaitGroup
		slot = make(chan struct{}, maxInFlight)
	)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		slot <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := op(ctx)
			lat := time.Since(due)
			<-slot
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrExhausted) {
				exh++
				return
			}
			t.add(err, lat)
		}()
	}
	wg.Wait()
	return Result{Hist: t.hist, Errors: t.errors, Exhausted: exh, FirstErr: t.firstErr, Elapsed: time.Since(start)}
}
