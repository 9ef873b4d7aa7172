package oauth

import (
	"cmp"
	"context"
	"strings"

	"github.com/moreline/moreid/platform/account"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/proto/wire"
)

// maxUCA caps the uca field; a real UCA has 20 characters.
const maxUCA = 128

// CreateUCA starts a safe login on a state of this key: a one-time
// confirmation code, valid 10 minutes but never beyond the state. The state
// is not consumed (login_safe will).
func (s *Service) CreateUCA(ctx context.Context, key Key, state string) (string, error) {
	if err := required(field{"state", state, maxState}); err != nil {
		return "", err
	}
	stateHash := secret.Hash(state)
	st, err := s.ownState(ctx, key, stateHash)
	if err != nil {
		return "", err
	}
	// The state's lifetime only shrinks, so a UCA written with the TTL read
	// above ends no later than its state.
	ttl := min(UCATTL, st.TTL)
	if ttl <= 0 {
		return "", apierr.New(apierr.InvalidState)
	}
	uca := secret.New("uca_", 16, secret.Alphanumeric)
	rec := UCARecord{KeyID: key.ID, StateHash: stateHash, App: key.Name}
	if err := s.store.PutUCA(ctx, secret.Hash(uca), rec, ttl); err != nil {
		return "", err
	}
	return uca, nil
}

// Confirmation is what the confirmation page shows about a pending UCA.
type Confirmation struct {
	App       string
	ExpiresIn int32
	// User is the signed-in user; nil without a valid session (or for a
	// disabled user, who cannot confirm anything).
	User *User
	// CSRF goes with the session's state-changing calls; "" without User.
	CSRF string
}

// GetConfirmation describes a pending UCA. An invalid session is not an
// error here: the page then offers to sign in.
func (s *Service) GetConfirmation(ctx context.Context, session, uca string) (Confirmation, error) {
	rec, err := s.liveUCA(ctx, uca)
	if err != nil {
		return Confirmation{}, err
	}
	c := Confirmation{App: rec.App, ExpiresIn: seconds(rec.TTL)}
	if session == "" {
		return c, nil
	}
	user, err := s.sessionUser(ctx, session)
	switch {
	case apierr.Is(err, apierr.Unauthenticated):
		return c, nil
	case err != nil:
		return Confirmation{}, err
	case user.Disabled:
		return c, nil
	}
	c.User, c.CSRF = &user, wire.CSRFToken(session)
	return c, nil
}

// SignedIn is a fresh web session.
type SignedIn struct {
	Session   string
	CSRF      string
	ExpiresIn int32
	User      User
}

// SignIn checks a user_id/password pair on the page of a live UCA and opens a
// web session. A wrong password leaves the UCA alone.
func (s *Service) SignIn(ctx context.Context, uca, userID, password string) (SignedIn, error) {
	if err := required(field{"uca", uca, maxUCA}); err != nil {
		return SignedIn{}, err
	}
	return s.pageSignIn(ctx, audit.SignIn, userID, password, func(ctx context.Context) (int64, string, error) {
		// Only the page of a live UCA signs in, so the form is no open
		// password oracle.
		rec, err := s.liveUCA(ctx, uca)
		if err != nil {
			return 0, "", err
		}
		return rec.KeyID, secret.Hash(uca), nil
	})
}

// pageSignIn is the one password sign-in of the web pages (the
// confirmation page, the OIDC sign-in and device pages): the same checks,
// limits, session and audit trail wherever the person types the password,
// so that no page is a cheaper guess at an account than another. event
// names the page's audit event. page finds what the page is for (nil: a
// page of no record, the device page): the key to audit the attempt under
// and the hash that the page's own failure counter (MaxUCAFails) is kept
// under ("" for none); its error ends the attempt before anything is
// counted.
func (s *Service) pageSignIn(ctx context.Context, event, userID, password string, page func(context.Context) (keyID int64, pageHash string, err error)) (in SignedIn, err error) {
	if err := cmp.Or(
		account.CheckUserID(userID),
		account.CheckLoginPassword(password),
	); err != nil {
		return SignedIn{}, err
	}
	// The key is the one of the app that asked, once the page's record is
	// known.
	var keyID int64
	defer func() { s.recordResult(ctx, event, keyID, userID, err, "password") }()
	var pageHash string
	if page != nil {
		if keyID, pageHash, err = page(ctx); err != nil {
			return SignedIn{}, err
		}
	}
	// The same limits as /login (both are password guesses at the
	// account), and the page's own: after MaxUCAFails wrong passwords its
	// page signs nobody in any more.
	att, err := s.reserve(ctx, Attempt{UCAHash: pageHash, UserID: userID, IP: ipSubject(ClientIP(ctx))})
	if err != nil {
		return SignedIn{}, err
	}
	user, err := s.users.VerifyPassword(ctx, userID, password)
	if serr := s.settle(ctx, att, apierr.Is(err, apierr.InvalidCredentials)); serr != nil {
		return SignedIn{}, serr
	}
	if err != nil {
		return SignedIn{}, err
	}
	session, err := s.newSession(ctx, user)
	if err != nil {
		return SignedIn{}, err
	}
	return SignedIn{Session: session, CSRF: wire.CSRFToken(session), ExpiresIn: seconds(s.ttl.Session), User: user}, nil
}

