package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/secret"
)

// The OpenID Connect back channel (SPEC section 8): the token endpoint's
// grants, refresh token families, the device flow's poll, introspection,
// revocation and the withdrawal of consent.
//
// Exactly once, and revocation on replay, rest on one ordering rule: a
// token is written (unknown to anyone) and made a member of what revokes
// it (its grant, its family) before the one atomic step that hands it
// out, and is deleted again when that step refuses. So whatever revokes
// a grant or family after the step finds every token it issued.

// DefaultRefreshTTL is MOREID_REFRESH_TOKEN_TTL's default.
const DefaultRefreshTTL = 720 * time.Hour

// Audit events of the back channel.
const (
	eventToken      = "oidc.token"
	eventCodeReplay = "oidc.code_replay"
	eventReuse      = "oidc.refresh_reuse"
	eventClientCred = "oidc.client_credentials"
	eventDevice     = "oidc.device"
	eventIntrospect = "oidc.introspect"
	eventRevoke     = "oidc.revoke"
	eventConsent    = "oidc.consent"
)

// The scopes with a user meaning, which a client_credentials token never
// carries.
var userScopes = []string{"openid", "profile", "email", "offline_access"}

const (
	scopeOffline    = "offline_access"
	refreshPrefix   = "mlrt_"
	familyIDLen     = 24
	refreshLen      = len(refreshPrefix) + familyIDLen + 40
	deviceInterval  = 5
	maxDeviceExpiry = 30 * time.Minute
	maxScopes       = 32
)

// CodeRedemption is what RedeemOIDCCode observed; for a replay, the
// client that redeemed the code and its grant.
type CodeRedemption struct {
	Outcome  Outcome
	ClientID string
	Grant    string
	// Challenge is the redeemed code's PKCE challenge (Replayed only).
	Challenge string
}

// FamilyRecord is a refresh token family: the grant every refresh token of
// it continues. It never changes; the family's current token does.
type FamilyRecord struct {
	ClientID string   `json:"c"`
	KeyID    int64    `json:"k"`
	KeyName  string   `json:"kn"`
	User     int32    `json:"u"`
	UserID   string   `json:"uid"`
	Scopes   []string `json:"sc"`
	AuthTime int64    `json:"at"`
	Grant    string   `json:"g"`
	IssuedAt int64    `json:"iat"`
}

// Family is a live family as read: the hash of its current refresh token,
// when that was issued (Unix seconds) and the family's remaining lifetime.
type Family struct {
	Record   FamilyRecord
	Current  string
	IssuedAt int64
	TTL      time.Duration
}

// RotationOutcome is the result of one atomic refresh.
type RotationOutcome int

const (
	// Rotated: the presented token was current; the new pair is the
	// family's now.
	Rotated RotationOutcome = iota
	// RotationMismatch: the family is another client's; untouched.
	RotationMismatch
	// Reused: the presented token was rotated out already; the family and
	// its access tokens are gone.
	Reused
	// RotationMissing: no such family or token.
	RotationMissing
)

// Rotation is what RotateRefresh observed.
type Rotation struct {
	Outcome RotationOutcome
}

// PollOutcome is the result of one atomic device poll.
type PollOutcome string

// The poll outcomes (the store's script speaks them).
const (
	PollApproved PollOutcome = "ok"
	PollPending  PollOutcome = "pending"
	PollSlowDown PollOutcome = "slow_down"
	PollDenied   PollOutcome = "denied"
	PollRedeemed PollOutcome = "redeemed"
	PollExpired  PollOutcome = "expired"
	PollMissing  PollOutcome = "missing"
	PollMismatch PollOutcome = "mismatch"
)

// DevicePoll is what PollDevice observed: the record when it was approved
// (and is now redeemed), the new interval on slow_down.
type DevicePoll struct {
	Outcome  PollOutcome
	Record   DeviceRecord
	Interval int
}

