package oauth

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/redirecturi"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/proto/wire"
)

// The OpenID Connect front channel (SPEC section 8): the authorization
// request, its sign-in and consent pages, the device verification page,
// sign-out and userinfo. The gateway's OIDC library speaks the protocol;
// everything it must not be trusted with alone (which client, which
// redirect URI, which scopes, who is signed in and whether they agreed) is
// decided here again.
//
// Redis keys of this file (prefix is MOREID_REDIS_PREFIX):
//
//	<prefix>oidc:authreq:{<id>}  AuthRequestRecord, TTL AuthRequestTTL

// AuthRequestTTL is how long an authorization request waits for the person
// (sign-in and consent included).
const AuthRequestTTL = 10 * time.Minute

// The OIDC audit events of the front channel (names shared with the back
// channel's: SPEC section 8, docs/ARCHITECTURE.md "OpenID Connect provider").
const (
	EventOIDCAuthorize = "oidc.authorize"
	EventOIDCSignIn    = "oidc.signin"
	EventOIDCConsent   = "oidc.consent"
	EventOIDCCode      = "oidc.code"
	EventOIDCDevice    = "oidc.device"
	EventOIDCLogout    = "oidc.logout"
)

// The scopes Moreid issues; any other scope a client asks for is ignored
// (OpenID Connect Core 1.0 section 3.1.2.1: unknown scope values are
// ignored).
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

var knownScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess}

// The prompt values of OpenID Connect Core 1.0 section 3.1.2.1 that Moreid
// honours (select_account has nothing to select: one session, one user).
const (
	PromptNone    = "none"
	PromptLogin   = "login"
	PromptConsent = "consent"
)

// Caps on the authorization request's fields: far above any legitimate
// value (RP libraries put JWTs in state), low enough that one request
// cannot store megabytes for ten minutes.
const (
	maxClientID      = 64
	maxRedirectURI   = 2048
	maxRPState       = 2048
	maxNonce         = 1024
	maxLoginHint     = 256
	maxAuthReqScopes = 32
	maxScope         = 128
	maxAuthReqID     = 64
	maxUserCode      = 32
	// An S256 challenge is the base64url of 32 bytes, unpadded.
	challengeLen = 43
)

// The id and code formats. An auth request id is random and not secret
// (it is in the page's URL); an OIDC code is a secret, stored only as its
// hash.
const (
	authReqPrefix  = "ar_"
	oidcCodePrefix = "mloc_"
	grantPrefix    = "grt_"
)

// AuthRequestRecord is a validated authorization request, waiting for the
// person. It is written once and never changed: finishing it takes it
// (TakeAuthRequest), so what a reader saw is what the taker gets.
type AuthRequestRecord struct {
	ClientID    string   `json:"c"`
	KeyID       int64    `json:"k"`
	KeyName     string   `json:"kn"`
	RedirectURI string   `json:"r"`
	Scopes      []string `json:"sc"`
	State       string   `json:"s,omitempty"`
	Nonce       string   `json:"n,omitempty"`
	// Challenge is the S256 code_challenge, "" without one.
	Challenge string   `json:"pc,omitempty"`
	Prompt    []string `json:"p,omitempty"`
	// MaxAge is max_age in seconds; nil when the request has none.
	MaxAge    *int64 `json:"ma,omitempty"`
	LoginHint string `json:"lh,omitempty"`
	// CreatedAt is when the request was stored (Unix seconds): a session
	// issued before it is not a fresh sign-in for prompt=login.
	CreatedAt int64 `json:"t"`
	// TTL is the remaining lifetime, filled in on reads; not stored.
	TTL time.Duration `json:"-"`
}

// DeviceDecision is what the person decided about a device authorization.
type DeviceDecision struct {
	Approve  bool
	User     int32
	UserID   string
	AuthTime int64
}

