// Package oauth holds the sign-in flows of the auth service: authorize,
// password login, the browser-confirmed safe login, code redemption, web
// sessions, access tokens and profile updates. It owns the Store it keeps its
// short-lived records in and the UserDirectory it checks users against; both
// are interfaces so that the flows do not depend on Redis or gRPC.
package oauth

import (
	"cmp"
	"context"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/moreline/moreid/platform/account"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/telemetry"
)

// Lifetimes of the records SPEC section 3 fixes.
const (
	StateTTL     = 10 * time.Minute
	CodeTTL      = 10 * time.Minute
	UCATTL       = 10 * time.Minute
	LoginCodeTTL = 5 * time.Minute
)

// Field length caps of the protocol's own fields: far above any legitimate
// value, low enough that a request cannot make us hash or forward
// megabytes. The account's fields (user_id, password, profile) follow
// platform/account, the rules the user service applies.
const (
	maxState  = 128
	maxCode   = 128
	maxCookie = 4096
)

// Key is what the flows need to know about the calling API key.
type Key struct {
	ID            int64
	Name          string
	PasswordLogin bool
}

// User is a user's profile as the directory returns it.
type User struct {
	ID        int32
	UserID    string
	Username  string
	Email     string
	Bio       string
	AvatarURL string
	Disabled  bool
}

// ProfileChange is a profile update: nil fields keep their value.
type ProfileChange struct {
	Username *string
	Bio      *string
}

// UserDirectory is the user service. Its errors are already in the shared
// vocabulary (invalid_credentials, account_disabled, not_found,
// invalid_request, ...) and are returned as they are.
type UserDirectory interface {
	VerifyPassword(ctx context.Context, userID, password string) (User, error)
	GetUser(ctx context.Context, userID string) (User, error)
	UpdateProfile(ctx context.Context, userID string, c ProfileChange) (User, error)
}

// KeyDirectory is the API-key service as far as tokens need it: a token
// works only while the key it was issued to is active.
type KeyDirectory interface {
	// KeyActive reports whether the key with keyID is still active. The
	// answer may be up to half a second old (keycache), so that a revoked
	// key's tokens stop on every instance within a second.
	KeyActive(ctx context.Context, keyID int64) (bool, error)
	ClientDirectory
}

// StateRecord is the value of a state record.
type StateRecord struct {
	KeyID int64 `json:"k"`
	// TTL is the remaining lifetime, filled in on reads; not stored.
	TTL time.Duration `json:"-"`
}

// CodeRecord is the value of an authorization code record.
type CodeRecord struct {
	KeyID     int64  `json:"k"`
	StateHash string `json:"s"`
	User      int32  `json:"u"`
	UserID    string `json:"uid"`
}

// TokenRecord is the value of an access token record.
type TokenRecord struct {
	KeyID    int64  `json:"k"`
	KeyName  string `json:"kn"`
	User     int32  `json:"u"`
	UserID   string `json:"uid"`
	IssuedAt int64  `json:"iat"`
	// The OpenID Connect fields, empty for /api/oauth tokens: the client
	// and scopes it was issued for, and the grant (and refresh token
	// family) that revoking as one ends it with.
	ClientID string   `json:"c,omitempty"`
	Scopes   []string `json:"sc,omitempty"`
	Grant    string   `json:"g,omitempty"`
	Family   string   `json:"f,omitempty"`
	// TTL is the remaining lifetime, filled in on reads; not stored.
	TTL time.Duration `json:"-"`
}

// UCARecord is the value of a one-time confirmation code (UCA) record.
type UCARecord struct {
	KeyID     int64  `json:"k"`
	StateHash string `json:"s"`
	App       string `json:"app"`
	// TTL is the remaining lifetime, filled in on reads; not stored.
	TTL time.Duration `json:"-"`
}

// LoginCodeRecord is the value of a login code record. The state it is bound
// to is part of its key.
type LoginCodeRecord struct {
	KeyID  int64  `json:"k"`
	User   int32  `json:"u"`
	UserID string `json:"uid"`
}

// SessionRecord is the value of a web session record.
type SessionRecord struct {
	User     int32  `json:"u"`
	UserID   string `json:"uid"`
	IssuedAt int64  `json:"iat"`
}

