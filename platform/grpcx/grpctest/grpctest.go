// Package grpctest serves gRPC servers on loopback ports for tests and
// dials them, stopping and closing everything when the test ends.
package grpctest

import (
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"

	"github.com/moreline/moreid/platform/grpcx"
)

// NewServer returns a server with the options every Moreid server uses
// (grpcx.ServerOptions, its log discarded, no metrics); extra interceptors
// run last, as a service's own do.
func NewServer(extra ...grpc.UnaryServerInterceptor) *grpc.Server {
	return grpc.NewServer(grpcx.ServerOptions(slog.New(slog.DiscardHandler), nil, extra...)...)
}

// Serve serves srv on a fresh loopback port until the test ends and
// returns its address.
func Serve(t testing.TB, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// Dial returns a connection to addr with the platform's client options,
// closed when the test ends.
func Dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcx.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
