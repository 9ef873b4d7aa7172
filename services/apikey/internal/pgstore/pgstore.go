// Package pgstore keeps API keys in Postgres (table api_keys) through gorm.
// Its schema is versioned by the goose migrations embedded below.
package pgstore

import (
	"context"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/services/apikey/internal/apikey"
)

// VersionTable records which of this service's migrations are applied.
const VersionTable = "apikey_schema_migrations"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies every pending migration to db.
func Migrate(ctx context.Context, db *gorm.DB) error {
	return pgdb.Embedded(migrations, "migrations", VersionTable)(ctx, db)
}

// Schema is the api_keys table with the privileges the serving role needs:
// keys are created and revoked (an UPDATE), never deleted.
var Schema = pgdb.Schema{
	Migrate: Migrate,
	Grants: []string{
		"GRANT SELECT, INSERT, UPDATE ON api_keys TO %s",
		"GRANT SELECT ON " + VersionTable + " TO %s",
	},
}

// Store implements apikey.Store.
type Store struct {
	db      *gorm.DB
	timeout time.Duration
}

var _ apikey.Store = (*Store)(nil)

// New returns a Store over db (already migrated) whose every statement is
// bounded by timeout (MOREID_POSTGRES_TIMEOUT, pgdb.Timeout), so that a
// stalled Postgres answers Unavailable quickly instead of holding the
// caller.
func New(db *gorm.DB, timeout time.Duration) *Store { return &Store{db: db, timeout: timeout} }

// row is one api_keys row.
type row struct {
	ID            int64      `gorm:"column:id"`
	KeyHash       string     `gorm:"column:key_hash"`
	Prefix        string     `gorm:"column:prefix"`
	Name          string     `gorm:"column:name"`
	Whitelist     textArray  `gorm:"column:whitelist;type:text[]"`
	PasswordLogin bool       `gorm:"column:password_login"`
	CreatedAt     time.Time  `gorm:"column:created_at"`
	RevokedAt     *time.Time `gorm:"column:revoked_at"`
	ClientID      string     `gorm:"column:client_id"`
	Public        bool       `gorm:"column:public"`
	RedirectURIs  textArray  `gorm:"column:redirect_uris;type:text[]"`
	PostLogout    textArray  `gorm:"column:post_logout_redirect_uris;type:text[]"`
}

func (row) TableName() string { return "api_keys" }

const columns = "id, key_hash, prefix, name, whitelist, password_login, created_at, revoked_at, " +
	"client_id, public, redirect_uris, post_logout_redirect_uris"

