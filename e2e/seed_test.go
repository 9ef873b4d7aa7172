package e2e

import (
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

// The conformance tests below run the API document's own examples, read from
// ../shared/seed/ at test time (never copied into the project), with only
// BASE_URL and API_KEY replaced.

// seedBlocks returns the fenced code blocks of the given language in the
// seed document, in order. It skips the test when the document is absent.
func seedBlocks(t *testing.T, lang string) []string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "..", "shared", "seed", "moreid-api.md")
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skipf("the seed document %s is absent: its examples cannot be run here", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	fence := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var blocks []string
	for _, m := range fence.FindAllStringSubmatch(string(data), -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatalf("no %s blocks in %s", lang, path)
	}
	return blocks
}

var (
	baseURLLine = regexp.MustCompile(`(?m)^((?:const )?BASE_URL = )"[^"]*"`)
	apiKeyLine  = regexp.MustCompile(`(?m)^((?:const )?API_KEY = )"[^"]*"`)
)

// configure replaces BASE_URL and API_KEY, and nothing else.
func configure(t *testing.T, code, baseURL, key string) string {
	t.Helper()
	if !baseURLLine.MatchString(code) || !apiKeyLine.MatchString(code) {
		t.Fatalf("example has no BASE_URL / API_KEY line:\n%s", code)
	}
	code = baseURLLine.ReplaceAllString(code, `${1}"`+baseURL+`"`)
	return apiKeyLine.ReplaceAllString(code, `${1}"`+key+`"`)
}

// python finds an interpreter that has the requests package the examples use.
func python(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("MOREID_TEST_PYTHON"), "python3", "/usr/bin/python3"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if err := exec.Command(c, "-c", "import requests").Run(); err == nil {
			return c
		}
	}
	t.Fatalf("no python3 with the requests package (.ci/run installs Debian's python3-requests)")
	return ""
}

// runExample runs code with the interpreter and returns its combined output.
func runExample(t *testing.T, interpreter, ext, code, stdin string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "example"+ext)
	if err := os.WriteFile(file, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, interpreter, file)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8", "NO_PROXY=*", "no_proxy=*")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", interpreter, file, err, out)
	}
	return string(out)
}

func TestSeedExamplesPasswordFlowAndUserInfo(t *testing.T) {
	py := seedBlocks(t, "python")
	js := seedBlocks(t, "javascript")
	s := harness.Start(t, harness.Options{})
	// The examples sign in as testid / Test123456.
	s.CreateUser(t, "testid", "测试用户", "test@example.com", "Test123456")
	key := s.CreateKey(t, "seed examples")

	cases := []struct {
		name, interpreter, ext, code, want string
	}{
		{"python password flow (block 1)", python(t), ".py", configure(t, py[0], s.BaseURL, key), "✓ 获取访问令牌成功"},
		{"python user info (block 4)", python(t), ".py", configure(t, py[3], s.BaseURL, key), "✓ 获取用户信息成功"},
		// The JavaScript block only defines its functions; the document's
		// last block shows they are meant to be called, so the test calls it.
		{"javascript password flow (block 1)", "node", ".js", configure(t, js[0], s.BaseURL, key) + "\ntestOauthFlowWithDebug();\n", "✓ 获取访问令牌成功"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := runExample(t, tc.interpreter, tc.ext, tc.code, "")
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output lacks %q:\n%s", tc.want, out)
			}
			if strings.Contains(out, "✗") {
				t.Fatalf("example reported a failure:\n%s", out)
			}
		})
	}
}