// OIDCFrontStore keeps the front channel's records (embedded in Store).
// Absent records are found=false, never errors.
type OIDCFrontStore interface {
	PutAuthRequest(ctx context.Context, id string, rec AuthRequestRecord, ttl time.Duration) error
	// PutCountedAuthRequest is PutAuthRequest counting the request against
	// its key's live requests (as PutCountedState counts states); over max
	// it stores nothing and returns how long until the key may have more.
	PutCountedAuthRequest(ctx context.Context, id string, rec AuthRequestRecord, ttl time.Duration, max int) (refusedFor time.Duration, err error)
	// AuthRequest returns the request with its remaining lifetime.
	AuthRequest(ctx context.Context, id string) (AuthRequestRecord, bool, error)
	// FinishAuthRequest takes the request, exactly once among concurrent
	// callers. With code set it also leaves the code record (under
	// codeHash, for ttl) if and only if this call took the request; a
	// caller that did not take it leaves no code behind.
	FinishAuthRequest(ctx context.Context, id, codeHash string, code *OIDCCodeRecord, ttl time.Duration) (AuthRequestRecord, bool, error)

	// RememberedConsent returns the user's consent for a client.
	RememberedConsent(ctx context.Context, user int32, clientID string) (ConsentRecord, bool, error)
	// GrantConsent adds scopes to the user's consent for a client
	// (atomically: concurrent grants keep every scope), at time at.
	GrantConsent(ctx context.Context, user int32, clientID string, scopes []string, at int64) error

	// LookupDevice resolves a normalised user code's hash to its device
	// authorization (and the device code's hash).
	LookupDevice(ctx context.Context, userCodeHash string) (deviceHash string, rec DeviceRecord, found bool, err error)
	// DecideDevice moves a pending device authorization to approved (with
	// the user) or denied, in one atomic step; decided=false when it was
	// not pending (or is gone).
	DecideDevice(ctx context.Context, deviceHash string, d DeviceDecision) (decided bool, err error)

	// DeleteSession ends a web session; an absent one is no error.
	DeleteSession(ctx context.Context, sessionHash string) error
}

// SetClock replaces the flows' clock (time.Now), for tests that move
// time: session ages, max_age and the records' timestamps follow it.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// OIDCClient returns the client with this client_id: invalid_client for an
// unknown, revoked or malformed one.
func (s *Service) OIDCClient(ctx context.Context, clientID string) (Client, error) {
	if !wellFormedClientID(clientID) {
		return Client{}, apierr.New(apierr.InvalidClient)
	}
	c, err := s.keys.Client(ctx, clientID)
	if apierr.Is(err, apierr.NotFound) || apierr.Is(err, apierr.InvalidAPIKey) || apierr.Is(err, apierr.InvalidRequest) {
		return Client{}, apierr.New(apierr.InvalidClient)
	}
	if err != nil {
		return Client{}, err
	}
	return c, nil
}

// wellFormedClientID spares the key service a lookup for values that
// cannot be a client_id ("mlc_" and letters, digits).
func wellFormedClientID(v string) bool {
	if len(v) <= len("mlc_") || len(v) > maxClientID || !strings.HasPrefix(v, "mlc_") {
		return false
	}
	for i := len("mlc_"); i < len(v); i++ {
		if strings.IndexByte(secret.Alphanumeric, v[i]) < 0 {
			return false
		}
	}
	return true
}

// AuthRequestParams is an authorization request as the gateway parsed it.
type AuthRequestParams struct {
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *int64
	LoginHint           string
}

// AuthRequest is a stored authorization request with its id.
type AuthRequest struct {
	ID string
	AuthRequestRecord
	ExpiresAt time.Time
}

