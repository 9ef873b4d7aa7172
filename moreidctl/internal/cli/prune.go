package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/pgdb"
)

// envOwnerDSN is the Postgres role that owns the audit trail; only prune
// reads it.
const envOwnerDSN = "MOREID_POSTGRES_OWNER_DSN"

var auditPrune = &command{
	group: "audit", name: "prune",
	synopsis: "audit prune --before DATE [--dry-run]",
	summary:  "Drop whole months of the audit trail before a date.",
	help: `Drop the months of the audit trail that end on or before DATE, oldest first:
whole monthly partitions (UTC), never single rows. The month holding DATE
and every later one are kept; a DATE in the future is refused.
  --before DATE   YYYY-MM-DD (midnight UTC) or an RFC 3339 time
  --dry-run       list the months that would be dropped, drop nothing
It connects to Postgres directly as the owner of the trail, from
` + envOwnerDSN + `: the services' own role may only read and append, and no
admin listener holds the owner's credentials.`,
}

func init() { auditPrune.run = runAuditPrune }

func runAuditPrune(ctx context.Context, e *env, args []string) error {
	cmd := auditPrune
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	beforeFlag := fs.String("before", "", "")
	dryRun := fs.Bool("dry-run", false, "")
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(cmd, "unexpected argument %q", pos[0])
	}
	if !flagSet(fs, "before") {
		return usagef(cmd, "--before DATE is required")
	}
	before, err := parseDate(*beforeFlag)
	if err != nil {
		return usagef(cmd, "--before: %v", err)
	}
	now := time.Now()
	if before.After(now) {
		return usagef(cmd, "--before %s is in the future: the month being written cannot be dropped", *beforeFlag)
	}
	s, err := e.settings()
	if err != nil {
		return err
	}
	dsn := e.getenv(envOwnerDSN)
	if dsn == "" {
		return fmt.Errorf("audit prune: set %s to the DSN of the role that owns the audit trail (the one the migrations run as)", envOwnerDSN)
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	db, err := pgdb.Open(ctx, dsn, pgdb.Options{MaxOpenConns: 1, Existing: true})
	if err != nil {
		return fmt.Errorf("audit prune: %w", err)
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	dropped, err := audit.Prune(ctx, db, before, now, *dryRun)
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) && ae.Kind == apierr.Forbidden {
			return fmt.Errorf("audit prune: the role of %s does not own the audit trail: %w", envOwnerDSN, err)
		}
		return fmt.Errorf("audit prune: %w", err)
	}
	verb := "dropped"
	if *dryRun {
		verb = "would drop"
	}
	if len(dropped) == 0 {
		fmt.Fprintf(e.stdout, "no month of the audit trail ends on or before %s\n", before.UTC().Format(time.RFC3339))
	}
	for _, p := range dropped {
		fmt.Fprintf(e.stdout, "%s %s (%s, %s to %s)\n", verb, p.From.Format("2006-01"), p.Name,
			p.From.Format(time.DateOnly), p.To.Format(time.DateOnly))
	}
	return nil
}

// parseDate reads YYYY-MM-DD as midnight UTC, or an RFC 3339 time.
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date such as 2026-01-01 or 2026-01-01T00:00:00Z", s)
	}
	return t, nil
}
