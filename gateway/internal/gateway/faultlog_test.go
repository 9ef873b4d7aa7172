package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
)

// chainUsers is a user service whose password check fails as the test says.
type chainUsers struct {
	userv1.UnimplementedUserServiceServer
	fail func() error
}

func (u *chainUsers) VerifyPassword(context.Context, *userv1.VerifyPasswordRequest) (*userv1.VerifyPasswordResponse, error) {
	return nil, u.fail()
}

// chainAuth is an auth service whose Login asks the user service, passing
// its answer on as auth's remote package does (apierr.FromTransport).
type chainAuth struct {
	authv1.UnimplementedAuthServiceServer
	users userv1.UserServiceClient
}

func (a *chainAuth) Login(ctx context.Context, rq *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	_, err := a.users.VerifyPassword(ctx, &userv1.VerifyPasswordRequest{UserId: rq.GetUserId(), Password: rq.GetPassword()})
	return nil, apierr.FromTransport(err)
}

// unreachable is a connection whose every dial fails as a refused one does,
// without a port that some other process could take over.
func unreachable(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///down", append(grpcx.DialOptions(),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			return nil, errors.New("connect: connection refused")
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestOneFaultOneErrorLine: one failure behind user → auth → gateway, each
// with its own log and the full server interceptor chain over real gRPC,
// is exactly one ERROR line, written by the component where it happened
// (with its cause); the others log the passed-on fault below ERROR. The
// person still gets the documented answer.
func TestOneFaultOneErrorLine(t *testing.T) {
	tests := []struct {
		name   string
		user   func() error // nil: the user service is unreachable
		noAuth bool         // the gateway cannot reach auth
		page   bool         // the confirmation page, not the JSON API
		status int
		kind   apierr.Kind
		origin string // the component that must log the one ERROR line
		cause  string
	}{
		{"user's Postgres is down", func() error {
			return apierr.Wrap(apierr.Unavailable, errors.New("pgdb: dial 127.0.0.1:5432: connection refused"))
		}, false, false, 503, apierr.Unavailable, "user", "pgdb: dial"},
		{"user fails with a plain error", func() error { return errors.New("scan users row: bad column") },
			false, false, 500, apierr.Internal, "user", "scan users row"},
		{"user panics", func() error { panic("nil map") }, false, false, 500, apierr.Internal, "user", "nil map"},
		{"auth cannot reach user", nil, false, false, 503, apierr.Unavailable, "auth", "connection refused"},
		{"the gateway cannot reach auth", nil, true, false, 503, apierr.Unavailable, "gateway", "connection refused"},
		{"the page cannot reach auth", nil, true, true, 503, apierr.Unavailable, "gateway", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := map[string]*logBuffer{"user": {}, "auth": {}, "gateway": {}}
			logOf := func(c string) *slog.Logger {
				return slog.New(slog.NewJSONHandler(logs[c], &slog.HandlerOptions{Level: slog.LevelDebug}))
			}

			usersConn := unreachable(t)
			if tt.user != nil {
				usrv := grpc.NewServer(grpcx.ServerOptions(logOf("user"), nil)...)
				userv1.RegisterUserServiceServer(usrv, &chainUsers{fail: tt.user})
				usersConn = grpctest.Dial(t, grpctest.Serve(t, usrv))
			}
			authConn := unreachable(t)
			if !tt.noAuth {
				asrv := grpc.NewServer(grpcx.ServerOptions(logOf("auth"), nil)...)
				authv1.RegisterAuthServiceServer(asrv, &chainAuth{users: userv1.NewUserServiceClient(usersConn)})
				authConn = grpctest.Dial(t, grpctest.Serve(t, asrv))
			}
			h, err := New(authConn, nil, testCSRFKey, logOf("gateway"), nil, func(context.Context) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			gw := httptest.NewServer(h)
			t.Cleanup(gw.Close)

			if tt.page {
				res, err := gw.Client().Get(gw.URL + "/api/oauth/user_confirmation?uca=uca_x")
				if err != nil {
					t.Fatal(err)
				}
				_ = res.Body.Close()
				if res.StatusCode != tt.status {
					t.Fatalf("page status %d, want %d", res.StatusCode, tt.status)
				}
			} else {
				r := send(t, gw, request{method: "POST", path: "/api/oauth/login",
					body: `{"user_id":"alice","password":"` + alicePass + `","state":"s"}`})
				assertError(t, r, tt.status, tt.kind, "")
			}
			gw.Close() // waits for the handler, so its access line is written

			total := 0
			for c, l := range logs {
				for _, line := range strings.Split(l.String(), "\n") {
					if !strings.Contains(line, `"level":"ERROR"`) {
						continue
					}
					total++
					if c != tt.origin || !strings.Contains(line, tt.cause) {
						t.Errorf("%s logged ERROR: %s (want it from %s with cause %q)", c, line, tt.origin, tt.cause)
					}
				}
				if strings.Contains(l.String(), alicePass) {
					t.Errorf("%s logged the password", c)
				}
			}
			if total != 1 {
				t.Errorf("%d ERROR lines for one failure, want 1:\nuser: %s\nauth: %s\ngateway: %s",
					total, logs["user"], logs["auth"], logs["gateway"])
			}
		})
	}
}
