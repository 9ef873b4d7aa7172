// Package harness runs the whole Moreid suite for end-to-end tests: it builds
// the real binaries once, starts user, apikey, auth and gateway as separate
// processes on free loopback ports, against a database and Redis keyspace of
// the test's own, and stops them (and removes the data) when the test ends.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/testenv"
)

// Binaries are the suite's commands, by the name they get in bin/.
var Binaries = map[string]string{
	"moreid-user":    "./services/user/cmd/user",
	"moreid-apikey":  "./services/apikey/cmd/apikey",
	"moreid-auth":    "./services/auth/cmd/auth",
	"moreid-gateway": "./gateway/cmd/gateway",
	"moreidctl":      "./moreidctl/cmd/moreidctl",
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// RepoRoot is the directory holding go.work.
func RepoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		return "", fmt.Errorf("not inside the Moreid workspace (no go.work)")
	}
	return filepath.Dir(work), nil
}

// Bin returns the path of a built binary, building all of them on first use.
func Bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		binDir, buildErr = os.MkdirTemp("", "moreid-e2e-bin-")
		if buildErr != nil {
			return
		}
		for name, pkg := range Binaries {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("building the suite: %v", buildErr)
	}
	return filepath.Join(binDir, name)
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// Suite is a running Moreid suite.
type Suite struct {
	BaseURL string
	// Env is the environment every process of the suite got; moreidctl run
	// with it talks to this suite.
	Env         map[string]string
	DSN         string
	Redis       redis.UniversalClient
	RedisPrefix string
	LogDir      string

	procs []*exec.Cmd
}

// Options change how the suite starts.
type Options struct {
	// Env is added to (and overrides) the suite's environment.
	Env map[string]string
}

// Start runs the suite for t and waits until the gateway is ready.
func Start(t testing.TB, opts Options) *Suite {
	t.Helper()
	s := &Suite{DSN: testenv.Postgres(t), LogDir: t.TempDir()}
	s.Redis, s.RedisPrefix = testenv.Redis(t)
	httpAddr := freeAddr(t)
	s.BaseURL = "http://" + httpAddr
	s.Env = map[string]string{
		"MOREID_POSTGRES_DSN":      s.DSN,
		"MOREID_REDIS_URL":         testenv.RedisURL(),
		"MOREID_REDIS_PREFIX":      s.RedisPrefix,
		"MOREID_HTTP_ADDR":         httpAddr,
		"MOREID_AUTH_ADDR":         freeAddr(t),
		"MOREID_USER_ADDR":         freeAddr(t),
		"MOREID_APIKEY_ADDR":       freeAddr(t),
		"MOREID_USER_ADMIN_ADDR":   freeAddr(t),
		"MOREID_APIKEY_ADMIN_ADDR": freeAddr(t),
		"MOREID_AUTH_ADMIN_ADDR":   freeAddr(t),
		"MOREID_DRAIN_TIMEOUT":     "5s",
		"MOREID_LOG_LEVEL":         "debug",
	}
	for k, v := range opts.Env {
		s.Env[k] = v
	}
	// Services first: they create the schema; auth and the gateway dial lazily.
	for _, name := range []string{"moreid-user", "moreid-apikey", "moreid-auth", "moreid-gateway"} {
		s.start(t, name)
	}
	t.Cleanup(s.stop)
	s.waitReady(t, 60*time.Second)
	return s
}

// Environ is the suite's environment as os/exec wants it, on top of the
// test process's own.
func (s *Suite) Environ() []string {
	env := os.Environ()
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	return env
}

func (s *Suite) start(t testing.TB, name string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(s.LogDir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Bin(t, name))
	cmd.Env = s.Environ()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	s.procs = append(s.procs, cmd)
}

// stop sends SIGTERM to every process, newest first, and waits for them.
func (s *Suite) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
}

// waitReady waits for the gateway's /readyz and for every gRPC listener of
// the suite (the admin ones too: /readyz does not cover them, and moreidctl
// is the next thing a test runs).
func (s *Suite) waitReady(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if s.gatewayReady() && s.listening() {
			return
		}
		for _, p := range s.procs {
			if p.ProcessState != nil {
				t.Fatalf("%s exited early:\n%s", p.Path, s.Logs())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("suite not ready within %s; logs:\n%s", within, s.Logs())
}

func (s *Suite) gatewayReady() bool {
	resp, err := http.Get(s.BaseURL + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *Suite) listening() bool {
	for k, addr := range s.Env {
		if !strings.HasSuffix(k, "_ADDR") || k == "MOREID_HTTP_ADDR" {
			continue
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// Logs is everything the suite's processes wrote so far.
func (s *Suite) Logs() string {
	var b bytes.Buffer
	entries, _ := os.ReadDir(s.LogDir)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(s.LogDir, e.Name()))
		fmt.Fprintf(&b, "==> %s <==\n%s\n", e.Name(), data)
	}
	return b.String()
}

// Ctl runs moreidctl against the suite and returns its stdout, stderr and
// exit status.
func (s *Suite) Ctl(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, Bin(t, "moreidctl"), args...)
	cmd.Env = s.Environ()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("moreidctl %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// MustCtl runs moreidctl and fails the test unless it exits 0.
func (s *Suite) MustCtl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := s.Ctl(t, stdin, args...)
	if code != 0 {
		t.Fatalf("moreidctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// CreateUser creates a user through moreidctl.
func (s *Suite) CreateUser(t testing.TB, userID, username, email, password string) {
	t.Helper()
	s.MustCtl(t, password+"\n", "user", "create", "--user-id", userID, "--username", username, "--email", email, "--password-stdin")
}

// CreateKey issues an API key through moreidctl and returns it (the last
// line of the command's output, as SPEC section 7 says).
func (s *Suite) CreateKey(t testing.TB, name string, extra ...string) string {
	t.Helper()
	out := s.MustCtl(t, "", append([]string{"apikey", "create", "--name", name}, extra...)...)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