// Outcome is the result of one atomic code redemption.
type Outcome int

const (
	// Redeemed: the code was bound to this key and state; it is gone and its
	// used marker names the new token.
	Redeemed Outcome = iota
	// Mismatch: the code exists but is bound to another key or state; it is
	// left untouched.
	Mismatch
	// Replayed: the code was redeemed before; Previous says by whom and
	// for which token.
	Replayed
	// Missing: no such code, and no trace of one.
	Missing
)

// Redemption is what RedeemCode observed.
type Redemption struct {
	Outcome  Outcome
	Previous CodeUse
}

// CodeUse is a redeemed code's used marker: the hash of the token it was
// exchanged for, and the key and state hash of that redemption (zero in
// markers written before they were recorded).
type CodeUse struct {
	Token     string
	KeyID     int64
	StateHash string
}

// LoginOutcome is the result of one atomic login code redemption.
type LoginOutcome int

const (
	// LoginRedeemed: the login code, its state and the state's failure
	// counter are gone.
	LoginRedeemed LoginOutcome = iota
	// LoginWrong: no such login code for this state and key.
	LoginWrong
	// LoginNoState: the state is unknown, expired or another key's; nothing
	// was counted.
	LoginNoState
)

// Store keeps the short-lived records, keyed by the SHA-256 hex of their
// secret. Absent records are reported with found=false, never as errors;
// errors mean the store could not answer.
type Store interface {
	PutState(ctx context.Context, stateHash string, keyID int64, ttl time.Duration) error
	// State returns the state record with its remaining lifetime.
	State(ctx context.Context, stateHash string) (StateRecord, bool, error)
	// ConsumeState deletes the state atomically if it is bound to keyID and
	// reports whether it did.
	ConsumeState(ctx context.Context, stateHash string, keyID int64) (bool, error)

	PutCode(ctx context.Context, codeHash string, rec CodeRecord, ttl time.Duration) error
	Code(ctx context.Context, codeHash string) (CodeRecord, bool, error)
	// DeleteCode removes a code nobody was given (its issue failed).
	DeleteCode(ctx context.Context, codeHash string) error
	// RedeemedBy returns a redeemed code's used marker while it lives.
	RedeemedBy(ctx context.Context, codeHash string) (use CodeUse, found bool, err error)
	// RedeemCode atomically checks the code's binding to keyID and stateHash,
	// deletes it and records the redemption (tokenHash, keyID, stateHash)
	// as its used marker.
	RedeemCode(ctx context.Context, codeHash string, keyID int64, stateHash, tokenHash string) (Redemption, error)

	// PutToken stores a token and adds it to its user's token index.
	PutToken(ctx context.Context, tokenHash string, rec TokenRecord, ttl time.Duration) error
	// Token returns the token record with its remaining lifetime.
	Token(ctx context.Context, tokenHash string) (TokenRecord, bool, error)
	// DeleteToken removes a token (and its index entry) and returns the
	// record it deleted, if any.
	DeleteToken(ctx context.Context, tokenHash string) (TokenRecord, bool, error)
	// DeleteUserTokens removes every token of a user and returns how many
	// existed.
	DeleteUserTokens(ctx context.Context, userID string) (int, error)

	PutUCA(ctx context.Context, ucaHash string, rec UCARecord, ttl time.Duration) error
	// UCA returns the UCA record with its remaining lifetime.
	UCA(ctx context.Context, ucaHash string) (UCARecord, bool, error)
	// TakeUCA atomically reads and deletes a UCA.
	TakeUCA(ctx context.Context, ucaHash string) (UCARecord, bool, error)

	PutLoginCode(ctx context.Context, stateHash, codeHash string, rec LoginCodeRecord, ttl time.Duration) error
	// LoginCode reads a login code without consuming it.
	LoginCode(ctx context.Context, stateHash, codeHash string) (LoginCodeRecord, bool, error)
	// DeleteLoginCode removes a login code nobody was given (its issue
	// failed).
	DeleteLoginCode(ctx context.Context, stateHash, codeHash string) error
	// RedeemLoginCode atomically checks that the state is keyID's, and then
	// consumes the login code together with the state, or reports a wrong
	// code (counted by Fail, under the attempt's reservation).
	RedeemLoginCode(ctx context.Context, stateHash, codeHash string, keyID int64) (LoginCodeRecord, LoginOutcome, error)

	PutSession(ctx context.Context, sessionHash string, rec SessionRecord, ttl time.Duration) error
	Session(ctx context.Context, sessionHash string) (SessionRecord, bool, error)

	// Reserve admits a sign-in attempt on each of its subjects (the
	// brute-force counters, throttle.go), atomically per subject, before
	// its secret is checked; a refused or busy subject leaves no hold
	// on the others.
	Reserve(ctx context.Context, a Attempt, l Limits) (Verdict, error)
	// Release gives a granted attempt's places back: it was no failure.
	Release(ctx context.Context, a Attempt, l Limits) error
	// Fail turns a granted attempt's places into counted failures; the
	// failure that reaches MaxStateFails deletes the state (burned).
	Fail(ctx context.Context, a Attempt, l Limits) (burned bool, err error)
	// PutCountedState is PutState counting the state against its key's
	// live states; over max it stores nothing and returns how long until
	// the key may have more.
	PutCountedState(ctx context.Context, stateHash string, keyID int64, ttl time.Duration, max int) (refusedFor time.Duration, err error)
	KeyRateStore
	GrantStore
	OIDCFrontStore
}

