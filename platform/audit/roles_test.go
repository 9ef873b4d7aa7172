package audit_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
)

// openRoles provisions the trail as a deployment does (the owner migrates
// and grants) and returns handles on the owner and on the serving role.
func openRoles(t *testing.T) (owner, serving *gorm.DB) {
	t.Helper()
	ownerDSN, servingDSN := testenv.PostgresRoles(t)
	serving = pgdbtest.OpenServing(t, ownerDSN, servingDSN, 2, audit.Schema)
	owner = pgdbtest.Open(t, ownerDSN, 2)
	return owner, serving
}

// TestServingRoleCannotRewrite: the role the services connect as can read
// and append to the trail and nothing else. Every way of changing, removing
// or disarming rows is refused by Postgres for lack of privilege or
// ownership (42501), whether it names the table or one of its partitions,
// and the rows are unchanged afterwards.
func TestServingRoleCannotRewrite(t *testing.T) {
	owner, serving := openRoles(t)
	if err := serving.Exec(`INSERT INTO audit_events (event, outcome, user_id) VALUES ('login', 'failure', 'alice')`).Error; err != nil {
		t.Fatalf("the serving role cannot append: %v", err)
	}
	partition := "audit_events_p" + time.Now().UTC().Format("200601")
	before := rows(t, owner)

	tests := []struct{ name, sql string }{
		{"update", `UPDATE audit_events SET outcome = 'success'`},
		{"delete", `DELETE FROM audit_events WHERE user_id = 'alice'`},
		{"truncate", `TRUNCATE audit_events`},
		{"update a partition", `UPDATE ` + partition + ` SET outcome = 'success'`},
		{"delete from a partition", `DELETE FROM ` + partition},
		{"truncate a partition", `TRUNCATE ` + partition},
		{"disable the triggers", `ALTER TABLE audit_events DISABLE TRIGGER ALL`},
		{"disable one trigger", `ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete`},
		{"disable a partition's trigger", `ALTER TABLE ` + partition + ` DISABLE TRIGGER audit_events_append_only`},
		{"drop a trigger", `DROP TRIGGER audit_events_no_update_delete ON audit_events`},
		{"replace the trigger function", `CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger
			LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`},
		{"detach a partition", `ALTER TABLE audit_events DETACH PARTITION ` + partition},
		{"drop a partition", `DROP TABLE ` + partition},
		{"drop the table", `DROP TABLE audit_events`},
		{"take ownership", `ALTER TABLE audit_events OWNER TO CURRENT_USER`},
		{"session replication role (skips triggers)", `SET session_replication_role = replica`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := serving.Exec(tt.sql).Error
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Fatalf("%s: err = %v, want a refusal for lack of privilege (42501)", tt.sql, err)
			}
			if got := rows(t, owner); !slices.Equal(got, before) {
				t.Errorf("rows changed: %+v, want %+v", got, before)
			}
		})
	}

	t.Run("who could rewrite", func(t *testing.T) {
		for name, tc := range map[string]struct {
			db   *gorm.DB
			want bool
		}{"owner": {owner, true}, "serving": {serving, false}} {
			if got, err := audit.CanRewrite(context.Background(), tc.db); err != nil || got != tc.want {
				t.Errorf("%s: CanRewrite = %v, %v; want %v", name, got, err, tc.want)
			}
		}
	})
	t.Run("prune", func(t *testing.T) {
		ensurePartition(t, owner, time.Now().AddDate(0, -3, 0))
		_, err := audit.Prune(context.Background(), serving, time.Now(), time.Now(), false)
		if apierr.KindOf(err) != apierr.Forbidden {
			t.Fatalf("Prune as the serving role: %v, want forbidden", err)
		}
	})

	// What the services do keeps working.
	if err := serving.Exec(`SELECT audit_ensure_partition(now() + interval '1 month')`).Error; err != nil {
		t.Errorf("the serving role cannot create next month's partition: %v", err)
	}
	var n int64
	if err := serving.Raw(`SELECT count(*) FROM audit_events`).Scan(&n).Error; err != nil || n != 1 {
		t.Errorf("the serving role reads %d rows (%v), want 1", n, err)
	}
}

// TestServingRoleStartsWithoutTheOwner: a service given only the serving
// DSN (a Deployment; the migration Job holds the owner's) starts when the
// owner has migrated, and says what to do when a migration is pending.
func TestServingRoleStartsWithoutTheOwner(t *testing.T) {
	ctx := context.Background()
	ownerDSN, servingDSN := testenv.PostgresRoles(t)
	t.Run("nothing migrated", func(t *testing.T) {
		_, _, err := pgdb.OpenMigrated(ctx, servingDSN, "", pgdb.Options{MaxOpenConns: 1}, audit.Schema)
		if err == nil || !strings.Contains(err.Error(), "MOREID_POSTGRES_OWNER_DSN") {
			t.Fatalf("err = %v, want the advice to migrate as the owner", err)
		}
	})
	pgdbtest.OpenServing(t, ownerDSN, servingDSN, 1, audit.Schema)
	t.Run("migrated by the owner", func(t *testing.T) {
		_, sqlDB, err := pgdb.OpenMigrated(ctx, servingDSN, "", pgdb.Options{MaxOpenConns: 1}, audit.Schema)
		if err != nil {
			t.Fatal(err)
		}
		sqlDB.Close()
	})
}
