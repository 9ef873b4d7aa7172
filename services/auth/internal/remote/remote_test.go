package remote_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/testenv"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
	"github.com/moreline/moreid/services/auth/internal/remote"
)

// users answers every call with err.
type users struct {
	userv1.UnimplementedUserServiceServer
	err error
}

func (u users) GetUser(context.Context, *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	return nil, u.err
}

type keys struct {
	apikeyv1.UnimplementedAPIKeyServiceServer
	err error
}

func (k keys) ValidateKey(context.Context, *apikeyv1.ValidateKeyRequest) (*apikeyv1.ValidateKeyResponse, error) {
	return nil, k.err
}

func start(t *testing.T, err error) *grpc.ClientConn {
	t.Helper()
	srv := grpctest.NewServer()
	userv1.RegisterUserServiceServer(srv, users{err: err})
	apikeyv1.RegisterAPIKeyServiceServer(srv, keys{err: err})
	return grpctest.Dial(t, grpctest.Serve(t, srv))
}

func TestErrors(t *testing.T) {
	closed := func(t *testing.T) *grpc.ClientConn {
		return grpctest.Dial(t, testenv.FreeAddr(t))
	}
	tests := []struct {
		name        string
		conn        func(t *testing.T) *grpc.ClientConn
		want        apierr.Kind
		passThrough bool
	}{
		{"a Moreid verdict passes through unchanged", func(t *testing.T) *grpc.ClientConn {
			return start(t, apierr.Newf(apierr.NotFound, "用户不存在"))
		}, apierr.NotFound, true},
		{"an unreachable service is unavailable", closed, apierr.Unavailable, false},
		{"a foreign status becomes internal", func(t *testing.T) *grpc.ClientConn {
			return start(t, status.Error(codes.PermissionDenied, "detail that must not leak"))
		}, apierr.Internal, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := tt.conn(t)
			_, uerr := remote.NewUsers(userv1.NewUserServiceClient(conn)).GetUser(context.Background(), "alice")
			_, kerr := remote.NewKeys(apikeyv1.NewAPIKeyServiceClient(conn)).ValidateKey(context.Background(), "ml_x", "127.0.0.1")
			for _, err := range []error{uerr, kerr} {
				if apierr.KindOf(err) != tt.want {
					t.Fatalf("kind of %v = %s, want %s", err, apierr.KindOf(err), tt.want)
				}
				var e *apierr.Error
				if isDomain := errors.As(err, &e); isDomain == tt.passThrough {
					t.Fatalf("err %v: domain error = %v, want pass-through = %v", err, isDomain, tt.passThrough)
				}
				if tt.passThrough && status.Convert(err).Message() != "用户不存在" {
					t.Fatalf("message changed: %q", status.Convert(err).Message())
				}
			}
		})
	}
}
