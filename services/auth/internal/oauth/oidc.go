package oauth

import (
	"context"
	"strings"
	"time"
)

// The OpenID Connect provider's records (SPEC section 8). They are defined
// here, in one place, because different flows write and read them: Decide
// writes the code record that RedeemCode redeems, StartDevice writes the
// device record that the verification page decides and the device polls,
// the consent page writes the consents that WithdrawConsent ends. Every key
// holding a secret is named by its SHA-256 (secret.Hash), never the secret.
//
// Redis keys (prefix is MOREID_REDIS_PREFIX):
//
//	<prefix>oidc:code:{<hash(code)>}          OIDCCodeRecord, TTL the code lifetime
//	<prefix>oidc:device:{<hash(device_code)>} DeviceRecord, TTL the device code lifetime
//	<prefix>oidc:usercode:{<hash(user code)>} hash(device_code), same TTL; the user code
//	                                          is normalised (NormalizeUserCode) first
//	<prefix>oidc:consent:{<users.id>}         hash: client_id -> ConsentRecord, no TTL

// OIDCCodeTTL is an OIDC authorization code's lifetime (RFC 6749 section
// 4.1.2 recommends at most 10 minutes).
const OIDCCodeTTL = 10 * time.Minute

// NormalizeUserCode is the form a device user code is hashed and compared
// in: the person may type it in any case, with or without the dash or
// spaces (SPEC section 8).
func NormalizeUserCode(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// DisplayUserCode is a normalised user code as the person is shown it:
// XXXX-XXXX. The stored device record holds no form of the user code (it
// is a secret until redeemed), so the page shows the one the person typed.
func DisplayUserCode(normalised string) string {
	if len(normalised) != 8 {
		return normalised
	}
	return normalised[:4] + "-" + normalised[4:]
}

// Client is an API key seen as an OAuth client (apikeyv1.APIKey's OAuth
// fields).
type Client struct {
	KeyID                  int64
	ClientID               string
	Name                   string
	Public                 bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// Whitelist is the key's whitelist (canonical IPs and CIDRs): it
	// applies to the client's back-channel calls, never to the browser.
	Whitelist []string
}

// ClientDirectory finds clients by client_id.
type ClientDirectory interface {
	// Client returns the active key whose client_id this is; not_found for
	// an unknown, revoked or malformed client_id.
	Client(ctx context.Context, clientID string) (Client, error)
}

// OIDCCodeRecord is the value of an OIDC authorization code record: a
// finished authorization request, waiting to be redeemed once by its
// client.
type OIDCCodeRecord struct {
	ClientID    string   `json:"c"`
	KeyID       int64    `json:"k"`
	KeyName     string   `json:"kn"`
	RedirectURI string   `json:"r"`
	Scopes      []string `json:"sc"`
	Nonce       string   `json:"n,omitempty"`
	// Challenge is the S256 code_challenge (the only method accepted).
	Challenge string `json:"pc,omitempty"`
	User      int32  `json:"u"`
	UserID    string `json:"uid"`
	// AuthTime is when the user signed in (Unix seconds).
	AuthTime int64 `json:"at"`
	// Grant is a random id naming everything this code issues, so that a
	// replay can revoke it all.
	Grant string `json:"g"`
}

// Device authorization states (DeviceRecord.State).
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceRedeemed = "redeemed"
)

// DeviceRecord is the value of a device authorization record (RFC 8628).
type DeviceRecord struct {
	ClientID string   `json:"c"`
	KeyID    int64    `json:"k"`
	KeyName  string   `json:"kn"`
	Scopes   []string `json:"sc"`
	State    string   `json:"st"`
	// User, UserID and AuthTime are set by the person's approval.
	User     int32  `json:"u,omitempty"`
	UserID   string `json:"uid,omitempty"`
	AuthTime int64  `json:"at,omitempty"`
	// Interval is the minimum seconds between polls; slow_down adds 5.
	Interval int `json:"iv"`
	// LastPoll is the last poll's time (Unix milliseconds), 0 before one.
	LastPoll int64 `json:"lp,omitempty"`
	// ExpiresAt is the device code's end (Unix seconds).
	ExpiresAt int64 `json:"exp"`
}

// ConsentRecord is one remembered consent of a user for a client.
type ConsentRecord struct {
	Scopes    []string `json:"sc"`
	GrantedAt int64    `json:"t"`
}