// Lifetimes are the configurable record lifetimes.
type Lifetimes struct {
	Token   time.Duration // MOREID_ACCESS_TOKEN_TTL
	Session time.Duration // MOREID_SESSION_TTL
	Refresh time.Duration // MOREID_REFRESH_TOKEN_TTL; 0: DefaultRefreshTTL
}

// Service runs the flows.
type Service struct {
	store  Store
	users  UserDirectory
	keys   KeyDirectory
	ttl    Lifetimes
	limits Limits
	gates  gates
	events audit.Recorder
	log    *slog.Logger
	tel    *telemetry.Telemetry
	now    func() time.Time
}

// New returns the flows over store, users and keys, throttling failed
// sign-ins by limits (unset fields take DefaultLimits), recording
// security events in events and counting refusals in tel (nil: not
// counted).
func New(store Store, users UserDirectory, keys KeyDirectory, ttl Lifetimes, limits Limits, events audit.Recorder, log *slog.Logger, tel *telemetry.Telemetry) *Service {
	return &Service{store: store, users: users, keys: keys, ttl: ttl, limits: limits.withDefaults(), events: events, log: log, tel: tel, now: time.Now}
}

// TokenTTL is the lifetime of the access tokens this service issues.
func (s *Service) TokenTTL() time.Duration { return s.ttl.Token }

// Authorize issues a state bound to key.
func (s *Service) Authorize(ctx context.Context, key Key) (string, error) {
	state := secret.New("", 32, secret.Alphanumeric)
	if s.limits.KeyStates <= 0 {
		return state, s.store.PutState(ctx, secret.Hash(state), key.ID, StateTTL)
	}
	wait, err := s.store.PutCountedState(ctx, secret.Hash(state), key.ID, StateTTL, s.limits.KeyStates)
	if err != nil {
		return "", err
	}
	if wait > 0 {
		return "", throttled(s.tel, LimitStates, wait)
	}
	return state, nil
}

