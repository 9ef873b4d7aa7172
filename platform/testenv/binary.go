package testenv

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildBinary compiles the main package pkg (a path such as "." or
// "./cmd/user", relative to the test's directory) into a temporary
// directory and returns the binary's path.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	dir, err := filepath.Abs(pkg)
	if err != nil {
		t.Fatalf("package %s: %v", pkg, err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(dir))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// Process is a binary started by Start. It is killed when the test ends if
// it is still running.
type Process struct {
	cmd    *exec.Cmd
	stderr lockedBuffer
	done   chan error
}

// Start runs bin with args and the environment env (a list of KEY=value),
// collecting what it writes to stderr.
func Start(t TB, bin string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

// Stderr is what the process wrote to stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Stop sends SIGTERM and fails the test unless the process then exits
// cleanly within timeout.
func (p *Process) Stop(t TB, timeout time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Stderr())
		}
	case <-time.After(timeout):
		t.Fatalf("still running %s after SIGTERM", timeout)
	}
}

// lockedBuffer is a bytes.Buffer the process's output copier and the test
// can use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