// CreateAuthRequest validates an authorization request (again: the edge is
// not trusted with it) and stores it for AuthRequestTTL.
func (s *Service) CreateAuthRequest(ctx context.Context, p AuthRequestParams) (req AuthRequest, err error) {
	if err := required(field{"client_id", p.ClientID, maxClientID}, field{"redirect_uri", p.RedirectURI, maxRedirectURI}); err != nil {
		return AuthRequest{}, err
	}
	var keyID int64
	defer func() { s.recordResult(ctx, EventOIDCAuthorize, keyID, "", err, "") }()
	c, err := s.OIDCClient(ctx, p.ClientID)
	if err != nil {
		return AuthRequest{}, err
	}
	keyID = c.KeyID
	// Exact string match (RFC 9700 section 4.1.3): no normalisation, no
	// loopback port leniency.
	if !redirecturi.Matches(c.RedirectURIs, p.RedirectURI, c.Public) {
		return AuthRequest{}, apierr.Newf(apierr.InvalidRequest, "redirect_uri未注册")
	}
	rec, err := validAuthRequest(p)
	if err != nil {
		return AuthRequest{}, err
	}
	if c.Public && rec.Challenge == "" {
		return AuthRequest{}, apierr.Newf(apierr.InvalidRequest, "公开客户端必须使用PKCE（S256）")
	}
	rec.ClientID, rec.KeyID, rec.KeyName = c.ClientID, c.KeyID, c.Name
	now := s.now()
	rec.CreatedAt = now.Unix()
	id := secret.New(authReqPrefix, 43, secret.Alphanumeric)
	if err := s.putAuthRequest(ctx, id, rec); err != nil {
		return AuthRequest{}, err
	}
	rec.TTL = AuthRequestTTL
	return AuthRequest{ID: id, AuthRequestRecord: rec, ExpiresAt: now.Add(AuthRequestTTL).Truncate(time.Second)}, nil
}

// putAuthRequest stores a request. The authorization endpoint takes no
// key, so anyone can make auth store requests in a client's name; with
// MOREID_KEY_MAX_STATES set, a client's live requests are capped as its
// live states are, so that nobody can fill Redis through it.
func (s *Service) putAuthRequest(ctx context.Context, id string, rec AuthRequestRecord) error {
	if s.limits.KeyStates <= 0 {
		return s.store.PutAuthRequest(ctx, id, rec, AuthRequestTTL)
	}
	wait, err := s.store.PutCountedAuthRequest(ctx, id, rec, AuthRequestTTL, s.limits.KeyStates)
	if err != nil {
		return err
	}
	if wait > 0 {
		return throttled(s.tel, LimitStates, wait)
	}
	return nil
}

// validAuthRequest checks the request's own fields (the client's are
// checked by the caller) and returns the record to store.
func validAuthRequest(p AuthRequestParams) (AuthRequestRecord, error) {
	for _, f := range []field{
		{"state", p.State, maxRPState}, {"nonce", p.Nonce, maxNonce}, {"login_hint", p.LoginHint, maxLoginHint},
		{"code_challenge", p.CodeChallenge, challengeLen},
	} {
		if len(f.value) > f.max {
			return AuthRequestRecord{}, apierr.Newf(apierr.InvalidRequest, "参数过长: %s（最多%d个字符）", f.name, f.max)
		}
	}
	rec := AuthRequestRecord{RedirectURI: p.RedirectURI, State: p.State, Nonce: p.Nonce, LoginHint: p.LoginHint}
	switch {
	case p.CodeChallenge != "":
		// RFC 7636 section 4.3: an absent method means plain, which
		// SPEC refuses.
		if p.CodeChallengeMethod != "S256" {
			return AuthRequestRecord{}, apierr.Newf(apierr.InvalidRequest, "code_challenge_method必须为S256")
		}
		if !wellFormedChallenge(p.CodeChallenge) {
			return AuthRequestRecord{}, apierr.Newf(apierr.InvalidRequest, "code_challenge格式错误")
		}
		rec.Challenge = p.CodeChallenge
	case p.CodeChallengeMethod != "":
		return AuthRequestRecord{}, apierr.Newf(apierr.InvalidRequest, "缺少code_challenge")
	}
	scopes, err := grantableScopes(p.Scopes)
	if err != nil {
		return AuthRequestRecord{}, err
	}
	rec.Scopes = scopes
	for _, pr := range p.Prompt {
		if pr != PromptNone && pr != PromptLogin && pr != PromptConsent {
			return AuthRequestRecord{}, apierr.Newf(apierr.InvalidRequest, "不支持的prompt值")
		}
		if !slices.Contains(rec.Prompt, pr) {
			rec.Prompt = append(rec.Prompt, pr)
		}
	}
	// Section 3.1.2.1: none with any other value is an error.
	if slices.Contains(rec.Prompt, PromptNone) && len(rec.Prompt) > 1 {
		return AuthRequestRecord{}, apierr.Newf(apierr.InvalidRequest, "prompt=none不能与其他值同时使用")
	}
	if p.MaxAge != nil {
		if *p.MaxAge < 0 {
			return AuthRequestRecord{}, apierr.Newf(apierr.InvalidRequest, "max_age不能为负数")
		}
		v := *p.MaxAge
		rec.MaxAge = &v
	}
	return rec, nil
}

