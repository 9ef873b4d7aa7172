package audit

import (
	"context"
	"embed"
	"fmt"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/pgdb"
)

// VersionTable records which audit migrations are applied. Every service
// that writes the trail runs Migrate with this same table, so the schema is
// created once (under goose's advisory lock) whichever service starts first.
const VersionTable = "audit_schema_migrations"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies every pending audit migration to db.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := pgdb.Embedded(migrations, "migrations", VersionTable)(ctx, db); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
