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
	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
)

// Defaults of a Writer; see the Options below.
const (
	DefaultQueueSize     = 10000
	DefaultBatchSize     = 200
	DefaultFlushInterval = 250 * time.Millisecond
	// DefaultAggregateWindow is how long repeats of a non-successful event
	// are counted into one row before it is written.
	DefaultAggregateWindow = time.Minute
	defaultMinBackoff      = 100 * time.Millisecond
	defaultMaxBackoff      = 5 * time.Second
	// insertTimeout bounds one INSERT, so that a stalled connection turns
	// into a retry instead of holding the queue forever.
	insertTimeout = 5 * time.Second
	// warnEvery spaces the "queue full" warnings: an outage must not also
	// flood the logs.
	warnEvery = time.Minute
)

// Stored field limits, in bytes. Events come from our own code, so these
// only keep a runaway or attacker-chosen value (a 64 KiB user_id typed into
// a login form) from bloating the table. maxUserID is deliberately not
// account.MaxUserIDBytes: it is a truncation, not a rule, and cutting a
// longer value to a valid user_id's length would file it under what could
// be a real account's user_id.
const (
	maxEvent     = 64
	maxOutcome   = 32
	maxUserID    = 256
	maxClientIP  = 64
	maxComponent = 64
	maxRequestID = 64
	maxDetail    = 512
)

// row is an Event as stored. Like Event it has no field that could carry a
// secret: the writer adds only time, component and request id.
// Count is how many identical events the row stands for, At the first's
// time and LastAt the last's (zero for a single event).
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
	Count     int
	LastAt    time.Time
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
	window                 time.Duration
	now                    func() time.Time
	tel                    *telemetry.Telemetry
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

// AggregateWindow is how long repeats of an event that is not a success
// (failed and throttled sign-ins, denials: same event, outcome, detail,
// user, key, client IP) are counted into one row, written when the window
// ends (default a minute; 0 writes a row per event). The first of its kind
// in a window is written at once. A flood of failures then costs at most
// two rows per distinct subject and window instead of one per request;
// every success is still a row of its own, at once.
func AggregateWindow(d time.Duration) Option { return func(o *options) { o.window = d } }

// Metrics counts lost events in tel's moreid_audit_dropped_total (default:
// not counted, only Dropped).
func Metrics(tel *telemetry.Telemetry) Option { return func(o *options) { o.tel = tel } }

// Clock replaces time.Now for the events' times and the aggregation
// windows; for tests.
func Clock(now func() time.Time) Option { return func(o *options) { o.now = now } }

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

	// Owned by the loop: rows ready to insert, and the events being
	// counted in the current window (in the order first seen).
	pending   []row
	agg       map[aggKey]int // index into aggRows
	aggRows   []row
	windowEnd time.Time
}

// aggKey is what makes two events the same for aggregation.
type aggKey struct {
	event, outcome, userID, clientIP, detail string
	apiKeyID                                 int64
}

// NewWriter returns a Writer inserting into the audit_events table of db
// (see Migrate) on behalf of component ("auth", "apikey", "user"). Nothing
// is written until its Unit is served.
func NewWriter(db *gorm.DB, component string, log *slog.Logger, opts ...Option) *Writer {
	return newWriter(&pgInserter{db: db, months: map[time.Time]bool{}}, component, log, opts...)
}

func newWriter(store inserter, component string, log *slog.Logger, opts ...Option) *Writer {
	o := options{
		queueSize:     DefaultQueueSize,
		batchSize:     DefaultBatchSize,
		flushInterval: DefaultFlushInterval,
		minBackoff:    defaultMinBackoff,
		maxBackoff:    defaultMaxBackoff,
		window:        DefaultAggregateWindow,
		now:           time.Now,
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
		agg:       map[aggKey]int{},
	}
}

