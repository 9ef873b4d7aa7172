package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// env lets the command use the e2e harness and testenv, which take a
// testing.TB-like value: Fatalf reports, undoes everything set up so far
// (stops the suite, drops the database, deletes the Redis keys) and exits.
type env struct {
	mu       sync.Mutex
	cleanups []func()
	once     sync.Once
}

func newEnv() *env {
	e := &env{}
	// Ctrl-C must not leave the suite running or the database behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "moreid-bench: interrupted; cleaning up")
		e.close()
		os.Exit(130)
	}()
	return e
}

func (e *env) Helper() {}

func (e *env) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (e *env) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "moreid-bench: "+format+"\n", args...)
	e.close()
	os.Exit(1)
}

func (e *env) Cleanup(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

func (e *env) TempDir() string {
	dir, err := os.MkdirTemp("", "moreid-bench-")
	if err != nil {
		e.Fatalf("temp dir: %v", err)
	}
	e.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// close runs the cleanups, newest first, once.
func (e *env) close() {
	e.once.Do(func() {
		e.mu.Lock()
		fs := e.cleanups
		e.cleanups = nil
		e.mu.Unlock()
		for i := len(fs) - 1; i >= 0; i-- {
			fs[i]()
		}
	})
}
