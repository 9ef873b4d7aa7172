package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/pgdb"
)

// partitionPrefix names the month partitions audit_ensure_partition
// creates: audit_events_p202611 holds November 2026 (UTC).
const partitionPrefix = "audit_events_p"

// pruneLockTimeout bounds the wait for the trail's lock: dropping a
// partition locks the whole table, and a DROP queued behind a long query
// would hold every writer behind it too.
const pruneLockTimeout = 5 * time.Second

// Partition is one month of the trail.
type Partition struct {
	Name     string
	From, To time.Time // [From, To), UTC
}

// Prune drops every month partition of the trail that ends at or before
// before, in one transaction, and returns them oldest first (with dryRun,
// only returns them). Retention is the one way rows leave the trail: whole
// months, never a row. Only the table's owner may drop a partition, so the
// services' role, which cannot, gets Forbidden; a before later than now is
// refused, since it would name the month being written. The month holding
// before is kept: it ends after it.
func Prune(ctx context.Context, db *gorm.DB, before, now time.Time, dryRun bool) ([]Partition, error) {
	if before.After(now) {
		return nil, apierr.Newf(apierr.InvalidRequest, "不能删除尚未结束的月份：before 晚于当前时间")
	}
	var dropped []Partition
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(fmt.Sprintf("SET LOCAL lock_timeout = %d", pruneLockTimeout.Milliseconds())).Error; err != nil {
			return err
		}
		parts, err := partitions(tx)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if p.To.After(before) {
				continue
			}
			if !dryRun {
				if err := tx.Exec(`DROP TABLE "` + p.Name + `"`).Error; err != nil {
					return fmt.Errorf("drop %s: %w", p.Name, err)
				}
			}
			dropped = append(dropped, p)
		}
		return nil
	})
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return dropped, nil
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		return nil, apierr.Wrap(apierr.Forbidden, fmt.Errorf("prune audit partitions (connect as the owner of audit_events: MOREID_POSTGRES_OWNER_DSN): %w", err))
	default:
		return nil, pgdb.Classify("prune audit partitions", err)
	}
}

// Partitions lists the trail's month partitions, oldest first.
func Partitions(ctx context.Context, db *gorm.DB) ([]Partition, error) {
	parts, err := partitions(db.WithContext(ctx))
	if err != nil {
		return nil, pgdb.Classify("list audit partitions", err)
	}
	return parts, nil
}

func partitions(db *gorm.DB) ([]Partition, error) {
	var names []string
	if err := db.Raw(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_events'::regclass ORDER BY c.relname`).Scan(&names).Error; err != nil {
		return nil, err
	}
	var out []Partition
	for _, n := range names {
		from, err := time.Parse("200601", strings.TrimPrefix(n, partitionPrefix))
		if !strings.HasPrefix(n, partitionPrefix) || err != nil {
			continue // not ours: an operator's own partition stays untouched
		}
		out = append(out, Partition{Name: n, From: from, To: from.AddDate(0, 1, 0)})
	}
	return out, nil
}
