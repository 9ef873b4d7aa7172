package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/peer"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/telemetry/telemetrytest"
)

// fakeStore is an inserter that fails its first failures calls with err,
// then keeps every batch it is given.
type fakeStore struct {
	mu       sync.Mutex
	failures int
	err      error
	calls    int
	batches  [][]row
}

func (f *fakeStore) insert(_ context.Context, rows []row) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failures != 0 { // negative: fail forever
		f.failures--
		return f.err
	}
	f.batches = append(f.batches, slices.Clone(rows))
	return nil
}

func (f *fakeStore) snapshot() (calls int, batches [][]row) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, slices.Clone(f.batches)
}

// events is every event written, in order.
func (f *fakeStore) events() []string {
	_, batches := f.snapshot()
	var out []string
	for _, b := range batches {
		for _, r := range b {
			out = append(out, r.Event)
		}
	}
	return out
}

// serve runs w's unit until the test ends (or the test stops it).
func serve(t *testing.T, w *Writer) {
	t.Helper()
	u := w.Unit()
	errc := make(chan error, 1)
	go func() { errc <- u.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u.Stop(ctx)
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// stop stops w and waits for its loop to finish.
func stop(t *testing.T, w *Writer, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w.Unit().Stop(ctx)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer's loop did not end after Stop")
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// droppedMetric is a Telemetry of the test's own, as the Metrics option of
// a writer, and what its moreid_audit_dropped_total says.
func droppedMetric(t *testing.T) (Option, func() float64) {
	tel, reg := telemetrytest.New(t)
	return Metrics(tel), func() float64 { return reg.Counter("moreid_audit_dropped_total") }
}

func record(w *Writer, names ...string) {
	for _, n := range names {
		w.Record(context.Background(), Event{Event: n, Outcome: Success})
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s.%03d", prefix, i)
	}
	return out
}

// TestRetryPolicy: a failing INSERT is retried, with waits doubling from the
// first backoff up to the cap, until it succeeds; the events then land once
// each, in order, and none is counted as dropped.
func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		wantWaits []time.Duration
	}{
		{name: "no failure", failures: 0, wantWaits: nil},
		{name: "one failure", failures: 1, wantWaits: []time.Duration{10 * time.Millisecond}},
		{name: "outage reaches the cap", failures: 7, wantWaits: []time.Duration{
			10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 50 * time.Millisecond,
			50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &fakeStore{failures: tt.failures, err: errors.New("dial tcp 127.0.0.1:5432: connection refused")}
			// One full batch of the five events, never a timer's partial
			// one: with a 1 ms flush the writer could send 3 and then 2,
			// two INSERTs where the count below wants one per attempt.
			w := newWriter(store, "test", nil, Backoff(10*time.Millisecond, 50*time.Millisecond), BatchSize(5), FlushInterval(time.Hour))
			var mu sync.Mutex
			var waits []time.Duration
			w.after = func(d time.Duration) <-chan time.Time {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
				c := make(chan time.Time, 1)
				c <- time.Time{}
				return c
			}
			want := names("e", 5)
			record(w, want...)
			serve(t, w)
			eventually(t, "the events are written", func() bool { return len(store.events()) == len(want) })

			if got := store.events(); !slices.Equal(got, want) {
				t.Errorf("written %v, want %v", got, want)
			}
			calls, _ := store.snapshot()
			if calls != tt.failures+1 {
				t.Errorf("%d INSERT attempts, want %d", calls, tt.failures+1)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(waits, tt.wantWaits) {
				t.Errorf("waits %v, want %v", waits, tt.wantWaits)
			}
			if w.Dropped() != 0 {
				t.Errorf("Dropped() = %d, want 0", w.Dropped())
			}
		})
	}
}

// TestBatches: queued events go in batches of at most BatchSize, and Stop
// writes the partial batch that the flush interval has not yet sent.
func TestBatches(t *testing.T) {
	store := &fakeStore{}
	w := newWriter(store, "test", nil, BatchSize(200), FlushInterval(time.Hour))
	want := names("e", 450)
	record(w, want...)
	u := w.Unit()
	go func() { _ = u.Serve() }()
	eventually(t, "two full batches are written", func() bool { return len(store.events()) >= 400 })
	stop(t, w, 5*time.Second)

	_, batches := store.snapshot()
	var sizes []int
	for _, b := range batches {
		sizes = append(sizes, len(b))
	}
	if !slices.Equal(sizes, []int{200, 200, 50}) {
		t.Errorf("batch sizes %v, want [200 200 50]", sizes)
	}
	if got := store.events(); !slices.Equal(got, want) {
		t.Errorf("events written out of order or not all: %d of %d", len(got), len(want))
	}
}

// TestFlushInterval: a lone event is written without waiting for a full
// batch or for Stop.
func TestFlushInterval(t *testing.T) {
	store := &fakeStore{}
	w := newWriter(store, "test", nil, FlushInterval(10*time.Millisecond))
	serve(t, w)
	record(w, "lone")
	eventually(t, "the lone event is written", func() bool { return slices.Equal(store.events(), []string{"lone"}) })
}

// TestInvalidBatchDropped: a batch Postgres refuses as invalid data is
// dropped and counted instead of blocking every later event.
func TestInvalidBatchDropped(t *testing.T) {
	metrics, dropped := droppedMetric(t)
	store := &fakeStore{failures: 1, err: &pgconn.PgError{Code: "22021", Message: "invalid byte sequence for encoding"}}
	w := newWriter(store, "test", nil, FlushInterval(time.Millisecond), metrics)
	w.after = func(time.Duration) <-chan time.Time { t.Error("an invalid batch was retried"); return nil }
	serve(t, w)
	record(w, "refused")
	eventually(t, "the first batch is refused", func() bool { c, _ := store.snapshot(); return c == 1 })
	record(w, "later")
	eventually(t, "the next event is written", func() bool { return slices.Equal(store.events(), []string{"later"}) })
	if w.Dropped() != 1 {
		t.Errorf("Dropped() = %d, want 1", w.Dropped())
	}
	if d := dropped(); d != 1 {
		t.Errorf("moreid_audit_dropped_total = %v, want 1", d)
	}
}

// countingHandler counts warnings.
type countingHandler struct {
	mu    sync.Mutex
	warns []string
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.mu.Lock()
		h.warns = append(h.warns, r.Message)
		h.mu.Unlock()
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestQueueFull: Record never blocks; beyond the queue's room events are
// dropped, counted (per writer and in the Prometheus counter) and warned
// about once, and the queued ones are still written.
func TestQueueFull(t *testing.T) {
	metrics, dropped := droppedMetric(t)
	logs := &countingHandler{}
	store := &fakeStore{}
	w := newWriter(store, "test", slog.New(logs), QueueSize(3), FlushInterval(time.Hour), metrics)

	all := names("e", 10)
	done := make(chan struct{})
	go func() { record(w, all...); close(done) }() // nobody is reading the queue yet
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked on a full queue")
	}

	if w.Dropped() != 7 {
		t.Errorf("Dropped() = %d, want 7", w.Dropped())
	}
	if d := dropped(); d != 7 {
		t.Errorf("moreid_audit_dropped_total = %v, want 7", d)
	}
	logs.mu.Lock()
	if len(logs.warns) != 1 || !strings.Contains(logs.warns[0], "queue full") {
		t.Errorf("warnings %q, want exactly one about the full queue", logs.warns)
	}
	logs.mu.Unlock()

	u := w.Unit()
	go func() { _ = u.Serve() }()
	stop(t, w, 5*time.Second)
	if got := store.events(); !slices.Equal(got, all[:3]) {
		t.Errorf("written %v, want the first three %v", got, all[:3])
	}
}

// TestStopWhilePostgresDown: with Postgres failing, Stop gives up at its
// deadline and counts every unwritten event as dropped.
func TestStopWhilePostgresDown(t *testing.T) {
	store := &fakeStore{failures: -1, err: errors.New("connection refused")}
	w := newWriter(store, "test", nil, Backoff(5*time.Millisecond, 20*time.Millisecond), FlushInterval(time.Millisecond))
	u := w.Unit()
	go func() { _ = u.Serve() }()
	record(w, names("e", 5)...)
	eventually(t, "the writer is retrying", func() bool { c, _ := store.snapshot(); return c >= 2 })
	record(w, names("f", 3)...)
	stop(t, w, 100*time.Millisecond)
	if w.Dropped() != 8 {
		t.Errorf("Dropped() = %d, want 8 (every event recorded)", w.Dropped())
	}
}

// TestRecordFields: Record adds the time, the request id and the component,
// and makes every field storable: NUL removed, invalid UTF-8 replaced, long
// values cut on a character boundary.
func TestRecordFields(t *testing.T) {
	long := strings.Repeat("用", 200) // 600 bytes
	tests := []struct {
		name string
		ctx  context.Context
		in   Event
		want row
	}{
		{
			name: "plain",
			ctx:  logging.WithRequestID(context.Background(), "req-1"),
			in:   Event{Event: Login, Outcome: Failure, UserID: "alice", APIKeyID: 7, ClientIP: "192.0.2.1", Detail: "invalid_credentials"},
			want: row{Event: Login, Outcome: Failure, UserID: "alice", APIKeyID: 7, ClientIP: "192.0.2.1", Component: "auth", RequestID: "req-1", Detail: "invalid_credentials", Count: 1},
		},
		{
			name: "no request id, negative key id",
			ctx:  context.Background(),
			in:   Event{Event: KeyRevoked, Outcome: Success, APIKeyID: -3},
			want: row{Event: KeyRevoked, Outcome: Success, Component: "auth", Count: 1},
		},
		{
			name: "hostile values",
			ctx:  context.Background(),
			in:   Event{Event: Login, Outcome: Failure, UserID: "ev\x00il\xff" + long, Detail: long + long},
			// 7 bytes and 83 three-byte characters make 256; 170 make 510 of 512.
			want: row{Event: Login, Outcome: Failure, UserID: "evil\uFFFD" + strings.Repeat("用", 83), Component: "auth", Detail: strings.Repeat("用", 170), Count: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWriter(&fakeStore{}, "auth", nil)
			before := time.Now()
			w.Record(tt.ctx, tt.in)
			after := time.Now()
			got := <-w.queue
			if got.At.Before(before) || got.At.After(after) {
				t.Errorf("At = %v, want the time of Record", got.At)
			}
			got.At = time.Time{}
			if got != tt.want {
				t.Errorf("queued\n %+v\nwant\n %+v", got, tt.want)
			}
			for _, s := range []string{got.UserID, got.Detail} {
				if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
					t.Errorf("unstorable value %q", s)
				}
			}
		})
	}
}

// TestNoSecretFields: an event can only carry these fields, none of which
// is meant for a secret; adding a field must be a deliberate change here.
func TestNoSecretFields(t *testing.T) {
	fields := func(v any) []string {
		var out []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			out = append(out, typ.Field(i).Name)
		}
		return out
	}
	if got, want := fields(Event{}), []string{"Event", "Outcome", "UserID", "APIKeyID", "ClientIP", "Detail"}; !slices.Equal(got, want) {
		t.Errorf("Event fields %v, want %v", got, want)
	}
	if got, want := fields(row{}), []string{"At", "Event", "Outcome", "UserID", "APIKeyID", "ClientIP", "Component", "RequestID", "Detail", "Count", "LastAt"}; !slices.Equal(got, want) {
		t.Errorf("stored fields %v, want %v", got, want)
	}
}

