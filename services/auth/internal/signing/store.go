package signing

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/pgdb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable records which signing-key migrations auth has applied.
const VersionTable = "auth_signing_schema_migrations"

// Migrate applies the pending migrations.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := pgdb.Embedded(migrations, "migrations", VersionTable)(ctx, db); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	return nil
}

// Schema is the signing-key table with what the serving role needs: keys
// are created and retired, never deleted (an expired key is just no longer
// published).
var Schema = pgdb.Schema{
	Migrate: Migrate,
	Grants: []string{
		"GRANT SELECT, INSERT, UPDATE ON oidc_signing_keys TO %s",
		"GRANT SELECT ON " + VersionTable + " TO %s",
	},
}

// lockKey serialises key creation (first start and rotation) across
// replicas: pg_advisory_xact_lock on it, released with the transaction.
var lockKey = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("moreid oidc signing keys"))
	return int64(h.Sum64())
}()

// row is a stored key, sealed.
type row struct {
	KID        string
	Alg        string
	PublicJWK  []byte
	PrivateEnc []byte
	KEKID      string
	CreatedAt  time.Time
	ActivateAt time.Time
	RetiredAt  sql.NullTime
}

// store reads and writes oidc_signing_keys.
type store struct {
	db      *gorm.DB
	timeout time.Duration
}

func (s store) list(ctx context.Context) ([]row, error) {
	db, cancel := pgdb.Bound(ctx, s.db, s.timeout)
	defer cancel()
	rows, err := db.Raw(`SELECT kid, alg, public_jwk, private_enc, kek_id, created_at, activate_at, retired_at
		FROM oidc_signing_keys ORDER BY activate_at, kid`).Rows()
	if err != nil {
		return nil, pgdb.Classify("list signing keys", err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.KID, &r.Alg, &r.PublicJWK, &r.PrivateEnc, &r.KEKID, &r.CreatedAt, &r.ActivateAt, &r.RetiredAt); err != nil {
			return nil, pgdb.Classify("list signing keys", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, pgdb.Classify("list signing keys", err)
	}
	return out, nil
}

// errExists tells ensure's caller that a key was already there.
var errExists = errors.New("a signing key exists")

// insert adds r under the creation lock. With first set it adds r only when
// no key is unretired (the first start of the first replica; the others
// find its key and return errExists); otherwise it retires every other
// unretired key at r's activation (a rotation).
func (s store) insert(ctx context.Context, r row, first bool) error {
	// A rotation is a handful of statements: a few bounds' worth.
	db, cancel := pgdb.Bound(ctx, s.db, 3*s.timeout)
	defer cancel()
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", lockKey).Error; err != nil {
			return err
		}
		if first {
			var n int64
			if err := tx.Raw("SELECT count(*) FROM oidc_signing_keys WHERE retired_at IS NULL").Scan(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return errExists
			}
		} else if err := tx.Exec("UPDATE oidc_signing_keys SET retired_at = ? WHERE retired_at IS NULL",
			r.ActivateAt).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO oidc_signing_keys (kid, alg, public_jwk, private_enc, kek_id, created_at, activate_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, r.KID, r.Alg, string(r.PublicJWK), r.PrivateEnc, r.KEKID, r.CreatedAt, r.ActivateAt).Error
	})
	switch {
	case errors.Is(err, errExists):
		return err
	case err != nil:
		return pgdb.Classify("store signing key", err)
	}
	return nil
}