// Login checks a user_id/password pair against a state of this key and, on
// success, consumes the state and returns a fresh authorization code.
func (s *Service) Login(ctx context.Context, key Key, userID, password, state string) (code string, user User, err error) {
	if err := cmp.Or(
		account.CheckUserID(userID),
		account.CheckLoginPassword(password),
		required(field{"state", state, maxState}),
	); err != nil {
		// A malformed request (anything the user service would refuse
		// too) is no attempt at anyone's account: neither counted nor
		// audited.
		return "", User{}, err
	}
	defer func() { s.recordResult(ctx, audit.Login, key.ID, userID, err, "password") }()
	if !key.PasswordLogin {
		return "", User{}, apierr.New(apierr.PasswordLoginDisabled)
	}
	stateHash := secret.Hash(state)
	// The reservation checks the state before the password, so that a
	// stolen or foreign state cannot be used to probe passwords, and holds
	// a place on the state, the user at this address and the address
	// until the answer is known (throttle.go). A wrong password keeps its
	// places as failures (the fifth on a state burns it) but otherwise
	// leaves the state alone: the user may try again. A disabled user's
	// correct password answers account_disabled and is no failure.
	att, err := s.reserve(ctx, Attempt{KeyID: key.ID, StateHash: stateHash, UserID: userID, IP: ipSubject(ClientIP(ctx))})
	if err != nil {
		return "", User{}, err
	}
	wrong := false
	defer func() {
		// Settled once the state is consumed: the place held on it is what
		// guarantees that a right password finds it.
		if serr := s.settle(ctx, att, wrong); serr != nil {
			code, user, err = "", User{}, serr
		}
	}()
	user, err = s.users.VerifyPassword(ctx, userID, password)
	wrong = apierr.Is(err, apierr.InvalidCredentials)
	if err != nil {
		return "", User{}, err
	}
	code, err = s.issueCode(ctx, key, stateHash, user, "password", func(ctx context.Context) error {
		consumed, err := s.store.ConsumeState(ctx, stateHash, key.ID)
		if err != nil {
			return err
		}
		if !consumed {
			// A concurrent login with the same state got there first.
			return apierr.New(apierr.InvalidState)
		}
		return nil
	})
	if err != nil {
		return "", User{}, err
	}
	return code, user, nil
}

// ownState returns the state if it exists and was issued to key; otherwise
// invalid_state, whatever the reason.
func (s *Service) ownState(ctx context.Context, key Key, stateHash string) (StateRecord, error) {
	st, found, err := s.store.State(ctx, stateHash)
	if err != nil {
		return StateRecord{}, err
	}
	if !found || st.KeyID != key.ID {
		return StateRecord{}, apierr.New(apierr.InvalidState)
	}
	return st, nil
}

// issueCode is the one way an authorization code comes to be (password login
// and safe login, named by flow): bound to the state, the key and the user.
// consume takes what the code is exchanged for (the state; the state and
// the login code) and is the request's last step that can fail: the code
// is written first, unknown to anyone, and deleted again when consume
// fails, so that a failed request never costs the client its state (the
// pattern Token follows for the token).
func (s *Service) issueCode(ctx context.Context, key Key, stateHash string, user User, flow string, consume func(context.Context) error) (string, error) {
	code := secret.New("code_", 32, secret.Alphanumeric)
	codeHash := secret.Hash(code)
	rec := CodeRecord{KeyID: key.ID, StateHash: stateHash, User: user.ID, UserID: user.UserID}
	if err := s.store.PutCode(ctx, codeHash, rec, CodeTTL); err != nil {
		s.recordResult(ctx, audit.CodeIssued, key.ID, user.UserID, err, flow)
		return "", err
	}
	if err := consume(ctx); err != nil {
		// No code was issued; the request's own event records why.
		if derr := s.store.DeleteCode(ctx, codeHash); derr != nil {
			s.log.ErrorContext(ctx, "delete unissued code", "code", short(codeHash), "error", derr.Error())
		}
		return "", err
	}
	s.recordResult(ctx, audit.CodeIssued, key.ID, user.UserID, nil, flow)
	return code, nil
}

// Token is an issued access token.
type Token struct {
	Value string
	TTL   time.Duration
}

