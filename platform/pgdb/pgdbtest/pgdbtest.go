// Package pgdbtest opens Postgres for tests the way the services do
// (pgdb.Open, then migrations, or the owner's migrations and grants and a
// serving role's handle), closed when the test ends.
package pgdbtest

import (
	"context"
	"testing"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/pgdb"
)

// Open returns a handle on the database at dsn (typically
// testenv.Postgres(t): a fresh one of the test's own) with at most conns
// connections, after applying migrations in order.
func Open(t testing.TB, dsn string, conns int, migrations ...pgdb.Migration) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	db, err := pgdb.Open(ctx, dsn, pgdb.Options{MaxOpenConns: conns})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqlDB.Close() })
	for _, m := range migrations {
		if err := m(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// OpenServing provisions schemas the way a deployment does (migrations and
// grants by the owner, see testenv.PostgresRoles) and returns a handle on
// the serving role with at most conns connections.
func OpenServing(t testing.TB, ownerDSN, servingDSN string, conns int, schemas ...pgdb.Schema) *gorm.DB {
	t.Helper()
	db, sqlDB, err := pgdb.OpenMigrated(context.Background(), servingDSN, ownerDSN, pgdb.Options{MaxOpenConns: conns}, schemas...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqlDB.Close() })
	return db
}
