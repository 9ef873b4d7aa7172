package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
)

func TestAuditPruneUsage(t *testing.T) {
	future := time.Now().AddDate(0, 2, 0).Format(time.DateOnly)
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  string
	}{
		{"no date", []string{"audit", "prune"}, nil, exitUsage, "--before DATE is required"},
		{"not a date", []string{"audit", "prune", "--before", "last month"}, nil, exitUsage, "is not a date"},
		{"a date in the future", []string{"audit", "prune", "--before", future}, nil, exitUsage, "is in the future"},
		{"an extra argument", []string{"audit", "prune", "--before", "2026-01-01", "now"}, nil, exitUsage, "unexpected argument"},
		{"no owner DSN", []string{"audit", "prune", "--before", "2026-01-01"}, nil, exitFailure, "set MOREID_POSTGRES_OWNER_DSN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, tt.env, "", tt.args...)
			if got.code != tt.wantCode || !strings.Contains(got.stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", got.code, got.stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestAuditPrune drops old months through the owner's DSN, and the
// services' role is told it does not own the trail.
func TestAuditPrune(t *testing.T) {
	ownerDSN, servingDSN := testenv.PostgresRoles(t)
	serving := pgdbtest.OpenServing(t, ownerDSN, servingDSN, 1, audit.Schema)
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for _, m := range []int{-3, -2} {
		if err := serving.Exec(`SELECT audit_ensure_partition(?)`, month.AddDate(0, m, 0)).Error; err != nil {
			t.Fatal(err)
		}
	}
	before := month.AddDate(0, -1, 0).Format(time.DateOnly)
	name := func(m int) string { return month.AddDate(0, m, 0).Format("2006-01") }

	tests := []struct {
		name       string
		dsn        string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"the serving role", servingDSN, nil, exitFailure, "", "does not own the audit trail"},
		{"dry run", ownerDSN, []string{"--dry-run"}, exitOK, "would drop " + name(-3) + " (audit_events_p" + strings.ReplaceAll(name(-3), "-", "") + ", " +
			month.AddDate(0, -3, 0).Format(time.DateOnly) + " to " + month.AddDate(0, -2, 0).Format(time.DateOnly) + ")\nwould drop " + name(-2), ""},
		{"prune", ownerDSN, nil, exitOK, "dropped " + name(-3), ""},
		{"again", ownerDSN, nil, exitOK, "no month of the audit trail ends on or before", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, map[string]string{envOwnerDSN: tt.dsn}, "", append([]string{"audit", "prune", "--before", before}, tt.args...)...)
			if got.code != tt.wantCode || !strings.Contains(got.stdout, tt.wantStdout) || !strings.Contains(got.stderr, tt.wantStderr) {
				t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q",
					got.code, got.stdout, got.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
	parts, err := audit.Partitions(t.Context(), serving)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range parts {
		names = append(names, p.From.Format("2006-01"))
	}
	if strings.Join(names, " ") != name(0) {
		t.Errorf("months left %v, want only %s", names, name(0))
	}
}
