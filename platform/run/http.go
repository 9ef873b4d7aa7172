package run

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP serves srv on addr. From Quiesce on, answers carry Connection:
// close (every answer whose header is written from then on, also of a
// request that began before) and requests see Draining; Stop refuses new connections (without
// resetting queued ones), waits until no connection has a request on the
// way, and only then shuts the server down.
//
// The wait matters: http.Server.Shutdown drops, unanswered, a request it
// reads after Shutdown began (a connection just accepted from the queue
// whose request was still in flight), and closes a kept-alive connection
// after an answer sent without Connection: close — the client may already
// be sending its next request on it.
func HTTP(name, addr string, srv *http.Server) (Unit, error) {
	lis, err := listen(addr)
	if err != nil {
		return Unit{}, fmt.Errorf("%s: listen %s: %w", name, addr, err)
	}
	draining := new(atomic.Bool)
	base := srv.BaseContext
	srv.BaseContext = func(l net.Listener) context.Context {
		ctx := context.Background()
		if base != nil {
			ctx = base(l)
		}
		return withDraining(ctx, draining)
	}
	next := srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&closingWriter{ResponseWriter: w, draining: draining}, r)
	})
	conns := newConnStates(srv)
	return Unit{
		Name:    name + " " + lis.Addr().String(),
		Addr:    lis.Addr().String(),
		Serve:   func() error { return srv.Serve(lis) },
		Quiesce: func() { draining.Store(true) },
		Stop: func(ctx context.Context) {
			_ = lis.stopAccepting(ctx)
			conns.waitQuiet(ctx)
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		},
	}, nil
}

// connStates follows every connection of a server through ConnState.
type connStates struct {
	mu    sync.Mutex
	state map[net.Conn]http.ConnState
}

func newConnStates(srv *http.Server) *connStates {
	c := &connStates{state: map[net.Conn]http.ConnState{}}
	prev := srv.ConnState
	srv.ConnState = func(conn net.Conn, s http.ConnState) {
		c.mu.Lock()
		if s == http.StateClosed || s == http.StateHijacked {
			delete(c.state, conn)
		} else {
			c.state[conn] = s
		}
		c.mu.Unlock()
		if prev != nil {
			prev(conn, s)
		}
	}
	return c
}

// busy counts the connections that are reading or serving a request, or
// were accepted and have not sent one yet (the server's ReadHeaderTimeout
// bounds those).
func (c *connStates) busy() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.state {
		if s == http.StateNew || s == http.StateActive {
			n++
		}
	}
	return n
}

// waitQuiet returns when no connection is busy, or when ctx ends. Called
// after the listener stopped accepting, so the count only goes down:
// every answer carries Connection: close by then, and a connection closes
// after its answer instead of going idle.
func (c *connStates) waitQuiet(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for c.busy() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// closingWriter adds Connection: close to an answer whose header is written
// while the server drains. Decided when the header goes out, not when the
// request came in: a slow request (a login) read before Quiesce and
// answered after it would otherwise leave its connection kept alive, idle
// after the answer, and Shutdown would close it just as the client sends
// its next request on it ("server closed idle connection", a request lost).
type closingWriter struct {
	http.ResponseWriter
	draining    *atomic.Bool
	wroteHeader bool
}

func (w *closingWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		if w.draining.Load() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closingWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer (flush,
// deadlines).
func (w *closingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
