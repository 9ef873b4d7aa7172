package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/grpc"

	"github.com/moreline/moreid/platform/ipset"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
)

var apikeyCreate = &command{
	group: "apikey", name: "create",
	synopsis: "apikey create --name NAME [--whitelist IP_OR_CIDR[,...]] [--no-password-login] " +
		"[--redirect-uri URI]... [--post-logout-redirect-uri URI]... [--public]",
	summary: "Issue an API key, shown only this once.",
	help: `Issue an API key. Every key is also an OpenID Connect client: its client_id
is printed on a line "client_id: mlc_...", and the key, its client secret, is
printed alone on the last line, and only this once.
  --name NAME                   the application's name, shown to users (required)
  --whitelist IP_OR_CIDR[,...]  client IPs allowed to use the key (default: any)
  --no-password-login           allow only the safe login flow with this key
  --redirect-uri URI            an OAuth redirect URI (repeatable), matched
                                exactly: https, or http on localhost,
                                127.0.0.0/8 or [::1]
  --post-logout-redirect-uri URI
                                where logout may send the browser (repeatable)
  --public                      a public client (native or browser app): no
                                secret, PKCE required; it may also use a
                                private-use scheme such as com.example.app:/cb.
                                The client_id is printed alone on the last line.`,
}

var apikeyList = &command{
	group: "apikey", name: "list",
	synopsis: "apikey list [--json]",
	summary:  "List every API key, revoked ones included.",
	help: `List every API key, revoked ones included, oldest first.
  --json    print a JSON array of {id, name, prefix, whitelist, password_login,
            created_at, revoked, client_id, public, redirect_uris,
            post_logout_redirect_uris}`,
}

var apikeyRevoke = &command{
	group: "apikey", name: "revoke",
	synopsis: "apikey revoke KEY_ID",
	summary:  "Revoke an API key for good.",
	help: `Revoke an API key for good (KEY_ID is the number shown by 'apikey list').
Revoking a key that is already revoked changes nothing, says so and exits 0:
the key is refused either way, which is what a retried script wants.`,
}

var apikeyWhitelist = &command{
	group: "apikey", name: "whitelist",
	synopsis: "apikey whitelist KEY_ID --set IP_OR_CIDR[,...]",
	summary:  "Replace an API key's IP whitelist.",
	help: `Replace an API key's IP whitelist.
  --set IP_OR_CIDR[,...]   the new whitelist (required); --set "" clears it, allowing any IP`,
}

var apikeyRedirectURIs = &command{
	group: "apikey", name: "redirect-uris",
	synopsis: "apikey redirect-uris KEY_ID --set URI[,URI...] [--post-logout]",
	summary:  "Replace an API key's OAuth redirect URIs.",
	help: `Replace an API key's OAuth redirect URIs (OpenID Connect), matched exactly.
  --set URI[,URI...]   the new list (required); --set "" clears it. A comma
                       stays inside a URI unless a scheme follows it
                       (https://a.example/cb?x=1,2 is one URI)
  --post-logout        set the post-logout redirect URIs instead`,
}

func init() {
	apikeyCreate.run = runAPIKeyCreate
	apikeyList.run = runAPIKeyList
	apikeyRevoke.run = runAPIKeyRevoke
	apikeyWhitelist.run = runAPIKeyWhitelist
	apikeyRedirectURIs.run = runAPIKeyRedirectURIs
}

func apikeyTarget(s settings) target {
	return target{service: "API-key admin service", addr: s.apikeyAddr, envVar: envAPIKeyAdminAddr}
}

