package audit

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/pgdb"
)

// VersionTable records which audit migrations are applied. Every service
// that writes the trail runs Migrate with this same table, so the schema is
// created once (under goose's advisory lock) whichever service starts first.
const VersionTable = "audit_schema_migrations"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the goose SQL migrations of the audit trail, at the root of
// the returned FS.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// Migrate applies every pending audit migration to db.
func Migrate(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("postgres pool: %w", err)
	}
	if err := pgdb.Migrate(ctx, sqlDB, Migrations(), VersionTable); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
