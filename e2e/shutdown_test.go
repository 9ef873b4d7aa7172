package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
)

// shutdownEnv is the suite's environment in the shutdown tests: a pause
// (the preStop window) long enough for every client to see an answer with
// Connection: close in it, a budget that a slow, shared machine cannot
// exhaust, cheap password hashes so that the 150 clients sign in often,
// and info logs (debug would log every call of the load).
var shutdownEnv = map[string]string{
	"MOREID_SHUTDOWN_DELAY":    "1s",
	"MOREID_DRAIN_TIMEOUT":     "30s",
	"MOREID_ARGON2_MEMORY_KIB": "1024",
	"MOREID_LOG_LEVEL":         "info",
}

// shutdownClients is how many clients loop through the gateway: 100 on
// kept-alive connections, 50 on a new connection per request.
const shutdownKeepAlive, shutdownFresh = 100, 50

// TestGracefulShutdown is finding 6 of issue 11: SIGTERM under load must
// lose nothing, in both shapes. 150 clients loop over the password flow
// (authorize, login, token) and reads (user/info) through the gateway while
// every process of the suite gets SIGTERM: the one moreid process; the four
// processes at once, as in a node drain; and the four one after another,
// callers first and callees first, each while the one signalled before is
// still draining.
//
// Every request that was accepted must get its complete, correct answer:
// no reset, no 503, nothing cut off on a kept-alive connection. The only
// failure allowed is a connection refused, for a client that connected
// after the gateway stopped listening: it was never accepted. Readiness
// fails first (/readyz 503 while the gateway still serves), and every
// process exits 0 within its budget.
func TestGracefulShutdown(t *testing.T) {
	four := []string{"gateway", "auth", "user", "apikey"}
	tests := []struct {
		name  string
		shape harness.Shape
		// order of the SIGTERMs, gap apart; several in one string go
		// together.
		order []string
		gap   time.Duration
	}{
		{name: "one process", shape: harness.AllRoles, order: []string{harness.AllRolesProcess}},
		{name: "four processes at once", shape: harness.PerRole, order: []string{strings.Join(four, ",")}},
		{name: "four processes, callers first", shape: harness.PerRole, order: four, gap: 300 * time.Millisecond},
		{name: "four processes, callees first", shape: harness.PerRole, order: []string{"apikey", "user", "auth", "gateway"}, gap: 300 * time.Millisecond},
	}
	// The cases of the run's shape: `make test` runs the e2e suite once in
	// each.
	shape, err := harness.DefaultShape()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		if tc.shape != shape {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			s := harness.Start(t, harness.Options{Shape: tc.shape, Env: shutdownEnv})
			drain, _ := time.ParseDuration(s.Env["MOREID_DRAIN_TIMEOUT"])
			s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
			app := newClient(s.BaseURL, s.CreateKey(t, "Shutdown app"))
			app.login(t, "alice", alicePassword) // every path warm

			l := startLoad(t, loadConfig{base: s.BaseURL, key: app.key, userID: "alice", password: alicePassword,
				keepAlive: shutdownKeepAlive, fresh: shutdownFresh, pause: 2 * time.Millisecond, loginEvery: 2})
			l.waitAnswered(t, 2*(shutdownKeepAlive+shutdownFresh), time.Time{})
			readiness := watchReadiness(s.BaseURL)
			signalled := time.Now()
			var procs []*harness.Proc
			for i, group := range tc.order {
				if i > 0 {
					time.Sleep(tc.gap)
				}
				for _, c := range strings.Split(group, ",") {
					p := s.Proc(c, 0)
					if err := p.Signal(syscall.SIGTERM); err != nil {
						t.Fatal(err)
					}
					procs = append(procs, p)
				}
			}
			// A slow machine gets a generous margin over the budget.
			for _, p := range procs {
				if code := p.Wait(drain + 15*time.Second); code != 0 {
					t.Errorf("%s: exit status %d after SIGTERM (-1: still running long after the %s budget)", p.Component, code, drain)
				}
			}
			exited := time.Since(signalled)
			calls := l.Stop()
			sawNotReady := <-readiness

			r := countShutdown(t, calls, signalled)
			t.Logf("SIGTERM to %s: all exited after %s; %d requests, %d in flight at the first signal, %d answered after it; %d refused (connected after the listener closed, never accepted); lost: %d",
				strings.Join(tc.order, " then "), exited.Round(time.Millisecond), len(calls), r.inFlight, r.answeredAfter, r.refused, r.lost)
			if r.inFlight == 0 || r.answeredAfter == 0 {
				t.Fatalf("no request of the load was in flight at the signal or answered after it: the test proves nothing")
			}
			if r.lost > 0 {
				t.Errorf("%d accepted requests got no complete, correct answer", r.lost)
			}
			if !sawNotReady {
				t.Errorf("/readyz never answered 503 while the gateway still served: readiness must fail first")
			}
		})
	}
}