// GrantStore keeps the back channel's records (redisstore/oidcgrant.go).
type GrantStore interface {
	// OIDCCode reads a code record; it is written once and never changed.
	OIDCCode(ctx context.Context, codeHash string) (OIDCCodeRecord, bool, error)
	// RedeemOIDCCode atomically deletes the code if it is clientID's and
	// leaves a used marker naming the client and grant.
	RedeemOIDCCode(ctx context.Context, codeHash, clientID string) (CodeRedemption, error)
	// AddGrantMember adds "t:<token hash>" or "f:<family>" to a grant;
	// false when the grant was revoked.
	AddGrantMember(ctx context.Context, grant, member string, ttl time.Duration) (bool, error)
	// RevokeGrant marks the grant revoked and returns its members.
	RevokeGrant(ctx context.Context, grant string, ttl time.Duration) ([]string, error)
	// PutFamily starts a family with its first refresh and access token
	// and adds it to its user's index.
	PutFamily(ctx context.Context, family string, rec FamilyRecord, refreshHash, accessHash string, ttl time.Duration) error
	Family(ctx context.Context, family string) (Family, bool, error)
	// RotateRefresh is the atomic refresh (see RotationOutcome); a reuse
	// deletes the family's access tokens too.
	RotateRefresh(ctx context.Context, family, presentedHash, clientID, newRefreshHash, newAccessHash string, ttl time.Duration) (Rotation, error)
	// RevokeFamily ends a family with its access tokens: unconditionally
	// with presentedHash "", else only when the token is one of the
	// family's and the family clientID's. Reports whether it ended one.
	RevokeFamily(ctx context.Context, family, presentedHash, clientID string) (bool, error)
	UserFamilies(ctx context.Context, userID string) ([]string, error)
	UserTokens(ctx context.Context, userID string) ([]string, error)
	// PutDevice stores a device authorization; false when the user code
	// is taken (nothing stored).
	PutDevice(ctx context.Context, deviceHash, userCodeHash string, rec DeviceRecord, ttl time.Duration) (bool, error)
	PollDevice(ctx context.Context, deviceHash, clientID string, now time.Time) (DevicePoll, error)
	// DeleteConsents deletes a user's consent for clientID ("" every
	// client) and returns the clients whose consent ended.
	DeleteConsents(ctx context.Context, user int32, clientID string) ([]string, error)
}

// Grant is what a token grant issued.
type Grant struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string
	Scopes       []string
	// Subject is the decimal users.id; "" for client credentials.
	Subject  string
	AuthTime int64
	Nonce    string
	ClientID string
}

