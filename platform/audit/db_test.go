package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
)

// openDB returns a migrated audit trail in a database of the test's own.
func openDB(t *testing.T) *gorm.DB {
	t.Helper()
	return pgdbtest.Open(t, testenv.Postgres(t), 4, audit.Migrate)
}

// stored is a row as read back with plain SQL.
type stored struct {
	ID        int64
	At        time.Time
	Event     string
	Outcome   string
	UserID    string
	APIKeyID  sql.NullInt64
	ClientIP  string
	Component string
	RequestID string
	Detail    string
}

func rows(t *testing.T, db *gorm.DB) []stored {
	t.Helper()
	var out []stored
	err := db.Raw(`SELECT id, at, event, outcome, user_id, api_key_id, client_ip, component, request_id, detail
		FROM audit_events ORDER BY id`).Scan(&out).Error
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrate(t *testing.T) {
	db := openDB(t)
	// A second service starting on the same database applies nothing twice.
	if err := audit.Migrate(context.Background(), db); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	var cols []struct {
		ColumnName string
		DataType   string
		IsNullable string
	}
	if err := db.Raw(`SELECT column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_name = 'audit_events' ORDER BY ordinal_position`).Scan(&cols).Error; err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cols {
		got = append(got, c.ColumnName+" "+c.DataType+" "+c.IsNullable)
	}
	want := []string{
		"id bigint NO", "at timestamp with time zone NO", "event text NO", "outcome text NO",
		"user_id text NO", "api_key_id bigint YES", "client_ip text NO", "component text NO",
		"request_id text NO", "detail text NO", "count integer NO", "last_at timestamp with time zone YES",
	}
	if !slices.Equal(got, want) {
		t.Errorf("columns\n %v\nwant\n %v", got, want)
	}
	var versions int64
	if err := db.Raw(`SELECT count(*) FROM ` + audit.VersionTable + ` WHERE version_id > 0`).Scan(&versions).Error; err != nil {
		t.Fatalf("version table: %v", err)
	}
	if versions != 2 {
		t.Errorf("%d migrations recorded, want 2", versions)
	}
	var kind string
	if err := db.Raw(`SELECT relkind FROM pg_class WHERE oid = 'audit_events'::regclass`).Scan(&kind).Error; err != nil || kind != "p" {
		t.Errorf("audit_events relkind %q (%v), want a partitioned table (p)", kind, err)
	}
}

// TestAppendOnly: Postgres itself refuses to change or remove audit rows,
// whatever the statement.
func TestAppendOnly(t *testing.T) {
	db := openDB(t)
	if err := db.Exec(`INSERT INTO audit_events (event, outcome, user_id) VALUES ('login', 'failure', 'alice')`).Error; err != nil {
		t.Fatal(err)
	}
	before := rows(t, db)
	tests := []struct{ name, sql string }{
		{"update every row", `UPDATE audit_events SET outcome = 'success'`},
		{"update matching nothing", `UPDATE audit_events SET outcome = 'success' WHERE false`},
		{"delete one row", `DELETE FROM audit_events WHERE user_id = 'alice'`},
		{"delete matching nothing", `DELETE FROM audit_events WHERE false`},
		{"truncate", `TRUNCATE audit_events`},
		{"truncate cascade", `TRUNCATE audit_events RESTART IDENTITY CASCADE`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.Exec(tt.sql).Error
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, "append-only") {
				t.Fatalf("%s: err = %v, want the append-only refusal (42501)", tt.sql, err)
			}
			if got := rows(t, db); !slices.Equal(got, before) {
				t.Errorf("rows changed: %+v, want %+v", got, before)
			}
		})
	}
	// Adding is what the table is for.
	if err := db.Exec(`INSERT INTO audit_events (event, outcome) VALUES ('login', 'success')`).Error; err != nil {
		t.Errorf("insert after the refusals: %v", err)
	}
}