// Record implements Recorder. It never blocks: when the queue is full the
// event is dropped, counted in moreid_audit_dropped_total and warned about
// (at most once a minute). Over-long fields are truncated; nothing is
// rejected.
func (w *Writer) Record(ctx context.Context, e Event) {
	r := row{
		At:        w.opts.now(),
		Event:     clean(e.Event, maxEvent),
		Outcome:   clean(e.Outcome, maxOutcome),
		UserID:    clean(e.UserID, maxUserID),
		APIKeyID:  max(e.APIKeyID, 0),
		ClientIP:  clean(e.ClientIP, maxClientIP),
		Component: w.component,
		RequestID: clean(logging.RequestID(ctx), maxRequestID),
		Detail:    clean(e.Detail, maxDetail),
		Count:     1,
	}
	select {
	case w.queue <- r:
	default:
		w.lose(1)
		now := w.opts.now().UnixNano()
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
	w.opts.tel.AuditDropped(n)
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
	tick := time.NewTicker(w.opts.flushInterval)
	defer tick.Stop()
	for {
		select {
		case r := <-w.queue:
			w.add(r)
			if len(w.pending) < w.opts.batchSize {
				continue
			}
		case <-tick.C:
			if !w.opts.now().Before(w.windowEnd) {
				w.closeWindow()
			}
			if len(w.pending) == 0 {
				continue
			}
		case <-w.stopping:
			w.drain()
			return nil
		}
		for len(w.pending) > 0 {
			n := min(len(w.pending), w.opts.batchSize)
			if !w.write(context.Background(), w.pending[:n], w.stopping) {
				// Stopped while Postgres was failing: the rows are still
				// ours and get the final flush's chance.
				w.drain()
				return nil
			}
			w.pending = w.pending[n:]
		}
	}
}

// add takes a queued event. A success is ready to insert, and so is the
// first event of its kind (event, outcome, detail and subject) in the
// current window, so that an attack shows in the trail at once; the
// repeats of that kind are counted into one row written when the window
// ends.
func (w *Writer) add(r row) {
	if w.opts.window <= 0 || r.Outcome == Success {
		w.pending = append(w.pending, r)
		return
	}
	if !r.At.Before(w.windowEnd) {
		w.closeWindow()
	}
	if len(w.aggRows) == 0 {
		w.windowEnd = r.At.Truncate(w.opts.window).Add(w.opts.window)
	}
	k := aggKey{r.Event, r.Outcome, r.UserID, r.ClientIP, r.Detail, r.APIKeyID}
	if i, ok := w.agg[k]; ok {
		a := &w.aggRows[i]
		if a.Count == 0 {
			a.At, a.RequestID = r.At, r.RequestID
		}
		a.Count++
		a.At = minTime(a.At, r.At) // recorded concurrently, queued in another order
		a.LastAt = maxTime(a.LastAt, r.At)
		return
	}
	// So many distinct subjects in one window that counting them would
	// hold as much as the queue: write what is counted so far.
	if len(w.aggRows) >= w.opts.queueSize {
		w.closeWindow()
		w.windowEnd = r.At.Truncate(w.opts.window).Add(w.opts.window)
	}
	w.pending = append(w.pending, r)
	w.agg[k] = len(w.aggRows)
	repeats := r
	repeats.Count = 0
	w.aggRows = append(w.aggRows, repeats)
}

// closeWindow makes the repeats counted so far ready to insert.
func (w *Writer) closeWindow() {
	for _, a := range w.aggRows {
		if a.Count > 0 {
			if a.Count == 1 {
				a.LastAt = time.Time{}
			}
			w.pending = append(w.pending, a)
		}
	}
	w.aggRows = w.aggRows[:0]
	clear(w.agg)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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

// drain writes everything pending, counted or queued, batch by batch,
// until the stop deadline.
func (w *Writer) drain() {
	ctx := w.stopCtx
	for {
	fill:
		for len(w.pending) < w.opts.batchSize {
			select {
			case r := <-w.queue:
				w.add(r)
			default:
				break fill
			}
		}
		if len(w.pending) < w.opts.batchSize {
			w.closeWindow()
		}
		if len(w.pending) == 0 {
			return
		}
		n := min(len(w.pending), w.opts.batchSize)
		if !w.write(ctx, w.pending[:n], ctx.Done()) {
			lost := eventsIn(w.pending) + eventsIn(w.aggRows) + len(w.queue)
			w.lose(lost)
			w.log.Error("audit events lost: Postgres did not take them before the shutdown deadline", "events", lost)
			return
		}
		w.pending = w.pending[n:]
	}
}

// eventsIn is the number of events rows stand for.
func eventsIn(rows []row) int {
	n := 0
	for _, r := range rows {
		n += r.Count
	}
	return n
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
			w.lose(eventsIn(batch))
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

// pgInserter inserts into audit_events with one multi-row INSERT, after
// making sure the month partitions it writes to exist.
type pgInserter struct {
	db     *gorm.DB
	months map[time.Time]bool // partitions known to exist; used by the loop only
}

const insertColumns = "INSERT INTO audit_events (at, event, outcome, user_id, api_key_id, client_ip, component, request_id, detail, count, last_at) VALUES "

func (p *pgInserter) insert(ctx context.Context, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	if err := p.ensurePartitions(ctx, rows); err != nil {
		return err
	}
	var b strings.Builder
	b.Grow(len(insertColumns) + len(rows)*40)
	b.WriteString(insertColumns)
	args := make([]any, 0, len(rows)*11)
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, r.At, r.Event, r.Outcome, r.UserID,
			sql.NullInt64{Int64: r.APIKeyID, Valid: r.APIKeyID > 0},
			r.ClientIP, r.Component, r.RequestID, r.Detail, max(r.Count, 1),
			sql.NullTime{Time: r.LastAt, Valid: !r.LastAt.IsZero()})
	}
	err := p.db.WithContext(ctx).Exec(b.String(), args...).Error
	if noPartition(err) {
		// An operator pruned a month this writer had seen: ask again at
		// the retry rather than dropping the batch as invalid.
		clear(p.months)
		err = fmt.Errorf("audit partition missing: %s", err.Error())
	}
	if err != nil {
		return fmt.Errorf("insert %d audit events: %w", len(rows), err)
	}
	return nil
}

// ensurePartitions creates the month partitions (UTC) of rows not seen yet.
func (p *pgInserter) ensurePartitions(ctx context.Context, rows []row) error {
	for _, r := range rows {
		month := monthOf(r.At)
		if p.months[month] {
			continue
		}
		if err := p.db.WithContext(ctx).Exec("SELECT audit_ensure_partition(?)", month).Error; err != nil {
			return fmt.Errorf("audit partition of %s: %w", month.Format("2006-01"), err)
		}
		p.months[month] = true
	}
	return nil
}

// monthOf is the start of t's month in UTC: the partition it belongs to.
func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// noPartition reports Postgres finding no partition for a row (SQLSTATE
// 23514, which would otherwise count as invalid data).
func noPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.Contains(pgErr.Message, "no partition")
}