// Introspection is RFC 7662's answer.
type Introspection struct {
	Active    bool
	Scopes    []string
	ClientID  string
	Subject   string
	Username  string
	TokenType string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

func (s *Service) refreshTTL() time.Duration {
	if s.ttl.Refresh > 0 {
		return s.ttl.Refresh
	}
	return DefaultRefreshTTL
}

// PublicClient admits a public client's keyless back-channel call: the
// client must exist and be public (else invalid_client), and its
// whitelist, if any, must hold the caller's address (ip_not_allowed), as
// ValidateKey checks a confidential client's.
func (s *Service) PublicClient(ctx context.Context, clientID string) (Client, error) {
	if clientID == "" || len(clientID) > maxCode {
		return Client{}, apierr.New(apierr.InvalidClient)
	}
	c, err := s.keys.Client(ctx, clientID)
	if apierr.Is(err, apierr.NotFound) || apierr.Is(err, apierr.InvalidRequest) {
		return Client{}, apierr.New(apierr.InvalidClient)
	}
	if err != nil {
		return Client{}, err
	}
	if !c.Public {
		return Client{}, apierr.New(apierr.InvalidClient)
	}
	if len(c.Whitelist) > 0 {
		list, err := ipset.Parse(c.Whitelist)
		if err != nil {
			return Client{}, apierr.Wrap(apierr.Internal, err)
		}
		ip, err := netip.ParseAddr(ClientIP(ctx))
		if err != nil || !ipset.Contains(list, ip) {
			return Client{}, apierr.New(apierr.IPNotAllowed)
		}
	}
	return c, nil
}

// pkceOK checks RFC 7636 S256: a code with a challenge needs the verifier
// that hashes to it; a code without one takes no verifier.
func pkceOK(challenge, verifier string) bool {
	if challenge == "" {
		return verifier == ""
	}
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return secret.Equal(base64.RawURLEncoding.EncodeToString(sum[:]), challenge)
}

// minted is a token written but not yet handed out: undo deletes it.
type minted struct {
	access, accessHash   string
	refresh, refreshHash string
	family               string
}

func (s *Service) undo(ctx context.Context, m minted) {
	if m.accessHash != "" {
		if _, _, err := s.store.DeleteToken(ctx, m.accessHash); err != nil {
			s.log.ErrorContext(ctx, "delete unissued token", "token", short(m.accessHash), "error", err.Error())
		}
	}
	if m.family != "" {
		if _, err := s.store.RevokeFamily(ctx, m.family, "", ""); err != nil {
			s.log.ErrorContext(ctx, "end unissued family", "family", m.family, "error", err.Error())
		}
	}
}

// newAccess writes an access token record.
func (s *Service) newAccess(ctx context.Context, rec TokenRecord) (minted, error) {
	tok := secret.New(tokenPrefix, 56, secret.Alphanumeric)
	h := secret.Hash(tok)
	rec.IssuedAt = s.now().Unix()
	if err := s.store.PutToken(ctx, h, rec, s.ttl.Token); err != nil {
		return minted{}, err
	}
	return minted{access: tok, accessHash: h}, nil
}

// newFamily writes an access token and, with offline_access, a refresh
// token family holding it, both members of grant; ok=false when the grant
// was revoked meanwhile (nothing is left then).
func (s *Service) newFamily(ctx context.Context, c Client, user int32, userID string, scopes []string, authTime int64, grant string) (m minted, ok bool, err error) {
	fam := ""
	if slices.Contains(scopes, scopeOffline) {
		fam = secret.New("", familyIDLen, secret.Alphanumeric)
	}
	m, err = s.newAccess(ctx, TokenRecord{KeyID: c.KeyID, KeyName: c.Name, User: user, UserID: userID, ClientID: c.ClientID, Scopes: scopes, Grant: grant, Family: fam})
	if err != nil {
		return minted{}, false, err
	}
	grantTTL := max(s.ttl.Token, s.refreshTTL())
	if ok, err := s.store.AddGrantMember(ctx, grant, "t:"+m.accessHash, grantTTL); err != nil || !ok {
		s.undo(ctx, m)
		return minted{}, false, err
	}
	if fam == "" {
		return m, true, nil
	}
	m.refresh = refreshPrefix + fam + secret.New("", refreshLen-len(refreshPrefix)-familyIDLen, secret.Alphanumeric)
	m.refreshHash = secret.Hash(m.refresh)
	rec := FamilyRecord{ClientID: c.ClientID, KeyID: c.KeyID, KeyName: c.Name, User: user, UserID: userID, Scopes: scopes, AuthTime: authTime, Grant: grant, IssuedAt: s.now().Unix()}
	if err := s.store.PutFamily(ctx, fam, rec, m.refreshHash, m.accessHash, s.refreshTTL()); err != nil {
		s.undo(ctx, m)
		return minted{}, false, err
	}
	m.family = fam
	if ok, err := s.store.AddGrantMember(ctx, grant, "f:"+fam, grantTTL); err != nil || !ok {
		s.undo(ctx, m)
		return minted{}, false, err
	}
	return m, true, nil
}

// RedeemCode is the authorization_code grant for client c. The checks of
// the code's binding (client, redirect_uri, PKCE) run before the code is
// consumed, on the record as written (it never changes): a wrong verifier
// or redirect_uri is refused without burning the code, so that whoever
// intercepted a public client's code (and can claim its client_id) cannot
// spend it for the rightful client by sending garbage, and guessing a
// verifier of 256 bits is hopeless. Exactly once is the atomic redemption
// that follows, which hands out the tokens minted before it.
func (s *Service) RedeemCode(ctx context.Context, c Client, code, verifier, redirectURI string) (g Grant, err error) {
	var userID string
	defer func() { s.recordResult(ctx, eventToken, c.KeyID, userID, err, "authorization_code") }()
	if code == "" || len(code) > maxCode || len(verifier) > 128 || len(redirectURI) > 2048 {
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	h := secret.Hash(code)
	rec, found, err := s.store.OIDCCode(ctx, h)
	if err != nil {
		return Grant{}, err
	}
	if !found {
		r, err := s.store.RedeemOIDCCode(ctx, h, c.ClientID)
		if err != nil {
			return Grant{}, err
		}
		return Grant{}, s.codeGone(ctx, c, h, verifier, r)
	}
	if rec.ClientID != c.ClientID || rec.RedirectURI != redirectURI || !pkceOK(rec.Challenge, verifier) || (c.Public && rec.Challenge == "") {
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	userID = rec.UserID
	// A user disabled or deleted since the code was issued gets no ID
	// token: the relying party would sign them in. (The calling key was
	// just checked by the interceptor.)
	if _, active, err := s.enabledUser(ctx, rec.UserID); err != nil || !active {
		if err != nil {
			return Grant{}, err
		}
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	m, ok, err := s.newFamily(ctx, c, rec.User, rec.UserID, rec.Scopes, rec.AuthTime, rec.Grant)
	if err != nil {
		return Grant{}, err
	}
	if !ok {
		// The grant was revoked: the code was replayed meanwhile.
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	r, err := s.store.RedeemOIDCCode(ctx, h, c.ClientID)
	if err == nil && r.Outcome == Redeemed {
		return Grant{AccessToken: m.access, ExpiresIn: s.ttl.Token, RefreshToken: m.refresh, Scopes: rec.Scopes,
			Subject: strconv.FormatInt(int64(rec.User), 10), AuthTime: rec.AuthTime, Nonce: rec.Nonce, ClientID: c.ClientID}, nil
	}
	s.undo(ctx, m)
	if err != nil {
		return Grant{}, err
	}
	return Grant{}, s.codeGone(ctx, c, h, verifier, r)
}

// codeGone answers a code that is not (or no longer) redeemable:
// invalid_grant, after revoking everything its grant issued when the
// client that redeemed it presents it again (RFC 6749 section 4.1.2).
// Another client's replay touches nothing: it must not be able to end
// this client's tokens. Nor may anyone who merely saw a public client's
// code (its client_id is no secret): for a public client only a replay
// that proves the code's PKCE verifier revokes.
func (s *Service) codeGone(ctx context.Context, c Client, codeHash, verifier string, r CodeRedemption) error {
	if r.Outcome != Replayed || r.ClientID != c.ClientID || r.Grant == "" {
		return apierr.New(apierr.InvalidGrant)
	}
	if c.Public && !pkceOK(r.Challenge, verifier) {
		return apierr.New(apierr.InvalidGrant)
	}
	n, err := s.revokeGrant(ctx, r.Grant)
	s.recordResult(ctx, eventCodeReplay, c.KeyID, "", err, "grant_revoked")
	if err != nil {
		return err
	}
	s.log.WarnContext(ctx, "oidc code replayed; grant revoked", "code", short(codeHash), "revoked", n)
	return apierr.New(apierr.InvalidGrant)
}

// revokeGrant ends every token and family of a grant.
func (s *Service) revokeGrant(ctx context.Context, grant string) (int, error) {
	members, err := s.store.RevokeGrant(ctx, grant, max(s.ttl.Token, s.refreshTTL()))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range members {
		if h, ok := strings.CutPrefix(m, "t:"); ok {
			_, found, err := s.store.DeleteToken(ctx, h)
			if err != nil {
				return n, err
			}
			if found {
				n++
			}
		} else if f, ok := strings.CutPrefix(m, "f:"); ok {
			ended, err := s.store.RevokeFamily(ctx, f, "", "")
			if err != nil {
				return n, err
			}
			if ended {
				n++
			}
		}
	}
	return n, nil
}

// familyOf is the family id a refresh token names.
func familyOf(token string) (string, bool) {
	if len(token) != refreshLen || !strings.HasPrefix(token, refreshPrefix) {
		return "", false
	}
	return token[len(refreshPrefix) : len(refreshPrefix)+familyIDLen], true
}

// activeUser is the user a grant continues, if they may still be issued
// tokens: a deleted or disabled user, or a revoked key, ends it.
func (s *Service) activeUser(ctx context.Context, keyID int64, userID string) (User, bool, error) {
	active, err := s.keys.KeyActive(ctx, keyID)
	if err != nil || !active {
		return User{}, false, err
	}
	return s.enabledUser(ctx, userID)
}

// enabledUser is the user when it exists and is not disabled.
func (s *Service) enabledUser(ctx context.Context, userID string) (User, bool, error) {
	u, err := s.users.GetUser(ctx, userID)
	if apierr.Is(err, apierr.NotFound) {
		return User{}, false, nil
	}
	if err != nil {
		return User{}, false, err
	}
	return u, !u.Disabled, nil
}

// Refresh is the refresh_token grant: the presented token, if current,
// is rotated out for a new one and a new access token (scopes may narrow
// the access token's, never widen them). A rotated-out token presented
// again ends the family (RFC 9700 section 4.14.2): one of the two parties
// holding it is an attacker, and which one cannot be told.
func (s *Service) Refresh(ctx context.Context, c Client, token string, scopes []string) (g Grant, err error) {
	var userID string
	defer func() { s.recordResult(ctx, eventToken, c.KeyID, userID, err, "refresh_token") }()
	fam, ok := familyOf(token)
	if !ok {
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	f, found, err := s.store.Family(ctx, fam)
	if err != nil {
		return Grant{}, err
	}
	if !found || f.Record.ClientID != c.ClientID {
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	rec := f.Record
	userID = rec.UserID
	granted := rec.Scopes
	if len(scopes) > 0 {
		if len(scopes) > maxScopes {
			return Grant{}, apierr.New(apierr.InvalidScope)
		}
		for _, sc := range scopes {
			if !slices.Contains(rec.Scopes, sc) {
				return Grant{}, apierr.New(apierr.InvalidScope)
			}
		}
		granted = scopes
	}
	if _, ok, err := s.activeUser(ctx, rec.KeyID, rec.UserID); err != nil || !ok {
		if err != nil {
			return Grant{}, err
		}
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	m, err := s.newAccess(ctx, TokenRecord{KeyID: rec.KeyID, KeyName: rec.KeyName, User: rec.User, UserID: rec.UserID, ClientID: c.ClientID, Scopes: granted, Grant: rec.Grant, Family: fam})
	if err != nil {
		return Grant{}, err
	}
	newRefresh := refreshPrefix + fam + secret.New("", refreshLen-len(refreshPrefix)-familyIDLen, secret.Alphanumeric)
	r, err := s.store.RotateRefresh(ctx, fam, secret.Hash(token), c.ClientID, secret.Hash(newRefresh), m.accessHash, s.refreshTTL())
	if err == nil && r.Outcome == Rotated {
		return Grant{AccessToken: m.access, ExpiresIn: s.ttl.Token, RefreshToken: newRefresh, Scopes: granted,
			Subject: strconv.FormatInt(int64(rec.User), 10), AuthTime: rec.AuthTime, ClientID: c.ClientID}, nil
	}
	s.undo(ctx, m)
	if err != nil {
		return Grant{}, err
	}
	if r.Outcome == Reused {
		s.record(ctx, audit.Event{Event: eventReuse, Outcome: audit.Success, UserID: rec.UserID, APIKeyID: c.KeyID, Detail: "family_revoked"})
		s.log.WarnContext(ctx, "refresh token reused; family revoked", "family", fam)
	}
	return Grant{}, apierr.New(apierr.InvalidGrant)
}

// IssueClientToken is the client_credentials grant: a token of the app
// itself, for a confidential client only. It has no user, so it carries
// none of the user scopes, and no user endpoint accepts it.
func (s *Service) IssueClientToken(ctx context.Context, c Client, scopes []string) (g Grant, err error) {
	defer func() { s.recordResult(ctx, eventClientCred, c.KeyID, "", err, "client_credentials") }()
	if c.Public {
		return Grant{}, apierr.New(apierr.UnauthorizedClient)
	}
	if len(scopes) > maxScopes {
		return Grant{}, apierr.New(apierr.InvalidScope)
	}
	var kept []string
	for _, sc := range scopes {
		if !slices.Contains(userScopes, sc) && sc != "" && len(sc) <= maxCode && !slices.Contains(kept, sc) {
			kept = append(kept, sc)
		}
	}
	m, err := s.newAccess(ctx, TokenRecord{KeyID: c.KeyID, KeyName: c.Name, ClientID: c.ClientID, Scopes: kept})
	if err != nil {
		return Grant{}, err
	}
	return Grant{AccessToken: m.access, ExpiresIn: s.ttl.Token, Scopes: kept, ClientID: c.ClientID}, nil
}

// StartDevice stores a device authorization the gateway drew the codes
// of; conflict when the user code is taken (the gateway draws again).
// It returns the poll interval in seconds.
func (s *Service) StartDevice(ctx context.Context, c Client, deviceCode, userCode string, scopes []string, expiresIn time.Duration) (interval int, err error) {
	defer func() { s.recordResult(ctx, eventDevice, c.KeyID, "", err, "start") }()
	norm := NormalizeUserCode(userCode)
	if deviceCode == "" || len(deviceCode) > maxCode || norm == "" || len(norm) > 32 || len(scopes) > maxScopes {
		return 0, apierr.Newf(apierr.InvalidRequest, "设备码或用户码无效")
	}
	if expiresIn <= 0 || expiresIn > maxDeviceExpiry {
		expiresIn = OIDCCodeTTL
	}
	// The same scopes the authorization endpoint grants: the consent page
	// must not show, nor tokens carry, a scope the client made up. Without
	// any (RFC 8628 makes scope optional) the person grants sign-in only.
	if len(scopes) == 0 {
		scopes = []string{ScopeOpenID}
	}
	scopes, err = grantableScopes(scopes)
	if err != nil {
		return 0, err
	}
	rec := DeviceRecord{ClientID: c.ClientID, KeyID: c.KeyID, KeyName: c.Name, Scopes: scopes,
		State: DevicePending, Interval: deviceInterval, ExpiresAt: s.now().Add(expiresIn).Unix()}
	ok, err := s.store.PutDevice(ctx, secret.Hash(deviceCode), secret.Hash(norm), rec, expiresIn)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, apierr.New(apierr.Conflict)
	}
	return deviceInterval, nil
}

// PollDevice answers a device's poll (RFC 8628 section 3.5): the tokens
// exactly once after approval. The store records the poll's time from
// this service's clock.
func (s *Service) PollDevice(ctx context.Context, c Client, deviceCode string) (g Grant, err error) {
	var userID string
	detail := "redeem"
	defer func() { s.recordResult(ctx, eventDevice, c.KeyID, userID, err, detail) }()
	if deviceCode == "" || len(deviceCode) > maxCode {
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	p, err := s.store.PollDevice(ctx, secret.Hash(deviceCode), c.ClientID, s.now())
	if err != nil {
		return Grant{}, err
	}
	switch p.Outcome {
	case PollApproved:
	case PollPending:
		return Grant{}, apierr.New(apierr.AuthorizationPending)
	case PollSlowDown:
		return Grant{}, apierr.New(apierr.SlowDown)
	case PollDenied:
		return Grant{}, apierr.New(apierr.AccessDenied)
	case PollExpired:
		return Grant{}, apierr.New(apierr.ExpiredToken)
	default:
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	rec := p.Record
	userID = rec.UserID
	if _, active, err := s.enabledUser(ctx, rec.UserID); err != nil || !active {
		if err != nil {
			return Grant{}, err
		}
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	// The tokens are minted after the redemption: a device code has no
	// replay to revoke on, and a failure here costs the device its code
	// (it starts again), never a second grant.
	m, ok, err := s.newFamily(ctx, c, rec.User, rec.UserID, rec.Scopes, rec.AuthTime, secret.New("", 22, secret.Alphanumeric))
	if err != nil {
		return Grant{}, err
	}
	if !ok {
		return Grant{}, apierr.New(apierr.InvalidGrant)
	}
	return Grant{AccessToken: m.access, ExpiresIn: s.ttl.Token, RefreshToken: m.refresh, Scopes: rec.Scopes,
		Subject: strconv.FormatInt(int64(rec.User), 10), AuthTime: rec.AuthTime, ClientID: c.ClientID}, nil
}

// Introspect is RFC 7662 for client c: an access or refresh token issued
// to c's key and still usable is active; anything else is just inactive.
func (s *Service) IntrospectOIDC(ctx context.Context, c Client, token string) (in Introspection, err error) {
	defer func() {
		detail := "inactive"
		if in.Active {
			detail = "active"
		}
		s.recordResult(ctx, eventIntrospect, c.KeyID, in.Username, err, detail)
	}()
	if fam, ok := familyOf(token); ok {
		f, found, err := s.store.Family(ctx, fam)
		if err != nil || !found || f.Record.KeyID != c.KeyID || !secret.Equal(f.Current, secret.Hash(token)) {
			return Introspection{}, err
		}
		u, ok, err := s.activeUser(ctx, f.Record.KeyID, f.Record.UserID)
		if err != nil || !ok {
			return Introspection{}, err
		}
		return Introspection{Active: true, Scopes: f.Record.Scopes, ClientID: f.Record.ClientID, Subject: strconv.FormatInt(int64(u.ID), 10),
			Username: u.UserID, TokenType: "refresh_token", IssuedAt: time.Unix(f.IssuedAt, 0), ExpiresAt: s.now().Add(f.TTL).Truncate(time.Second)}, nil
	}
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return Introspection{}, nil
	}
	rec, found, err := s.store.Token(ctx, secret.Hash(token))
	if err != nil || !found || rec.KeyID != c.KeyID {
		return Introspection{}, err
	}
	in = Introspection{Active: true, Scopes: rec.Scopes, ClientID: c.ClientID, TokenType: "Bearer",
		IssuedAt: time.Unix(rec.IssuedAt, 0), ExpiresAt: s.now().Add(rec.TTL).Truncate(time.Second)}
	if rec.UserID == "" {
		// A client_credentials token: the key must still be active.
		active, err := s.keys.KeyActive(ctx, rec.KeyID)
		if err != nil || !active {
			return Introspection{}, err
		}
		return in, nil
	}
	u, ok, err := s.activeUser(ctx, rec.KeyID, rec.UserID)
	if err != nil || !ok {
		return Introspection{}, err
	}
	in.Subject, in.Username = strconv.FormatInt(int64(u.ID), 10), u.UserID
	return in, nil
}

// RevokeOIDC is RFC 7009 for client c: its access token is deleted, its
// refresh token ends the family (with the access tokens it minted).
// Another client's token, or an unknown one, is left alone and the call
// succeeds all the same.
func (s *Service) RevokeOIDC(ctx context.Context, c Client, token string) error {
	if fam, ok := familyOf(token); ok {
		ended, err := s.store.RevokeFamily(ctx, fam, secret.Hash(token), c.ClientID)
		if err != nil || ended {
			s.recordResult(ctx, eventRevoke, c.KeyID, "", err, "refresh_token")
		}
		return err
	}
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return nil
	}
	h := secret.Hash(token)
	// A token's key never changes, so checking it before the delete is
	// no race.
	rec, found, err := s.store.Token(ctx, h)
	if err != nil {
		s.recordResult(ctx, eventRevoke, c.KeyID, "", err, "")
		return err
	}
	if !found || rec.KeyID != c.KeyID {
		return nil
	}
	_, found, err = s.store.DeleteToken(ctx, h)
	if err != nil || found {
		s.recordResult(ctx, eventRevoke, c.KeyID, rec.UserID, err, "access_token")
	}
	return err
}

// WithdrawConsent ends a user's remembered consent for clientID ("" every
// client) and the tokens and refresh token families those clients hold
// for the user, so that the app must ask again. It returns how many apps'
// consents ended.
func (s *Service) WithdrawConsent(ctx context.Context, userID, clientID string) (n int, err error) {
	defer func() { s.recordResult(ctx, eventConsent, 0, userID, err, "withdrawn") }()
	if len(clientID) > maxCode {
		return 0, apierr.Newf(apierr.InvalidRequest, "参数过长: client_id")
	}
	u, err := s.PublicProfile(ctx, userID)
	if err != nil {
		return 0, err
	}
	clients, err := s.store.DeleteConsents(ctx, u.ID, clientID)
	if err != nil {
		return 0, err
	}
	match := func(c string) bool { return c != "" && (clientID == "" || c == clientID) }
	fams, err := s.store.UserFamilies(ctx, userID)
	if err != nil {
		return 0, err
	}
	for _, fam := range fams {
		f, found, err := s.store.Family(ctx, fam)
		if err != nil {
			return 0, err
		}
		if found && match(f.Record.ClientID) {
			if _, err := s.store.RevokeFamily(ctx, fam, "", ""); err != nil {
				return 0, err
			}
		}
	}
	hashes, err := s.store.UserTokens(ctx, userID)
	if err != nil {
		return 0, err
	}
	for _, h := range hashes {
		rec, found, err := s.store.Token(ctx, h)
		if err != nil {
			return 0, err
		}
		if found && match(rec.ClientID) {
			if _, _, err := s.store.DeleteToken(ctx, h); err != nil {
				return 0, err
			}
		}
	}
	return len(clients), nil
}
