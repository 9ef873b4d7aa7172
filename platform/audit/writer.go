package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/run"
)

// Defaults of a Writer; see the Options below.
const (
	DefaultQueueSize     = 10000
	DefaultBatchSize     = 200
	DefaultFlushInterval = 250 * time.Millisecond
	defaultMinBackoff    = 100 * time.Millisecond
	defaultMaxBackoff    = 5 * time.Second
	// insertTimeout bounds one INSERT, so that a stalled connection turns
	// into a retry instead of holding the queue forever.
	insertTimeout = 5 * time.Second
	// warnEvery spaces the "queue full" warnings: an outage must not also
	// flood the logs.
	warnEvery = time.Minute
)

// Stored field limits, in bytes. Events come from our own code, so these
// only keep a runaway or attacker-chosen value (a 64 KiB user_id typed into
// a login form) from bloating the table.
const (
	maxEvent     = 64
	maxOutcome   = 32
	maxUserID    = 256
	maxClientIP  = 64
	maxComponent = 64
	maxRequestID = 64
	maxDetail    = 512
)

var droppedTotal = promauto.NewCounter(prometheus.CounterOpts{
	Name: "moreid_audit_dropped_total",
	Help: "Audit events lost: the in-memory queue was full (Postgres slow or down for long), " +
		"Postgres refused a batch as invalid, or events were still queued when the shutdown drain deadline passed.",
})

// row is an Event as stored. Like Event it has no field that could carry a
// secret: the writer adds only time, component and request id.
type row struct {
	At        time.Time
	Event     string
	Outcome   string
	UserID    string
	APIKeyID  int64 // 0: none (stored as NULL)
	ClientIP  string
	Component string
	RequestID string
	Detail    string
}

// inserter writes one batch in one statement, all or nothing.
type inserter interface {
	insert(ctx context.Context, rows []row) error
}

// Option tunes a Writer.
type Option func(*options)

type options struct {
	queueSize              int
	batchSize              int
	flushInterval          time.Duration
	minBackoff, maxBackoff time.Duration
}

// QueueSize bounds the events held in memory while they wait for Postgres
// (default 10,000). When it is full, new events are dropped and counted.
func QueueSize(n int) Option { return func(o *options) { o.queueSize = n } }

// BatchSize is the most rows one INSERT carries (default 200).
func BatchSize(n int) Option { return func(o *options) { o.batchSize = n } }

// FlushInterval is the longest an event waits for its batch to fill
// (default 250 ms).
func FlushInterval(d time.Duration) Option { return func(o *options) { o.flushInterval = d } }

// Backoff sets the first and the longest wait between retries of a failed
// INSERT (default 100 ms doubling up to 5 s).
func Backoff(first, max time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = first, max }
}

// Writer is the Recorder services use: Record only enqueues, and a
// background loop (Unit) inserts the queued events in batches. A failed
// INSERT is retried with backoff, so a Postgres outage delays events
// without losing them for as long as the queue has room.
type Writer struct {
	store     inserter
	component string
	log       *slog.Logger
	opts      options
	queue     chan row

	started  atomic.Bool
	stopOnce sync.Once
	stopping chan struct{}
	stopCtx  context.Context // set before stopping is closed
	done     chan struct{}

	dropped  atomic.Uint64
	lastWarn atomic.Int64 // unix nanoseconds of the last "queue full" warning

	// after is time.After; tests replace it to observe the backoff policy
	// without sleeping.
	after func(time.Duration) <-chan time.Time
}

// NewWriter returns a Writer inserting into the audit_events table of db
// (see Migrate) on behalf of component ("auth", "apikey", "user"). Nothing
// is written until its Unit is served.
func NewWriter(db *gorm.DB, component string, log *slog.Logger, opts ...Option) *Writer {
	return newWriter(pgInserter{db: db}, component, log, opts...)
}

func newWriter(store inserter, component string, log *slog.Logger, opts ...Option) *Writer {
	o := options{
		queueSize:     DefaultQueueSize,
		batchSize:     DefaultBatchSize,
		flushInterval: DefaultFlushInterval,
		minBackoff:    defaultMinBackoff,
		maxBackoff:    defaultMaxBackoff,
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.queueSize = max(o.queueSize, 1)
	o.batchSize = max(o.batchSize, 1)
	if o.flushInterval <= 0 {
		o.flushInterval = DefaultFlushInterval
	}
	if o.minBackoff <= 0 {
		o.minBackoff = defaultMinBackoff
	}
	o.maxBackoff = max(o.maxBackoff, o.minBackoff)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Writer{
		store:     store,
		component: clean(component, maxComponent),
		log:       log,
		opts:      o,
		queue:     make(chan row, o.queueSize),
		stopping:  make(chan struct{}),
		done:      make(chan struct{}),
		after:     time.After,
	}
}

// Record implements Recorder. It never blocks: when the queue is full the
// event is dropped, counted in moreid_audit_dropped_total and warned about
// (at most once a minute). Over-long fields are truncated; nothing is
// rejected.
func (w *Writer) Record(ctx context.Context, e Event) {
	r := row{
		At:        time.Now(),
		Event:     clean(e.Event, maxEvent),
		Outcome:   clean(e.Outcome, maxOutcome),
		UserID:    clean(e.UserID, maxUserID),
		APIKeyID:  max(e.APIKeyID, 0),
		ClientIP:  clean(e.ClientIP, maxClientIP),
		Component: w.component,
		RequestID: clean(logging.RequestID(ctx), maxRequestID),
		Detail:    clean(e.Detail, maxDetail),
	}
	select {
	case w.queue <- r:
	default:
		w.lose(1)
		now := time.Now().UnixNano()
		last := w.lastWarn.Load()
		if now-last >= int64(warnEvery) && w.lastWarn.CompareAndSwap(last, now) {
			w.log.Warn("audit queue full: events are being dropped until Postgres catches up",
				"event", r.Event, "dropped_total", w.dropped.Load(), "queue_size", w.opts.queueSize)
		}
	}
}

// Dropped is the number of events this writer has lost (queue full, refused
// by Postgres, or left over at shutdown).
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

func (w *Writer) lose(n int) {
	w.dropped.Add(uint64(n))
	droppedTotal.Add(float64(n))
}

// Unit runs the insert loop in a run.Group. Put it after the listeners
// whose handlers record events: the group stops units in order, so the
// listeners finish their in-flight calls first and Stop then flushes
// everything they queued, within the drain deadline.
func (w *Writer) Unit() run.Unit {
	return run.Unit{Name: "audit writer", Serve: w.serve, Stop: w.stop}
}

func (w *Writer) serve() error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("audit writer: already serving")
	}
	defer close(w.done)
	batch := make([]row, 0, w.opts.batchSize)
	tick := time.NewTicker(w.opts.flushInterval)
	defer tick.Stop()
	for {
		select {
		case r := <-w.queue:
			batch = append(batch, r)
			if len(batch) < w.opts.batchSize {
				continue
			}
		case <-tick.C:
			if len(batch) == 0 {
				continue
			}
		case <-w.stopping:
			w.drain(batch)
			return nil
		}
		if !w.write(context.Background(), batch, w.stopping) {
			// Stopped while Postgres was failing: the batch is still ours
			// and gets the final flush's chance.
			w.drain(batch)
			return nil
		}
		batch = batch[:0]
	}
}

