package run

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// Callers follows a gRPC server's connections and calls, for its unit's
// shutdown, and marks the connections' contexts with the unit's shutdown
// flag (Draining). Install it with grpc.StatsHandler on the server given
// to GRPC.
type Callers struct {
	draining atomic.Bool
	conns    atomic.Int64
	active   atomic.Int64
	last     atomic.Int64 // unix nanoseconds of the last call's start or end
}

// NewCallers returns a tracker for one server.
func NewCallers() *Callers { return &Callers{} }

// TagConn implements stats.Handler: every call on the connection sees the
// flag.
func (c *Callers) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return withDraining(ctx, &c.draining)
}

// HandleConn implements stats.Handler.
func (c *Callers) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		c.conns.Add(1)
	case *stats.ConnEnd:
		c.conns.Add(-1)
	}
}

// TagRPC implements stats.Handler.
func (c *Callers) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

// HandleRPC implements stats.Handler.
func (c *Callers) HandleRPC(_ context.Context, s stats.RPCStats) {
	switch s.(type) {
	case *stats.Begin:
		c.active.Add(1)
		c.last.Store(time.Now().UnixNano())
	case *stats.End:
		c.active.Add(-1)
		c.last.Store(time.Now().UnixNano())
	}
}

// callerQuiet is how long every connection must have been without a call
// for the callers to count as done with this server.
const callerQuiet = time.Second

// done reports whether the callers are done: no connection left, or none
// with a call now or in the last callerQuiet.
func (c *Callers) done(now time.Time) bool {
	if c.conns.Load() == 0 {
		return true
	}
	return c.active.Load() == 0 && now.Sub(time.Unix(0, c.last.Load())) >= callerQuiet
}

// waitDone returns when the callers are done or at until.
func (c *Callers) waitDone(ctx context.Context, until time.Time) {
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !c.done(time.Now()) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// GRPC serves srv, whose options include grpc.StatsHandler(callers), on
// addr.
//
// A callee must not refuse its callers while they drain: gRPC's
// GracefulStop sends GOAWAY at once, and a caller whose connection got it
// dials again for its next call, is refused, and answers its own client 503
// — the losses of a node drain, where the gateway, auth and the services
// get SIGTERM together. So Stop first keeps serving, new connections and
// calls included, until its callers are done with it (every connection
// closed — a caller closes its connections when it has drained and exits —
// or idle for callerQuiet), but at most two thirds of the budget left, so
// that a caller that stays (a single callee stopped alone) still gets its
// GOAWAY and moves to another replica; then it refuses new connections and
// GracefulStop lets the calls in flight finish, until the deadline.
func GRPC(name, addr string, srv *grpc.Server, callers *Callers) (Unit, error) {
	lis, err := listen(addr)
	if err != nil {
		return Unit{}, fmt.Errorf("%s: listen %s: %w", name, addr, err)
	}
	return Unit{
		Name:    name + " " + lis.Addr().String(),
		Addr:    lis.Addr().String(),
		Serve:   func() error { return srv.Serve(lis) },
		Quiesce: func() { callers.draining.Store(true) },
		Stop: func(ctx context.Context) {
			if deadline, ok := ctx.Deadline(); ok {
				callers.waitDone(ctx, deadline.Add(-time.Until(deadline)/3))
			}
			_ = lis.stopAccepting(ctx)
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
