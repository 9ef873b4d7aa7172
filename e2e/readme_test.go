package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
)

// readmeBlocks returns the ```sh blocks of the README section titled
// heading (a "## " line), in order.
func readmeBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	var blocks []string
	var cur *strings.Builder
	in := false
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			in = strings.TrimSpace(strings.TrimPrefix(line, "## ")) == heading
		case !in:
		case cur == nil && line == "```sh":
			cur = &strings.Builder{}
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("README has no ```sh block under %q", heading)
	}
	return blocks
}

// TestReadmeWalkthroughs runs the README's walk-through blocks as a
// newcomer pastes them, in README order, against one suite, and checks
// what the README says they print. Only what differs between a fresh
// clone's machine and a test is rewritten:
//   - `make run &` is dropped: the harness runs the suite (on ports of its
//     own, with a database and Redis keyspace of its own) and has waited
//     until it is ready. The README's wait loop still runs, against it.
//   - localhost:8080 becomes the harness's gateway address, and
//     localhost:9191 and :9192 (the admin listeners the wait loop probes)
//     the harness's.
//   - bin/moreidctl stays as written: the block runs in a directory whose
//     bin/moreidctl is the harness's build, with the suite's environment
//     exported, so it talks to this suite as it would to `make run`'s.
//   - the owner DSN of `make run`'s moreid database becomes the owner DSN
//     of the harness's database.
func TestReadmeWalkthroughs(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatalf("the curl walk-through needs jq (.ci/run installs it): %v", err)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)

	s := harness.Start(t, harness.Options{})
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(harness.Bin(t, "moreidctl"), filepath.Join(dir, "bin", "moreidctl")); err != nil {
		t.Fatal(err)
	}
	// make run's default addresses, as the README writes them, and the
	// harness's.
	addrs := map[string]string{
		"localhost:8080": strings.TrimPrefix(s.BaseURL, "http://"),
		"localhost:9191": s.Env["MOREID_USER_ADMIN_ADDR"],
		"localhost:9192": s.Env["MOREID_APIKEY_ADMIN_ADDR"],
	}

	tests := []struct {
		section string
		// dropped: the beginnings of lines the harness does instead;
		// each must be in the block, so the test notices when the
		// README changes under it.
		dropped []string
		// want: what the output must contain, as the README's comments
		// show it (… stands for the part that differs every run).
		want []string
	}{
		{
			section: "Operator CLI",
			want: []string{
				`created user alice`,
				`created API key `,
				`"password_login":`,
				`was already revoked at `,
			},
		},
		{
			section: "The password flow with curl",
			dropped: []string{"make run &"},
			want: []string{
				`{"success":true,"message":"获取访问令牌成功","access_token":"token_…","token_type":"Bearer","expires_in":3600}`,
				`{"success":true,"message":"获取用户信息成功","user":{"username":"测试用户","avatar_url":"https://…"}}`,
			},
		},
	}
	for _, tc := range tests {
		var out string
		for _, block := range readmeBlocks(t, readme, tc.section) {
			out += runBlock(t, dir, s.Environ(), rewriteBlock(t, block, tc.dropped, addrs, s.DSN))
		}
		for _, w := range tc.want {
			if !documented(w).MatchString(out) {
				t.Errorf("%s: the output lacks %s\noutput:\n%s", tc.section, w, out)
			}
		}
	}
}

// rewriteBlock makes a README block run against the harness's suite (see
// TestReadmeWalkthroughs for what and why).
func rewriteBlock(t *testing.T, block string, dropped []string, addrs map[string]string, ownerDSN string) string {
	t.Helper()
	var kept []string
	found := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		drop := false
		for _, d := range dropped {
			if strings.HasPrefix(strings.TrimSpace(line), d) {
				drop, found[d] = true, true
			}
		}
		if !drop {
			kept = append(kept, line)
		}
	}
	for _, d := range dropped {
		if !found[d] {
			t.Fatalf("the block no longer has a line %q… the test replaces:\n%s", d, block)
		}
	}
	script := strings.Join(kept, "\n")
	for from, to := range addrs {
		script = strings.ReplaceAll(script, from, to)
	}
	script = strings.ReplaceAll(script, "postgres://postgres@127.0.0.1:5432/moreid?sslmode=disable", ownerDSN)
	return script
}

// runBlock runs script with sh -e in dir, as pasted into a shell that
// stops at the first failing command, and returns stdout and stderr.
func runBlock(t *testing.T, dir string, env []string, script string) string {
	t.Helper()
	// The README's wait loop never ends if the suite does not answer; the
	// deadline turns that into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("sh -e: %v\nscript:\n%s\noutput:\n%s", err, script, out.String())
	}
	return out.String()
}

// documented turns an output line as the README shows it into a pattern:
// "…" matches what differs every run, the rest matches literally.
func documented(s string) *regexp.Regexp {
	parts := strings.Split(s, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, `[^"]*`))
}
