package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
)

// This file is a small, bounded load generator for the outage and shutdown
// tests: a few goroutines run the password flow (authorize, login, token,
// user/info) against one gateway over loopback and record every request as
// the client saw it, with the X-Request-Id it sent so that the suite's logs
// can say whether a server handled it.

// Placeholders a worker sends when the step before failed, so that every
// endpoint is still called on every round.
const (
	placeholderState = "loadPlaceholderState000000000000"
	placeholderCode  = "code_loadPlaceholderCode0000000000"
)

// loadLimit bounds a load that nobody stops.
const loadLimit = 30 * time.Second

// call is one request of the load.
type call struct {
	endpoint string // authorize, login, token, user/info
	id       string // the X-Request-Id sent
	start    time.Time
	end      time.Time
	status   int
	kind     string // the body's "error"
	body     map[string]any
	err      error // no complete JSON answer: transport error or malformed body
	reused   bool  // sent on a kept-alive connection
	wrote    bool  // the request was written in full
	closed   bool  // the answer closed its connection (Connection: close)
	// placeholder: sent with a placeholder state or code because the
	// step before failed.
	placeholder bool
}

func (c call) latency() time.Duration { return c.end.Sub(c.start) }

func (c call) String() string {
	s := fmt.Sprintf("%s %s (%s, reused=%v, placeholder=%v)", c.endpoint, c.id, c.latency().Round(time.Millisecond), c.reused, c.placeholder)
	if c.err != nil {
		return s + ": " + c.err.Error()
	}
	return fmt.Sprintf("%s: %d %s", s, c.status, c.kind)
}

// refused reports whether the request failed because nothing listened: it
// never reached a server.
func (c call) refused() bool { return c.err != nil && errors.Is(c.err, syscall.ECONNREFUSED) }

type loadConfig struct {
	base, key        string
	userID, password string
	keepAlive, fresh int           // workers on kept-alive connections, and on a new connection per request
	pause            time.Duration // between rounds of one worker
	// loginEvery > 1 signs in (argon2, the slow step) only on every
	// loginEvery-th round, so that more of the cheap calls go out.
	loginEvery int
}

// load runs until stop (or loadLimit).
type load struct {
	cfg  loadConfig
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu    sync.Mutex
	calls []call
}

func startLoad(t *testing.T, cfg loadConfig) *load {
	t.Helper()
	l := &load{cfg: cfg, stop: make(chan struct{})}
	shared := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: cfg.keepAlive + 1, IdleConnTimeout: 90 * time.Second}
	single := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	t.Cleanup(func() { shared.CloseIdleConnections() })
	deadline := time.After(loadLimit)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-l.stop:
		case <-deadline:
		}
		close(stopped)
	}()
	for w := range cfg.keepAlive + cfg.fresh {
		tr := shared
		if w >= cfg.keepAlive {
			tr = single
		}
		hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		l.wg.Go(func() { l.worker(w, hc, stopped) })
	}
	t.Cleanup(func() { l.Stop() })
	return l
}

// Stop ends the load, waits for its workers and returns every call.
func (l *load) Stop() []call {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.snapshot()
}

// waitAnswered waits until n of the load's requests that started after
// since (any, for the zero time) have their answer, or failed: a test acts
// on a load that runs, however long a loaded machine takes to start it,
// rather than after a fixed pause.
func (l *load) waitAnswered(t *testing.T, n int, since time.Time) {
	t.Helper()
	answered := func() int {
		k := 0
		for _, c := range l.snapshot() {
			if c.start.After(since) {
				k++
			}
		}
		return k
	}
	for deadline := time.Now().Add(30 * time.Second); answered() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the load answered %d of %d requests in 30 s", answered(), n)
		}
	}
}

func (l *load) snapshot() []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]call(nil), l.calls...)
}