// wellFormedChallenge is RFC 7636's S256 challenge: 43 base64url
// characters.
func wellFormedChallenge(v string) bool {
	if len(v) != challengeLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// AuthRequestPage is a pending authorization request as its pages show it.
type AuthRequestPage struct {
	AuthRequest
	// User is the signed-in user; nil without a valid session (or for a
	// disabled user, who cannot authorize anything).
	User *User
	// CSRF goes with the session's state-changing calls; "" without User.
	CSRF string
}

// GetAuthRequest describes a pending authorization request for its pages;
// invalid_state when it is unknown, expired or finished. An invalid
// session is not an error: the page then offers to sign in.
func (s *Service) GetAuthRequest(ctx context.Context, session, id string) (AuthRequestPage, error) {
	req, err := s.liveAuthRequest(ctx, id)
	if err != nil {
		return AuthRequestPage{}, err
	}
	page := AuthRequestPage{AuthRequest: req}
	if session == "" {
		return page, nil
	}
	user, _, err := s.sessionAndUser(ctx, session)
	switch {
	case apierr.Is(err, apierr.Unauthenticated):
		return page, nil
	case err != nil:
		return AuthRequestPage{}, err
	case user.Disabled:
		return page, nil
	}
	page.User, page.CSRF = &user, wire.CSRFToken(session)
	return page, nil
}

// liveAuthRequest returns a pending authorization request; invalid_state
// otherwise.
func (s *Service) liveAuthRequest(ctx context.Context, id string) (AuthRequest, error) {
	if err := required(field{"auth_request_id", id, maxAuthReqID}); err != nil {
		return AuthRequest{}, err
	}
	if !strings.HasPrefix(id, authReqPrefix) {
		return AuthRequest{}, apierr.New(apierr.InvalidState)
	}
	rec, found, err := s.store.AuthRequest(ctx, id)
	if err != nil {
		return AuthRequest{}, err
	}
	if !found {
		return AuthRequest{}, apierr.New(apierr.InvalidState)
	}
	return AuthRequest{ID: id, AuthRequestRecord: rec, ExpiresAt: s.now().Add(rec.TTL).Truncate(time.Second)}, nil
}

// OIDCSignIn checks a user_id/password pair on the OIDC sign-in page of a
// live authorization request (authReqID set) or on the device page (authReqID
// empty) and opens a web session: ConfirmationService.SignIn's core, its
// limits and session, with the authorization request's own failure counter
// in place of the UCA's.
func (s *Service) OIDCSignIn(ctx context.Context, authReqID, userID, password string) (SignedIn, error) {
	if authReqID == "" {
		return s.pageSignIn(ctx, EventOIDCSignIn, userID, password, nil)
	}
	if err := required(field{"auth_request_id", authReqID, maxAuthReqID}); err != nil {
		return SignedIn{}, err
	}
	return s.pageSignIn(ctx, EventOIDCSignIn, userID, password, func(ctx context.Context) (int64, string, error) {
		req, err := s.liveAuthRequest(ctx, authReqID)
		if err != nil {
			return 0, "", err
		}
		// The id is no secret, but the counter is named by its hash like
		// every other subject's, in the page counter's keyspace.
		return req.KeyID, secret.Hash(authReqPrefix + "signin:" + authReqID), nil
	})
}

// Decision is what the gateway asks of Decide.
type Decision int

const (
	DecideAuto Decision = iota + 1
	DecideApprove
	DecideDeny
)

// Next is what an authorization request needs after Decide.
type Next int

const (
	NextLogin Next = iota + 1
	NextConsent
	NextRedirect
)

// Decided is Decide's answer. With NextRedirect, Code (or Error) goes to
// RedirectURI with State.
type Decided struct {
	Next             Next
	RedirectURI      string
	Code             string
	State            string
	Error            string
	ErrorDescription string
}

// The authorization response errors of RFC 6749 section 4.1.2.1 and OpenID
// Connect Core section 3.1.2.6 that Decide answers.
const (
	errAccessDenied    = "access_denied"
	errLoginRequired   = "login_required"
	errConsentRequired = "consent_required"
)

// Decide moves an authorization request on (see OIDCService.Decide): what it
// needs next, or its end, exactly once: a finished request yields one code
// (or one error redirect) to one caller, and invalid_state to every other.
//
// Why a disabled user finishes with access_denied rather than NEXT_LOGIN:
// signing in again cannot help them, and the client should learn that this
// person will not be signed in, with prompt=none as without.
func (s *Service) Decide(ctx context.Context, session, csrf, id string, d Decision) (out Decided, err error) {
	if d != DecideAuto && d != DecideApprove && d != DecideDeny {
		return Decided{}, apierr.Newf(apierr.InvalidRequest, "缺少必填参数: decision")
	}
	req, err := s.liveAuthRequest(ctx, id)
	if err != nil {
		return Decided{}, err
	}
	user, sess, err := s.sessionAndUser(ctx, session)
	signedIn := err == nil
	if err != nil && !apierr.Is(err, apierr.Unauthenticated) {
		return Decided{}, err
	}
	none := slices.Contains(req.Prompt, PromptNone)
	if signedIn && d != DecideAuto && (csrf == "" || !secret.Equal(wire.CSRFToken(session), csrf)) {
		// The person's own answer needs the page's token; a cross-site
		// form cannot approve for them.
		s.recordResult(ctx, EventOIDCConsent, req.KeyID, user.UserID, apierr.New(apierr.CSRFFailed), "")
		return Decided{}, apierr.New(apierr.CSRFFailed)
	}
	switch {
	case !signedIn:
		return s.needLogin(ctx, req, none)
	case user.Disabled:
		s.recordResult(ctx, EventOIDCAuthorize, req.KeyID, user.UserID, apierr.New(apierr.AccountDisabled), "")
		return s.finishWithError(ctx, req, errAccessDenied, "账号已停用")
	case d == DecideDeny:
		s.record(ctx, audit.Event{Event: EventOIDCConsent, Outcome: audit.Denied, UserID: user.UserID, APIKeyID: req.KeyID, Detail: "denied"})
		return s.finishWithError(ctx, req, errAccessDenied, "用户拒绝了授权")
	case !s.freshEnough(req.AuthRequestRecord, sess):
		return s.needLogin(ctx, req, none)
	case d == DecideApprove:
		if err := s.store.GrantConsent(ctx, user.ID, req.ClientID, req.Scopes, s.now().Unix()); err != nil {
			s.recordResult(ctx, EventOIDCConsent, req.KeyID, user.UserID, err, "")
			return Decided{}, err
		}
		s.recordResult(ctx, EventOIDCConsent, req.KeyID, user.UserID, nil, "granted")
		return s.finishWithCode(ctx, req, user, sess)
	}
	remembered, err := s.consented(ctx, user, req.ClientID, req.Scopes)
	if err != nil {
		return Decided{}, err
	}
	if !remembered || slices.Contains(req.Prompt, PromptConsent) {
		if none {
			return s.finishWithError(ctx, req, errConsentRequired, "需要用户同意授权")
		}
		return Decided{Next: NextConsent}, nil
	}
	s.recordResult(ctx, EventOIDCConsent, req.KeyID, user.UserID, nil, "remembered")
	return s.finishWithCode(ctx, req, user, sess)
}

// freshEnough applies prompt=login and max_age to the session. A session
// opened after the request was created is a sign-in made for this very
// request and satisfies both: otherwise a max_age of 0 or 1 would send the
// person back to the sign-in page forever, one second too late each time.
// Times are whole seconds, as the session records its issue time.
func (s *Service) freshEnough(req AuthRequestRecord, sess SessionRecord) bool {
	if sess.IssuedAt >= req.CreatedAt {
		return true
	}
	if slices.Contains(req.Prompt, PromptLogin) {
		return false
	}
	return req.MaxAge == nil || s.now().Unix()-sess.IssuedAt <= *req.MaxAge
}

// needLogin answers a request whose session will not do: the sign-in page,
// or with prompt=none the login_required error redirect.
func (s *Service) needLogin(ctx context.Context, req AuthRequest, none bool) (Decided, error) {
	if none {
		return s.finishWithError(ctx, req, errLoginRequired, "需要登录")
	}
	return Decided{Next: NextLogin}, nil
}

// consented reports whether the user's remembered consent for the client
// covers every scope asked for.
func (s *Service) consented(ctx context.Context, user User, clientID string, scopes []string) (bool, error) {
	rec, found, err := s.store.RememberedConsent(ctx, user.ID, clientID)
	if err != nil || !found {
		return false, err
	}
	for _, sc := range scopes {
		if !slices.Contains(rec.Scopes, sc) {
			return false, nil
		}
	}
	return true, nil
}

// finishWithCode ends the request with an authorization code for user. The
// code record is written in the same step that takes the request, so of
// concurrent finishers exactly one gets a code, and a code exists only if
// it was handed out.
func (s *Service) finishWithCode(ctx context.Context, req AuthRequest, user User, sess SessionRecord) (out Decided, err error) {
	defer func() { s.recordResult(ctx, EventOIDCCode, req.KeyID, user.UserID, err, "authorization_code") }()
	code := secret.New(oidcCodePrefix, 43, secret.Alphanumeric)
	rec := OIDCCodeRecord{
		ClientID: req.ClientID, KeyID: req.KeyID, KeyName: req.KeyName, RedirectURI: req.RedirectURI,
		Scopes: req.Scopes, Nonce: req.Nonce, Challenge: req.Challenge,
		User: user.ID, UserID: user.UserID, AuthTime: sess.IssuedAt,
		Grant: secret.New(grantPrefix, 32, secret.Alphanumeric),
	}
	if _, taken, err := s.store.FinishAuthRequest(ctx, req.ID, secret.Hash(code), &rec, OIDCCodeTTL); err != nil {
		return Decided{}, err
	} else if !taken {
		// A concurrent Decide finished it first.
		return Decided{}, apierr.New(apierr.InvalidState)
	}
	return Decided{Next: NextRedirect, RedirectURI: req.RedirectURI, Code: code, State: req.State}, nil
}

// finishWithError ends the request with an error redirect, once.
func (s *Service) finishWithError(ctx context.Context, req AuthRequest, code, description string) (Decided, error) {
	_, taken, err := s.store.FinishAuthRequest(ctx, req.ID, "", nil, 0)
	if err != nil {
		return Decided{}, err
	}
	if !taken {
		return Decided{}, apierr.New(apierr.InvalidState)
	}
	if code != errAccessDenied {
		s.record(ctx, audit.Event{Event: EventOIDCAuthorize, Outcome: audit.Failure, APIKeyID: req.KeyID, Detail: code})
	}
	return Decided{Next: NextRedirect, RedirectURI: req.RedirectURI, State: req.State, Error: code, ErrorDescription: description}, nil
}

// sessionAndUser is sessionUser with the session record itself, whose
// issue time is the sign-in time (auth_time) the OIDC rules need.
func (s *Service) sessionAndUser(ctx context.Context, session string) (User, SessionRecord, error) {
	if !wellFormedSession(session) {
		return User{}, SessionRecord{}, apierr.New(apierr.Unauthenticated)
	}
	rec, found, err := s.store.Session(ctx, secret.Hash(session))
	if err != nil {
		return User{}, SessionRecord{}, err
	}
	if !found {
		return User{}, SessionRecord{}, apierr.New(apierr.Unauthenticated)
	}
	user, err := s.users.GetUser(ctx, rec.UserID)
	if apierr.Is(err, apierr.NotFound) {
		return User{}, SessionRecord{}, apierr.New(apierr.Unauthenticated)
	}
	if err != nil {
		return User{}, SessionRecord{}, err
	}
	return user, rec, nil
}

// DevicePage is a pending device authorization as the verification page
// shows it.
type DevicePage struct {
	Record    DeviceRecord
	ExpiresAt time.Time
	User      *User
	CSRF      string
}

// GetDevice looks up a pending device authorization by the user code the
// person typed; invalid_code for an unknown, expired or decided one.
// Wrong codes count against the client address (with every failed
// sign-in, as wrong login codes do) and against the session, if any (the
// page counter, MaxUCAFails per UCATTL), so that the verification page is
// no way to enumerate user codes.
func (s *Service) GetDevice(ctx context.Context, session, userCode string) (DevicePage, error) {
	var page DevicePage
	if session != "" {
		user, _, err := s.sessionAndUser(ctx, session)
		switch {
		case err == nil && !user.Disabled:
			page.User, page.CSRF = &user, wire.CSRFToken(session)
		case err != nil && !apierr.Is(err, apierr.Unauthenticated):
			return DevicePage{}, err
		}
	}
	sessionHash := ""
	if page.User != nil {
		sessionHash = secret.Hash(session)
	}
	_, rec, err := s.pendingDevice(ctx, sessionHash, userCode)
	if err != nil {
		return DevicePage{}, err
	}
	page.Record, page.ExpiresAt = rec, time.Unix(rec.ExpiresAt, 0)
	return page, nil
}

// pendingDevice finds a pending device authorization by user code, under a
// reservation of the throttles (a wrong code is a counted failure).
func (s *Service) pendingDevice(ctx context.Context, sessionHash, userCode string) (deviceHash string, rec DeviceRecord, err error) {
	code := NormalizeUserCode(userCode)
	if err := required(field{"user_code", code, maxUserCode}); err != nil {
		return "", DeviceRecord{}, err
	}
	a := Attempt{IP: ipSubject(ClientIP(ctx))}
	if sessionHash != "" {
		a.UCAHash = secret.Hash("device:" + sessionHash)
	}
	att, err := s.reserve(ctx, a)
	if err != nil {
		return "", DeviceRecord{}, err
	}
	wrong := false
	defer func() {
		if serr := s.settle(ctx, att, wrong); serr != nil {
			err = serr
		}
	}()
	deviceHash, rec, found, err := s.store.LookupDevice(ctx, secret.Hash(code))
	if err != nil {
		return "", DeviceRecord{}, err
	}
	if !found {
		wrong = true
		return "", DeviceRecord{}, apierr.New(apierr.InvalidCode)
	}
	// A known code that is no longer pending, or past its end, was no
	// guess: not counted, but nothing to decide either.
	if rec.State != DevicePending || rec.ExpiresAt <= s.now().Unix() {
		return "", DeviceRecord{}, apierr.New(apierr.InvalidCode)
	}
	return deviceHash, rec, nil
}

// DecideDevice approves or denies a pending device authorization as the
// signed-in person (session and CSRF), once.
func (s *Service) DecideDevice(ctx context.Context, session, csrf, userCode string, approve bool) (err error) {
	detail := "deny"
	if approve {
		detail = "approve"
	}
	var user User
	var rec DeviceRecord
	defer func() { s.recordResult(ctx, EventOIDCDevice, rec.KeyID, user.UserID, err, detail) }()
	// sessionWithCSRF's checks, keeping the session record: its issue
	// time is the approval's auth_time.
	user, sess, err := s.sessionAndUser(ctx, session)
	if err != nil {
		return err
	}
	if csrf == "" || !secret.Equal(wire.CSRFToken(session), csrf) {
		return apierr.New(apierr.CSRFFailed)
	}
	if user.Disabled {
		return apierr.New(apierr.AccountDisabled)
	}
	deviceHash, r, err := s.pendingDevice(ctx, secret.Hash(session), userCode)
	if err != nil {
		return err
	}
	rec = r
	decided, err := s.store.DecideDevice(ctx, deviceHash, DeviceDecision{Approve: approve, User: user.ID, UserID: user.UserID, AuthTime: sess.IssuedAt})
	if err != nil {
		return err
	}
	if !decided {
		// A concurrent decision (or the end of the code) came first.
		return apierr.New(apierr.InvalidCode)
	}
	return nil
}

// EndSession ends the web session (RP-initiated logout); no session, or an
// ended one, is no error. With subject (the logout request's id_token_hint
// sub), a session of another user is left alone and reported (otherUser).
func (s *Service) EndSession(ctx context.Context, session, subject string) (otherUser bool, err error) {
	if !wellFormedSession(session) {
		return false, nil
	}
	h := secret.Hash(session)
	rec, found, err := s.store.Session(ctx, h)
	if err != nil {
		return false, err
	}
	if !found {
		return false, nil
	}
	if subject != "" && subject != strconv.Itoa(int(rec.User)) {
		// A valid id_token_hint of one user proves nothing about another's
		// session: the gateway asks the person instead.
		return true, nil
	}
	err = s.store.DeleteSession(ctx, h)
	s.recordResult(ctx, EventOIDCLogout, 0, rec.UserID, err, "end_session")
	return false, err
}

// Userinfo is the OIDC userinfo of a token: its user and the scopes that
// say which claims to show.
type Userinfo struct {
	User   User
	Scopes []string
	// Profile and Email say which claim groups the token allows.
	Profile bool
	Email   bool
}

// OIDCUserinfo resolves a Bearer token for the userinfo endpoint:
// invalid_token for anything not active and for a token with no user
// (client credentials). A token issued by /api/oauth (no scopes) shows
// the profile and email claims: its holder may read the whole profile on
// /api/oauth/userinfo already.
func (s *Service) OIDCUserinfo(ctx context.Context, token string) (Userinfo, error) {
	t, err := s.ResolveToken(ctx, token)
	if apierr.Is(err, apierr.InvalidRequest) {
		// ResolveToken checks the token's own form itself (invalid_token),
		// so invalid_request can only be the user service refusing the
		// record's user_id: a token with no user (client credentials),
		// which is no token for userinfo.
		return Userinfo{}, apierr.New(apierr.InvalidToken)
	}
	if err != nil {
		return Userinfo{}, err
	}
	if t.Record.User == 0 || t.Record.UserID == "" {
		return Userinfo{}, apierr.New(apierr.InvalidToken)
	}
	info := Userinfo{User: t.User, Scopes: t.Record.Scopes}
	info.Profile, info.Email = claimsAllowed(t.Record)
	if len(t.Record.Scopes) == 0 {
		info.Scopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail}
	}
	return info, nil
}

