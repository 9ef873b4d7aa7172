package pgdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/config"
)

// Two roles keep the audit trail append-only for the services: the owner
// creates and alters the tables (migrations, then grants), and the serving
// role, which the services connect as, gets only the privileges each schema
// lists. Postgres lets only a table's owner ALTER it (DISABLE TRIGGER) or
// drop its triggers, so a service cannot rewrite history even when it is
// compromised.

// OwnerDSN reads MOREID_POSTGRES_OWNER_DSN: the role that owns the schema
// and applies the migrations. Empty (the default) means the role of
// MOREID_POSTGRES_DSN applies them itself, which works only for a role that
// owns the tables or when no migration is pending.
func OwnerDSN(r *config.Reader) string {
	return r.String("MOREID_POSTGRES_OWNER_DSN", "")
}

// Schema is one set of tables: its migrations and the privileges the
// serving role needs on them.
type Schema struct {
	Migrate Migration
	// Grants run as the owner after the migrations; each holds one %s, the
	// serving role's quoted name. They are idempotent, so every start and
	// every migration Job may run them again.
	Grants []string
}

// OpenMigrated makes every schema current and returns a handle on dsn (the
// serving role) with its pool; close the pool when done. With an owner DSN
// the owner applies the migrations and grants the serving role what the
// schemas list; without one the serving role applies them itself (one role,
// as a single developer database has it).
func OpenMigrated(ctx context.Context, dsn, ownerDSN string, opts Options, schemas ...Schema) (*gorm.DB, *sql.DB, error) {
	var owner *gorm.DB
	if ownerDSN != "" {
		var err error
		// Opened first: it creates the database when it is missing.
		if owner, err = Open(ctx, ownerDSN, Options{MaxOpenConns: 1}); err != nil {
			return nil, nil, fmt.Errorf("owner role (MOREID_POSTGRES_OWNER_DSN): %w", err)
		}
		if sqlOwner, err := owner.DB(); err == nil {
			defer sqlOwner.Close()
		}
	}
	db, err := Open(ctx, dsn, opts)
	if err != nil {
		return nil, nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, nil, fmt.Errorf("postgres pool: %w", err)
	}
	if err := provision(ctx, db, owner, schemas); err != nil {
		_ = sqlDB.Close()
		return nil, nil, err
	}
	return db, sqlDB, nil
}

// provision applies the schemas' migrations through owner and grants the
// role of db (the serving role, as Postgres itself names it) their
// privileges; with no owner, db applies the migrations and needs no grant.
func provision(ctx context.Context, db, owner *gorm.DB, schemas []Schema) error {
	migrator := db
	if owner != nil {
		migrator = owner
	}
	for _, s := range schemas {
		if err := s.Migrate(ctx, migrator); err != nil {
			if owner == nil && denied(err) {
				return fmt.Errorf("%w (the role of MOREID_POSTGRES_DSN may not change the schema: "+
					"apply the migrations as the owner, with MOREID_POSTGRES_OWNER_DSN set, e.g. by the migration Job)", err)
			}
			return err
		}
	}
	if owner == nil {
		return nil
	}
	var serving, ownerRole string
	if err := db.WithContext(ctx).Raw("SELECT current_user").Scan(&serving).Error; err != nil {
		return fmt.Errorf("serving role: %w", err)
	}
	if err := owner.WithContext(ctx).Raw("SELECT current_user").Scan(&ownerRole).Error; err != nil {
		return fmt.Errorf("owner role: %w", err)
	}
	if serving == ownerRole {
		return nil // one role: it has every privilege already
	}
	// Services starting together grant on the same tables (the audit
	// trail), and concurrent GRANTs on one object fail with "tuple
	// concurrently updated": one at a time.
	return owner.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", lockID("moreid grants")).Error; err != nil {
			return fmt.Errorf("grant lock: %w", err)
		}
		for _, s := range schemas {
			for _, g := range s.Grants {
				if err := tx.Exec(fmt.Sprintf(g, quoteIdent(serving))).Error; err != nil {
					return fmt.Errorf("grant the serving role %s: %w", serving, err)
				}
			}
		}
		return nil
	})
}

// denied reports Postgres refusing a statement for lack of a privilege
// (SQLSTATE 42501) or ownership.
func denied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}