func (l *load) worker(w int, hc *http.Client, stopped <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stopped:
			return
		default:
		}
		id := func(step string) string { return fmt.Sprintf("load-%d-%d-%s", w, n, step) }
		a := l.send(hc, id("authorize"), "authorize", "GET", "/api/oauth/authorize", nil, false)
		state, ph := str(a.body, "state"), false
		if a.status != 200 || state == "" {
			state, ph = placeholderState, true
		}
		code, cph := "", true
		if l.cfg.loginEvery <= 1 || n%l.cfg.loginEvery == 0 {
			lg := l.send(hc, id("login"), "login", "POST", "/api/oauth/login",
				map[string]string{"user_id": l.cfg.userID, "password": l.cfg.password, "state": state}, ph)
			code, cph = str(lg.body, "code"), false
		}
		if code == "" {
			code, cph = placeholderCode, true
		}
		l.send(hc, id("token"), "token", "POST", "/api/oauth/token", map[string]string{"code": code, "state": state}, cph)
		l.send(hc, id("info"), "user/info", "POST", "/api/oauth/user/info", map[string]string{"user_id": l.cfg.userID}, false)
		time.Sleep(l.cfg.pause)
	}
}

func (l *load) send(hc *http.Client, id, endpoint, method, path string, body any, placeholder bool) call {
	c := call{endpoint: endpoint, id: id, placeholder: placeholder}
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, l.cfg.base+path, r)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", l.cfg.key)
	req.Header.Set("X-Request-Id", id)
	var mu sync.Mutex
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn:      func(info httptrace.GotConnInfo) { mu.Lock(); c.reused = info.Reused; mu.Unlock() },
		WroteRequest: func(info httptrace.WroteRequestInfo) { mu.Lock(); c.wrote = info.Err == nil; mu.Unlock() },
	}))
	c.start = time.Now()
	resp, err := hc.Do(req)
	if err == nil {
		var raw []byte
		raw, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		c.status, c.closed = resp.StatusCode, resp.Close
		if err == nil {
			if jerr := json.Unmarshal(raw, &c.body); jerr != nil {
				err = fmt.Errorf("answer %d is not a JSON object: %q", resp.StatusCode, raw)
			} else {
				c.kind = str(c.body, "error")
			}
		}
	}
	c.end = time.Now()
	// The trace hooks run on the transport's goroutines, and a late one
	// may still write: take the record under their lock.
	mu.Lock()
	c.err = err
	done := c
	mu.Unlock()
	l.mu.Lock()
	l.calls = append(l.calls, done)
	l.mu.Unlock()
	return done
}

func str(body map[string]any, field string) string { s, _ := body[field].(string); return s }

// improper says what is wrong with an answer that should be the documented
// error with the given status and kind, or "" when it is that.
func improper(c call, status int, kind string) string {
	switch {
	case c.err != nil:
		return c.err.Error()
	case c.status != status || c.kind != kind:
		return fmt.Sprintf("answered %d %q, want %d %q", c.status, c.kind, status, kind)
	case c.body["success"] != false || str(c.body, "message") == "":
		return fmt.Sprintf("error body without success=false and a message: %v", c.body)
	}
	return ""
}

// logLine is one JSON line a component wrote.
type logLine map[string]any

// componentLog reads the JSON lines one component (a role) wrote: from its
// process's log (every instance and restart of it: the harness appends), in
// the AllRoles shape the one process's lines that carry the component's
// name.
func componentLog(t *testing.T, s *harness.Suite, component string) []logLine {
	t.Helper()
	process := s.Proc(component, 0).Component
	files, err := filepath.Glob(filepath.Join(s.LogDir, "moreid-"+process+"-*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no log of %s in %s (%v)", process, s.LogDir, err)
	}
	var lines []logLine
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l logLine
			if strings.HasPrefix(sc.Text(), "{") && json.Unmarshal(sc.Bytes(), &l) == nil &&
				(process == component || l["component"] == component) {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

// byRequest indexes the lines with the given msg by request id.
func byRequest(lines []logLine, msg string) map[string][]logLine {
	out := map[string][]logLine{}
	for _, l := range lines {
		if l["msg"] == msg {
			id, _ := l["request_id"].(string)
			out[id] = append(out[id], l)
		}
	}
	return out
}
