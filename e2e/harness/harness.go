// Package harness runs the whole Moreid suite for end-to-end tests: it builds
// the real binaries once and starts the suite in either deploy shape — one
// `moreid serve ROLE` process per role, or one `moreid serve` process with
// every role — on free loopback ports, against a database and Redis keyspace
// of the test's own, and stops them (and removes the data) when the test
// ends. MOREID_E2E_SHAPE (roles, the default, or all) picks the shape of
// every suite whose test does not pin one, so that `make test` runs the
// whole e2e suite in both.
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
	"time"

	"github.com/redis/go-redis/v9"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/testenv"
)

// TB is what the harness needs of its caller. testing.TB satisfies it, and
// so can a command (the load tool in bench/) that starts the suite outside a
// test: Fatalf must not return.
type TB interface {
	testenv.TB
	TempDir() string
}

// Binaries are the suite's commands, by the name they get in bin/: the
// server and the operators' tool.
var Binaries = map[string]string{
	"moreid":    "./cmd/moreid",
	"moreidctl": "./moreidctl/cmd/moreidctl",
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
func Bin(t TB, name string) string {
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

// Roles are the suite's components, in start order: services first (they
// create the schema); auth and the gateway dial lazily.
var Roles = []string{"user", "apikey", "auth", "gateway"}

// Shape is how the roles are spread over processes, as in a deployment.
type Shape string

const (
	// PerRole runs one process per role (`moreid serve auth`, ...),
	// calling each other over gRPC: the shape Kubernetes scales.
	PerRole Shape = "roles"
	// AllRoles runs every role in one process (`moreid serve`), calling
	// each other in-process: the shape of make run and small installs.
	AllRoles Shape = "all"
	// AllRolesProcess is the name of that one process.
	AllRolesProcess = "moreid"
)

// DefaultShape is MOREID_E2E_SHAPE's shape, PerRole when it is unset.
func DefaultShape() (Shape, error) {
	switch v := Shape(os.Getenv("MOREID_E2E_SHAPE")); v {
	case "":
		return PerRole, nil
	case PerRole, AllRoles:
		return v, nil
	default:
		return "", fmt.Errorf("MOREID_E2E_SHAPE=%q: want %q or %q", v, PerRole, AllRoles)
	}
}

// Suite is a running Moreid suite: one or more instances of every component
// sharing one database and one Redis keyspace.
type Suite struct {
	// BaseURL is the first gateway; BaseURLs has one per instance.
	BaseURL  string
	BaseURLs []string
	// Env is the environment of the first instance; moreidctl run with it
	// talks to this suite. Envs has one per instance.
	Env         map[string]string
	Envs        []map[string]string
	DSN         string
	Redis       redis.UniversalClient
	RedisPrefix string
	LogDir      string
	// DSN above is the database's owner (tests inspect and seed through
	// it); the services connect as the role of ServingDSN, which may only
	// read and append to the audit trail, as in a deployment.
	ServingDSN string

	procs     []*Proc
	shape     Shape
	processes []string
}

// Options change how the suite starts.
type Options struct {
	// Env is added to (and overrides) every instance's environment.
	Env map[string]string
	// Instances is how many instances of each component run (default 1).
	// Instance i's gateway calls instance i's auth, which calls instance
	// i's user and apikey: a flow whose steps go through different
	// gateways lands each step on a different instance of every service.
	Instances int
	// PostgresServer is the server the suite's database is created on
	// (default: testenv's); RedisURL the Redis it uses (default: testenv's).
	PostgresServer string
	RedisURL       string
	// Shape pins the deploy shape, for a test about one shape; the zero
	// value is DefaultShape.
	Shape Shape
}

// Start runs the suite for t and waits until every instance is ready.
func Start(t TB, opts Options) *Suite {
	t.Helper()
	if opts.Instances < 1 {
		opts.Instances = 1
	}
	if opts.Shape == "" {
		shape, err := DefaultShape()
		if err != nil {
			t.Fatalf("%v", err)
		}
		opts.Shape = shape
	}
	s := &Suite{LogDir: t.TempDir(), shape: opts.Shape, processes: Roles}
	if opts.Shape == AllRoles {
		s.processes = []string{AllRolesProcess}
	}
	pgServer := opts.PostgresServer
	if pgServer == "" {
		pgServer = testenv.PostgresServer()
	}
	s.DSN, s.ServingDSN = testenv.PostgresRolesOn(t, pgServer)
	redisURL := opts.RedisURL
	if redisURL == "" {
		redisURL = testenv.RedisURL()
		s.Redis, s.RedisPrefix = testenv.Redis(t)
	} else {
		s.Redis, s.RedisPrefix = testenv.RedisOn(t, redisURL)
	}
	for i := 0; i < opts.Instances; i++ {
		httpAddr := freeAddr(t)
		env := map[string]string{
			"MOREID_POSTGRES_DSN":      s.ServingDSN,
			"MOREID_REDIS_URL":         redisURL,
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
			// make test runs two e2e suites side by side, often beside
			// other work, on two cores: a Postgres call may wait longer
			// than the 700 ms a production replica allows before it
			// answers 503. The suites test behaviour, not that budget;
			// the tests of Postgres outages set it back
			// (ProductionPostgresTimeout).
			"MOREID_POSTGRES_TIMEOUT": "5s",
			// The OpenID Connect issuer is the gateway's own URL, so
			// that discovery, ID tokens and a relying party all agree on
			// it (the default, localhost:8080, is not where it listens).
			"MOREID_ISSUER": "http://" + httpAddr,
		}
		// Every role's metrics address is set, so that a test scrapes a
		// role's metrics alike in both shapes: in one process they are
		// one address, the process's MOREID_METRICS_ADDR.
		metrics := freeAddr(t)
		for _, c := range Roles {
			if opts.Shape == PerRole {
				metrics = freeAddr(t)
			}
			env["MOREID_"+strings.ToUpper(c)+"_METRICS_ADDR"] = metrics
		}
		if opts.Shape == AllRoles {
			env["MOREID_METRICS_ADDR"] = metrics
		}
		// Migrations and grants as the owner, as make run and the
		// migration Job do.
		env["MOREID_POSTGRES_OWNER_DSN"] = s.DSN
		for k, v := range opts.Env {
			env[k] = v
		}
		s.Envs = append(s.Envs, env)
		s.BaseURLs = append(s.BaseURLs, "http://"+httpAddr)
	}
	s.Env, s.BaseURL = s.Envs[0], s.BaseURLs[0]
	t.Cleanup(s.stop)
	for _, c := range s.processes {
		for i := range s.Envs {
			s.start(t, c, i)
		}
	}
	s.WaitReady(t, 60*time.Second)
	return s
}

// Environ is the first instance's environment as os/exec wants it, on top
// of the test process's own.
func (s *Suite) Environ() []string { return environ(s.Env) }

func environ(m map[string]string) []string {
	env := os.Environ()
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	return env
}

// Proc is one running process of the suite.
type Proc struct {
	Component string
	Instance  int
	cmd       *exec.Cmd
	done      chan struct{}
	err       error // Wait's result, set before done closes
}

// Shape is the suite's deploy shape.
func (s *Suite) Shape() Shape { return s.shape }

// Processes are the names of one instance's processes: the roles, or the one
// AllRolesProcess.
func (s *Suite) Processes() []string { return s.processes }

// Proc returns the process of instance i that serves component (a role, or
// AllRolesProcess), as most recently started: in the AllRoles shape every
// role's process is the one process.
func (s *Suite) Proc(component string, i int) *Proc {
	if s.shape == AllRoles {
		component = AllRolesProcess
	}
	for j := len(s.procs) - 1; j >= 0; j-- {
		if p := s.procs[j]; p.Component == component && p.Instance == i {
			return p
		}
	}
	return nil
}

func (s *Suite) start(t TB, component string, i int) *Proc {
	t.Helper()
	name := fmt.Sprintf("moreid-%s-%d", component, i)
	logf, err := os.OpenFile(filepath.Join(s.LogDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("%v", err)
	}
	args := []string{"serve"}
	if component != AllRolesProcess {
		args = append(args, component)
	}
	cmd := exec.Command(Bin(t, "moreid"), args...)
	cmd.Env = environ(s.Envs[i])
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Component: component, Instance: i, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p
}

// Restart starts instance i of component again (after Signal or Kill).
func (s *Suite) Restart(t TB, component string, i int) *Proc {
	t.Helper()
	if s.shape == AllRoles {
		component = AllRolesProcess
	}
	if p := s.Proc(component, i); p != nil && !p.Exited() {
		t.Fatalf("%s %d is still running", component, i)
	}
	return s.start(t, component, i)
}

// Pid is the operating system's id of the process (for reading
// /proc/<pid>/status, say).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to within for the process to end and returns its exit
// code, or -1 if it is still running (or was killed by a signal).
func (p *Proc) Wait(within time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		return -1
	}
}

// stop sends SIGTERM to every process, newest first, and waits for them.
func (s *Suite) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		if p.Exited() {
			continue
		}
		_ = p.Signal(syscall.SIGTERM)
		if p.Wait(10*time.Second) == -1 && !p.Exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// WaitReady waits until every instance's gateway says ready and every gRPC
// listener (admin ones included: /readyz does not cover them) accepts
// connections, failing the test if a process exits or time runs out.
func (s *Suite) WaitReady(t TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if s.ready() {
			return
		}
		for _, p := range s.procs {
			if p.Exited() && s.Proc(p.Component, p.Instance) == p {
				t.Fatalf("%s %d exited early (%v):\n%s", p.Component, p.Instance, p.err, s.Logs())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("suite not ready within %s; logs:\n%s", within, s.Logs())
}

func (s *Suite) ready() bool {
	for i, env := range s.Envs {
		resp, err := http.Get(s.BaseURLs[i] + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		for k, addr := range env {
			if !strings.HasSuffix(k, "_ADDR") || k == "MOREID_HTTP_ADDR" {
				continue
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		if !authConnected(env) {
			return false
		}
	}
	return true
}

// authConnected reports whether auth is ready and its connections to user
// and apikey work. /readyz no longer says so (readiness does not cascade),
// and auth's connection to a callee that started after it may still be in
// its reconnect backoff while the callee already listens.
// It dials as the suite's own components do (mutual TLS when the
// environment turns it on).
func authConnected(env map[string]string) bool {
	sec, err := grpcx.ReadSecurity(config.FromMap(env))
	if err != nil {
		return false
	}
	conn, err := grpcx.Dial(env["MOREID_AUTH_ADDR"], sec.DialOptions()...)
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, svc := range []string{"", "user", "apikey"} {
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return false
		}
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
func (s *Suite) Ctl(t TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return s.CtlWith(t, nil, stdin, args...)
}

// CtlWith is Ctl with env added to (and overriding) the suite's
// environment, e.g. another certificate in MOREID_CTL_CERT.
func (s *Suite) CtlWith(t TB, env map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, Bin(t, "moreidctl"), args...)
	cmd.Env = s.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v) // the last value of a variable wins
	}
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
func (s *Suite) MustCtl(t TB, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := s.Ctl(t, stdin, args...)
	if code != 0 {
		t.Fatalf("moreidctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// CreateUser creates a user through moreidctl.
func (s *Suite) CreateUser(t TB, userID, username, email, password string) {
	t.Helper()
	s.MustCtl(t, password+"\n", "user", "create", "--user-id", userID, "--username", username, "--email", email, "--password-stdin")
}

// CreateKey issues an API key through moreidctl and returns it (the last
// line of the command's output, as SPEC section 7 says).
func (s *Suite) CreateKey(t TB, name string, extra ...string) string {
	t.Helper()
	out := s.MustCtl(t, "", append([]string{"apikey", "create", "--name", name}, extra...)...)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// ProductionPostgresTimeout is MOREID_POSTGRES_TIMEOUT's default, which
// the harness raises: a test of how the suite answers while Postgres is
// down or hung sets it back in Options.Env.
var ProductionPostgresTimeout = pgdb.DefaultTimeout.String()

// freeAddr picks a free loopback port (testenv.FreeAddr).
func freeAddr(t TB) string {
	t.Helper()
	return testenv.FreeAddr(t)
}