func runAPIKeyCreate(ctx context.Context, e *env, args []string) error {
	cmd := apikeyCreate
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	name := fs.String("name", "", "")
	whitelist := fs.String("whitelist", "", "")
	noPassword := fs.Bool("no-password-login", false, "")
	var redirects, postLogout repeated
	fs.Var(&redirects, "redirect-uri", "")
	fs.Var(&postLogout, "post-logout-redirect-uri", "")
	public := fs.Bool("public", false, "")
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(cmd, "unexpected argument %q", pos[0])
	}
	if strings.TrimSpace(*name) == "" {
		return usagef(cmd, "--name is required")
	}
	entries, err := parseWhitelist(cmd, "--whitelist", *whitelist)
	if err != nil {
		return err
	}

	s, err := e.settings()
	if err != nil {
		return err
	}
	var resp *apikeyv1.CreateAPIKeyResponse
	err = call(ctx, s, apikeyTarget(s), fmt.Sprintf("create API key %q", *name), func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err = apikeyv1.NewAPIKeyAdminServiceClient(conn).CreateAPIKey(ctx, &apikeyv1.CreateAPIKeyRequest{
			Name:                   *name,
			Whitelist:              entries,
			DisablePasswordLogin:   *noPassword,
			RedirectUris:           redirects,
			PostLogoutRedirectUris: postLogout,
			Public:                 *public,
		})
		return err
	})
	if err != nil {
		return err
	}
	k := resp.GetApiKey()
	if k.GetPublic() {
		fmt.Fprintf(e.stdout, "created API key %d, a public client\n", k.GetId())
	} else {
		fmt.Fprintf(e.stdout, "created API key %d\n", k.GetId())
	}
	fmt.Fprintf(e.stdout, "name:           %s\n", oneLine(k.GetName()))
	if !k.GetPublic() {
		fmt.Fprintf(e.stdout, "prefix:         %s\n", k.GetPrefix())
	}
	fmt.Fprintf(e.stdout, "whitelist:      %s\n", describeWhitelist(k.GetWhitelist()))
	if !k.GetPublic() {
		// /api/oauth, where password login lives, is closed to a public
		// client whatever this flag says.
		fmt.Fprintf(e.stdout, "password login: %s\n", onOff(k.GetPasswordLogin()))
	}
	fmt.Fprintf(e.stdout, "redirect URIs:  %s\n", describeURIs(k.GetRedirectUris()))
	fmt.Fprintf(e.stdout, "post-logout:    %s\n", describeURIs(k.GetPostLogoutRedirectUris()))
	// Unpadded, so that a script finds it with one fixed prefix.
	fmt.Fprintf(e.stdout, "client_id: %s\n", k.GetClientId())
	if k.GetPublic() {
		// There is no secret to show: the client_id is what the app is
		// configured with, so it takes the last line instead.
		fmt.Fprintln(e.stdout, "public client: no secret; it must use PKCE (S256).")
		fmt.Fprintln(e.stdout, k.GetClientId())
		return nil
	}
	fmt.Fprintln(e.stdout, "warning: the key below is shown only this once; store it now, it cannot be recovered.")
	// The key alone on the last line, so that scripts can take it with tail -n1.
	fmt.Fprintln(e.stdout, resp.GetKey())
	return nil
}

// repeated is a flag that may be given several times; each value is taken
// whole (a URI may contain commas).
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, " ") }

func (r *repeated) Set(v string) error {
	*r = append(*r, v)
	return nil
}

