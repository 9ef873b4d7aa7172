package pgstore_test

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
	"github.com/moreline/moreid/services/user/internal/pgstore"
	"github.com/moreline/moreid/services/user/internal/user"
)

const hashA = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
const hashB = "$argon2id$v=19$m=64,t=1,p=1$YW5vdGhlcnNhbHRzYWx0cw$YW5vdGhlcmhhc2hhbm90aGVyaGFzaGFub3RoZXJoYXM"

func migrated(t *testing.T) (*gorm.DB, *pgstore.Store) {
	t.Helper()
	db := pgdbtest.Open(t, testenv.Postgres(t), 4, pgstore.Migrate)
	return db, pgstore.New(db, pgdb.DefaultTimeout)
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	db := pgdbtest.Open(t, testenv.Postgres(t), 4)
	if err := pgstore.Migrate(ctx, db); err != nil {
		t.Fatalf("first migration: %v", err)
	}
	versions := func() (n int64) {
		t.Helper()
		if err := db.Raw("SELECT count(*) FROM " + pgstore.VersionTable).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := versions()
	if before < 3 { // goose's version-0 row plus 00001 and 00002
		t.Fatalf("%s holds %d rows after migrating", pgstore.VersionTable, before)
	}
	s := pgstore.New(db, pgdb.DefaultTimeout)
	if _, err := s.Create(ctx, user.Record{UserID: "alice", Username: "A", Email: "a@x.io", PasswordHash: hashA}); err != nil {
		t.Fatal(err)
	}

	if err := pgstore.Migrate(ctx, db); err != nil {
		t.Fatalf("second migration: %v", err)
	}
	if after := versions(); after != before {
		t.Fatalf("applying twice changed the version table: %d -> %d rows", before, after)
	}
	if _, err := s.Get(ctx, "alice"); err != nil {
		t.Fatalf("data lost by the second migration: %v", err)
	}

	// The column types the API relies on.
	type column struct {
		ColumnName string
		DataType   string
		IsNullable string
		IsIdentity string
		Generation string `gorm:"column:identity_generation"`
	}
	var cols []column
	if err := db.Raw(`SELECT column_name, data_type, is_nullable, is_identity, coalesce(identity_generation, '') AS identity_generation
		FROM information_schema.columns WHERE table_name = 'users'`).Scan(&cols).Error; err != nil {
		t.Fatal(err)
	}
	got := map[string]column{}
	for _, c := range cols {
		got[c.ColumnName] = c
	}
	want := map[string][2]string{ // type, nullable
		"id": {"integer", "NO"}, "user_id": {"text", "NO"}, "username": {"text", "NO"}, "email": {"text", "NO"},
		"bio": {"text", "NO"}, "avatar_url": {"text", "YES"}, "password_hash": {"text", "NO"},
		"created_at": {"timestamp with time zone", "NO"}, "updated_at": {"timestamp with time zone", "NO"},
		"disabled": {"boolean", "NO"}, "disabled_at": {"timestamp with time zone", "YES"},
	}
	if len(got) != len(want) {
		t.Errorf("users has %d columns, want %d: %+v", len(got), len(want), cols)
	}
	for name, w := range want {
		c, ok := got[name]
		if !ok || c.DataType != w[0] || c.IsNullable != w[1] {
			t.Errorf("column %s = %+v, want type %s nullable %s", name, c, w[0], w[1])
		}
	}
	if c := got["id"]; c.IsIdentity != "YES" || c.Generation != "ALWAYS" {
		t.Errorf("id is not GENERATED ALWAYS AS IDENTITY: %+v", c)
	}
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	db, s := migrated(t)

	created, err := s.Create(ctx, user.Record{UserID: "alice", Username: "Alice", Email: "alice@x.io", PasswordHash: hashA})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID <= 0 || created.Bio != "" || created.AvatarURL != nil || created.CreatedAt.IsZero() || !created.UpdatedAt.Equal(created.CreatedAt) {
		t.Fatalf("created %+v", created)
	}

	t.Run("get", func(t *testing.T) {
		got, err := s.Get(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != created.ID || got.PasswordHash != hashA || !got.CreatedAt.Equal(created.CreatedAt) {
			t.Fatalf("Get = %+v, want %+v", got, created)
		}
	})
	t.Run("get unknown", func(t *testing.T) {
		if _, err := s.Get(ctx, "nobody"); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("duplicate user_id", func(t *testing.T) {
		_, err := s.Create(ctx, user.Record{UserID: "alice", Username: "B", Email: "b@x.io", PasswordHash: hashB})
		if !errors.Is(err, user.ErrDuplicate) {
			t.Fatalf("err = %v, want ErrDuplicate", err)
		}
	})
	t.Run("constraint violation other than duplicate is internal", func(t *testing.T) {
		_, err := s.Create(ctx, user.Record{UserID: "carol", Username: "C", Email: "c@x.io", PasswordHash: "plaintext"})
		if !apierr.Is(err, apierr.Internal) || errors.Is(err, user.ErrDuplicate) {
			t.Fatalf("err = %v, want Internal", err)
		}
	})
	t.Run("update profile", func(t *testing.T) {
		bio := "bio"
		got, err := s.UpdateProfile(ctx, "alice", user.ProfileChange{Bio: &bio})
		if err != nil {
			t.Fatal(err)
		}
		if got.Bio != "bio" || got.Username != "Alice" || got.PasswordHash != hashA || !got.UpdatedAt.After(created.UpdatedAt) {
			t.Fatalf("UpdateProfile = %+v", got)
		}
	})
	t.Run("update unknown", func(t *testing.T) {
		name := "x"
		if _, err := s.UpdateProfile(ctx, "nobody", user.ProfileChange{Username: &name}); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		var n int64
		db.Raw("SELECT count(*) FROM users").Scan(&n)
		if n != 1 {
			t.Fatalf("%d rows after updating an unknown user", n)
		}
	})
	t.Run("replace hash only if unchanged", func(t *testing.T) {
		if err := s.ReplacePasswordHash(ctx, created.ID, hashB, hashA+"x"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, "alice"); got.PasswordHash != hashA {
			t.Fatalf("a stale old hash replaced the current one: %q", got.PasswordHash)
		}
		if err := s.ReplacePasswordHash(ctx, created.ID, hashA, hashB); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, "alice"); got.PasswordHash != hashB {
			t.Fatalf("hash = %q, want the replacement", got.PasswordHash)
		}
	})
}

// Users created before 00002 existed are enabled after it: the column's
// default fills existing rows.
func TestDisabledMigrationKeepsUsersEnabled(t *testing.T) {
	ctx := context.Background()
	db := pgdbtest.Open(t, testenv.Postgres(t), 4)
	sqlDB, _ := db.DB()
	first, err := fs.ReadFile(pgstore.Files, "migrations/00001_users.sql")
	if err != nil {
		t.Fatal(err)
	}
	onlyFirst := fstest.MapFS{"00001_users.sql": &fstest.MapFile{Data: first}}
	if err := pgdb.Migrate(ctx, sqlDB, onlyFirst, pgstore.VersionTable); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("INSERT INTO users (user_id, username, email, password_hash) VALUES ('old', 'Old', 'o@x.io', ?)", hashA).Error; err != nil {
		t.Fatal(err)
	}
	if err := pgstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	got, err := pgstore.New(db, pgdb.DefaultTimeout).Get(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if got.Disabled || got.DisabledAt != nil {
		t.Fatalf("existing user after the migration: %+v", got)
	}
}

func TestSetDisabled(t *testing.T) {
	ctx := context.Background()
	db, s := migrated(t)
	created, err := s.Create(ctx, user.Record{UserID: "alice", Username: "Alice", Email: "alice@x.io", PasswordHash: hashA})
	if err != nil {
		t.Fatal(err)
	}
	if created.Disabled || created.DisabledAt != nil {
		t.Fatalf("a new user is disabled: %+v", created)
	}
	bio := "new bio"

	var disabled user.Record
	steps := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"disable", func(t *testing.T) {
			disabled, err = s.SetDisabled(ctx, "alice", true)
			if err != nil {
				t.Fatal(err)
			}
			if !disabled.Disabled || disabled.DisabledAt == nil || !disabled.UpdatedAt.After(created.UpdatedAt) ||
				disabled.PasswordHash != hashA || disabled.Username != "Alice" {
				t.Fatalf("SetDisabled = %+v", disabled)
			}
			if got, _ := s.Get(ctx, "alice"); !got.Disabled || !got.DisabledAt.Equal(*disabled.DisabledAt) {
				t.Fatalf("Get after disable = %+v", got)
			}
		}},
		{"disable again changes nothing", func(t *testing.T) {
			again, err := s.SetDisabled(ctx, "alice", true)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Disabled || !again.DisabledAt.Equal(*disabled.DisabledAt) || !again.UpdatedAt.Equal(disabled.UpdatedAt) {
				t.Fatalf("second disable = %+v, want %+v unchanged", again, disabled)
			}
		}},
		{"profile of a disabled user cannot change", func(t *testing.T) {
			_, err := s.UpdateProfile(ctx, "alice", user.ProfileChange{Bio: &bio})
			if !errors.Is(err, user.ErrDisabled) {
				t.Fatalf("err = %v, want ErrDisabled", err)
			}
			if got, _ := s.Get(ctx, "alice"); got.Bio != "" || !got.UpdatedAt.Equal(disabled.UpdatedAt) {
				t.Fatalf("row changed: %+v", got)
			}
		}},
		{"enable", func(t *testing.T) {
			enabled, err := s.SetDisabled(ctx, "alice", false)
			if err != nil {
				t.Fatal(err)
			}
			if enabled.Disabled || enabled.DisabledAt != nil || !enabled.UpdatedAt.After(disabled.UpdatedAt) {
				t.Fatalf("SetDisabled(false) = %+v", enabled)
			}
			got, err := s.UpdateProfile(ctx, "alice", user.ProfileChange{Bio: &bio})
			if err != nil || got.Bio != bio {
				t.Fatalf("update after enabling: %+v, %v", got, err)
			}
		}},
		{"unknown user", func(t *testing.T) {
			for _, d := range []bool{true, false} {
				if _, err := s.SetDisabled(ctx, "nobody", d); !errors.Is(err, user.ErrNotFound) {
					t.Fatalf("SetDisabled(nobody, %v) err = %v, want ErrNotFound", d, err)
				}
			}
			if _, err := s.UpdateProfile(ctx, "nobody", user.ProfileChange{Bio: &bio}); !errors.Is(err, user.ErrNotFound) || errors.Is(err, user.ErrDisabled) {
				t.Fatalf("UpdateProfile(nobody) err = %v, want ErrNotFound", err)
			}
		}},
		{"disabled_at and disabled cannot disagree", func(t *testing.T) {
			err := db.Exec("UPDATE users SET disabled = true, disabled_at = NULL WHERE user_id = 'alice'").Error
			if err == nil {
				t.Fatal("the database accepted a disabled user without disabled_at")
			}
		}},
	}
	for _, st := range steps {
		t.Run(st.name, st.check)
	}
}

// A database that cannot be reached answers Unavailable (503), promptly.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	db, err := gorm.Open(postgres.Open("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"),
		&gorm.Config{DisableAutomaticPing: true, TranslateError: true, Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s := pgstore.New(db, pgdb.DefaultTimeout)
	ctx := context.Background()
	name := "x"
	calls := map[string]func() error{
		"create": func() error {
			_, err := s.Create(ctx, user.Record{UserID: "a", Username: "a", Email: "a@x.io", PasswordHash: hashA})
			return err
		},
		"get":     func() error { _, err := s.Get(ctx, "a"); return err },
		"update":  func() error { _, err := s.UpdateProfile(ctx, "a", user.ProfileChange{Username: &name}); return err },
		"rehash":  func() error { return s.ReplacePasswordHash(ctx, 1, hashA, hashB) },
		"disable": func() error { _, err := s.SetDisabled(ctx, "a", true); return err },
	}
	for op, call := range calls {
		t.Run(op, func(t *testing.T) {
			if err := call(); !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("err = %v, want Unavailable", err)
			}
		})
	}
}

// A statement stuck behind a lock gives up when the caller's deadline
// passes, and says Unavailable.
func TestQueryHonoursContext(t *testing.T) {
	db, s := migrated(t)
	tx := db.Begin()
	if err := tx.Exec("LOCK TABLE users IN ACCESS EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.Get(ctx, "alice"); !apierr.Is(err, apierr.Unavailable) {
		t.Fatalf("err = %v, want Unavailable", err)
	}
}