func TestPeerIP(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want string
	}{
		{"ipv4", &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5000}, "192.0.2.7"},
		{"ipv4-mapped ipv6", &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5000}, "192.0.2.7"},
		{"ipv6 with zone", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 5000, Zone: "eth0"}, "fe80::1"},
		{"other address type", &net.UnixAddr{Name: "/tmp/sock", Net: "unix"}, ""},
		{"no peer", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.addr != nil {
				ctx = peer.NewContext(ctx, &peer.Peer{Addr: tt.addr})
			}
			if got := PeerIP(ctx); got != tt.want {
				t.Errorf("PeerIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResult(t *testing.T) {
	tests := []struct {
		err                 error
		outcome, wantDetail string
	}{
		{nil, Success, ""},
		{apierr.New(apierr.NotFound), Failure, "not_found"},
		{fmt.Errorf("revoke: %w", apierr.Newf(apierr.InvalidRequest, "名称不能为空")), Failure, "invalid_request"},
		{errors.New("boom"), Failure, "internal"},
	}
	for _, tt := range tests {
		outcome, detail := Result(tt.err)
		if outcome != tt.outcome || detail != tt.wantDetail {
			t.Errorf("Result(%v) = %q, %q; want %q, %q", tt.err, outcome, detail, tt.outcome, tt.wantDetail)
		}
	}
}

// TestAggregationBounded: the events counted in one window never hold more
// distinct subjects than the queue would: beyond that, what is counted is
// written early (an attacker rotating user IDs costs rows, not memory), and
// Stop while Postgres is down counts every aggregated event as lost.
func TestAggregationBounded(t *testing.T) {
	t.Run("distinct subjects beyond the queue size", func(t *testing.T) {
		store := &fakeStore{}
		fixed := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		w := newWriter(store, "test", nil, QueueSize(4), FlushInterval(time.Millisecond), Clock(func() time.Time { return fixed }))
		serve(t, w)
		for _, u := range []string{"u0", "u0", "u1", "u2", "u3", "u4"} {
			w.Record(context.Background(), Event{Event: Login, Outcome: Failure, UserID: u})
			eventually(t, "the loop takes the event", func() bool { return len(w.queue) == 0 })
		}
		// The window has not ended: the fifth subject wrote u0's repeat.
		eventually(t, "the firsts and u0's repeat are written", func() bool { return len(store.events()) == 6 })
		_, batches := store.snapshot()
		var users []string
		for _, b := range batches {
			for _, r := range b {
				users = append(users, fmt.Sprintf("%s×%d", r.UserID, r.Count))
			}
		}
		if !slices.Contains(users, "u0×1") || len(users) != 6 {
			t.Errorf("rows %v, want each subject once and u0's repeat", users)
		}
		if w.Dropped() != 0 {
			t.Errorf("Dropped() = %d, want 0", w.Dropped())
		}
	})
	t.Run("stop while Postgres is down", func(t *testing.T) {
		store := &fakeStore{failures: -1, err: errors.New("connection refused")}
		w := newWriter(store, "test", nil, Backoff(5*time.Millisecond, 20*time.Millisecond), FlushInterval(time.Millisecond))
		u := w.Unit()
		go func() { _ = u.Serve() }()
		for range 50 {
			w.Record(context.Background(), Event{Event: Login, Outcome: Throttled, UserID: "victim"})
		}
		record(w, "ok")
		eventually(t, "the writer is retrying", func() bool { c, _ := store.snapshot(); return c >= 2 })
		stop(t, w, 100*time.Millisecond)
		if w.Dropped() != 51 {
			t.Errorf("Dropped() = %d, want 51 (every event recorded)", w.Dropped())
		}
	})
}