// Token exchanges an authorization code, exactly once, for an access token.
// Presenting an already redeemed code revokes the token issued from it
// (RFC 6749 section 4.1.2).
func (s *Service) Token(ctx context.Context, key Key, code, state string) (tok Token, err error) {
	if err := required(field{"code", code, maxCode}, field{"state", state, maxState}); err != nil {
		return Token{}, err
	}
	// The user is known once the code is found (and bound to this key).
	var userID string
	defer func() { s.recordResult(ctx, audit.TokenIssued, key.ID, userID, err, "") }()
	codeHash, stateHash := secret.Hash(code), secret.Hash(state)
	// The token record needs the code's user, so the code is read first. A
	// code record is written once and never changed, so what we read here is
	// what the atomic redemption below will see, if it still exists.
	rec, found, err := s.store.Code(ctx, codeHash)
	if err != nil {
		return Token{}, err
	}
	if !found {
		use, used, err := s.store.RedeemedBy(ctx, codeHash)
		if err != nil {
			return Token{}, err
		}
		return Token{}, s.replayed(ctx, key, codeHash, stateHash, used, use)
	}
	if rec.KeyID != key.ID || !secret.Equal(rec.StateHash, stateHash) {
		// As if the code did not exist; it stays redeemable by its owner.
		return Token{}, apierr.New(apierr.InvalidCode)
	}
	userID = rec.UserID

	token := secret.New("token_", 56, secret.Alphanumeric)
	tokenHash := secret.Hash(token)
	// Written before the redemption: nobody knows the token yet, and once the
	// code is gone the token must already exist.
	tr := TokenRecord{KeyID: key.ID, KeyName: key.Name, User: rec.User, UserID: rec.UserID, IssuedAt: s.now().Unix()}
	if err := s.store.PutToken(ctx, tokenHash, tr, s.ttl.Token); err != nil {
		return Token{}, err
	}
	r, err := s.store.RedeemCode(ctx, codeHash, key.ID, stateHash, tokenHash)
	if err == nil && r.Outcome == Redeemed {
		return Token{Value: token, TTL: s.ttl.Token}, nil
	}
	// Lost race, replay or failure: the fresh token must not survive.
	if _, _, derr := s.store.DeleteToken(ctx, tokenHash); derr != nil {
		s.log.ErrorContext(ctx, "delete unissued token", "token", short(tokenHash), "error", derr.Error())
	}
	if err != nil {
		return Token{}, err
	}
	return Token{}, s.replayed(ctx, key, codeHash, stateHash, r.Outcome == Replayed, r.Previous)
}

// replayed answers a code that is gone: invalid_code, after revoking the
// token issued from it when the same client presents it again, with the
// key and state it was redeemed with (RFC 6749 4.1.2: the code was issued
// to that client, and its replay means the code leaked). Anyone else's
// attempt is as if the code never existed and touches nothing, so that
// another app holding a leaked code cannot end this app's token.
func (s *Service) replayed(ctx context.Context, key Key, codeHash, stateHash string, used bool, use CodeUse) error {
	if !used || use.KeyID != key.ID || !secret.Equal(use.StateHash, stateHash) {
		return apierr.New(apierr.InvalidCode)
	}
	return s.revoke(ctx, codeHash, use.Token)
}

// revoke deletes the token issued from a code that is presented again and
// answers invalid_code.
func (s *Service) revoke(ctx context.Context, codeHash, tokenHash string) error {
	rec, found, err := s.store.DeleteToken(ctx, tokenHash)
	if err != nil {
		return err
	}
	if found {
		// Absent, the token expired or was revoked already: nothing
		// happened now.
		s.record(ctx, audit.Event{Event: audit.TokenRevoked, Outcome: audit.Success, UserID: rec.UserID, APIKeyID: rec.KeyID, Detail: "code_replay"})
	}
	s.log.WarnContext(ctx, "authorization code replayed; token revoked", "code", short(codeHash), "token", short(tokenHash))
	return apierr.New(apierr.InvalidCode)
}

// PublicProfile returns the user's public profile.
func (s *Service) PublicProfile(ctx context.Context, userID string) (User, error) {
	if err := account.CheckUserID(userID); err != nil {
		return User{}, err
	}
	return s.users.GetUser(ctx, userID)
}

type field struct {
	name  string
	value string
	max   int
}

// required rejects the first empty or over-long field, naming it.
func required(fields ...field) error {
	for _, f := range fields {
		if f.value == "" {
			return apierr.Newf(apierr.InvalidRequest, "缺少必填参数: %s", f.name)
		}
		if utf8.RuneCountInString(f.value) > f.max {
			return apierr.Newf(apierr.InvalidRequest, "参数过长: %s（最多%d个字符）", f.name, f.max)
		}
	}
	return nil
}

// seconds is a remaining lifetime as the whole seconds an API reports,
// rounded up so that a live record never reports 0.
func seconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32((d + time.Second - 1) / time.Second)
}

// short is the loggable part of a hash: enough to correlate, useless to
// an attacker.
func short(hash string) string {
	if len(hash) > 8 {
		return hash[:8]
	}
	return hash
}