// GenerateLoginCode is the signed-in user's confirmation: it consumes the UCA
// and returns a login code bound to the UCA's state and key and to the user.
// keyID is the caller's validated API key, 0 when none was sent; a key that
// is not the UCA's own gets invalid_code, as if the UCA did not exist, so
// another app learns nothing about UCAs it did not create.
func (s *Service) GenerateLoginCode(ctx context.Context, keyID int64, session, csrf, uca string) (code string, expiresIn int32, err error) {
	if err := required(field{"uca", uca, maxUCA}); err != nil {
		return "", 0, err
	}
	var user User
	var rec UCARecord
	defer func() { s.recordResult(ctx, audit.LoginCodeIssued, rec.KeyID, user.UserID, err, "") }()
	user, err = s.sessionWithCSRF(ctx, session, csrf)
	if err != nil {
		return "", 0, err
	}
	if user.Disabled {
		return "", 0, apierr.New(apierr.AccountDisabled)
	}
	// The login code is written before the UCA is taken, and deleted if
	// the take fails: a failed confirmation leaves the UCA usable. A UCA
	// record never changes, so the one read here is the one taken.
	ucaHash := secret.Hash(uca)
	rec, err = s.liveUCA(ctx, uca)
	if err != nil {
		return "", 0, err
	}
	if keyID != 0 && rec.KeyID != keyID {
		// Left untaken: the UCA's own app and the page can still use it.
		return "", 0, apierr.New(apierr.InvalidCode)
	}
	code = newLoginCode()
	codeHash := secret.Hash(code)
	lc := LoginCodeRecord{KeyID: rec.KeyID, User: user.ID, UserID: user.UserID}
	if err := s.store.PutLoginCode(ctx, rec.StateHash, codeHash, lc, LoginCodeTTL); err != nil {
		return "", 0, err
	}
	_, found, err := s.store.TakeUCA(ctx, ucaHash)
	if err == nil && !found {
		// A concurrent confirmation or denial took it first.
		err = apierr.New(apierr.InvalidCode)
	}
	if err != nil {
		if derr := s.store.DeleteLoginCode(ctx, rec.StateHash, codeHash); derr != nil {
			s.log.ErrorContext(ctx, "delete unissued login code", "error", derr.Error())
		}
		return "", 0, err
	}
	return code, seconds(LoginCodeTTL), nil
}

// DenyConfirmation is the signed-in user's refusal: the UCA ends.
func (s *Service) DenyConfirmation(ctx context.Context, session, csrf, uca string) (err error) {
	if err := required(field{"uca", uca, maxUCA}); err != nil {
		return err
	}
	var user User
	var rec UCARecord
	defer func() { s.recordResult(ctx, audit.ConfirmDenied, rec.KeyID, user.UserID, err, "") }()
	user, err = s.sessionWithCSRF(ctx, session, csrf)
	if err != nil {
		return err
	}
	rec, found, err := s.store.TakeUCA(ctx, secret.Hash(uca))
	if err != nil {
		return err
	}
	if !found {
		return apierr.New(apierr.InvalidCode)
	}
	return nil
}

