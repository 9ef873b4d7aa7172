package cli

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
)

// target names one admin listener, for dialing and for error messages.
type target struct {
	service string // "user admin service"
	addr    string
	envVar  string
}

// call dials t, runs fn within the command's time limit and turns a failure
// into a sentence an operator can act on. what says what was attempted
// ("create user alice").
func call(ctx context.Context, s settings, t target, what string, fn func(ctx context.Context, conn *grpc.ClientConn) error) error {
	var opts []grpc.DialOption
	if s.transport != nil {
		opts = append(opts, s.transport)
	}
	conn, err := grpcx.Dial(t.addr, opts...)
	if err != nil {
		return fmt.Errorf("%s: bad address %q for the %s (set %s): %w", what, t.addr, t.service, t.envVar, err)
	}
	defer conn.Close()

	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err = fn(cctx, conn)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: interrupted", what)
	}
	return explain(what, t, s.timeout, s.transport != nil, err)
}

// explain words a failed call. An answer of a Moreid service carries its
// error kind and a human (Chinese) message, printed as they are; a status
// made by gRPC itself means the service was not reached or not understood.
func explain(what string, t target, timeout time.Duration, withTLS bool, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	if reason, moreid := apierr.Reason(st); moreid {
		return fmt.Errorf("%s: %s (%s)", what, st.Message(), reason)
	}
	switch st.Code() {
	case codes.Unavailable:
		hint := "an admin listener with TLS wants an operator certificate: --cert, --key, --ca"
		if withTLS {
			hint = "an admin listener admits only certificates of the operators' CA"
		}
		return fmt.Errorf("%s: cannot reach the %s at %s (is the suite running? set %s to its address; %s): %s",
			what, t.service, t.addr, t.envVar, hint, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: no answer from the %s at %s within %s (is the suite running? set %s to its address)",
			what, t.service, t.addr, timeout, t.envVar)
	case codes.Unimplemented:
		return fmt.Errorf("%s: the server at %s is not the %s (check %s)", what, t.addr, t.service, t.envVar)
	default:
		return fmt.Errorf("%s: %s failed: %s (%s)", what, t.service, st.Message(), st.Code())
	}
}
