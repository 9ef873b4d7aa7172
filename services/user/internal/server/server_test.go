package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit/audittest"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
	"github.com/moreline/moreid/services/user/internal/pgstore"
	"github.com/moreline/moreid/services/user/internal/server"
	"github.com/moreline/moreid/services/user/internal/user"
)

const avatar = "https://more.jsoftstudio.top/uploads/images/default/avatar.svg"

// suite is the two listeners of one user service over its own database.
type suite struct {
	internal, admin *grpc.ClientConn
	users           userv1.UserServiceClient
	adminUsers      userv1.UserAdminServiceClient
	trail           *audittest.Recorder
}

func newSuite(t *testing.T) suite {
	t.Helper()
	db := pgdbtest.Open(t, testenv.Postgres(t), 4, pgstore.Migrate)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := user.NewHasher(user.Params{MemoryKiB: 64, Time: 1, Threads: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := user.NewService(pgstore.New(db, pgdb.DefaultTimeout), hasher, nil, avatar, log, nil)
	health := grpcx.NewHealth(map[string]grpcx.Probe{"postgres": sqlDB.PingContext})

	trail := &audittest.Recorder{}
	s := suite{
		internal: grpctest.Dial(t, grpctest.Serve(t, server.NewInternal(log, svc, health))),
		admin:    grpctest.Dial(t, grpctest.Serve(t, server.NewAdmin(log, svc, health, trail))),
		trail:    trail,
	}
	s.users = userv1.NewUserServiceClient(s.internal)
	s.adminUsers = userv1.NewUserAdminServiceClient(s.admin)
	return s
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantStatus checks the gRPC code and the documented error kind of err.
func wantStatus(t *testing.T, err error, code codes.Code, kind apierr.Kind) apierr.Details {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || err == nil {
		t.Fatalf("err = %v, want a %s status", err, code)
	}
	d := apierr.FromStatus(st)
	if st.Code() != code || d.Kind != kind {
		t.Fatalf("got %s/%s (%q), want %s/%s", st.Code(), d.Kind, st.Message(), code, kind)
	}
	return d
}

func ptr(s string) *string { return &s }

var alice = &userv1.CreateUserRequest{UserId: "alice", Username: "爱丽丝", Email: "alice@example.com", Password: "alice-password"}

func TestUserServices(t *testing.T) {
	s := newSuite(t)

	created, err := s.adminUsers.CreateUser(callCtx(t), alice)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	u := created.GetUser()
	if u.GetId() <= 0 || u.GetUserId() != "alice" || u.GetUsername() != "爱丽丝" || u.GetEmail() != "alice@example.com" ||
		u.GetBio() != "" || u.GetAvatarUrl() != avatar || u.GetCreatedAt() == nil || u.GetUpdatedAt() == nil {
		t.Fatalf("created user %v", u)
	}

	t.Run("create duplicate", func(t *testing.T) {
		_, err := s.adminUsers.CreateUser(callCtx(t), alice)
		wantStatus(t, err, codes.AlreadyExists, apierr.Conflict)
	})
	t.Run("create invalid", func(t *testing.T) {
		_, err := s.adminUsers.CreateUser(callCtx(t), &userv1.CreateUserRequest{UserId: "bob", Username: "Bob", Email: "not-an-email", Password: "bob-password"})
		d := wantStatus(t, err, codes.InvalidArgument, apierr.InvalidRequest)
		if d.Message != "邮箱（email）格式不正确" {
			t.Errorf("message %q", d.Message)
		}
	})
	t.Run("get", func(t *testing.T) {
		got, err := s.users.GetUser(callCtx(t), &userv1.GetUserRequest{UserId: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetUser().GetId() != u.GetId() || got.GetUser().GetAvatarUrl() != avatar ||
			!got.GetUser().GetCreatedAt().AsTime().Equal(u.GetCreatedAt().AsTime()) {
			t.Fatalf("GetUser = %v, want %v", got.GetUser(), u)
		}
	})
	t.Run("get unknown", func(t *testing.T) {
		_, err := s.users.GetUser(callCtx(t), &userv1.GetUserRequest{UserId: "nobody"})
		d := wantStatus(t, err, codes.NotFound, apierr.NotFound)
		if d.Message != "用户不存在" {
			t.Errorf("message %q, want 用户不存在", d.Message)
		}
	})
	t.Run("verify", func(t *testing.T) {
		got, err := s.users.VerifyPassword(callCtx(t), &userv1.VerifyPasswordRequest{UserId: "alice", Password: "alice-password"})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetUser().GetUserId() != "alice" || got.GetUser().GetId() != u.GetId() {
			t.Fatalf("VerifyPassword = %v", got.GetUser())
		}
	})
	t.Run("verify wrong password and unknown user alike", func(t *testing.T) {
		_, errWrong := s.users.VerifyPassword(callCtx(t), &userv1.VerifyPasswordRequest{UserId: "alice", Password: "wrong-password"})
		_, errUnknown := s.users.VerifyPassword(callCtx(t), &userv1.VerifyPasswordRequest{UserId: "nobody", Password: "wrong-password"})
		dw := wantStatus(t, errWrong, codes.Unauthenticated, apierr.InvalidCredentials)
		du := wantStatus(t, errUnknown, codes.Unauthenticated, apierr.InvalidCredentials)
		if dw != du {
			t.Fatalf("wrong password %+v, unknown user %+v: must be indistinguishable", dw, du)
		}
	})
	t.Run("update profile", func(t *testing.T) {
		got, err := s.users.UpdateProfile(callCtx(t), &userv1.UpdateProfileRequest{UserId: "alice", Bio: ptr("新的简介")})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetUser().GetBio() != "新的简介" || got.GetUser().GetUsername() != "爱丽丝" {
			t.Fatalf("unset username must be kept: %v", got.GetUser())
		}
		got, err = s.users.UpdateProfile(callCtx(t), &userv1.UpdateProfileRequest{UserId: "alice", Username: ptr("Alice"), Bio: ptr("")})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetUser().GetBio() != "" || got.GetUser().GetUsername() != "Alice" {
			t.Fatalf("a set empty bio must clear it: %v", got.GetUser())
		}
	})
	t.Run("update nothing", func(t *testing.T) {
		_, err := s.users.UpdateProfile(callCtx(t), &userv1.UpdateProfileRequest{UserId: "alice"})
		wantStatus(t, err, codes.InvalidArgument, apierr.InvalidRequest)
	})
	t.Run("update unknown", func(t *testing.T) {
		_, err := s.users.UpdateProfile(callCtx(t), &userv1.UpdateProfileRequest{UserId: "nobody", Username: ptr("x")})
		wantStatus(t, err, codes.NotFound, apierr.NotFound)
	})
}

func TestSetUserDisabled(t *testing.T) {
	s := newSuite(t)
	created, err := s.adminUsers.CreateUser(callCtx(t), alice)
	if err != nil {
		t.Fatal(err)
	}
	if created.GetUser().GetDisabled() {
		t.Fatalf("a new user is disabled: %v", created.GetUser())
	}

	resp, err := s.adminUsers.SetUserDisabled(callCtx(t), &userv1.SetUserDisabledRequest{UserId: "alice", Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if u := resp.GetUser(); !u.GetDisabled() || u.GetId() != created.GetUser().GetId() || u.GetUserId() != "alice" || u.GetAvatarUrl() != avatar {
		t.Fatalf("SetUserDisabled = %v", u)
	}

	tests := []struct {
		name string
		call func(ctx context.Context) error
		code codes.Code
		kind apierr.Kind
	}{
		{"right password", func(ctx context.Context) error {
			_, err := s.users.VerifyPassword(ctx, &userv1.VerifyPasswordRequest{UserId: "alice", Password: alice.Password})
			return err
		}, codes.PermissionDenied, apierr.AccountDisabled},
		{"wrong password", func(ctx context.Context) error {
			_, err := s.users.VerifyPassword(ctx, &userv1.VerifyPasswordRequest{UserId: "alice", Password: "wrong-password"})
			return err
		}, codes.Unauthenticated, apierr.InvalidCredentials},
		{"update profile", func(ctx context.Context) error {
			_, err := s.users.UpdateProfile(ctx, &userv1.UpdateProfileRequest{UserId: "alice", Bio: ptr("x")})
			return err
		}, codes.PermissionDenied, apierr.AccountDisabled},
		{"disable unknown user", func(ctx context.Context) error {
			_, err := s.adminUsers.SetUserDisabled(ctx, &userv1.SetUserDisabledRequest{UserId: "nobody", Disabled: true})
			return err
		}, codes.NotFound, apierr.NotFound},
		{"disable without user_id", func(ctx context.Context) error {
			_, err := s.adminUsers.SetUserDisabled(ctx, &userv1.SetUserDisabledRequest{Disabled: true})
			return err
		}, codes.InvalidArgument, apierr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := wantStatus(t, tt.call(callCtx(t)), tt.code, tt.kind)
			if tt.kind == apierr.AccountDisabled && d.Message != "账号已停用" {
				t.Errorf("message %q", d.Message)
			}
		})
	}
	t.Run("get reports disabled", func(t *testing.T) {
		got, err := s.users.GetUser(callCtx(t), &userv1.GetUserRequest{UserId: "alice"})
		if err != nil || !got.GetUser().GetDisabled() || got.GetUser().GetBio() != "" {
			t.Fatalf("GetUser = %v, %v", got.GetUser(), err)
		}
	})
	t.Run("enable", func(t *testing.T) {
		resp, err := s.adminUsers.SetUserDisabled(callCtx(t), &userv1.SetUserDisabledRequest{UserId: "alice"})
		if err != nil || resp.GetUser().GetDisabled() {
			t.Fatalf("enable: %v, %v", resp.GetUser(), err)
		}
		got, err := s.users.VerifyPassword(callCtx(t), &userv1.VerifyPasswordRequest{UserId: "alice", Password: alice.Password})
		if err != nil || got.GetUser().GetDisabled() {
			t.Fatalf("VerifyPassword after enabling: %v, %v", got.GetUser(), err)
		}
	})
}

// Each listener serves only its own service: the admin RPCs cannot be
// reached through the internal listener, nor the internal ones through the
// admin listener.
func TestListenersAreSeparate(t *testing.T) {
	s := newSuite(t)

	_, err := userv1.NewUserAdminServiceClient(s.internal).CreateUser(callCtx(t), alice)
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("CreateUser on the internal listener: %v, want Unimplemented", err)
	}
	_, err = userv1.NewUserAdminServiceClient(s.internal).SetUserDisabled(callCtx(t), &userv1.SetUserDisabledRequest{UserId: "alice", Disabled: true})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("SetUserDisabled on the internal listener: %v, want Unimplemented", err)
	}
	_, err = userv1.NewUserServiceClient(s.admin).GetUser(callCtx(t), &userv1.GetUserRequest{UserId: "alice"})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("GetUser on the admin listener: %v, want Unimplemented", err)
	}
	// Nothing was created through the internal listener.
	_, err = s.users.GetUser(callCtx(t), &userv1.GetUserRequest{UserId: "alice"})
	wantStatus(t, err, codes.NotFound, apierr.NotFound)

	for name, conn := range map[string]*grpc.ClientConn{"internal": s.internal, "admin": s.admin} {
		t.Run("health "+name, func(t *testing.T) {
			for _, svc := range []string{"", "postgres"} {
				r, err := healthpb.NewHealthClient(conn).Check(callCtx(t), &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Fatalf("health %q: %v, %v", svc, r.GetStatus(), err)
				}
			}
		})
	}
}
