package main

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/testenv"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
)

// auditEvents lists the audit trail in dsn as "component event key_id
// outcome client_ip" lines, oldest first.
func auditEvents(t *testing.T, dsn string) []string {
	t.Helper()
	db := pgdbtest.Open(t, dsn, 1)
	var lines []string
	if err := db.Raw(`SELECT concat_ws(' ', component, event, api_key_id, outcome, client_ip) FROM audit_events ORDER BY id`).
		Scan(&lines).Error; err != nil {
		t.Fatalf("audit_events: %v", err)
	}
	return lines
}

// TestBinary: the binary migrates the audit trail with its own schema, and
// what its admin listener did is in the trail once it has stopped.
func TestBinary(t *testing.T) {
	bin := testenv.BuildBinary(t, ".")
	dsn := testenv.Postgres(t)
	adminAddr := testenv.FreeAddr(t)
	env := append(os.Environ(),
		"MOREID_POSTGRES_DSN="+dsn,
		"MOREID_APIKEY_ADDR="+testenv.FreeAddr(t),
		"MOREID_APIKEY_ADMIN_ADDR="+adminAddr,
		"MOREID_DRAIN_TIMEOUT=2s",
		"MOREID_METRICS_ADDR=127.0.0.1:0",
	)

	t.Run("migrate-only", func(t *testing.T) {
		cmd := exec.Command(bin, "-migrate-only")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("-migrate-only: %v\n%s", err, out)
		}
		if got := auditEvents(t, dsn); len(got) != 0 {
			t.Fatalf("audit events after -migrate-only: %v", got)
		}
	})

	t.Run("serve, record, drain", func(t *testing.T) {
		proc := testenv.Start(t, bin, env)
		conn := grpctest.Dial(t, adminAddr)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		admin := apikeyv1.NewAPIKeyAdminServiceClient(conn)
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
