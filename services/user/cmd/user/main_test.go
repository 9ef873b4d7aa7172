package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
	"github.com/moreline/moreid/services/user/app"
)

func TestBinary(t *testing.T) {
	bin := testenv.BuildBinary(t, ".")
	dsn := testenv.Postgres(t)
	addr, adminAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := append(os.Environ(),
		"MOREID_POSTGRES_DSN="+dsn,
		"MOREID_USER_ADDR="+addr,
		"MOREID_USER_ADMIN_ADDR="+adminAddr,
		"MOREID_ARGON2_MEMORY_KIB=64",
		"MOREID_DRAIN_TIMEOUT=2s",
		"MOREID_METRICS_ADDR=127.0.0.1:0",
	)

	t.Run("migrate-only", func(t *testing.T) {
		cmd := exec.Command(bin, "-migrate-only")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("-migrate-only: %v\n%s", err, out)
		}
		// It must not have stayed up to serve.
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			t.Fatalf("something listens on %s after -migrate-only", addr)
		}
		// The audit trail's schema comes with the service's own.
		if n := auditEvents(t, dsn); len(n) != 0 {
			t.Fatalf("audit events after -migrate-only: %v", n)
		}
	})

	t.Run("bad configuration", func(t *testing.T) {
		cmd := exec.Command(bin)
		cmd.Env = append(env, "MOREID_ARGON2_TIME=zero", "MOREID_ARGON2_CONCURRENCY=0")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("started with bad configuration:\n%s", out)
		}
		for _, name := range []string{"MOREID_ARGON2_TIME", "MOREID_ARGON2_CONCURRENCY"} {
			if !strings.Contains(string(out), name) {
				t.Errorf("error output does not name %s:\n%s", name, out)
			}
		}
	})

	t.Run("serve and drain", func(t *testing.T) {
		proc := testenv.Start(t, bin, env)

		internal, admin := grpctest.Dial(t, addr), grpctest.Dial(t, adminAddr)

		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		health := healthpb.NewHealthClient(internal)
		for {
			r, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
			if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("never became healthy: %v\n%s", err, proc.Stderr())
			}
			time.Sleep(50 * time.Millisecond)
		}

		created, err := userv1.NewUserAdminServiceClient(admin).CreateUser(ctx, &userv1.CreateUserRequest{
			UserId: "alice", Username: "Alice", Email: "alice@example.com", Password: "alice-password"})
		if err != nil {
			t.Fatalf("CreateUser on the admin listener: %v", err)
		}
		if created.GetUser().GetAvatarUrl() != app.DefaultAvatar {
			t.Errorf("avatar %q, want the documented default", created.GetUser().GetAvatarUrl())
		}
		if _, err := userv1.NewUserServiceClient(internal).VerifyPassword(ctx, &userv1.VerifyPasswordRequest{
			UserId: "alice", Password: "alice-password"}); err != nil {
			t.Fatalf("VerifyPassword on the internal listener: %v", err)
		}
		_, err = userv1.NewUserAdminServiceClient(internal).CreateUser(ctx, &userv1.CreateUserRequest{UserId: "x"})
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("CreateUser on the internal listener: %v, want Unimplemented", err)
		}
		if strings.Contains(proc.Stderr(), "alice-password") {
			t.Fatalf("the password reached the logs")
		}

		proc.Stop(t, 10*time.Second)
		// Written by the audit writer, at the latest by its final flush.
		if got, want := auditEvents(t, dsn), []string{"user user.created alice success 127.0.0.1"}; !slices.Equal(got, want) {
			t.Errorf("audit events %v, want %v", got, want)
		}
	})
}

// auditEvents lists the audit trail in dsn as "component event user outcome
// client_ip" lines, oldest first.
func auditEvents(t *testing.T, dsn string) []string {
	t.Helper()
	db := pgdbtest.Open(t, dsn, 1)
	var lines []string
	if err := db.Raw(`SELECT concat_ws(' ', component, event, user_id, outcome, client_ip) FROM audit_events ORDER BY id`).
		Scan(&lines).Error; err != nil {
		t.Fatalf("audit_events: %v", err)
	}
	return lines
}