// keyJSON is one element of `apikey list --json`: exactly these fields.
type keyJSON struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Prefix    string   `json:"prefix"`
	Whitelist []string `json:"whitelist"`
	// PasswordLogin is false for a key restricted to the safe login flow
	// (apikey create --no-password-login).
	PasswordLogin bool   `json:"password_login"`
	CreatedAt     string `json:"created_at"`
	Revoked       bool   `json:"revoked"`
	// The OpenID Connect client: never null lists, like whitelist.
	ClientID               string   `json:"client_id"`
	Public                 bool     `json:"public"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
}

func runAPIKeyList(ctx context.Context, e *env, args []string) error {
	cmd := apikeyList
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(cmd, "unexpected argument %q", pos[0])
	}

	s, err := e.settings()
	if err != nil {
		return err
	}
	var keys []*apikeyv1.APIKey
	err = call(ctx, s, apikeyTarget(s), "list API keys", func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := apikeyv1.NewAPIKeyAdminServiceClient(conn).ListAPIKeys(ctx, &apikeyv1.ListAPIKeysRequest{})
		keys = resp.GetApiKeys()
		return err
	})
	if err != nil {
		return err
	}

	if *asJSON {
		out := make([]keyJSON, 0, len(keys))
		for _, k := range keys {
			out = append(out, keyJSON{
				ID:                     k.GetId(),
				Name:                   k.GetName(),
				Prefix:                 k.GetPrefix(),
				Whitelist:              nonNil(k.GetWhitelist()),
				PasswordLogin:          k.GetPasswordLogin(),
				CreatedAt:              timestamp(k.GetCreatedAt().AsTime(), k.GetCreatedAt() != nil),
				Revoked:                k.GetRevokedAt() != nil,
				ClientID:               k.GetClientId(),
				Public:                 k.GetPublic(),
				RedirectURIs:           nonNil(k.GetRedirectUris()),
				PostLogoutRedirectURIs: nonNil(k.GetPostLogoutRedirectUris()),
			})
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return fmt.Errorf("list API keys: encoding JSON: %w", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}

	if len(keys) == 0 {
		fmt.Fprintln(e.stdout, "no API keys")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tCLIENT_ID\tWHITELIST\tPASSWORD LOGIN\tCREATED\tSTATUS")
	for _, k := range keys {
		state := "active"
		if k.GetRevokedAt() != nil {
			state = "revoked " + timestamp(k.GetRevokedAt().AsTime(), true)
		}
		// A public client's key was never shown, so its prefix would
		// only invite a search for a key that nobody holds.
		prefix := k.GetPrefix()
		if k.GetPublic() {
			prefix = "(public)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			k.GetId(), oneLine(k.GetName()), prefix, k.GetClientId(), describeWhitelist(k.GetWhitelist()),
			onOff(k.GetPasswordLogin()), timestamp(k.GetCreatedAt().AsTime(), k.GetCreatedAt() != nil), state)
	}
	return tw.Flush()
}

func runAPIKeyRevoke(ctx context.Context, e *env, args []string) error {
	cmd := apikeyRevoke
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	id, err := keyID(cmd, pos)
	if err != nil {
		return err
	}

	s, err := e.settings()
	if err != nil {
		return err
	}
	// The service's revocation is idempotent and keeps the first time, so
	// its answer alone cannot tell "revoked now" from "was revoked": the key
	// is looked up first. Comparing revoked_at with this machine's clock
	// would depend on the skew between it and Postgres. A concurrent
	// revocation between the two calls is reported as this one's, which
	// is harmless: the key ends up revoked either way.
	var k *apikeyv1.APIKey
	already := false
	err = call(ctx, s, apikeyTarget(s), fmt.Sprintf("revoke API key %d", id), func(ctx context.Context, conn *grpc.ClientConn) error {
		admin := apikeyv1.NewAPIKeyAdminServiceClient(conn)
		list, err := admin.ListAPIKeys(ctx, &apikeyv1.ListAPIKeysRequest{})
		if err != nil {
			return err
		}
		for _, known := range list.GetApiKeys() {
			if known.GetId() == id && known.GetRevokedAt() != nil {
				k, already = known, true
				return nil
			}
		}
		resp, err := admin.RevokeAPIKey(ctx, &apikeyv1.RevokeAPIKeyRequest{Id: id})
		k = resp.GetApiKey()
		return err
	})
	if err != nil {
		return err
	}
	// Exit 0 either way: the operator asked for the key to be unusable and
	// it is. Exit 1 means "the operation failed", which would have scripts
	// and incident runbooks treat a key that is refused everywhere as
	// still live.
	if already {
		fmt.Fprintf(e.stdout, "API key %d (%s, %s) was already revoked at %s; nothing changed\n",
			k.GetId(), oneLine(k.GetName()), k.GetPrefix(), timestamp(k.GetRevokedAt().AsTime(), true))
		return nil
	}
	fmt.Fprintf(e.stdout, "revoked API key %d (%s, %s)\n", k.GetId(), oneLine(k.GetName()), k.GetPrefix())
	return nil
}

func runAPIKeyWhitelist(ctx context.Context, e *env, args []string) error {
	cmd := apikeyWhitelist
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	set := fs.String("set", "", "")
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	id, err := keyID(cmd, pos)
	if err != nil {
		return err
	}
	// Presence, not value: --set "" is the documented way to clear.
	if !flagSet(fs, "set") {
		return usagef(cmd, `--set is required (use --set "" to clear the whitelist)`)
	}
	entries, err := parseWhitelist(cmd, "--set", *set)
	if err != nil {
		return err
	}

	s, err := e.settings()
	if err != nil {
		return err
	}
	var k *apikeyv1.APIKey
	err = call(ctx, s, apikeyTarget(s), fmt.Sprintf("set the whitelist of API key %d", id), func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := apikeyv1.NewAPIKeyAdminServiceClient(conn).SetWhitelist(ctx, &apikeyv1.SetWhitelistRequest{Id: id, Whitelist: entries})
		k = resp.GetApiKey()
		return err
	})
	if err != nil {
		return err
	}
	if len(k.GetWhitelist()) == 0 {
		fmt.Fprintf(e.stdout, "API key %d (%s): whitelist cleared, any IP may use it\n", k.GetId(), oneLine(k.GetName()))
		return nil
	}
	fmt.Fprintf(e.stdout, "API key %d (%s): whitelist set to %s\n", k.GetId(), oneLine(k.GetName()), describeWhitelist(k.GetWhitelist()))
	return nil
}

func runAPIKeyRedirectURIs(ctx context.Context, e *env, args []string) error {
	cmd := apikeyRedirectURIs
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	set := fs.String("set", "", "")
	postLogout := fs.Bool("post-logout", false, "")
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	id, err := keyID(cmd, pos)
	if err != nil {
		return err
	}
	// Presence, not value: --set "" is the documented way to clear.
	if !flagSet(fs, "set") {
		return usagef(cmd, `--set is required (use --set "" to clear the list)`)
	}
	uris := splitURIs(*set)

	s, err := e.settings()
	if err != nil {
		return err
	}
	list := "redirect URIs"
	if *postLogout {
		list = "post-logout redirect URIs"
	}
	var k *apikeyv1.APIKey
	err = call(ctx, s, apikeyTarget(s), fmt.Sprintf("set the %s of API key %d", list, id), func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := apikeyv1.NewAPIKeyAdminServiceClient(conn).SetRedirectURIs(ctx, &apikeyv1.SetRedirectURIsRequest{Id: id, Uris: uris, PostLogout: *postLogout})
		k = resp.GetApiKey()
		return err
	})
	if err != nil {
		return err
	}
	got := k.GetRedirectUris()
	if *postLogout {
		got = k.GetPostLogoutRedirectUris()
	}
	if len(got) == 0 {
		fmt.Fprintf(e.stdout, "API key %d (%s): %s cleared\n", k.GetId(), oneLine(k.GetName()), list)
		return nil
	}
	fmt.Fprintf(e.stdout, "API key %d (%s): %s set to %s\n", k.GetId(), oneLine(k.GetName()), list, describeURIs(got))
	return nil
}

// splitURIs splits --set's comma-separated list. A comma is legal inside a
// URI (a query such as ?ids=1,2), so a piece that does not start with a
// scheme is joined back to the URI before it rather than sent as a URI of
// its own. Blank pieces are dropped; the rest is sent as typed, and the
// service, which holds the rules, checks each.
func splitURIs(list string) []string {
	var out []string
	pending := "" // blank pieces after the last URI: kept only if it goes on
	for _, piece := range strings.Split(list, ",") {
		switch trimmed := strings.TrimSpace(piece); {
		case trimmed == "":
			pending += "," + piece
		case len(out) > 0 && !startsWithScheme(trimmed):
			// Exactly the text between, so that ?x=1,,2 stays itself.
			out[len(out)-1] += pending + "," + strings.TrimRightFunc(piece, unicode.IsSpace)
			pending = ""
		default:
			out = append(out, trimmed)
			pending = ""
		}
	}
	return out
}

// startsWithScheme reports whether s begins with an RFC 3986 scheme and its
// colon: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":".
func startsWithScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return true
		default:
			return false
		}
	}
	return false
}

func describeURIs(uris []string) string {
	if len(uris) == 0 {
		return "none"
	}
	out := make([]string, len(uris))
	for i, u := range uris {
		out[i] = oneLine(u)
	}
	return strings.Join(out, " ")
}

func nonNil(a []string) []string {
	if a == nil {
		return []string{}
	}
	return a
}

// keyID takes the single positional KEY_ID.
func keyID(cmd *command, pos []string) (int64, error) {
	switch {
	case len(pos) == 0:
		return 0, usagef(cmd, "KEY_ID is required")
	case len(pos) > 1:
		return 0, usagef(cmd, "unexpected argument %q", pos[1])
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef(cmd, "KEY_ID must be a positive number (as shown by 'apikey list'), not %q", pos[0])
	}
	return id, nil
}

// parseWhitelist splits a comma-separated list, dropping blank entries, and
// checks each is an IP or CIDR so that a typo is a usage error caught before
// any call. The entries are sent as typed; the service canonicalises them.
func parseWhitelist(cmd *command, flagName, list string) ([]string, error) {
	var out []string
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if _, err := ipset.ParsePrefix(entry); err != nil {
			return nil, usagef(cmd, "%s: %v", flagName, err)
		}
		out = append(out, entry)
	}
	return out, nil
}

func describeWhitelist(wl []string) string {
	if len(wl) == 0 {
		return "any IP"
	}
	return strings.Join(wl, ",")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// timestamp renders t in RFC 3339 (UTC), or "" when the service sent none.
func timestamp(t time.Time, present bool) string {
	if !present {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// oneLine keeps a name from breaking the table or the terminal: control
// characters (newlines, escape sequences) are shown quoted.
func oneLine(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}
