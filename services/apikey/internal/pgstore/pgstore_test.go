package pgstore_test

import (
	"context"
	"strings"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/testenv"
	"github.com/moreline/moreid/services/apikey/internal/apikey"
	"github.com/moreline/moreid/services/apikey/internal/pgstore"
)

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	db := pgdbtest.Open(t, testenv.Postgres(t), 2)

	for i := range 2 { // applying twice is a no-op
		if err := pgstore.Migrate(ctx, db); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	var applied int
	if err := db.Raw("SELECT count(*) FROM apikey_schema_migrations WHERE version_id > 0 AND is_applied").Scan(&applied).Error; err != nil {
		t.Fatalf("version table: %v", err)
	}
	if applied != 1 {
		t.Fatalf("applied migrations = %d, want 1", applied)
	}

	t.Run("columns", func(t *testing.T) {
		var cols []struct {
			Name, Type, Nullable string
			Identity             string
		}
		err := db.Raw(`SELECT column_name AS name, format_type(a.atttypid, a.atttypmod) AS type,
			is_nullable AS nullable, coalesce(identity_generation, '') AS identity
			FROM information_schema.columns c
			JOIN pg_attribute a ON a.attrelid = 'api_keys'::regclass AND a.attname = c.column_name
			WHERE c.table_name = 'api_keys' ORDER BY ordinal_position`).Scan(&cols).Error
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cols {
			got = append(got, strings.Join([]string{c.Name, c.Type, c.Nullable, c.Identity}, " "))
		}
		want := []string{
			"id bigint NO ALWAYS",
			"key_hash character(64) NO ",
			"prefix text NO ",
			"name text NO ",
			"whitelist text[] NO ",
			"password_login boolean NO ",
			"created_at timestamp with time zone NO ",
			"revoked_at timestamp with time zone YES ",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("columns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("key_hash is unique", func(t *testing.T) {
		store := pgstore.New(db, pgdb.DefaultTimeout)
		nk := apikey.NewKey{Hash: secret.Hash("x"), Prefix: "ml_00000000", Name: "a", PasswordLogin: true}
		if _, err := store.Insert(ctx, nk); err != nil {
			t.Fatal(err)
		}
		_, err := store.Insert(ctx, nk)
		if !apierr.Is(err, apierr.Internal) || !strings.Contains(err.Error(), "duplicate") {
			t.Fatalf("second insert of one hash: %v, want an internal duplicate-key error", err)
		}
	})
}

// TestUnreachablePostgres: every operation answers Unavailable, promptly,
// when nothing listens where Postgres should be.
func TestUnreachablePostgres(t *testing.T) {
	db, err := gorm.Open(postgres.Open("postgres://postgres@"+testenv.FreeAddr(t)+"/nothing?sslmode=disable&connect_timeout=2"),
		&gorm.Config{DisableAutomaticPing: true, Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	store := pgstore.New(db, pgdb.DefaultTimeout)
	ctx := context.Background()
	for name, op := range map[string]func() error{
		"insert": func() error {
			_, err := store.Insert(ctx, apikey.NewKey{Hash: secret.Hash("x"), Prefix: "ml_00000000", Name: "a"})
			return err
		},
		"list":          func() error { _, err := store.List(ctx); return err },
		"revoke":        func() error { _, err := store.Revoke(ctx, 1); return err },
		"set whitelist": func() error { _, err := store.SetWhitelist(ctx, 1, nil); return err },
		"by hash":       func() error { _, err := store.ByHash(ctx, secret.Hash("x")); return err },
		"by id":         func() error { _, err := store.ByID(ctx, 1); return err },
	} {
		t.Run(name, func(t *testing.T) {
			if err := op(); !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("error = %v, want kind unavailable", err)
			}
		})
	}
}
