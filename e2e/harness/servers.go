package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Server is a Redis or Postgres server of the test's own, on a free
// loopback port, for tests that kill and restart their backends. Only this
// server is ever killed; the machine's own servers are never touched.
type Server struct {
	// URL is the Redis URL or the Postgres server URL (postgres database).
	URL  string
	Port int

	start func() error
	stop  func(immediate bool) error
}

// Kill stops the server at once, as a crash would.
func (s *Server) Kill(t TB) {
	t.Helper()
	if err := s.stop(true); err != nil {
		t.Fatalf("kill server on port %d: %v", s.Port, err)
	}
}

// Restart starts the server again on the same port with the same data and
// waits until it accepts connections.
func (s *Server) Restart(t TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("restart server on port %d: %v", s.Port, err)
	}
	waitPort(t, s.Port, 30*time.Second)
}

// StartRedis runs a redis-server of the test's own (no persistence).
func StartRedis(t TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: %v", err)
	}
	port := freePort(t)
	dir := t.TempDir()
	var cmd *exec.Cmd
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), Port: port}
	s.start = func() error {
		cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", dir)
		cmd.Stdout, cmd.Stderr = nil, nil
		return cmd.Start()
	}
	s.stop = func(bool) error {
		if cmd == nil || cmd.Process == nil {
			return nil
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cmd = nil
		return nil
	}
	if err := s.start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { _ = s.stop(true) })
	waitPort(t, port, 10*time.Second)
	return s
}

// StartPostgres initialises and runs a Postgres cluster of the test's own
// (initdb + pg_ctl, trust authentication, as the postgres OS user when the
// test runs as root, since Postgres refuses to run as root).
func StartPostgres(t TB) *Server {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatalf("initdb not found under /usr/lib/postgresql/*/bin")
	}
	binDir := filepath.Dir(bins[len(bins)-1])
	port := freePort(t)
	dir, err := os.MkdirTemp("", "moreid-pg-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	asPostgres := func(args ...string) *exec.Cmd {
		if os.Geteuid() != 0 {
			return exec.Command(args[0], args[1:]...)
		}
		return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v %s", dir, err, out)
		}
	}
	if out, err := asPostgres(filepath.Join(binDir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	pgctl := filepath.Join(binDir, "pg_ctl")
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	s := &Server{URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), Port: port}
	s.start = func() error {
		out, err := asPostgres(pgctl, "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	s.stop = func(immediate bool) error {
		mode := "fast"
		if immediate {
			mode = "immediate"
		}
		out, err := asPostgres(pgctl, "-D", data, "-m", mode, "-w", "stop").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "not running") && !strings.Contains(string(out), "No such file") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := s.start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() { _ = s.stop(true) })
	waitPort(t, port, 30*time.Second)
	return s
}

func freePort(t TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

func waitPort(t TB, port int, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d after %s", port, within)
}
