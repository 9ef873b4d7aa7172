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

func TestBatchWriter(t *testing.T) {
	tests := []struct {
		name       string
		delay      time.Duration
		max        int
		lines      int
		flush      bool
		wantWrites int // after the delay has passed
	}{
		{"a burst becomes one write after the delay", 20 * time.Millisecond, 1 << 20, 100, false, 1},
		{"a full batch is written at once", time.Hour, 10 * 8, 25, false, 2}, // 8-byte lines: 10 per batch, 5 left waiting
		{"Flush writes what waits", time.Hour, 1 << 20, 5, true, 1},
		{"nothing to write, no write", 20 * time.Millisecond, 1 << 20, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &recordingWriter{}
			w := newBatchWriter(out, tt.delay, tt.max)
			var want strings.Builder
			for i := range tt.lines {
				line := fmt.Sprintf("line%03d\n", i)
				want.WriteString(line)
				if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if tt.flush {
				w.Flush()
			} else if tt.delay < time.Hour {
				time.Sleep(3 * tt.delay)
			}
			got := out.snapshot()
			if len(got) != tt.wantWrites {
				t.Errorf("%d writes, want %d", len(got), tt.wantWrites)
			}
			if tt.delay == time.Hour && !tt.flush {
				w.Flush() // the rest, to compare the whole stream
				got = out.snapshot()
			}
			if s := strings.Join(got, ""); s != want.String() {
				t.Errorf("stream = %q, want %q", s, want.String())
			}
		})
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
