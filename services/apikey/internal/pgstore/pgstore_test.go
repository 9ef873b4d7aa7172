package pgstore_test

import (
	"context"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

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
	if applied != 2 {
		t.Fatalf("applied migrations = %d, want 2", applied)
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
			"client_id text NO ",
			"public boolean NO ",
			"redirect_uris text[] NO ",
			"post_logout_redirect_uris text[] NO ",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("columns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	store := pgstore.New(db, pgdb.DefaultTimeout)
	t.Run("key_hash is unique", func(t *testing.T) {
		nk := apikey.NewKey{Hash: secret.Hash("x"), Prefix: "ml_00000000", Name: "a", PasswordLogin: true, ClientID: newClientID()}
		if _, err := store.Insert(ctx, nk); err != nil {
			t.Fatal(err)
		}
		nk.ClientID = newClientID()
		_, err := store.Insert(ctx, nk)
		if !apierr.Is(err, apierr.Internal) || !strings.Contains(err.Error(), "duplicate") {
			t.Fatalf("second insert of one hash: %v, want an internal duplicate-key error", err)
		}
	})

	// The client_id column guards itself: one id per key, of the issued
	// shape only, and an insert that forgets it fails instead of getting
	// an id the service did not choose.
	for _, tc := range []struct {
		name, clientID, inError string
	}{
		{"client_id is unique", "", "duplicate"},
		{"client_id format is checked", "mlc_ABC", "api_keys_client_id_format"},
		{"client_id is required", "-", "client_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := apikey.NewKey{Hash: secret.Hash(tc.name + "1"), Prefix: "ml_00000000", Name: "a", ClientID: newClientID()}
			if _, err := store.Insert(ctx, first); err != nil {
				t.Fatal(err)
			}
			var err error
			switch tc.clientID {
			case "":
				_, err = store.Insert(ctx, apikey.NewKey{Hash: secret.Hash(tc.name + "2"), Prefix: "ml_00000000", Name: "b", ClientID: first.ClientID})
			case "-":
				err = db.Exec("INSERT INTO api_keys (key_hash, prefix, name) VALUES (?, 'ml_00000000', 'c')", secret.Hash(tc.name+"3")).Error
			default:
				_, err = store.Insert(ctx, apikey.NewKey{Hash: secret.Hash(tc.name + "2"), Prefix: "ml_00000000", Name: "b", ClientID: tc.clientID})
			}
			if err == nil || !strings.Contains(err.Error(), tc.inError) {
				t.Fatalf("insert: %v, want an error about %s", err, tc.inError)
			}
		})
	}
}

func newClientID() string { return secret.New(apikey.ClientIDPrefix, 32, secret.Hex) }

// TestMigrationBackfillsClientID: keys issued before OpenID Connect get a
// random client id of the issued shape each, distinct, with the defaults
// of a confidential client and no redirect URI, and keep everything else.
func TestMigrationBackfillsClientID(t *testing.T) {
	ctx := context.Background()
	db := pgdbtest.Open(t, testenv.Postgres(t), 2)
	first, err := fs.ReadFile(os.DirFS("migrations"), "00001_api_keys.sql")
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	// The schema as it was, recorded in the same version table, so that
	// the real Migrate below applies 00002 alone, as an upgrade does.
	if err := pgdb.Migrate(ctx, sqlDB, fstest.MapFS{"00001_api_keys.sql": {Data: first}}, pgstore.VersionTable); err != nil {
		t.Fatal(err)
	}
	hashes := []string{secret.Hash("old-1"), secret.Hash("old-2"), secret.Hash("old-3")}
	for i, h := range hashes {
		if err := db.Exec(`INSERT INTO api_keys (key_hash, prefix, name, whitelist, revoked_at)
			VALUES (?, 'ml_00000000', ?, '{10.0.0.0/8}', CASE WHEN ? THEN now() END)`, h, "old", i == 2).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := pgstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}

	store := pgstore.New(db, pgdb.DefaultTimeout)
	keys, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("%d keys after the migration, want 3", len(keys))
	}
	format := regexp.MustCompile(`^mlc_[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for i, k := range keys {
		if !format.MatchString(k.ClientID) || seen[k.ClientID] {
			t.Errorf("key %d client_id %q: want a distinct mlc_ and 32 hex", i, k.ClientID)
		}
		seen[k.ClientID] = true
		if strings.Contains(k.ClientID, hashes[i][:8]) {
			t.Errorf("key %d client_id %q looks derived from its hash", i, k.ClientID)
		}
		if k.Public || k.RedirectURIs == nil || len(k.RedirectURIs) != 0 || len(k.PostLogoutRedirectURIs) != 0 {
			t.Errorf("key %d = %+v, want a confidential client with no redirect URIs", i, k)
		}
		if k.Hash != hashes[i] || k.Name != "old" || len(k.Whitelist) != 1 || k.Revoked() != (i == 2) {
			t.Errorf("key %d = %+v: the migration changed what it had", i, k)
		}
		got, err := store.ByClientID(ctx, k.ClientID)
		if err != nil || got.ID != k.ID {
			t.Errorf("ByClientID(%q) = %+v, %v; want key %d", k.ClientID, got, err, k.ID)
		}
	}
	var dflt *string
	if err := db.Raw(`SELECT column_default FROM information_schema.columns
		WHERE table_name = 'api_keys' AND column_name = 'client_id'`).Scan(&dflt).Error; err != nil {
		t.Fatal(err)
	}
	if dflt != nil {
		t.Errorf("client_id keeps the default %q; new ids must come from the service", *dflt)
	}
}

func TestRedirectURIColumns(t *testing.T) {
	ctx := context.Background()
	store := pgstore.New(pgdbtest.Open(t, testenv.Postgres(t), 2, pgstore.Migrate), pgdb.DefaultTimeout)
	k, err := store.Insert(ctx, apikey.NewKey{
		Hash: secret.Hash("k"), Prefix: "ml_00000000", Name: "a", ClientID: newClientID(), Public: true,
		RedirectURIs: []string{"com.example.app:/cb", "http://127.0.0.1/cb"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Public || !slices.Equal(k.RedirectURIs, []string{"com.example.app:/cb", "http://127.0.0.1/cb"}) ||
		k.PostLogoutRedirectURIs == nil || len(k.PostLogoutRedirectURIs) != 0 {
		t.Fatalf("inserted %+v", k)
	}
	for _, tc := range []struct {
		name                 string
		uris                 []string
		postLogout           bool
		wantRedirect, wantPL []string
	}{
		{"post-logout list alone", []string{"https://a.example/bye"}, true, k.RedirectURIs, []string{"https://a.example/bye"}},
		{"redirect list alone", []string{"https://a.example/cb", `https://a.example/q?x="{,}"`}, false,
			[]string{"https://a.example/cb", `https://a.example/q?x="{,}"`}, []string{"https://a.example/bye"}},
		{"clear redirect list", nil, false, []string{}, []string{"https://a.example/bye"}},
		{"clear post-logout list", []string{}, true, []string{}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.SetRedirectURIs(ctx, k.ID, tc.uris, tc.postLogout)
			if err != nil {
				t.Fatal(err)
			}
			again, err := store.ByID(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range []apikey.Key{got, again} {
				if !slices.Equal(g.RedirectURIs, tc.wantRedirect) || !slices.Equal(g.PostLogoutRedirectURIs, tc.wantPL) {
					t.Fatalf("redirect %q post-logout %q, want %q and %q", g.RedirectURIs, g.PostLogoutRedirectURIs, tc.wantRedirect, tc.wantPL)
				}
			}
		})
	}
	t.Run("unknown id", func(t *testing.T) {
		if _, err := store.SetRedirectURIs(ctx, k.ID+1, nil, false); !apierr.Is(err, apierr.NotFound) {
			t.Fatalf("error = %v, want not_found", err)
		}
		if _, err := store.ByClientID(ctx, newClientID()); !apierr.Is(err, apierr.NotFound) {
			t.Fatalf("ByClientID of unknown: %v, want not_found", err)
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
		"by client id":  func() error { _, err := store.ByClientID(ctx, newClientID()); return err },
		"set redirects": func() error { _, err := store.SetRedirectURIs(ctx, 1, nil, true); return err },
	} {
		t.Run(name, func(t *testing.T) {
			if err := op(); !apierr.Is(err, apierr.Unavailable) {
				t.Fatalf("error = %v, want kind unavailable", err)
			}
		})
	}
}
