package cli

import (
	"github.com/moreline/moreid/platform/buildinfo"
	"strings"
	"testing"
)

// TestHelpListing: every command has one line in `moreidctl help`, a whole
// sentence that fits a terminal, never the first line of a longer text cut
// where it happens to wrap ("List the audit trail (..., key").
func TestHelpListing(t *testing.T) {
	got := run(t, nil, "", "help")
	if got.code != 0 {
		t.Fatalf("exit %d, stderr %s", got.code, got.stderr)
	}
	listing := got.stdout[strings.Index(got.stdout, "\nCommands:\n"):]
	tests := []struct{ command, line string }{
		{"user create", "  user create           Create a user (the password on standard input)."},
		{"user disable", "  user disable          Disable a user and revoke their access tokens."},
		{"user enable", "  user enable           Re-enable a disabled user."},
		{"user revoke-tokens", "  user revoke-tokens    Revoke every access token of a user."},
		{"user withdraw-consent", "  user withdraw-consent Withdraw a user's consent to OpenID Connect apps."},
		{"apikey create", "  apikey create         Issue an API key, shown only this once."},
		{"apikey list", "  apikey list           List every API key, revoked ones included."},
		{"apikey revoke", "  apikey revoke         Revoke an API key for good."},
		{"apikey whitelist", "  apikey whitelist      Replace an API key's IP whitelist."},
		{"apikey redirect-uris", "  apikey redirect-uris  Replace an API key's OAuth redirect URIs."},
		{"audit list", "  audit list            List the audit trail, newest first."},
		{"audit prune", "  audit prune           Drop whole months of the audit trail before a date."},
		{"help", "  help                  Print this listing."},
		{"--version", "  --version             Print the version moreidctl was built from."},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			if !strings.Contains(listing, "\n"+tt.line+"\n") {
				t.Errorf("listing lacks the line %q:\n%s", tt.line, listing)
			}
		})
	}
	for _, line := range strings.Split(got.stdout, "\n") {
		if n := len([]rune(line)); n > 80 && !strings.HasPrefix(line, "  moreidctl ") {
			t.Errorf("line of %d columns, more than a terminal's 80: %q", n, line)
		}
	}
}

// TestAuditListLimitHelp: --limit is in the synopsis and in the help, with
// the service's own default and maximum; the help warns that the trail is
// written in batches.
func TestAuditListLimitHelp(t *testing.T) {
	got := run(t, nil, "", "audit", "list", "--help")
	if got.code != 0 {
		t.Fatalf("exit %d, stderr %s", got.code, got.stderr)
	}
	for _, want := range []string{
		"moreidctl audit list [--user ID] [--since DURATION] [--limit N] [--json]\n",
		"  --limit N          at most N events, the newest (default 100, at most 1000)\n",
		"write the trail in batches",
	} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, got.stdout)
		}
	}
}

// TestFlagErrors: a mistyped flag is named the way the help writes flags
// (--jsn, not Go's -jsn), with the command line that lists the right ones,
// and exits 2 without calling anything.
func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"unknown flag of a command", []string{"apikey", "list", "--jsn"}, "moreidctl: unknown flag --jsn (see 'moreidctl apikey list --help')\n"},
		{"typed with one dash", []string{"apikey", "list", "-jsn"}, "moreidctl: unknown flag --jsn (see 'moreidctl apikey list --help')\n"},
		{"after a positional argument", []string{"apikey", "revoke", "3", "--forse"}, "moreidctl: unknown flag --forse (see 'moreidctl apikey revoke --help')\n"},
		{"unknown global flag", []string{"--verbose", "apikey", "list"}, "moreidctl: unknown flag --verbose (see 'moreidctl --help')\n"},
		{"flag without its value", []string{"audit", "list", "--limit"}, "moreidctl: flag --limit needs a value (see 'moreidctl audit list --help')\n"},
		{"flag with a bad value", []string{"audit", "list", "--limit", "ten"}, `moreidctl: invalid value "ten" for flag --limit: parse error (see 'moreidctl audit list --help')` + "\n"},
		{"bad boolean", []string{"apikey", "list", "--json=maybe"}, `moreidctl: invalid boolean value "maybe" for flag --json: parse error (see 'moreidctl apikey list --help')` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSuite(t)
			got := run(t, s.env, "", tt.args...)
			if got.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got.code, exitUsage, got.stderr)
			}
			if !strings.HasPrefix(got.stderr, tt.wantStderr) {
				t.Errorf("stderr starts %q, want %q", firstLine(got.stderr), tt.wantStderr)
			}
			if strings.Contains(got.stderr, "flag provided but not defined") {
				t.Errorf("stderr has Go's wording:\n%s", got.stderr)
			}
			if n := len(s.keys.received()) + len(s.audit.requests()); n != 0 {
				t.Errorf("%d calls made, want none", n)
			}
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l + "\n" }

// TestVersionFlag: `moreidctl --version` prints one line on stdout and
// exits 0, whatever the environment holds and without any listener.
func TestVersionFlag(t *testing.T) {
	got := run(t, map[string]string{envTimeout: "not a duration"}, "", "--version")
	if got.code != 0 || got.stderr != "" {
		t.Fatalf("exit %d, stderr %q", got.code, got.stderr)
	}
	if !strings.HasPrefix(got.stdout, "moreidctl ") || strings.Count(got.stdout, "\n") != 1 {
		t.Errorf("stdout = %q, want one line starting with \"moreidctl \"", got.stdout)
	}
	if want := buildinfo.Line("moreidctl") + "\n"; got.stdout != want {
		t.Errorf("stdout = %q, want %q", got.stdout, want)
	}
}
