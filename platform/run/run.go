// Package run runs a binary's listeners together and stops them together,
// losing no request that reached them. On SIGINT/SIGTERM (or when a unit
// fails) the group
//
//  1. fails readiness at once (Unit.Quiesce: gRPC health NOT_SERVING, the
//     gateway's /readyz 503) while every listener keeps serving;
//  2. keeps serving through the pause (Shutdown.Delay, the Kubernetes
//     preStop window, in which the endpoints controller takes the pod out
//     of its Services and the load balancers stop sending to it); HTTP
//     answers carry Connection: close meanwhile, so that kept-alive clients
//     move to other replicas between two requests instead of during one;
//  3. stops the units in the order given (callers before callees: in one
//     process the gateway, then auth, then user and apikey), each one
//     refusing new connections without resetting queued ones and letting
//     every accepted request finish.
//
// Shutdown.Drain bounds the whole sequence, from the signal to the return.
package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moreline/moreid/platform/config"

	"google.golang.org/grpc"
)

// Unit is one thing to serve and how to stop it within a deadline.
type Unit struct {
	Name string
	// Addr is the address it listens on, if any.
	Addr  string
	Serve func() error
	// Quiesce, if set, is called as soon as shutdown begins: the unit
	// fails its readiness checks and keeps serving. It must not block.
	Quiesce func()
	Stop    func(ctx context.Context)
}

// Shutdown is how a process stops.
type Shutdown struct {
	// Delay is the pause between failing readiness and refusing new
	// connections (MOREID_SHUTDOWN_DELAY). 0 locally, so Ctrl-C is quick;
	// a few seconds in Kubernetes, longer than it takes the endpoints to
	// be updated everywhere.
	Delay time.Duration
	// Drain is the whole budget, pause included (MOREID_DRAIN_TIMEOUT).
	Drain time.Duration
}

// NewShutdown reads how the process stops, recording bad values in r:
// MOREID_DRAIN_TIMEOUT (default 10 s) and MOREID_SHUTDOWN_DELAY ("0" or a
// duration, default 0). The pause must leave time for draining: at most
// half the budget. One per process, whatever components it runs: they
// drain together.
func NewShutdown(r *config.Reader) Shutdown {
	s := Shutdown{Drain: r.Duration("MOREID_DRAIN_TIMEOUT", 10*time.Second)}
	v := r.String("MOREID_SHUTDOWN_DELAY", "0")
	if v != "0" {
		s.Delay = r.Duration("MOREID_SHUTDOWN_DELAY", 0)
	}
	if s.Delay > s.Drain/2 {
		r.Fail("MOREID_SHUTDOWN_DELAY", v, fmt.Errorf("must be at most half of MOREID_DRAIN_TIMEOUT (%s)", s.Drain))
	}
	return s
}

// SignalContext is cancelled by SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Group serves every unit until ctx ends or one unit fails, then shuts
// them down as the package comment says.
func Group(ctx context.Context, log *slog.Logger, sd Shutdown, units ...Unit) error {
	errc := make(chan error, len(units))
	for _, u := range units {
		go func(u Unit) {
			log.Info("serving", "unit", u.Name)
			err := u.Serve()
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("%s: %w", u.Name, err)
				return
			}
			errc <- nil
		}(u)
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		if first != nil {
			log.Error("listener failed", "error", first.Error())
		}
	}
	deadline := time.Now().Add(sd.Drain)
	for _, u := range units {
		if u.Quiesce != nil {
			u.Quiesce()
		}
	}
	if first == nil && sd.Delay > 0 {
		log.Info("shutting down: not ready, serving through the pause", "pause", sd.Delay.String(), "drain", sd.Drain.String())
		select {
		case <-time.After(sd.Delay):
		case first = <-errc:
		}
	}
	log.Info("shutting down: refusing new connections, finishing accepted requests", "budget_left", time.Until(deadline).Round(time.Millisecond).String())
	stopCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for _, u := range units {
		u.Stop(stopCtx)
	}
	return first
}

// drainingKey is the context key of a unit's shutdown flag: the base
// context of every request an HTTP unit serves, and of every connection a
// gRPC unit serves, carries it.
type drainingKey struct{}

// Draining reports whether the unit serving the request under ctx has begun
// to shut down: readiness checks answer "not ready" from then on.
func Draining(ctx context.Context) bool {
	f, _ := ctx.Value(drainingKey{}).(*atomic.Bool)
	return f != nil && f.Load()
}

func withDraining(ctx context.Context, f *atomic.Bool) context.Context {
	return context.WithValue(ctx, drainingKey{}, f)
}