type shutdownCount struct{ inFlight, answeredAfter, refused, lost int }

// countShutdown sorts the load's calls. A call counts as lost when it got
// anything but its complete, correct answer, except a connection refused.
func countShutdown(t *testing.T, calls []call, signalled time.Time) shutdownCount {
	t.Helper()
	var r shutdownCount
	for _, c := range calls {
		if c.start.Before(signalled) && c.end.After(signalled) {
			r.inFlight++
		}
		if neverConnected(c) {
			r.refused++
			continue
		}
		if problem := wrongAnswer(c); problem != "" {
			r.lost++
			if r.lost <= 20 {
				t.Errorf("lost (%s after the first signal): %v: %s", c.start.Sub(signalled).Round(time.Millisecond), c, problem)
			}
			continue
		}
		if c.end.After(signalled) {
			r.answeredAfter++
		}
	}
	return r
}

// neverConnected reports whether the call failed before it had a
// connection: refused, or reset while connecting (the kernel's answer to a
// handshake that was under way when the listener shut down). Such a
// request was never accepted.
func neverConnected(c call) bool {
	var op *net.OpError
	return c.refused() || (errors.As(c.err, &op) && op.Op == "dial")
}

// wrongAnswer says what is wrong with a call's answer, or "": a success, or
// the documented answer to a placeholder sent after an earlier step was
// refused.
func wrongAnswer(c call) string {
	switch {
	case c.err != nil:
		return c.err.Error()
	case c.status == 200 && c.body["success"] == true:
		return ""
	case c.placeholder && c.endpoint == "login":
		return improper(c, 408, "invalid_state")
	case c.placeholder && c.endpoint == "token":
		return improper(c, 409, "invalid_code")
	}
	return fmt.Sprintf("answered %d %q: %v", c.status, c.kind, c.body)
}

// TestCalleeStoppedAlone: SIGTERM to auth alone while the gateway stays up
// (a rolling restart of auth with one replica). auth serves through the
// pause and on while the gateway keeps calling, then, at two thirds of its
// budget, tells the gateway to go (GOAWAY) and exits 0 within its budget.
// The gateway gives every request a complete answer: a success, or 503
// unavailable once auth is gone (it has no other replica), never before
// the pause ended, never a 500 or a reset.
func TestCalleeStoppedAlone(t *testing.T) {
	env := map[string]string{"MOREID_DRAIN_TIMEOUT": "6s"}
	for k, v := range shutdownEnv {
		if k != "MOREID_DRAIN_TIMEOUT" {
			env[k] = v
		}
	}
	// A callee alone: only the per-role shape has one.
	s := harness.Start(t, harness.Options{Env: env, Shape: harness.PerRole})
	delay, _ := time.ParseDuration(env["MOREID_SHUTDOWN_DELAY"])
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Callee app"))
	app.login(t, "alice", alicePassword)

	l := startLoad(t, loadConfig{base: s.BaseURL, key: app.key, userID: "alice", password: alicePassword,
		keepAlive: 20, fresh: 10, pause: 2 * time.Millisecond, loginEvery: 2})
	l.waitAnswered(t, 60, time.Time{})
	auth := s.Proc("auth", 0)
	signalled := time.Now()
	if err := auth.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := auth.Wait(6*time.Second + 15*time.Second)
	exited := time.Since(signalled)
	l.waitAnswered(t, 30, time.Now()) // the load meets the stopped auth
	calls := l.Stop()
	if code != 0 {
		t.Errorf("auth: exit status %d after SIGTERM", code)
	}
	var ok, unavailable, early int
	for _, c := range calls {
		switch {
		case wrongAnswer(c) == "":
			ok++
		case improper(c, 503, "unavailable") == "":
			unavailable++
			if c.start.Before(signalled.Add(delay)) {
				early++
				t.Errorf("503 for a call that started during auth's pause: %v", c)
			}
		default:
			t.Errorf("not a complete, correct answer while the gateway stays up: %v %v", c, c.body)
		}
	}
	t.Logf("SIGTERM to auth alone: exited after %s; %d requests, %d answered, %d answered 503 after auth left", exited.Round(time.Millisecond), len(calls), ok, unavailable)
	if exited < delay {
		t.Errorf("auth exited after %s, before its %s pause ended", exited, delay)
	}
}

// watchReadiness polls /readyz from before the signal until the gateway
// stops listening, on a new connection each time, and reports whether it
// answered 503 while still listening.
func watchReadiness(base string) <-chan bool {
	out := make(chan bool, 1)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	go func() {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := hc.Get(base + "/readyz")
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					out <- false
					return
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				out <- true
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		out <- false
	}()
	return out
}
