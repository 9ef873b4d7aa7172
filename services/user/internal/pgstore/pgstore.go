// Package pgstore keeps users in Postgres through gorm. Its schema is a set
// of goose SQL migrations embedded in the binary.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/services/user/internal/user"
)

// Files holds the schema's goose SQL files, in migrations/.
//
//go:embed migrations/*.sql
var Files embed.FS

// VersionTable records which migrations this service has applied; every
// service has its own, so they can share one database.
const VersionTable = "user_schema_migrations"

// ChangesChannel is where the users table announces each changed or deleted
// row, its user_id as the payload (a trigger, migration 00003).
const ChangesChannel = "moreid_users_changed"

// Migrate applies the pending migrations.
func Migrate(ctx context.Context, db *gorm.DB) error {
	return pgdb.Embedded(Files, "migrations", VersionTable)(ctx, db)
}

// Schema is the users table with the privileges the serving role needs:
// users are created, changed and disabled, never deleted.
var Schema = pgdb.Schema{
	Migrate: Migrate,
	Grants: []string{
		"GRANT SELECT, INSERT, UPDATE ON users TO %s",
		"GRANT SELECT ON " + VersionTable + " TO %s",
	},
}

// Store implements user.Store.
type Store struct {
	db      *gorm.DB
	timeout time.Duration
}

var _ user.Store = (*Store)(nil)

// New returns a store over db whose every statement is bounded by timeout
// (MOREID_POSTGRES_TIMEOUT, pgdb.Timeout), so that an unresponsive
// database gives a prompt Unavailable rather than a hung request.
func New(db *gorm.DB, timeout time.Duration) *Store { return &Store{db: db, timeout: timeout} }

// row is the users table.
type row struct {
	ID           int32 `gorm:"primaryKey;autoIncrement"`
	UserID       string
	Username     string
	Email        string
	Bio          string
	AvatarURL    *string
	PasswordHash string
	Disabled     bool
	DisabledAt   *time.Time
	// The database stamps both times (default now(); clock_timestamp() on
	// update) so that every replica agrees on one clock.
	CreatedAt time.Time `gorm:"default:now();autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"default:now();autoUpdateTime:false"`
}

func (row) TableName() string { return "users" }

func (r row) record() user.Record {
	return user.Record{
		ID: r.ID, UserID: r.UserID, Username: r.Username, Email: r.Email, Bio: r.Bio,
		AvatarURL: r.AvatarURL, PasswordHash: r.PasswordHash,
		Disabled: r.Disabled, DisabledAt: r.DisabledAt,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

func (s *Store) with(ctx context.Context) (*gorm.DB, context.CancelFunc) {
	return pgdb.Bound(ctx, s.db, s.timeout)
}

// Create implements user.Store.
func (s *Store) Create(ctx context.Context, r user.Record) (user.Record, error) {
	db, cancel := s.with(ctx)
	defer cancel()
	out := row{UserID: r.UserID, Username: r.Username, Email: r.Email, Bio: r.Bio, AvatarURL: r.AvatarURL, PasswordHash: r.PasswordHash}
	err := db.Clauses(clause.Returning{}).Create(&out).Error
	if err != nil {
		return user.Record{}, classify("create user", err)
	}
	return out.record(), nil
}

// Get implements user.Store.
func (s *Store) Get(ctx context.Context, userID string) (user.Record, error) {
	db, cancel := s.with(ctx)
	defer cancel()
	var out row
	if err := db.Where("user_id = ?", userID).Take(&out).Error; err != nil {
		return user.Record{}, classify("get user", err)
	}
	return out.record(), nil
}

// UpdateProfile implements user.Store: one UPDATE ... RETURNING, so the
// answer is the row as this statement left it. The statement itself skips a
// disabled row, so a profile change racing with an operator's disable can
// never land after it.
func (s *Store) UpdateProfile(ctx context.Context, userID string, c user.ProfileChange) (user.Record, error) {
	db, cancel := s.with(ctx)
	defer cancel()
	set := map[string]any{"updated_at": gorm.Expr("clock_timestamp()")}
	if c.Username != nil {
		set["username"] = *c.Username
	}
	if c.Bio != nil {
		set["bio"] = *c.Bio
	}
	var out row
	res := db.Model(&out).Clauses(clause.Returning{}).Where("user_id = ? AND NOT disabled", userID).Updates(set)
	if res.Error != nil {
		return user.Record{}, classify("update profile", res.Error)
	}
	if res.RowsAffected == 0 {
		return user.Record{}, s.whyNotUpdated(ctx, "update profile", userID)
	}
	return out.record(), nil
}

// whyNotUpdated tells, after an UPDATE that matched no enabled row, whether
// the user is missing or was disabled. A user found enabled now was
// re-enabled in between: as of the UPDATE it was disabled, so that is the
// answer.
func (s *Store) whyNotUpdated(ctx context.Context, op, userID string) error {
	if _, err := s.Get(ctx, userID); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, user.ErrDisabled)
}

// SetDisabled implements user.Store. disabled_at keeps the moment of the
// first disable while the user stays disabled, and updated_at moves only
// when the flag really changes, so repeating the call changes nothing.
func (s *Store) SetDisabled(ctx context.Context, userID string, disabled bool) (user.Record, error) {
	db, cancel := s.with(ctx)
	defer cancel()
	set := map[string]any{
		"disabled":    disabled,
		"disabled_at": gorm.Expr("CASE WHEN ? THEN coalesce(disabled_at, clock_timestamp()) END", disabled),
		"updated_at":  gorm.Expr("CASE WHEN disabled IS DISTINCT FROM ? THEN clock_timestamp() ELSE updated_at END", disabled),
	}
	var out row
	res := db.Model(&out).Clauses(clause.Returning{}).Where("user_id = ?", userID).Updates(set)
	if res.Error != nil {
		return user.Record{}, classify("set disabled", res.Error)
	}
	if res.RowsAffected == 0 {
		return user.Record{}, fmt.Errorf("set disabled: %w", user.ErrNotFound)
	}
	return out.record(), nil
}

// ReplacePasswordHash implements user.Store.
func (s *Store) ReplacePasswordHash(ctx context.Context, id int32, oldHash, newHash string) error {
	db, cancel := s.with(ctx)
	defer cancel()
	err := db.Model(&row{}).
		Where("id = ? AND password_hash = ?", id, oldHash).
		Updates(map[string]any{"password_hash": newHash, "updated_at": gorm.Expr("clock_timestamp()")}).Error
	if err != nil {
		return classify("replace password hash", err)
	}
	return nil
}

// classify sorts a database error into the domain's vocabulary: a missing
// row, a taken user_id, an unreachable database (Unavailable, so callers
// answer 503 instead of 500), or anything else (Internal).
func classify(op string, err error) error {
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%s: %w", op, user.ErrNotFound)
	case errors.Is(err, gorm.ErrDuplicatedKey) || pgdb.Code(err) == "23505":
		return fmt.Errorf("%s: %w", op, user.ErrDuplicate)
	default:
		return pgdb.Classify(op, err)
	}
}
