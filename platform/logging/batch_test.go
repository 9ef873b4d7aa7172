package logging

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingWriter keeps each Write separately.
type recordingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recordingWriter) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

// manualTimers stands in for time.AfterFunc: it keeps what the writer
// schedules and runs it only when the test says the delay has passed, so
// the test never races the delay against a loaded machine.
type manualTimers struct {
	mu     sync.Mutex
	delays []time.Duration // of every timer scheduled so far
	due    []func()        // scheduled, not yet fired
}

func (m *manualTimers) schedule(d time.Duration, f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delays = append(m.delays, d)
	m.due = append(m.due, f)
}

// fire runs every scheduled timer, outside the lock: a flush takes the
// writer's lock, under which the writer schedules.
func (m *manualTimers) fire() {
	m.mu.Lock()
	due := m.due
	m.due = nil
	m.mu.Unlock()
	for _, f := range due {
		f()
	}
}

func (m *manualTimers) scheduled() []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]time.Duration(nil), m.delays...)
}

func TestBatchWriter(t *testing.T) {
	const delay = 20 * time.Millisecond
	// A step writes n lines, or calls Flush, or lets the delay pass (every
	// scheduled timer fires); then the writer has made writes writes and
	// scheduled timers timers in all.
	type step struct {
		do             string // "write", "flush" or "fire"
		n              int
		writes, timers int
	}
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{"a burst becomes one write once the delay has passed", 1 << 20, []step{
			{"write", 100, 0, 1},
			{"fire", 0, 1, 1},
		}},
		// 8-byte lines: 10 per batch. Each full batch is written at once;
		// the 5 left wait for the delay.
		{"a full batch is written at once", 10 * 8, []step{
			{"write", 25, 2, 3},
			{"fire", 0, 3, 3},
		}},
		{"Flush writes what waits", 1 << 20, []step{
			{"write", 5, 0, 1},
			{"flush", 0, 1, 1},
			{"fire", 0, 1, 1},
		}},
		{"nothing to write, no write", 1 << 20, []step{
			{"flush", 0, 0, 0},
			{"fire", 0, 0, 0},
		}},
		{"a line after a written batch waits for its own delay", 1 << 20, []step{
			{"write", 1, 0, 1},
			{"fire", 0, 1, 1},
			{"write", 1, 1, 2},
			{"fire", 0, 2, 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &recordingWriter{}
			timers := &manualTimers{}
			w := newBatchWriter(out, delay, tt.max)
			w.schedule = timers.schedule
			var want strings.Builder
			lines := 0
			for i, s := range tt.steps {
				switch s.do {
				case "write":
					for range s.n {
						line := fmt.Sprintf("line%03d\n", lines)
						lines++
						want.WriteString(line)
						if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
							t.Fatalf("Write = %d, %v", n, err)
						}
					}
				case "flush":
					w.Flush()
				case "fire":
					timers.fire()
				}
				if got := len(out.snapshot()); got != s.writes {
					t.Errorf("step %d (%s %d): %d writes, want %d", i, s.do, s.n, got, s.writes)
				}
				if got := timers.scheduled(); len(got) != s.timers {
					t.Errorf("step %d (%s %d): %d timers scheduled, want %d", i, s.do, s.n, len(got), s.timers)
				}
			}
			for _, d := range timers.scheduled() {
				if d != delay {
					t.Errorf("a flush scheduled after %v, want the delay %v", d, delay)
				}
			}
			if s := strings.Join(out.snapshot(), ""); s != want.String() {
				t.Errorf("stream = %q, want %q", s, want.String())
			}
		})
	}
}

// TestBatchWriterWritesAfterItsDelay: with the real timer, a lone line
// reaches the output without a Flush. It polls, so a loaded machine only
// makes it slower, never wrong.
func TestBatchWriterWritesAfterItsDelay(t *testing.T) {
	out := &recordingWriter{}
	w := newBatchWriter(out, time.Millisecond, 1<<20)
	if _, err := w.Write([]byte("lone\n")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(out.snapshot()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a lone line was not written within 10 s of its 1 ms delay")
		}
	}
	if got := out.snapshot(); len(got) != 1 || got[0] != "lone\n" {
		t.Errorf("writes %q, want one of the lone line", got)
	}
}

// TestBatchWriterKeepsLinesWhole writes from many goroutines at once: every
// line comes out whole, none lost.
func TestBatchWriterKeepsLinesWhole(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := newBatchWriter(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}), time.Millisecond, 512)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				_, _ = fmt.Fprintf(w, "{\"g\":%d,\"i\":%d}\n", g, i)
			}
		})
	}
	wg.Wait()
	w.Flush()
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		seen[l] = true
	}
	for g := range 8 {
		for i := range 200 {
			if l := fmt.Sprintf("{\"g\":%d,\"i\":%d}", g, i); !seen[l] {
				t.Fatalf("line %s missing or broken", l)
			}
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