// stop asks the loop to flush what is queued and waits for it until ctx
// ends; events still unwritten then are counted as dropped. (A Serve that
// starts after Stop flushes at once and ends.)
func (w *Writer) stop(ctx context.Context) {
	w.stopOnce.Do(func() {
		w.stopCtx = ctx
		close(w.stopping)
	})
	select {
	case <-w.done:
	case <-ctx.Done():
	}
}

// drain writes pending and everything queued, batch by batch, until the
// stop deadline.
func (w *Writer) drain(pending []row) {
	ctx := w.stopCtx
	for {
	fill:
		for len(pending) < w.opts.batchSize {
			select {
			case r := <-w.queue:
				pending = append(pending, r)
			default:
				break fill
			}
		}
		if len(pending) == 0 {
			return
		}
		n := min(len(pending), w.opts.batchSize)
		if !w.write(ctx, pending[:n], ctx.Done()) {
			lost := len(pending) + len(w.queue)
			w.lose(lost)
			w.log.Error("audit events lost: Postgres did not take them before the shutdown deadline", "events", lost)
			return
		}
		pending = pending[n:]
	}
}

// write inserts batch, retrying with capped exponential backoff until it
// succeeds or abort is closed. It reports whether the batch is done with:
// written, or refused by Postgres as invalid (which no retry can fix, so it
// is dropped rather than blocking the trail behind it).
func (w *Writer) write(ctx context.Context, batch []row, abort <-chan struct{}) bool {
	wait := w.opts.minBackoff
	for attempt := 1; ; attempt++ {
		ictx, cancel := context.WithTimeout(ctx, insertTimeout)
		err := w.store.insert(ictx, batch)
		cancel()
		if err == nil {
			if attempt > 1 {
				w.log.Info("audit trail written again after failures", "events", len(batch), "attempts", attempt)
			}
			return true
		}
		if invalid(err) {
			w.lose(len(batch))
			w.log.Error("audit batch refused by Postgres and dropped", "events", len(batch), "error", err.Error())
			return true
		}
		w.log.Warn("audit insert failed; retrying", "events", len(batch), "attempt", attempt,
			"retry_in", wait.String(), "queued", len(w.queue), "error", err.Error())
		select {
		case <-w.after(wait):
		case <-abort:
			return false
		}
		wait = min(wait*2, w.opts.maxBackoff)
	}
}

// invalid reports a Postgres answer that says the data itself is wrong
// (SQLSTATE classes 22 and 23): retrying the same rows cannot succeed.
func invalid(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")
	}
	return errors.Is(err, gorm.ErrDuplicatedKey) || errors.Is(err, gorm.ErrForeignKeyViolated) ||
		errors.Is(err, gorm.ErrCheckConstraintViolated)
}

// clean makes s storable in a Postgres text column (valid UTF-8, no NUL,
// which Postgres refuses and which would otherwise fail a whole batch) and
// at most max bytes, cut on a character boundary.
func clean(s string, max int) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// pgInserter inserts into audit_events with one multi-row INSERT.
type pgInserter struct{ db *gorm.DB }

const insertColumns = "INSERT INTO audit_events (at, event, outcome, user_id, api_key_id, client_ip, component, request_id, detail) VALUES "

func (p pgInserter) insert(ctx context.Context, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	var b strings.Builder
	b.Grow(len(insertColumns) + len(rows)*30)
	b.WriteString(insertColumns)
	args := make([]any, 0, len(rows)*9)
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, r.At, r.Event, r.Outcome, r.UserID,
			sql.NullInt64{Int64: r.APIKeyID, Valid: r.APIKeyID > 0},
			r.ClientIP, r.Component, r.RequestID, r.Detail)
	}
	if err := p.db.WithContext(ctx).Exec(b.String(), args...).Error; err != nil {
		return fmt.Errorf("insert %d audit events: %w", len(rows), err)
	}
	return nil
}
