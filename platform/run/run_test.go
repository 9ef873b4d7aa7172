package run

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/config"
)

func TestNewShutdown(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    Shutdown
		wantErr string
	}{
		{env: map[string]string{}, want: Shutdown{Drain: 10 * time.Second}},
		{env: map[string]string{"MOREID_SHUTDOWN_DELAY": "0"}, want: Shutdown{Drain: 10 * time.Second}},
		{env: map[string]string{"MOREID_SHUTDOWN_DELAY": "5s"}, want: Shutdown{Delay: 5 * time.Second, Drain: 10 * time.Second}},
		{env: map[string]string{"MOREID_SHUTDOWN_DELAY": "3"}, want: Shutdown{Delay: 3 * time.Second, Drain: 10 * time.Second}},
		{env: map[string]string{"MOREID_SHUTDOWN_DELAY": "15s", "MOREID_DRAIN_TIMEOUT": "30s"}, want: Shutdown{Delay: 15 * time.Second, Drain: 30 * time.Second}},
		{env: map[string]string{"MOREID_SHUTDOWN_DELAY": "6s"}, wantErr: "MOREID_SHUTDOWN_DELAY=\"6s\": must be at most half"},
		{env: map[string]string{"MOREID_SHUTDOWN_DELAY": "soon"}, wantErr: "MOREID_SHUTDOWN_DELAY"},
		{env: map[string]string{"MOREID_DRAIN_TIMEOUT": "-1"}, wantErr: "MOREID_DRAIN_TIMEOUT"},
	}
	for _, tt := range tests {
		r := config.FromMap(tt.env)
		sd := NewShutdown(r)
		err := r.Err()
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%v: error %v, want one containing %q", tt.env, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || sd != tt.want):
			t.Errorf("%v: %+v, %v; want %+v", tt.env, sd, err, tt.want)
		}
	}
}

// TestHTTPServesThroughThePause: once shutdown begins, the unit still
// answers during the pause, but readiness handlers see Draining and every
// answer says Connection: close, so that kept-alive clients leave between
// two requests.
func TestHTTPServesThroughThePause(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Draining(r.Context()) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, "ok")
	})}
	u, cancel, done := serveHTTP(t, srv)
	get := func() *http.Response {
		t.Helper()
		resp, err := http.Get("http://" + u.Addr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	waitFor(t, func() bool { _, err := http.Get("http://" + u.Addr); return err == nil })
	if resp := get(); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before shutdown: %d, close=%v", resp.StatusCode, resp.Close)
	}
	cancel()
	// Group quiesces right after the cancel, then pauses for 5 s: ample
	// for the first request after it.
	var during *http.Response
	waitFor(t, func() bool { during = get(); return during.StatusCode == http.StatusServiceUnavailable })
	if !during.Close {
		t.Fatal("an answer during the pause kept the connection alive")
	}
	if err := <-done; err != nil {
		t.Fatalf("Group: %v", err)
	}
}

// serveHTTP runs srv as the one unit of a Group with a 5 s pause; cancel
// begins the shutdown, done receives Group's result.
func serveHTTP(t *testing.T, srv *http.Server) (Unit, context.CancelFunc, <-chan error) {
	t.Helper()
	u, err := HTTP("test", "127.0.0.1:0", srv) // the unit keeps the port
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Group(ctx, slog.New(slog.DiscardHandler), Shutdown{Delay: 5 * time.Second, Drain: 30 * time.Second}, u)
	}()
	return u, cancel, done
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAnswerAfterQuiesceCloses: a request read before shutdown began and
// answered after it (a slow login) says Connection: close too, so that its
// kept-alive connection does not sit idle when Shutdown closes idle
// connections, just as the client sends its next request on it.
func TestAnswerAfterQuiesceCloses(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		} else if Draining(r.Context()) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, "ok")
	})}
	u, cancel, done := serveHTTP(t, srv)
	waitFor(t, func() bool { _, err := http.Get("http://" + u.Addr); return err == nil })

	slow := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get("http://" + u.Addr + "/slow")
		if err != nil {
			t.Error(err)
			close(slow)
			return
		}
		resp.Body.Close()
		slow <- resp
	}()
	<-started
	cancel()
	// Quiesced once another request sees Draining.
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + u.Addr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	close(release)
	if resp := <-slow; resp == nil || !resp.Close {
		t.Fatalf("the answer of a request read before shutdown began kept its connection alive: %+v", resp)
	}
	if err := <-done; err != nil {
		t.Fatalf("Group: %v", err)
	}
}
