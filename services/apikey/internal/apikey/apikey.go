// Package apikey is the API-key domain: issuing keys (only their SHA-256
// hash is kept), listing, revoking, whitelists, and deciding whether a
// presented key may be used from a client IP.
package apikey

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/secret"
)

// Key format: "ml_" and 64 lowercase hex characters (SPEC section 2).
// Client id format: "mlc_" and 32 lowercase hex characters (SPEC section 8).
const (
	KeyPrefix      = "ml_"
	keyHexLen      = 64
	ClientIDPrefix = "mlc_"
	clientIDHexLen = 32
	prefixHex      = 8   // hex characters of the key shown in Key.Prefix
	MaxNameLen     = 100 // runes
	// MaxWhitelist bounds a whitelist so that one record stays small; no
	// real application needs more ranges than this.
	MaxWhitelist = 256
)

// Key is the record of an issued key: everything but the key itself.
type Key struct {
	ID   int64
	Hash string // SHA-256 hex of the key: its non-secret lookup identifier
	// Prefix is "ml_" and the key's first 8 hex characters, for recognising
	// a key in a list without revealing it.
	Prefix        string
	Name          string
	Whitelist     []netip.Prefix // canonical; empty allows any IP
	PasswordLogin bool
	CreatedAt     time.Time
	RevokedAt     *time.Time // nil while the key is active
	// ClientID is the key's public OAuth client id: random, not derived
	// from the key, so that showing it reveals nothing of the secret.
	ClientID string
	// Public marks a public OAuth client (a native or browser app): its
	// secret was never shown, so it authenticates with PKCE alone and
	// Validate refuses it.
	Public                 bool
	RedirectURIs           []string // exact strings, as registered
	PostLogoutRedirectURIs []string
}

// Revoked reports whether the key has been revoked.
func (k Key) Revoked() bool { return k.RevokedAt != nil }

// NewKey is what Create hands to the store.
type NewKey struct {
	Hash                   string
	Prefix                 string
	Name                   string
	Whitelist              []netip.Prefix
	PasswordLogin          bool
	ClientID               string
	Public                 bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
}

// Store keeps keys. Errors are apierr kinds: NotFound for an unknown id or
// hash, Unavailable when Postgres cannot be reached, Internal otherwise.
type Store interface {
	Insert(ctx context.Context, k NewKey) (Key, error)
	// List returns every key, revoked ones included, oldest first.
	List(ctx context.Context) ([]Key, error)
	// Revoke sets revoked_at unless it is already set, and returns the key.
	Revoke(ctx context.Context, id int64) (Key, error)
	SetWhitelist(ctx context.Context, id int64, whitelist []netip.Prefix) (Key, error)
	// SetRedirectURIs replaces the redirect URIs, or with postLogout the
	// post-logout redirect URIs, and returns the key.
	SetRedirectURIs(ctx context.Context, id int64, uris []string, postLogout bool) (Key, error)
	// ByClientID finds a key by its OAuth client id.
	ByClientID(ctx context.Context, clientID string) (Key, error)
	// ByHash finds a key by the SHA-256 hex of the key.
	ByHash(ctx context.Context, hash string) (Key, error)
	// ByID finds a key by its id.
	ByID(ctx context.Context, id int64) (Key, error)
}

// Service is the API-key domain over a Store.
type Service struct {
	store Store
}

// New returns a Service over store.
func New(store Store) *Service { return &Service{store: store} }

// CreateRequest describes a key to issue.
type CreateRequest struct {
	Name                   string
	Whitelist              []string
	DisablePasswordLogin   bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// Public registers a public OAuth client: Create returns no key.
	Public bool
}

