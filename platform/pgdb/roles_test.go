package pgdb_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/testenv"
)

// TestConcurrentProvisioning: replicas of every service start together and
// each migrates and grants as the owner; none fails (concurrent GRANTs on
// one table would, with "tuple concurrently updated"), and each ends up
// serving with the privileges granted.
func TestConcurrentProvisioning(t *testing.T) {
	ownerDSN, servingDSN := testenv.PostgresRoles(t)
	files := fstest.MapFS{"00001_t.sql": {Data: []byte("-- +goose Up\nCREATE TABLE shared (v text);\n-- +goose Down\nDROP TABLE shared;\n")}}
	schema := pgdb.Schema{
		Migrate: pgdb.Embedded(files, ".", "shared_schema_migrations"),
		Grants:  []string{"GRANT SELECT, INSERT ON shared TO %s", "GRANT SELECT ON shared_schema_migrations TO %s"},
	}
	const replicas = 8
	var ready, wg sync.WaitGroup
	release := make(chan struct{})
	errs := make([]error, replicas)
	ready.Add(replicas)
	for i := range replicas {
		wg.Go(func() {
			ready.Done()
			<-release
			db, sqlDB, err := pgdb.OpenMigrated(context.Background(), servingDSN, ownerDSN, pgdb.Options{MaxOpenConns: 1}, schema)
			if err == nil {
				err = db.Exec("INSERT INTO shared (v) VALUES ('x')").Error
				sqlDB.Close()
			}
			errs[i] = err
		})
	}
	ready.Wait()
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
}