// grantableScopes is the one rule of what a person can be asked to grant
// (an authorization request, a device authorization): the known scopes of
// the request, each once; unknown ones are ignored (OpenID Connect Core
// 3.1.2.1), and invalid_scope when nothing is left.
func grantableScopes(requested []string) ([]string, error) {
	if len(requested) > maxAuthReqScopes {
		return nil, apierr.Newf(apierr.InvalidScope, "scope过多")
	}
	var out []string
	for _, sc := range requested {
		if len(sc) > maxScope {
			return nil, apierr.Newf(apierr.InvalidScope, "scope过长")
		}
		if slices.Contains(knownScopes, sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, apierr.Newf(apierr.InvalidScope, "没有可授予的scope")
	}
	return out, nil
}

// claimsAllowed is the one rule of which profile fields a token shows, on
// every surface: an OpenID Connect token those its scopes name (SPEC
// section 8: profile, email), a token of /api/oauth (no scopes) all of
// them, as the API document has it.
func claimsAllowed(rec TokenRecord) (profile, email bool) {
	if len(rec.Scopes) == 0 {
		return true, true
	}
	return slices.Contains(rec.Scopes, ScopeProfile), slices.Contains(rec.Scopes, ScopeEmail)
}

// scopedUser is the token's user with only the fields its scopes allow;
// the id (the OIDC sub) always stays.
func scopedUser(t ActiveToken) User {
	u := t.User
	profile, email := claimsAllowed(t.Record)
	if !profile {
		u.UserID, u.Username, u.Bio, u.AvatarURL = "", "", "", ""
	}
	if !email {
		u.Email = ""
	}
	return u
}
