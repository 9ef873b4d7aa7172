// Package inproc calls gRPC services registered in the same process without
// a network hop, while still running the server's interceptor chain (request
// id, access log, error mapping, the API-key check...). A combined binary
// registers each service on an inproc.Server and hands its Conn to the
// callers that would otherwise dial it.
package inproc

import (
	"context"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/logging"
)

// loopback is the peer address in-process callers present: the process
// itself, so rules that trust local callers (the gateway CIDRs of the
// API-key check) treat them like a co-located gateway.
var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0}

type method struct {
	impl    any
	handler func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error)
}

// Server holds registered services and the interceptor chain their calls
// run through. Register every service before the first call.
type Server struct {
	chain   grpc.UnaryServerInterceptor
	methods map[string]method
}

// NewServer returns a Server whose calls run through chain (typically
// grpcx.UnaryChain with the service's extra interceptors).
func NewServer(chain grpc.UnaryServerInterceptor) *Server {
	return &Server{chain: chain, methods: map[string]method{}}
}

// RegisterService implements grpc.ServiceRegistrar, so the generated
// RegisterXServer functions accept a Server. Streaming methods are ignored:
// in-process calls are unary only.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	for i := range desc.Methods {
		m := desc.Methods[i]
		full := "/" + desc.ServiceName + "/" + m.MethodName
		s.methods[full] = method{impl: impl, handler: m.Handler}
	}
}

// Conn returns a client connection whose calls go straight to the
// registered services.
func (s *Server) Conn() grpc.ClientConnInterface { return conn{s} }

type conn struct{ s *Server }

// Invoke runs the call as a server would receive it: outgoing metadata
// becomes incoming metadata, the peer is loopback, the request is a copy
// (the handler never shares the caller's message) and so is the reply.
func (c conn) Invoke(ctx context.Context, full string, args, reply any, _ ...grpc.CallOption) error {
	m, ok := c.s.methods[full]
	if !ok {
		return status.Errorf(codes.Unimplemented, "unknown method %s", full)
	}
	in, ok := args.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "inproc: request %T is not a proto message", args)
	}
	out, ok := reply.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "inproc: reply %T is not a proto message", reply)
	}
	ctx = serverContext(ctx)
	dec := func(v any) error {
		dst, ok := v.(proto.Message)
		if !ok {
			return fmt.Errorf("inproc: request %T is not a proto message", v)
		}
		proto.Merge(dst, in)
		return nil
	}
	resp, err := m.handler(m.impl, ctx, dec, c.s.chain)
	if err != nil {
		// Like a network call: whatever the handler returned reaches the
		// caller as a status.
		if _, ok := status.FromError(err); ok {
			return err
		}
		return apierr.ToStatus(err).Err()
	}
	msg, ok := resp.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "inproc: response %T is not a proto message", resp)
	}
	proto.Reset(out)
	proto.Merge(out, msg)
	return nil
}

// NewStream is refused: no Moreid RPC called in-process streams.
func (conn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "inproc: streaming calls are not supported")
}

// serverContext turns the caller's context into the one a server handler
// sees: the caller's deadline and cancellation, its outgoing metadata (plus
// the request id, as grpcx.DialOptions propagates it) as incoming metadata,
// a loopback peer.
func serverContext(ctx context.Context) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	if id := logging.RequestID(ctx); id != "" && len(md.Get(logging.MetadataKey)) == 0 {
		md.Set(logging.MetadataKey, id)
	}
	// Keys are lower-case on the wire; Copy keeps them as stored.
	for k, v := range md {
		if lk := strings.ToLower(k); lk != k {
			delete(md, k)
			md[lk] = append(md[lk], v...)
		}
	}
	ctx = metadata.NewOutgoingContext(ctx, nil)
	ctx = metadata.NewIncomingContext(ctx, md)
	return peer.NewContext(ctx, &peer.Peer{Addr: loopback, LocalAddr: loopback})
}