// Insert implements apikey.Store.
func (s *Store) Insert(ctx context.Context, k apikey.NewKey) (apikey.Key, error) {
	db, cancel := pgdb.Bound(ctx, s.db, s.timeout)
	defer cancel()
	var r row
	// created_at comes from the database clock, one clock for every replica.
	err := db.Raw(
		`INSERT INTO api_keys (key_hash, prefix, name, whitelist, password_login,
		                       client_id, public, redirect_uris, post_logout_redirect_uris)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+columns,
		k.Hash, k.Prefix, k.Name, textArray(ipset.Strings(k.Whitelist)), k.PasswordLogin,
		k.ClientID, k.Public, textArray(k.RedirectURIs), textArray(k.PostLogoutRedirectURIs),
	).Scan(&r).Error
	if err != nil {
		return apikey.Key{}, pgdb.Classify("insert api key", err)
	}
	return r.key()
}

// List implements apikey.Store. Identity ids grow with every insert, so id
// order is issue order.
func (s *Store) List(ctx context.Context) ([]apikey.Key, error) {
	db, cancel := pgdb.Bound(ctx, s.db, s.timeout)
	defer cancel()
	var rows []row
	if err := db.Order("id").Find(&rows).Error; err != nil {
		return nil, pgdb.Classify("list api keys", err)
	}
	out := make([]apikey.Key, 0, len(rows))
	for _, r := range rows {
		k, err := r.key()
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// Revoke implements apikey.Store. COALESCE keeps the first revocation time.
func (s *Store) Revoke(ctx context.Context, id int64) (apikey.Key, error) {
	return s.update(ctx, "revoke api key",
		`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = ? RETURNING `+columns, id)
}

// SetWhitelist implements apikey.Store.
func (s *Store) SetWhitelist(ctx context.Context, id int64, whitelist []netip.Prefix) (apikey.Key, error) {
	return s.update(ctx, "set api key whitelist",
		`UPDATE api_keys SET whitelist = ? WHERE id = ? RETURNING `+columns,
		textArray(ipset.Strings(whitelist)), id)
}

// SetRedirectURIs implements apikey.Store. The column is chosen here, from
// a bool, never from caller text.
func (s *Store) SetRedirectURIs(ctx context.Context, id int64, uris []string, postLogout bool) (apikey.Key, error) {
	col := "redirect_uris"
	if postLogout {
		col = "post_logout_redirect_uris"
	}
	return s.update(ctx, "set api key "+col,
		`UPDATE api_keys SET `+col+` = ? WHERE id = ? RETURNING `+columns, textArray(uris), id)
}

func (s *Store) update(ctx context.Context, op, query string, args ...any) (apikey.Key, error) {
	db, cancel := pgdb.Bound(ctx, s.db, s.timeout)
	defer cancel()
	var r row
	res := db.Raw(query, args...).Scan(&r)
	if res.Error != nil {
		return apikey.Key{}, pgdb.Classify(op, res.Error)
	}
	if res.RowsAffected == 0 {
		return apikey.Key{}, apierr.New(apierr.NotFound)
	}
	return r.key()
}

// ByHash implements apikey.Store: one lookup on the unique key_hash index,
// a statement pgx prepares once per connection and then reuses.
func (s *Store) ByHash(ctx context.Context, hash string) (apikey.Key, error) {
	db, cancel := pgdb.Bound(ctx, s.db, s.timeout)
	defer cancel()
	var r row
	err := db.Where("key_hash = ?", hash).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return apikey.Key{}, apierr.New(apierr.NotFound)
	}
	if err != nil {
		return apikey.Key{}, pgdb.Classify("find api key", err)
	}
	return r.key()
}

// ByClientID implements apikey.Store: one lookup on the unique client_id
// index.
func (s *Store) ByClientID(ctx context.Context, clientID string) (apikey.Key, error) {
	db, cancel := pgdb.Bound(ctx, s.db, s.timeout)
	defer cancel()
	var r row
	err := db.Where("client_id = ?", clientID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return apikey.Key{}, apierr.New(apierr.NotFound)
	}
	if err != nil {
		return apikey.Key{}, pgdb.Classify("find api key by client id", err)
	}
	return r.key()
}

// ByID implements apikey.Store: one lookup on the primary key.
func (s *Store) ByID(ctx context.Context, id int64) (apikey.Key, error) {
	db, cancel := pgdb.Bound(ctx, s.db, s.timeout)
	defer cancel()
	var r row
	err := db.Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return apikey.Key{}, apierr.New(apierr.NotFound)
	}
	if err != nil {
		return apikey.Key{}, pgdb.Classify("find api key by id", err)
	}
	return r.key()
}

func (r row) key() (apikey.Key, error) {
	wl, err := ipset.Parse(r.Whitelist)
	if err != nil {
		return apikey.Key{}, apierr.Wrap(apierr.Internal, fmt.Errorf("api key %d: stored whitelist: %w", r.ID, err))
	}
	return apikey.Key{
		ID:            r.ID,
		Hash:          strings.TrimSpace(r.KeyHash), // char(n) pads short values; a hash is always 64
		Prefix:        r.Prefix,
		Name:          r.Name,
		Whitelist:     wl,
		PasswordLogin: r.PasswordLogin,
		CreatedAt:     r.CreatedAt,
		RevokedAt:     r.RevokedAt,
		ClientID:      r.ClientID,
		Public:        r.Public,
		// Never nil, so that an empty list reads the same whether it was
		// just written or read back.
		RedirectURIs:           nonNil(r.RedirectURIs),
		PostLogoutRedirectURIs: nonNil(r.PostLogout),
	}, nil
}

func nonNil(a textArray) []string {
	if a == nil {
		return []string{}
	}
	return []string(a)
}

// textArray is a Postgres text[] for database/sql: pgx's stdlib hands arrays
// to Scan in their text form, which pgtype decodes.
type textArray []string

// Scan implements sql.Scanner.
func (a *textArray) Scan(src any) error {
	if src == nil {
		*a = nil
		return nil
	}
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("text[]: unexpected %T", src)
	}
	var out []string
	if err := pgtype.NewMap().Scan(pgtype.TextArrayOID, pgtype.TextFormatCode, b, &out); err != nil {
		return fmt.Errorf("text[]: %w", err)
	}
	*a = out
	return nil
}

// Value implements driver.Valuer; pgx encodes a []string as text[].
func (a textArray) Value() (driver.Value, error) {
	if a == nil {
		return []string{}, nil
	}
	return []string(a), nil
}