// TestWriterToPostgres: recorded events land in Postgres with every field,
// while the writer runs and, for what is still queued, on Stop.
func TestWriterToPostgres(t *testing.T) {
	db := openDB(t)
	// Without aggregation: every event is a row at once (see TestAggregation).
	w := audit.NewWriter(db, "auth", slog.New(slog.DiscardHandler), audit.FlushInterval(10*time.Millisecond), audit.AggregateWindow(0))
	u := w.Unit()
	errc := make(chan error, 1)
	go func() { errc <- u.Serve() }()

	start := time.Now()
	ctx := logging.WithRequestID(context.Background(), "req-42")
	w.Record(ctx, audit.Event{Event: audit.Login, Outcome: audit.Failure, UserID: "alice", APIKeyID: 7, ClientIP: "2001:db8::1", Detail: "invalid_credentials"})
	w.Record(context.Background(), audit.Event{Event: audit.KeyCreated, Outcome: audit.Success, ClientIP: "192.0.2.9"})
	// Values Postgres would refuse as they are: stored cleaned instead.
	w.Record(context.Background(), audit.Event{Event: audit.Login, Outcome: audit.Failure, UserID: "ev\x00il\xff" + strings.Repeat("x", 5000)})

	deadline := time.Now().Add(10 * time.Second)
	for len(rows(t, db)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("events not written while the writer runs: %+v", rows(t, db))
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := rows(t, db)
	end := time.Now()
	for _, r := range got {
		if r.At.Before(start.Add(-time.Millisecond)) || r.At.After(end) {
			t.Errorf("event %d at %v, want between %v and %v", r.ID, r.At, start, end)
		}
	}
	want := []stored{
		{Event: "login", Outcome: "failure", UserID: "alice", APIKeyID: sql.NullInt64{Int64: 7, Valid: true}, ClientIP: "2001:db8::1", Component: "auth", RequestID: "req-42", Detail: "invalid_credentials"},
		{Event: "apikey.created", Outcome: "success", ClientIP: "192.0.2.9", Component: "auth"},
		{Event: "login", Outcome: "failure", UserID: "evil\uFFFD" + strings.Repeat("x", 249), Component: "auth"},
	}
	for i := range want {
		g := got[i]
		g.ID, g.At = 0, time.Time{}
		if g != want[i] {
			t.Errorf("row %d\n %+v\nwant\n %+v", i, g, want[i])
		}
	}

	// Stop flushes what is queued even though the flush interval has not
	// come round.
	w2 := audit.NewWriter(db, "user", nil, audit.FlushInterval(time.Hour))
	u2 := w2.Unit()
	errc2 := make(chan error, 1)
	go func() { errc2 <- u2.Serve() }()
	for _, e := range []string{audit.UserCreated, audit.UserDisabled, audit.UserEnabled} {
		w2.Record(context.Background(), audit.Event{Event: e, Outcome: audit.Success, UserID: "bob"})
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u2.Stop(stopCtx)
	u.Stop(stopCtx)
	for _, c := range []chan error{errc, errc2} {
		if err := <-c; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	var flushed []string
	for _, r := range rows(t, db)[3:] {
		flushed = append(flushed, r.Component+" "+r.Event+" "+r.UserID)
	}
	if want := []string{"user user.created bob", "user user.disabled bob", "user user.enabled bob"}; !slices.Equal(flushed, want) {
		t.Errorf("after Stop: %v, want %v", flushed, want)
	}
	if w.Dropped()+w2.Dropped() != 0 {
		t.Errorf("dropped %d events", w.Dropped()+w2.Dropped())
	}
}

// ensurePartition creates the month partition holding at, which a test
// inserting rows with chosen times needs (the writer does it itself).
func ensurePartition(t *testing.T, db *gorm.DB, at time.Time) {
	t.Helper()
	if err := db.Exec(`SELECT audit_ensure_partition(?)`, at).Error; err != nil {
		t.Fatal(err)
	}
}
