package testenv

import (
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DirTB is what the server helpers need of their caller: a TB that also
// hands out temporary directories (testing.TB does).
type DirTB interface {
	TB
	TempDir() string
}

// Server is a Redis or Postgres server of the test's own, on a free
// loopback port, for tests that crash, stop or restart their backends.
// Only this server's own processes are ever signalled; the machine's
// servers are never touched.
type Server struct {
	// URL is the Redis URL or the Postgres server URL (postgres database).
	URL  string
	Port int

	start func() error
	stop  func(immediate bool) error
	// pids lists the server's processes (for Redis the one process, for
	// Postgres the postmaster and its children), for Pause and Resume.
	pids func() ([]int, error)
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

// Pause freezes every process of the server with SIGSTOP: connections stay
// open and the kernel still accepts new ones, but nothing answers, as with
// a hung host. Resume (or the test's end) thaws it.
func (s *Server) Pause(t TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
}

// Resume sends SIGCONT to every process of the server.
func (s *Server) Resume(t TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT)
}

func (s *Server) signal(t TB, sig syscall.Signal) {
	t.Helper()
	pids, err := s.pids()
	if err != nil {
		t.Fatalf("processes of the server on port %d: %v", s.Port, err)
	}
	for _, pid := range pids {
		// A backend may have exited since it was listed.
		if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
			t.Fatalf("%v to %d: %v", sig, pid, err)
		}
	}
}

// StartRedis runs a redis-server of the test's own (no persistence).
func StartRedis(t DirTB) *Server {
	t.Helper()
	return startRedis(t, FreePort(t), t.TempDir())
}

// startRedis runs redis-server on port with its files in dir and extra
// arguments, killed when the test ends.
func startRedis(t DirTB, port int, dir string, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: %v", err)
	}
	var (
		mu  sync.Mutex
		cmd *exec.Cmd
	)
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), Port: port}
	s.start = func() error {
		mu.Lock()
		defer mu.Unlock()
		args := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", dir}, extra...)
		cmd = exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = nil, nil
		return cmd.Start()
	}
	s.stop = func(bool) error {
		mu.Lock()
		defer mu.Unlock()
		if cmd == nil || cmd.Process == nil {
			return nil
		}
		_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process dies all the same
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cmd = nil
		return nil
	}
	s.pids = func() ([]int, error) {
		mu.Lock()
		defer mu.Unlock()
		if cmd == nil || cmd.Process == nil {
			return nil, fmt.Errorf("not running")
		}
		return []int{cmd.Process.Pid}, nil
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
// test runs as root, since Postgres refuses to run as root). It is stopped
// (thawed first if paused) and removed when the test ends.
func StartPostgres(t DirTB) *Server {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatalf("initdb not found under /usr/lib/postgresql/*/bin")
	}
	binDir := filepath.Dir(bins[len(bins)-1])
	port := FreePort(t)
	// Not t.TempDir(): the directory must belong to the postgres user, and
	// the socket path must stay short.
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
	s.pids = func() ([]int, error) { return postgresPids(data) }
	s.stop = func(immediate bool) error {
		// pg_ctl cannot stop a frozen server.
		if pids, err := postgresPids(data); err == nil {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
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

// postgresPids is the postmaster of the cluster in data (the first line of
// postmaster.pid) and every process it forked (backends, checkpointer,
// walwriter...), read from /proc.
func postgresPids(data string) ([]int, error) {
	raw, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return nil, fmt.Errorf("postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil, fmt.Errorf("postmaster.pid: %w", err)
	}
	pids := []int{postmaster}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces, so split
		// after its closing parenthesis.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(postmaster) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// FreeAddr returns a loopback address on which nothing listens, for a
// server the test starts or for a dependency that is down. The port is
// below the kernel's ephemeral range (32768 and up), so no outgoing
// connection takes it before the server binds it, and never handed out
// twice while this process lives, in it or in another test process (go test
// runs packages, and make test both e2e shapes, side by side): each port
// handed out is claimed with an flock on a file of its own, held until the
// process exits, when the kernel releases it.
func FreeAddr(t TB) string {
	t.Helper()
	for range 500 {
		port := 20000 + mathrand.IntN(12000)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if _, taken := picked.Load(addr); taken {
			continue // handed out already in this process, maybe not bound yet
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		claim, err := claimPort(port)
		if err != nil {
			t.Fatalf("claiming port %d: %v", port, err)
		}
		if claim == nil {
			continue // another test process has it
		}
		if _, taken := picked.LoadOrStore(addr, claim); taken {
			claim.Close()
			continue
		}
		return addr
	}
	t.Fatalf("no free loopback port found")
	return ""
}

// claimPort takes the port's lock file, or returns nil when another process
// holds it. The file stays open (and the lock held) for the process's life.
func claimPort(port int) (*os.File, error) {
	dir := filepath.Join(os.TempDir(), "moreid-test-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, nil
		}
		return nil, err
	}
	return f, nil
}

// FreePort is FreeAddr's port.
func FreePort(t TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// picked remembers every address FreeAddr handed out in this process, with
// the lock file that claims it.
var picked sync.Map

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
