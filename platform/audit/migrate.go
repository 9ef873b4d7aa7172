package audit

import (
	"context"
	"embed"
	"fmt"
	"log/slog"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/pgdb"
)

// VersionTable records which audit migrations are applied. Every service
// that writes the trail runs Migrate with this same table, so the schema is
// created once (under goose's advisory lock) whichever service starts first.
const VersionTable = "audit_schema_migrations"

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the audit trail with the only privileges the serving role gets:
// reading and appending rows, and creating the month's partition it
// appends to (a function that runs as the owner). No UPDATE, DELETE,
// TRUNCATE, and no ownership, so no ALTER TABLE ... DISABLE TRIGGER either.
// The version table is readable so that a service started without the
// owner's DSN can check that nothing is pending.
var Schema = pgdb.Schema{
	Migrate: Migrate,
	Grants: []string{
		"GRANT SELECT, INSERT ON audit_events TO %s",
		"GRANT EXECUTE ON FUNCTION audit_ensure_partition(timestamptz) TO %s",
		"GRANT SELECT ON " + VersionTable + " TO %s",
	},
}

// Migrate applies every pending audit migration to db.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := pgdb.Embedded(migrations, "migrations", VersionTable)(ctx, db); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// WarnIfOwner logs a warning when the role of db could disarm the trail:
// it owns audit_events (or belongs to its owner) or is a superuser, as
// when one role both migrates and serves (MOREID_POSTGRES_OWNER_DSN
// unset). Services call it at start, so such a deployment says so.
func WarnIfOwner(ctx context.Context, db *gorm.DB, log *slog.Logger) {
	owner, err := canRewrite(ctx, db)
	if err != nil {
		log.Warn("cannot tell whether the serving role owns the audit trail", "error", err.Error())
		return
	}
	if owner {
		log.Warn("the role of MOREID_POSTGRES_DSN owns the audit trail and could disable its triggers: " +
			"run the migrations as another role (MOREID_POSTGRES_OWNER_DSN) and serve as one that owns nothing")
	}
}

func canRewrite(ctx context.Context, db *gorm.DB) (bool, error) {
	var owner bool
	err := db.WithContext(ctx).Raw(`SELECT pg_has_role(current_user, c.relowner, 'USAGE') OR r.rolsuper
		FROM pg_class c, pg_roles r WHERE c.oid = 'audit_events'::regclass AND r.rolname = current_user`).Scan(&owner).Error
	return owner, err
}