// LoginSafe redeems a login code against a state of this key, exactly once,
// consuming both, and issues an authorization code as Login does. Wrong login
// codes count against the state (the fifth burns it) and the client IP;
// nobody's user_id is known before the code is right.
func (s *Service) LoginSafe(ctx context.Context, key Key, state, loginCode string) (code string, user User, err error) {
	if err := required(field{"state", state, maxState}, field{"login_code", loginCode, secret.LoginCodeLen}); err != nil {
		return "", User{}, err
	}
	// A malformed code is a client mistake, not a guess: 400, not counted.
	if !wellFormedLoginCode(loginCode) {
		return "", User{}, apierr.Newf(apierr.InvalidRequest, "login_code格式错误（应为10位小写字母或数字）")
	}
	var userID string
	defer func() { s.recordResult(ctx, audit.LoginSafe, key.ID, userID, err, "safe") }()
	stateHash, loginCodeHash := secret.Hash(state), secret.Hash(loginCode)
	// A place on the state and the address is held until the code is
	// redeemed or counted as wrong (throttle.go), so a right code never
	// finds its state burned by wrong ones sent alongside. The reservation
	// also checks that the state is this key's.
	att, err := s.reserve(ctx, Attempt{KeyID: key.ID, StateHash: stateHash, IP: ipSubject(ClientIP(ctx))})
	if err != nil {
		return "", User{}, err
	}
	wrong := false
	defer func() {
		if serr := s.settle(ctx, att, wrong); serr != nil {
			code, user, err = "", User{}, serr
		}
	}()
	// Everything that can fail is checked before the atomic redemption, so
	// that a failure (the user service down, say) leaves the login code and
	// the state usable for a retry: the login code is read without being
	// consumed, and its user looked up. A login code record never changes,
	// so the one read is the one redeemed.
	pending, found, err := s.store.LoginCode(ctx, stateHash, loginCodeHash)
	if err != nil {
		return "", User{}, err
	}
	if !found || pending.KeyID != key.ID {
		// No such login code: a guess, unless the state itself is gone
		// meanwhile (a concurrent login_safe redeemed it), which answers
		// as any used state does and is no guess.
		if _, err := s.ownState(ctx, key, stateHash); err != nil {
			return "", User{}, err
		}
		wrong = true // counted against the state (the fifth burns it) and the address
		return "", User{}, apierr.New(apierr.InvalidCode)
	}
	userID = pending.UserID
	// The user confirmed up to five minutes ago; a disabled account gets no
	// code even so.
	user, err = s.users.GetUser(ctx, pending.UserID)
	if apierr.Is(err, apierr.NotFound) {
		return "", User{}, apierr.New(apierr.InvalidCode)
	}
	if err != nil {
		return "", User{}, err
	}
	if user.Disabled {
		return "", User{}, apierr.New(apierr.AccountDisabled)
	}
	code, err = s.issueCode(ctx, key, stateHash, user, "safe", func(ctx context.Context) error {
		_, outcome, err := s.store.RedeemLoginCode(ctx, stateHash, loginCodeHash, key.ID)
		if err != nil {
			return err
		}
		switch outcome {
		case LoginRedeemed:
			return nil
		case LoginNoState:
			return apierr.New(apierr.InvalidState)
		default:
			// A concurrent login_safe with the same code got there first:
			// no guess, not counted.
			return apierr.New(apierr.InvalidCode)
		}
	})
	if err != nil {
		return "", User{}, err
	}
	return code, user, nil
}

// liveUCA returns an existing UCA; invalid_code otherwise.
func (s *Service) liveUCA(ctx context.Context, uca string) (UCARecord, error) {
	if err := required(field{"uca", uca, maxUCA}); err != nil {
		return UCARecord{}, err
	}
	rec, found, err := s.store.UCA(ctx, secret.Hash(uca))
	if err != nil {
		return UCARecord{}, err
	}
	if !found {
		return UCARecord{}, apierr.New(apierr.InvalidCode)
	}
	return rec, nil
}

// newLoginCode draws a login code from the look-alike-free alphabet
// (secret.LoginCode says why, and what entropy that leaves).
func newLoginCode() string {
	return secret.New("", secret.LoginCodeLen, secret.LoginCode)
}

// wellFormedLoginCode is the documented format, secret.LoginCodeLen
// characters of [a-z0-9], not the narrower alphabet codes are drawn from.
// A code with a look-alike in it (a 0 typed for an o) is one that cannot
// exist: a wrong answer like any unknown code, counted against the state,
// while 400 stays for input a client following the documented contract
// could never send.
func wellFormedLoginCode(v string) bool {
	if len(v) != secret.LoginCodeLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if strings.IndexByte(secret.LowerAlnum, v[i]) < 0 {
			return false
		}
	}
	return true
}