// Create issues a new key and returns its record and the key itself. This is
// the only time the key exists outside the caller's hands: the store keeps
// its hash.
//
// A public client gets a random key all the same, so that every row has a
// unique key_hash and nothing downstream has to know that a key may be
// missing; but it is dropped here unseen (the returned key is ""), and
// Validate refuses the record, so it can never be presented.
func (s *Service) Create(ctx context.Context, req CreateRequest) (Key, string, error) {
	name, err := cleanName(req.Name)
	if err != nil {
		return Key{}, "", err
	}
	wl, err := parseWhitelist(req.Whitelist)
	if err != nil {
		return Key{}, "", err
	}
	redirects, err := CleanRedirectURIs(req.RedirectURIs, req.Public)
	if err != nil {
		return Key{}, "", err
	}
	postLogout, err := CleanRedirectURIs(req.PostLogoutRedirectURIs, req.Public)
	if err != nil {
		return Key{}, "", err
	}
	key := secret.New(KeyPrefix, keyHexLen, secret.Hex)
	k, err := s.store.Insert(ctx, NewKey{
		Hash:                   secret.Hash(key),
		Prefix:                 key[:len(KeyPrefix)+prefixHex],
		Name:                   name,
		Whitelist:              wl,
		PasswordLogin:          !req.DisablePasswordLogin,
		ClientID:               secret.New(ClientIDPrefix, clientIDHexLen, secret.Hex),
		Public:                 req.Public,
		RedirectURIs:           redirects,
		PostLogoutRedirectURIs: postLogout,
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("create api key: %w", err)
	}
	if req.Public {
		return k, "", nil
	}
	return k, key, nil
}

// List returns every key, revoked ones included, oldest first.
func (s *Service) List(ctx context.Context) ([]Key, error) {
	keys, err := s.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// Revoke ends a key for good. Revoking a revoked key keeps the first
// revocation time and is not an error; an unknown id is NotFound.
func (s *Service) Revoke(ctx context.Context, id int64) (Key, error) {
	if id <= 0 {
		return Key{}, apierr.Newf(apierr.NotFound, "API密钥不存在")
	}
	k, err := s.store.Revoke(ctx, id)
	if err != nil {
		return Key{}, fmt.Errorf("revoke api key %d: %w", id, notFoundMessage(err))
	}
	return k, nil
}

// SetWhitelist replaces a key's whitelist; an empty list allows any IP. A
// revoked key may still be changed: it stays revoked, so this is harmless,
// and refusing would only make scripts that tidy up every key fail.
func (s *Service) SetWhitelist(ctx context.Context, id int64, whitelist []string) (Key, error) {
	wl, err := parseWhitelist(whitelist)
	if err != nil {
		return Key{}, err
	}
	if id <= 0 {
		return Key{}, apierr.Newf(apierr.NotFound, "API密钥不存在")
	}
	k, err := s.store.SetWhitelist(ctx, id, wl)
	if err != nil {
		return Key{}, fmt.Errorf("set whitelist of api key %d: %w", id, notFoundMessage(err))
	}
	return k, nil
}

// Validate returns the record of key when it is active and clientIP is
// inside its whitelist. A malformed, unknown or revoked key, or the unseen
// key of a public client, gets the same InvalidAPIKey answer; an IP outside
// a non-empty whitelist (or one that cannot be parsed) gets IPNotAllowed.
//
// Nothing is cached here: the caller caches briefly, and every call reads
// Postgres so that a revocation is effective at the source at once.
func (s *Service) Validate(ctx context.Context, key, clientIP string) (Key, error) {
	if !WellFormed(key) {
		// Not a key we could have issued: no reason to ask the database.
		return Key{}, apierr.New(apierr.InvalidAPIKey)
	}
	hash := secret.Hash(key)
	k, err := s.store.ByHash(ctx, hash)
	if apierr.Is(err, apierr.NotFound) {
		return Key{}, apierr.New(apierr.InvalidAPIKey)
	}
	if err != nil {
		return Key{}, fmt.Errorf("validate api key: %w", err)
	}
	// The lookup already matched the hash; comparing again in constant time
	// keeps the decision itself independent of any index behaviour.
	// A public client's key was never shown, so presenting it means it
	// leaked from the database: refusing it keeps public clients off
	// /api/oauth, where no PKCE protects them.
	if !secret.Equal(k.Hash, hash) || k.Revoked() || k.Public {
		return Key{}, apierr.New(apierr.InvalidAPIKey)
	}
	if len(k.Whitelist) == 0 {
		return k, nil
	}
	addr, ok := parseClientIP(clientIP)
	if !ok || !ipset.Contains(k.Whitelist, addr) {
		return Key{}, apierr.New(apierr.IPNotAllowed)
	}
	return k, nil
}

// Check returns the record of the key with id while it is active; an
// unknown or revoked id gets InvalidAPIKey, as Validate answers for such a
// key. Like Validate it reads Postgres every time.
func (s *Service) Check(ctx context.Context, id int64) (Key, error) {
	if id <= 0 {
		return Key{}, apierr.New(apierr.InvalidAPIKey)
	}
	k, err := s.store.ByID(ctx, id)
	if apierr.Is(err, apierr.NotFound) {
		return Key{}, apierr.New(apierr.InvalidAPIKey)
	}
	if err != nil {
		return Key{}, fmt.Errorf("check api key %d: %w", id, err)
	}
	if k.Revoked() {
		return Key{}, apierr.New(apierr.InvalidAPIKey)
	}
	return k, nil
}

// SetRedirectURIs replaces a key's redirect URIs, or with postLogout its
// post-logout redirect URIs; an empty list clears them. The rules depend on
// whether the key is a public client, so the key is read first (that flag
// never changes). Like SetWhitelist it works on a revoked key.
func (s *Service) SetRedirectURIs(ctx context.Context, id int64, uris []string, postLogout bool) (Key, error) {
	if id <= 0 {
		return Key{}, apierr.Newf(apierr.NotFound, "API密钥不存在")
	}
	k, err := s.store.ByID(ctx, id)
	if err != nil {
		return Key{}, fmt.Errorf("set redirect uris of api key %d: %w", id, notFoundMessage(err))
	}
	clean, err := CleanRedirectURIs(uris, k.Public)
	if err != nil {
		return Key{}, err
	}
	k, err = s.store.SetRedirectURIs(ctx, id, clean, postLogout)
	if err != nil {
		return Key{}, fmt.Errorf("set redirect uris of api key %d: %w", id, notFoundMessage(err))
	}
	return k, nil
}

// Client returns the record of the active key whose OAuth client id this
// is. An unknown, revoked or malformed client id is NotFound: the front
// channel shows the same error page for each. A malformed one is refused
// before the store is asked, so nothing but the documented shape ever
// reaches SQL. Like Validate it reads Postgres every time.
func (s *Service) Client(ctx context.Context, clientID string) (Key, error) {
	notFound := apierr.Newf(apierr.NotFound, "客户端不存在或已停用")
	if !ClientIDWellFormed(clientID) {
		return Key{}, notFound
	}
	k, err := s.store.ByClientID(ctx, clientID)
	if apierr.Is(err, apierr.NotFound) {
		return Key{}, notFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("find oauth client: %w", err)
	}
	if k.Revoked() {
		return Key{}, notFound
	}
	return k, nil
}

// ClientIDWellFormed reports whether id has the issued format
// ^mlc_[0-9a-f]{32}$.
func ClientIDWellFormed(id string) bool {
	return len(id) == len(ClientIDPrefix)+clientIDHexLen && strings.HasPrefix(id, ClientIDPrefix) &&
		lowerHex(id[len(ClientIDPrefix):])
}

// WellFormed reports whether key has the issued format ^ml_[0-9a-f]{64}$.
func WellFormed(key string) bool {
	return len(key) == len(KeyPrefix)+keyHexLen && strings.HasPrefix(key, KeyPrefix) &&
		lowerHex(key[len(KeyPrefix):])
}

func lowerHex(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// parseClientIP reads a bare IP, the form callers send. An "ip:port" or
// "[v6]:port" is tolerated too, since a peer address is easy to pass by
// mistake and its IP is unambiguous.
func parseClientIP(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", apierr.Newf(apierr.InvalidRequest, "名称不能为空")
	case !utf8.ValidString(name):
		return "", apierr.Newf(apierr.InvalidRequest, "名称必须是有效的UTF-8文本")
	case utf8.RuneCountInString(name) > MaxNameLen:
		return "", apierr.Newf(apierr.InvalidRequest, "名称不能超过%d个字符", MaxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", apierr.Newf(apierr.InvalidRequest, "名称不能包含控制字符")
	}
	return name, nil
}

// parseWhitelist turns entries into canonical prefixes, dropping blanks and
// duplicates, and names the first bad entry.
func parseWhitelist(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	seen := make(map[netip.Prefix]bool, len(entries))
	for _, e := range entries {
		ps, err := ipset.Parse([]string{e})
		if err != nil {
			return nil, apierr.Newf(apierr.InvalidRequest, "白名单条目无效：%q（应为IPv4/IPv6地址或CIDR）", shorten(strings.TrimSpace(e)))
		}
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	if len(out) > MaxWhitelist {
		return nil, apierr.Newf(apierr.InvalidRequest, "白名单条目过多（最多%d条）", MaxWhitelist)
	}
	return out, nil
}

// shorten keeps an echoed bad entry short enough for a message.
func shorten(s string) string {
	const max = 64
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "…"
}

// notFoundMessage gives the store's NotFound a message naming the key.
func notFoundMessage(err error) error {
	if apierr.Is(err, apierr.NotFound) {
		return &apierr.Error{Kind: apierr.NotFound, Message: "API密钥不存在", Err: err}
	}
	return err
}
