package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
	userapp "github.com/moreline/moreid/services/user/app"
)

// TestCommandLine: what an operator meets before anything is served.
func TestCommandLine(t *testing.T) {
	bin := testenv.BuildBinary(t, ".")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // a substring of standard output
		stderr   string // a substring of standard error
		noStdout bool
	}{
		{"no command", nil, 2, "", "no command given", true},
		{"unknown command", []string{"srve"}, 2, "", `unknown command "srve"`, true},
		{"unknown role", []string{"serve", "auth", "gatway"}, 2, "", `unknown role "gatway" (roles: gateway, auth, user, apikey, or all)`, true},
		{"a flag is no role", []string{"serve", "--roles=auth"}, 2, "", `unknown role "--roles=auth"`, true},
		{"migrate takes no arguments", []string{"migrate", "now"}, 2, "", "takes no arguments", true},
		{"version", []string{"version"}, 0, "moreid ", "", false},
		{"--version", []string{"--version"}, 0, "moreid ", "", false},
		{"help", []string{"help"}, 0, "moreid serve [ROLE...]", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) ||
				(tt.noStdout && out.Len() > 0) {
				t.Fatalf("moreid %v: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					tt.args, code, out.String(), errb.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestMigrate: `moreid migrate` applies every schema as the owner, grants
// the serving role, serves nothing and records nothing.
func TestMigrate(t *testing.T) {
	bin := testenv.BuildBinary(t, ".")
	owner, serving := testenv.PostgresRoles(t)
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(bin, "migrate")
	cmd.Env = append(os.Environ(), "MOREID_POSTGRES_OWNER_DSN="+owner, "MOREID_POSTGRES_DSN="+serving, "MOREID_USER_ADDR="+addr)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("moreid migrate: %v\n%s", err, out)
	}
	if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		conn.Close()
		t.Fatalf("something listens on %s after moreid migrate", addr)
	}
	// The serving role reads every table it was granted, and the trail is
	// empty: migrating is no event.
	db := pgdbtest.Open(t, serving, 1)
	for _, table := range []string{"users", "api_keys", "audit_events"} {
		var n int64
		if err := db.Raw("SELECT count(*) FROM " + table).Scan(&n).Error; err != nil || n != 0 {
			t.Errorf("%s as the serving role: %d rows, %v", table, n, err)
		}
	}
}

// TestServeOneRole: `moreid serve user` and `moreid serve apikey` are each
// a component on its own, with its listeners, its audit trail flushed at
// SIGTERM, and nothing secret in its logs.
func TestServeOneRole(t *testing.T) {
	bin := testenv.BuildBinary(t, ".")

	t.Run("bad configuration names every bad setting", func(t *testing.T) {
		cmd := exec.Command(bin, "serve", "user", "apikey")
		cmd.Env = append(os.Environ(), "MOREID_ARGON2_TIME=zero", "MOREID_ARGON2_CONCURRENCY=0", "MOREID_DRAIN_TIMEOUT=soon")
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

	t.Run("user", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		addr, adminAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
		proc := testenv.Start(t, bin, append(os.Environ(),
			"MOREID_POSTGRES_DSN="+dsn,
			"MOREID_USER_ADDR="+addr,
			"MOREID_USER_ADMIN_ADDR="+adminAddr,
			"MOREID_ARGON2_MEMORY_KIB=64",
			"MOREID_DRAIN_TIMEOUT=2s",
			// This is a test of serving one role, not of the 700 ms
			// Postgres budget, which a loaded two-core machine overruns.
			"MOREID_POSTGRES_TIMEOUT=5s",
			"MOREID_METRICS_ADDR=127.0.0.1:0",
		), "serve", "user")
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
		if created.GetUser().GetAvatarUrl() != userapp.DefaultAvatar {
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
		proc.Stop(t, 10*time.Second)
		if strings.Contains(proc.Stderr(), "alice-password") {
			t.Fatalf("the password reached the logs")
		}
		// Written by the audit writer, at the latest by its final flush.
		if got, want := auditEvents(t, dsn), []string{"user user.created alice success 127.0.0.1"}; !slices.Equal(got, want) {
			t.Errorf("audit events %v, want %v", got, want)
		}
	})

	t.Run("apikey", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		adminAddr := testenv.FreeAddr(t)
		proc := testenv.Start(t, bin, append(os.Environ(),
			"MOREID_POSTGRES_DSN="+dsn,
			"MOREID_APIKEY_ADDR="+testenv.FreeAddr(t),
			"MOREID_APIKEY_ADMIN_ADDR="+adminAddr,
			"MOREID_DRAIN_TIMEOUT=2s",
			// This is a test of serving one role, not of the 700 ms
			// Postgres budget, which a loaded two-core machine overruns.
			"MOREID_POSTGRES_TIMEOUT=5s",
			"MOREID_METRICS_ADDR=127.0.0.1:0",
		), "serve", "apikey")
		admin := apikeyv1.NewAPIKeyAdminServiceClient(grpctest.Dial(t, adminAddr))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		var created *apikeyv1.CreateAPIKeyResponse
		var err error
		for {
			// Retried until the listener is up.
			if created, err = admin.CreateAPIKey(ctx, &apikeyv1.CreateAPIKeyRequest{Name: "app"}); err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("CreateAPIKey: %v\n%s", err, proc.Stderr())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := admin.RevokeAPIKey(ctx, &apikeyv1.RevokeAPIKeyRequest{Id: created.GetApiKey().GetId()}); err != nil {
			t.Fatal(err)
		}
		proc.Stop(t, 10*time.Second)
		id := strconv.FormatInt(created.GetApiKey().GetId(), 10)
		want := []string{
			"apikey apikey.created " + id + " success 127.0.0.1",
			"apikey apikey.revoked " + id + " success 127.0.0.1",
		}
		if got := auditEvents(t, dsn); !slices.Equal(got, want) {
			t.Errorf("audit events %v, want %v", got, want)
		}
		if strings.Contains(proc.Stderr(), created.GetKey()) {
			t.Error("the key reached the logs")
		}
	})
}

// auditEvents lists the audit trail in dsn as "component event subject
// outcome client_ip" lines, oldest first; the subject is the user or the
// API key's id.
func auditEvents(t *testing.T, dsn string) []string {
	t.Helper()
	db := pgdbtest.Open(t, dsn, 1)
	var lines []string
	if err := db.Raw(`SELECT concat_ws(' ', component, event, nullif(user_id, ''), api_key_id, outcome, client_ip) FROM audit_events ORDER BY id`).
		Scan(&lines).Error; err != nil {
		t.Fatalf("audit_events: %v", err)
	}
	return lines
}
