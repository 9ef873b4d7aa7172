// Package run runs a binary's listeners together and stops them together:
// each listener is a (serve, drain) pair; the group returns when the context
// ends (SIGINT/SIGTERM) or any listener fails, after draining every one.
package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/moreline/moreid/platform/config"

	"google.golang.org/grpc"
)

// Unit is one thing to serve and how to stop it within a deadline.
type Unit struct {
	Name  string
	Serve func() error
	Stop  func(ctx context.Context)
}

// DrainTimeout reads MOREID_DRAIN_TIMEOUT, the graceful-shutdown budget of
// a process (default 10 s).
func DrainTimeout(r *config.Reader) time.Duration {
	return r.Duration("MOREID_DRAIN_TIMEOUT", 10*time.Second)
}

// SignalContext is cancelled by SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Group serves every unit until ctx ends or one unit fails, then stops all of
// them, giving them drain to finish in-flight work.
func Group(ctx context.Context, log *slog.Logger, drain time.Duration, units ...Unit) error {
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
		log.Info("shutting down", "drain", drain.String())
	case first = <-errc:
		if first != nil {
			log.Error("listener failed", "error", first.Error())
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	for _, u := range units {
		u.Stop(stopCtx)
	}
	return first
}

// GRPC serves srv on addr.
func GRPC(name, addr string, srv *grpc.Server) (Unit, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return Unit{}, fmt.Errorf("%s: listen %s: %w", name, addr, err)
	}
	return Unit{
		Name:  name + " " + lis.Addr().String(),
		Serve: func() error { return srv.Serve(lis) },
		Stop: func(ctx context.Context) {
			done := make(chan struct{})
			go func() { srv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				srv.Stop()
			}
		},
	}, nil
}

// HTTP serves srv on addr.
func HTTP(name, addr string, srv *http.Server) (Unit, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return Unit{}, fmt.Errorf("%s: listen %s: %w", name, addr, err)
	}
	return Unit{
		Name:  name + " " + lis.Addr().String(),
		Serve: func() error { return srv.Serve(lis) },
		Stop: func(ctx context.Context) {
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		},
	}, nil
}
