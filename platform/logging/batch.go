package logging

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// batchDelay is how long a log line may wait for company before it is
// written; batchSize is how much may wait at most.
const (
	batchDelay = 5 * time.Millisecond
	batchSize  = 64 << 10
)

// stderr is where every logger of the process writes, through one batch
// writer, so that lines of different components never interleave.
var stderr = newBatchWriter(os.Stderr, batchDelay, batchSize)

// Flush writes out what the loggers have buffered. Call it before the
// process exits; os.Exit skips deferred calls.
func Flush() { stderr.Flush() }

// batchWriter turns a busy stream of log lines into one write per batch.
// The edge logs every request, and a write syscall per line was ~4% of the
// gateway's CPU at 10k requests/s (BENCHMARKS.md). A line waits at most
// delay, so a quiet process still shows it at once to anyone reading; what
// is lost in a crash is at most delay's worth of lines.
type batchWriter struct {
	out   io.Writer
	delay time.Duration
	max   int
	// schedule runs f once d has passed: time.AfterFunc, or in tests a
	// timer the test fires by hand, so that no test races the delay.
	schedule func(d time.Duration, f func())

	mu      sync.Mutex
	buf     []byte
	pending bool // a flush is scheduled
}

func newBatchWriter(out io.Writer, delay time.Duration, max int) *batchWriter {
	return &batchWriter{out: out, delay: delay, max: max, schedule: afterFunc}
}

// Write buffers p (one whole line from a slog handler) and schedules the
// batch's write, or writes at once when the batch is full.
func (w *batchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) >= w.max {
		return len(p), w.flushLocked()
	}
	if !w.pending {
		w.pending = true
		w.schedule(w.delay, w.Flush)
	}
	return len(p), nil
}

// Flush writes the batch out.
func (w *batchWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.flushLocked() // stderr failing has nowhere better to be reported
}

// afterFunc is time.AfterFunc without the Timer: a scheduled flush is
// never cancelled (one that finds nothing pending writes nothing).
func afterFunc(d time.Duration, f func()) { time.AfterFunc(d, f) }

func (w *batchWriter) flushLocked() error {
	w.pending = false
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.out.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Status ends a command whose work returned err: err is logged, the logs
// are flushed, and the result is the exit status, 1 on an error, else 0.
func Status(log *slog.Logger, err error) int {
	if err != nil {
		log.Error("stopped", "error", err.Error())
	}
	Flush()
	if err != nil {
		return 1
	}
	return 0
}
