// Package user is the user directory's domain: profiles, their validation,
// and password checks with argon2id. It owns the Store interface that the
// Postgres store implements.
package user

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/moreline/moreid/platform/account"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/telemetry"
)

// User is a profile as callers see it; it never carries the password hash.
type User struct {
	ID        int32
	UserID    string
	Username  string
	Email     string
	Bio       string
	AvatarURL string // absolute; the configured default when the user has none
	Disabled  bool   // set by an operator: no sign-in, no profile change
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Record is a stored user row.
type Record struct {
	ID           int32
	UserID       string
	Username     string
	Email        string
	Bio          string
	AvatarURL    *string // nil: the user has not chosen one
	PasswordHash string
	Disabled     bool
	DisabledAt   *time.Time // set exactly while Disabled
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// NewUser is what CreateUser needs.
type NewUser struct {
	UserID   string
	Username string
	Email    string
	Password string
}

// ProfileChange is an UpdateProfile request: nil fields keep their value.
type ProfileChange struct {
	Username *string
	Bio      *string
}

// Errors a Store returns (wrapped) for the outcomes the domain turns into
// answers. Any other store error should already be an apierr of kind
// Unavailable or Internal.
var (
	ErrNotFound  = errors.New("user not found")
	ErrDuplicate = errors.New("user_id already taken")
	ErrDisabled  = errors.New("user disabled")
)

// Store keeps user records.
type Store interface {
	// Create inserts r (ID and timestamps are assigned) and returns the
	// stored row; ErrDuplicate when r.UserID is taken.
	Create(ctx context.Context, r Record) (Record, error)
	// Get returns the row of userID, or ErrNotFound.
	Get(ctx context.Context, userID string) (Record, error)
	// UpdateProfile applies c to the row of userID, sets updated_at, and
	// returns the new row; ErrNotFound, or ErrDisabled for a disabled user
	// (checked in the same statement, so no change lands after a disable).
	UpdateProfile(ctx context.Context, userID string, c ProfileChange) (Record, error)
	// SetDisabled sets the disabled flag of userID and returns the new row,
	// or ErrNotFound. Setting the flag it already has changes nothing.
	SetDisabled(ctx context.Context, userID string, disabled bool) (Record, error)
	// ReplacePasswordHash sets the hash of user id to newHash if it still is
	// oldHash, so that a rehash never overwrites a concurrent change.
	ReplacePasswordHash(ctx context.Context, id int32, oldHash, newHash string) error
}

// Service implements the user directory's operations.
type Service struct {
	store         Store
	hasher        *Hasher
	cache         *ProfileCache
	defaultAvatar string
	log           *slog.Logger
	tel           *telemetry.Telemetry
}

// NewService returns a Service. cache may be nil (every read goes to the
// store); defaultAvatar is the absolute URL shown for users without an
// avatar; tel counts profile reads by cache result (nil: not counted).
func NewService(store Store, hasher *Hasher, cache *ProfileCache, defaultAvatar string, log *slog.Logger, tel *telemetry.Telemetry) *Service {
	return &Service{store: store, hasher: hasher, cache: cache, defaultAvatar: defaultAvatar, log: log, tel: tel}
}

// CreateUser validates n, hashes its password and stores the user.
func (s *Service) CreateUser(ctx context.Context, n NewUser) (User, error) {
	for _, err := range []error{
		account.CheckUserID(n.UserID),
		account.CheckUsername(n.Username),
		account.CheckEmail(n.Email),
		account.CheckNewPassword(n.Password),
	} {
		if err != nil {
			return User{}, err
		}
	}
	hash, err := s.hasher.Hash(ctx, n.Password)
	if err != nil {
		return User{}, hashFailure(err)
	}
	r, err := s.store.Create(ctx, Record{
		UserID: n.UserID, Username: n.Username, Email: n.Email, PasswordHash: hash,
	})
	if errors.Is(err, ErrDuplicate) {
		return User{}, &apierr.Error{Kind: apierr.Conflict, Message: "用户ID已存在", Err: err}
	}
	if err != nil {
		return User{}, storeFailure(err)
	}
	return s.profile(r), nil
}

// GetUser returns the profile of userID, from the cache when it has it. A
// missing user is not cached: it is the rare case, and caching it would
// need its own invalidation on create.
func (s *Service) GetUser(ctx context.Context, userID string) (User, error) {
	if err := account.CheckUserID(userID); err != nil {
		return User{}, err
	}
	u, gen, hit := s.cache.lookup(userID)
	s.tel.ProfileLookup(hit)
	if hit {
		return u, nil
	}
	r, err := s.store.Get(ctx, userID)
	if err != nil {
		return User{}, storeFailure(err)
	}
	u = s.profile(r)
	s.cache.fill(u, gen)
	return u, nil
}

// VerifyPassword returns the profile of userID when password is theirs. An
// unknown user and a wrong password give the same InvalidCredentials error,
// and both pay for one argon2id verification, so neither the answer nor its
// timing tells whether the user exists. A disabled user gets AccountDisabled,
// but only once the password has verified: a guesser learns nothing about
// the account, while its owner learns why the right password is refused. A
// hash made under other parameters than the configured ones is replaced
// after a successful check.
func (s *Service) VerifyPassword(ctx context.Context, userID, password string) (User, error) {
	if err := account.CheckUserID(userID); err != nil {
		return User{}, err
	}
	if err := account.CheckLoginPassword(password); err != nil {
		return User{}, err
	}
	r, err := s.store.Get(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		if err := s.hasher.VerifyDummy(ctx, password); err != nil {
			return User{}, hashFailure(err)
		}
		return User{}, apierr.New(apierr.InvalidCredentials)
	}
	if err != nil {
		return User{}, storeFailure(err)
	}
	ok, rehash, err := s.hasher.Verify(ctx, r.PasswordHash, password)
	if err != nil {
		return User{}, hashFailure(fmt.Errorf("user %d: %w", r.ID, err))
	}
	if !ok {
		return User{}, apierr.New(apierr.InvalidCredentials)
	}
	if r.Disabled {
		return User{}, apierr.New(apierr.AccountDisabled)
	}
	if rehash {
		s.rehash(ctx, r, password)
	}
	return s.profile(r), nil
}

// rehash stores a hash under the current parameters. The login has already
// succeeded; a failure here only postpones the upgrade to the next login.
func (s *Service) rehash(ctx context.Context, r Record, password string) {
	hash, err := s.hasher.Hash(ctx, password)
	if err == nil {
		err = s.store.ReplacePasswordHash(ctx, r.ID, r.PasswordHash, hash)
	}
	if err != nil && s.log != nil {
		s.log.WarnContext(ctx, "password rehash failed", "id", r.ID, "error", err.Error())
	}
}

// UpdateProfile changes the username and/or bio of userID.
func (s *Service) UpdateProfile(ctx context.Context, userID string, c ProfileChange) (User, error) {
	if err := account.CheckUserID(userID); err != nil {
		return User{}, err
	}
	if err := account.CheckProfileChange(c.Username, c.Bio); err != nil {
		return User{}, err
	}
	r, err := s.store.UpdateProfile(ctx, userID, c)
	s.cache.Forget(userID) // after the commit, whatever the outcome
	if err != nil {
		return User{}, storeFailure(err)
	}
	return s.profile(r), nil
}

// SetDisabled disables (or re-enables) userID. Disabling stops sign-in and
// profile changes here; ending the user's live tokens is auth's part
// (AuthAdminService.RevokeUserTokens), and auth refuses a disabled user's
// tokens in any case.
func (s *Service) SetDisabled(ctx context.Context, userID string, disabled bool) (User, error) {
	if err := account.CheckUserID(userID); err != nil {
		return User{}, err
	}
	r, err := s.store.SetDisabled(ctx, userID, disabled)
	s.cache.Forget(userID)
	if err != nil {
		return User{}, storeFailure(err)
	}
	if s.log != nil {
		s.log.InfoContext(ctx, "user disabled flag set", "id", r.ID, "disabled", r.Disabled)
	}
	return s.profile(r), nil
}

func (s *Service) profile(r Record) User {
	avatar := s.defaultAvatar
	if r.AvatarURL != nil && *r.AvatarURL != "" {
		avatar = *r.AvatarURL
	}
	return User{
		ID: r.ID, UserID: r.UserID, Username: r.Username, Email: r.Email, Bio: r.Bio,
		AvatarURL: avatar, Disabled: r.Disabled, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// storeFailure turns a store error into the caller's answer: NotFound for a
// missing user, AccountDisabled for a disabled one, the store's own apierr
// kind otherwise, Internal as a last resort.
func storeFailure(err error) error {
	if errors.Is(err, ErrNotFound) {
		return &apierr.Error{Kind: apierr.NotFound, Message: "用户不存在", Err: err}
	}
	if errors.Is(err, ErrDisabled) {
		return apierr.Wrap(apierr.AccountDisabled, err)
	}
	var e *apierr.Error
	if errors.As(err, &e) {
		return err
	}
	return apierr.Wrap(apierr.Internal, err)
}

// hashFailure: a request whose context ended while it waited for a hashing
// slot is an overload (Unavailable); a malformed stored hash is Internal.
func hashFailure(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return apierr.Wrap(apierr.Unavailable, err)
	}
	return apierr.Wrap(apierr.Internal, err)
}
