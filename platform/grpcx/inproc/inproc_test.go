package inproc_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/inproc"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
	"github.com/moreline/moreid/proto/wire"
)

// fakeUsers records what its handler saw and answers from its table.
type fakeUsers struct {
	userv1.UnimplementedUserServiceServer
	seenMD   metadata.MD
	seenPeer net.Addr
	seenReq  *userv1.GetUserRequest
	reply    *userv1.GetUserResponse
}

func (f *fakeUsers) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	f.seenMD, _ = metadata.FromIncomingContext(ctx)
	if p, ok := peer.FromContext(ctx); ok {
		f.seenPeer = p.Addr
	}
	f.seenReq = req
	if req.GetUserId() == "missing" {
		return nil, apierr.Newf(apierr.NotFound, "no such user")
	}
	if req.GetUserId() == "plain" {
		return nil, io.ErrUnexpectedEOF
	}
	return f.reply, nil
}

func newConn(t *testing.T, extra ...grpc.UnaryServerInterceptor) (grpc.ClientConnInterface, *fakeUsers) {
	t.Helper()
	fake := &fakeUsers{reply: &userv1.GetUserResponse{User: &userv1.User{UserId: "u1", Username: "alice"}}}
	srv := inproc.NewServer(grpcx.UnaryChain(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, extra...))
	userv1.RegisterUserServiceServer(srv, fake)
	return srv.Conn(), fake
}

func TestInvoke(t *testing.T) {
	tests := []struct {
		name     string
		userID   string
		wantCode codes.Code
		wantKind apierr.Kind
	}{
		{"success", "u1", codes.OK, ""},
		{"domain error mapped by the error interceptor", "missing", codes.NotFound, apierr.NotFound},
		{"plain error becomes internal", "plain", codes.Internal, apierr.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, fake := newConn(t)
			ctx := metadata.AppendToOutgoingContext(context.Background(), wire.ClientIP, "203.0.113.9")
			req := &userv1.GetUserRequest{UserId: tt.userID}
			resp, err := userv1.NewUserServiceClient(conn).GetUser(ctx, req)
			st := status.Convert(err)
			if st.Code() != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tt.wantCode)
			}
			if err != nil {
				if got := apierr.FromStatus(st).Kind; got != tt.wantKind {
					t.Fatalf("kind = %q, want %q", got, tt.wantKind)
				}
				return
			}
			if resp.GetUser().GetUsername() != "alice" {
				t.Fatalf("reply = %v", resp)
			}
			if got := fake.seenMD.Get(wire.ClientIP); len(got) != 1 || got[0] != "203.0.113.9" {
				t.Fatalf("incoming metadata = %v", fake.seenMD)
			}
			if a, ok := fake.seenPeer.(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
				t.Fatalf("peer = %v, want loopback", fake.seenPeer)
			}
			// The server got a copy: the caller's later changes do not
			// reach it, nor do the caller's changes to the reply reach
			// the server's message.
			req.UserId = "changed"
			resp.User.Username = "mallory"
			if fake.seenReq.GetUserId() != "u1" || fake.reply.GetUser().GetUsername() != "alice" {
				t.Fatalf("messages shared: server saw %v, holds %v", fake.seenReq, fake.reply)
			}
		})
	}
}

func TestInterceptorsRun(t *testing.T) {
	var methods []string
	extra := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		methods = append(methods, info.FullMethod)
		if _, ok := metadata.FromIncomingContext(ctx); !ok {
			t.Error("no incoming metadata in the interceptor")
		}
		return nil, apierr.New(apierr.InvalidAPIKey)
	}
	conn, fake := newConn(t, extra)
	_, err := userv1.NewUserServiceClient(conn).GetUser(context.Background(), &userv1.GetUserRequest{UserId: "u1"})
	if got := apierr.FromStatus(status.Convert(err)).Kind; got != apierr.InvalidAPIKey {
		t.Fatalf("error = %v, want invalid_api_key", err)
	}
	if len(methods) != 1 || methods[0] != userv1.UserService_GetUser_FullMethodName {
		t.Fatalf("interceptor saw %v", methods)
	}
	if fake.seenReq != nil {
		t.Fatal("handler ran although the interceptor refused")
	}
}

func TestUnsupported(t *testing.T) {
	conn, _ := newConn(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"unknown method", func() error {
			return conn.Invoke(context.Background(), "/moreid.user.v1.UserService/Nope", &userv1.GetUserRequest{}, &userv1.GetUserResponse{})
		}},
		{"unregistered service", func() error {
			_, err := userv1.NewUserAdminServiceClient(conn).SetUserDisabled(context.Background(), &userv1.SetUserDisabledRequest{})
			return err
		}},
		{"stream", func() error {
			_, err := conn.NewStream(context.Background(), &grpc.StreamDesc{}, "/x/y")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := status.Code(tt.call()); c != codes.Unimplemented {
				t.Fatalf("code = %v, want Unimplemented", c)
			}
		})
	}
}
