package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/testenv"
)

// readmeBlocks returns the ```sh blocks of the README section titled
// heading (a "## " line), in order.
func readmeBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	return readmeCode(t, readme, heading, "sh")
}

// readmeCode returns the ```lang blocks of the README section titled
// heading, in order.
func readmeCode(t *testing.T, readme, heading, lang string) []string {
	t.Helper()
	var blocks []string
	var cur *strings.Builder
	in := false
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			in = strings.TrimSpace(strings.TrimPrefix(line, "## ")) == heading
		case !in:
		case cur == nil && line == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("README has no ```%s block under %q", lang, heading)
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

// oidcSection is the README section with the OpenID Connect example.
const oidcSection = "Sign in with MoreLine (OpenID Connect)"

// lockedBuffer is an output buffer written by a process while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReadmeOIDCExample runs the README's OpenID Connect example as a
// newcomer does: the first ```sh block (a user and the app's client,
// exported), the Go program saved as signin-example/main.go, the second
// block (go mod init, go get, go run), and then a person signs in through
// the app: its page leads to Moreid's sign-in and consent pages and back,
// where the app shows the verified subject and the userinfo claims. What
// is rewritten, as in TestReadmeWalkthroughs: localhost:8080 becomes the
// harness's gateway and 127.0.0.1:5556 (the app's address, in its
// redirect URI too) a free port; the Go commands run offline from the
// module cache (the e2e module requires the same versions).
func TestReadmeOIDCExample(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sh := readmeCode(t, string(data), oidcSection, "sh")
	programs := readmeCode(t, string(data), oidcSection, "go")
	if len(sh) != 2 || len(programs) != 1 {
		t.Fatalf("%q has %d sh blocks and %d go blocks, want 2 (setup, run) and 1 (the program)", oidcSection, len(sh), len(programs))
	}

	s := harness.Start(t, harness.Options{})
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(harness.Bin(t, "moreidctl"), filepath.Join(dir, "bin", "moreidctl")); err != nil {
		t.Fatal(err)
	}
	appAddr := testenv.FreeAddr(t)
	addrs := map[string]string{
		"localhost:8080": strings.TrimPrefix(s.BaseURL, "http://"),
		"127.0.0.1:5556": appAddr,
	}
	program := programs[0]
	for from, to := range addrs {
		program = strings.ReplaceAll(program, from, to)
	}
	if err := os.Mkdir(filepath.Join(dir, "signin-example"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "signin-example", "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	script := rewriteBlock(t, sh[0], nil, addrs, s.DSN) + "\n" + rewriteBlock(t, sh[1], nil, addrs, s.DSN)

	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Dir = dir
	// The last value of a variable wins: offline, from the module cache.
	cmd.Env = append(s.Environ(), "GOWORK=off", "GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-mod=mod -buildvcs=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // go run's child too
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	listening := "open http://" + appAddr + "/ in a browser"
	for deadline := time.Now().Add(3 * time.Minute); !strings.Contains(out.String(), listening); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the example ended (%v) before it listened:\nscript:\n%s\noutput:\n%s", err, script, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example did not print %q within 3 minutes:\n%s", listening, out.String())
		}
	}

	p := newOIDCPerson(t, s.BaseURL)
	pg, _ := p.open(t, "http://"+appAddr+"/")
	if !strings.HasPrefix(pg.URL.String(), s.BaseURL+"/oidc/login") {
		t.Fatalf("the app's page led to %s (status %d), want Moreid's sign-in page\n%s\noutput:\n%s", pg.URL, pg.Status, pg.Body, out.String())
	}
	pg = p.signIn(t, pg, "oidcdemo", "Test123456")
	if !strings.HasPrefix(pg.URL.String(), s.BaseURL+"/oidc/consent") || !strings.Contains(pg.text(), "示例网站") {
		t.Fatalf("after signing in: %s (status %d), want the consent page naming 示例网站\n%s", pg.URL, pg.Status, pg.Body)
	}
	pg = p.press(t, pg, "confirm")
	if !strings.HasPrefix(pg.URL.String(), "http://"+appAddr+"/callback?") || pg.Status != 200 {
		t.Fatalf("after consent: %s (status %d)\n%s\noutput:\n%s", pg.URL, pg.Status, pg.Body, out.String())
	}
	var got struct {
		Sub      string         `json:"sub"`
		Userinfo map[string]any `json:"userinfo"`
	}
	if err := json.Unmarshal([]byte(pg.Body), &got); err != nil {
		t.Fatalf("the app's answer is not the documented JSON: %v\n%s", err, pg.Body)
	}
	want := map[string]any{"preferred_username": "oidcdemo", "name": "示例用户", "email": "demo@example.com", "email_verified": false, "sub": got.Sub}
	for k, v := range want {
		if got.Userinfo[k] != v {
			t.Errorf("userinfo %s = %v, want %v (README shows it)", k, got.Userinfo[k], v)
		}
	}
	if got.Sub == "" {
		t.Error("the app shows no sub")
	}
	// The app logs before it answers, but its stderr reaches out through a
	// pipe and a copying goroutine, which may trail the HTTP answer.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "signed in: "); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the app did not log the sign-in:\n%s", out.String())
			break
		}
	}
}
