package server_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit/audittest"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/testenv"
	apikeyv1 "github.com/moreline/moreid/proto/gen/go/moreid/apikey/v1"
	"github.com/moreline/moreid/services/apikey/internal/apikey"
	"github.com/moreline/moreid/services/apikey/internal/pgstore"
	"github.com/moreline/moreid/services/apikey/internal/server"
)

// suite is the two listeners of the service, as main wires them, and a
// client connection to each.
type suite struct {
	internal, admin *grpc.ClientConn
	trail           *audittest.Recorder
}

func start(t *testing.T, db *gorm.DB) suite {
	t.Helper()
	svc := apikey.New(pgstore.New(db, pgdb.DefaultTimeout))
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	health := grpcx.NewHealth(map[string]grpcx.Probe{
		"postgres": func(ctx context.Context) error { return sqlDB.PingContext(ctx) },
	})

	internal := grpctest.NewServer()
	apikeyv1.RegisterAPIKeyServiceServer(internal, server.NewKeys(svc))
	healthpb.RegisterHealthServer(internal, health)
	admin := grpctest.NewServer()
	trail := &audittest.Recorder{}
	apikeyv1.RegisterAPIKeyAdminServiceServer(admin, server.NewAdmin(svc, trail))
	healthpb.RegisterHealthServer(admin, health)

	return suite{
		internal: grpctest.Dial(t, grpctest.Serve(t, internal)),
		admin:    grpctest.Dial(t, grpctest.Serve(t, admin)),
		trail:    trail,
	}
}

func startWithDB(t *testing.T) suite {
	t.Helper()
	return start(t, pgdbtest.Open(t, testenv.Postgres(t), 4, pgstore.Migrate))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantStatus asserts the gRPC code and the ErrorInfo reason of err.
func wantStatus(t *testing.T, err error, code codes.Code, kind apierr.Kind) apierr.Details {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || err == nil {
		t.Fatalf("error = %v, want a %s status", err, code)
	}
	d := apierr.FromStatus(st)
	if st.Code() != code || d.Kind != kind {
		t.Fatalf("status = %s %q (reason %s), want %s reason %s", st.Code(), st.Message(), d.Kind, code, kind)
	}
	return d
}

var keyFormat = regexp.MustCompile(`^ml_[0-9a-f]{64}$`)

func TestKeyLifecycle(t *testing.T) {
	s := startWithDB(t)
	admin := apikeyv1.NewAPIKeyAdminServiceClient(s.admin)
	keys := apikeyv1.NewAPIKeyServiceClient(s.internal)

	created, err := admin.CreateAPIKey(ctx(t), &apikeyv1.CreateAPIKeyRequest{
		Name: "演示应用", Whitelist: []string{"10.1.2.3/16", "::ffff:192.0.2.9"}, DisablePasswordLogin: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	key := created.GetKey()
	rec := created.GetApiKey()
	if !keyFormat.MatchString(key) || rec.GetPrefix() != key[:11] {
		t.Fatalf("key %q prefix %q: wrong format", key, rec.GetPrefix())
	}
	if rec.GetName() != "演示应用" || rec.GetPasswordLogin() || rec.GetCreatedAt() == nil || rec.GetRevokedAt() != nil ||
		!slices.Equal(rec.GetWhitelist(), []string{"10.1.0.0/16", "192.0.2.9"}) {
		t.Fatalf("created record = %v", rec)
	}

	t.Run("validate from a whitelisted IP", func(t *testing.T) {
		resp, err := keys.ValidateKey(ctx(t), &apikeyv1.ValidateKeyRequest{Key: key, ClientIp: "10.1.200.7"})
		if err != nil {
			t.Fatal(err)
		}
		got := resp.GetApiKey()
		if got.GetId() != rec.GetId() || got.GetName() != rec.GetName() || got.GetPrefix() != rec.GetPrefix() ||
			got.GetPasswordLogin() || !slices.Equal(got.GetWhitelist(), rec.GetWhitelist()) ||
			!got.GetCreatedAt().AsTime().Equal(rec.GetCreatedAt().AsTime()) || got.GetRevokedAt() != nil {
			t.Fatalf("validated record = %v, want %v", got, rec)
		}
	})

	for _, tc := range []struct {
		name      string
		key, ip   string
		code      codes.Code
		kind      apierr.Kind
		inMessage string
	}{
		{"IP outside whitelist", key, "10.2.0.1", codes.PermissionDenied, apierr.IPNotAllowed, "白名单"},
		{"garbage IP", key, "garbage", codes.PermissionDenied, apierr.IPNotAllowed, "白名单"},
		{"unknown key", secret.New("ml_", 64, secret.Hex), "10.1.0.1", codes.Unauthenticated, apierr.InvalidAPIKey, "API密钥"},
		{"malformed key", "ml_123", "10.1.0.1", codes.Unauthenticated, apierr.InvalidAPIKey, "API密钥"},
		{"empty key", "", "10.1.0.1", codes.Unauthenticated, apierr.InvalidAPIKey, "API密钥"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keys.ValidateKey(ctx(t), &apikeyv1.ValidateKeyRequest{Key: tc.key, ClientIp: tc.ip})
			d := wantStatus(t, err, tc.code, tc.kind)
			if !strings.Contains(d.Message, tc.inMessage) {
				t.Errorf("message %q lacks %q", d.Message, tc.inMessage)
			}
		})
	}

	t.Run("set whitelist, then clear", func(t *testing.T) {
		resp, err := admin.SetWhitelist(ctx(t), &apikeyv1.SetWhitelistRequest{Id: rec.GetId(), Whitelist: []string{"2001:db8::/32"}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(resp.GetApiKey().GetWhitelist(), []string{"2001:db8::/32"}) {
			t.Fatalf("whitelist = %q", resp.GetApiKey().GetWhitelist())
		}
		_, err = keys.ValidateKey(ctx(t), &apikeyv1.ValidateKeyRequest{Key: key, ClientIp: "10.1.200.7"})
		wantStatus(t, err, codes.PermissionDenied, apierr.IPNotAllowed)

		resp, err = admin.SetWhitelist(ctx(t), &apikeyv1.SetWhitelistRequest{Id: rec.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetApiKey().GetWhitelist()) != 0 {
			t.Fatalf("whitelist after clear = %q", resp.GetApiKey().GetWhitelist())
		}
		if _, err := keys.ValidateKey(ctx(t), &apikeyv1.ValidateKeyRequest{Key: key, ClientIp: "203.0.113.1"}); err != nil {
			t.Fatalf("validate with cleared whitelist: %v", err)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		resp, err := admin.RevokeAPIKey(ctx(t), &apikeyv1.RevokeAPIKeyRequest{Id: rec.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetApiKey().GetRevokedAt() == nil {
			t.Fatal("revoked record has no revoked_at")
		}
		_, err = keys.ValidateKey(ctx(t), &apikeyv1.ValidateKeyRequest{Key: key, ClientIp: "203.0.113.1"})
		wantStatus(t, err, codes.Unauthenticated, apierr.InvalidAPIKey)
		if _, err := admin.RevokeAPIKey(ctx(t), &apikeyv1.RevokeAPIKeyRequest{Id: rec.GetId()}); err != nil {
			t.Fatalf("second revoke: %v", err)
		}
	})

	t.Run("list", func(t *testing.T) {
		if _, err := admin.CreateAPIKey(ctx(t), &apikeyv1.CreateAPIKeyRequest{Name: "second"}); err != nil {
			t.Fatal(err)
		}
		resp, err := admin.ListAPIKeys(ctx(t), &apikeyv1.ListAPIKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		list := resp.GetApiKeys()
		if len(list) != 2 || list[0].GetId() != rec.GetId() || list[0].GetRevokedAt() == nil ||
			list[1].GetName() != "second" || !list[1].GetPasswordLogin() || list[1].GetRevokedAt() != nil {
			t.Fatalf("list = %v", list)
		}
	})
}

func TestAdminErrors(t *testing.T) {
	s := startWithDB(t)
	admin := apikeyv1.NewAPIKeyAdminServiceClient(s.admin)
	for _, tc := range []struct {
		name      string
		call      func(context.Context) error
		code      codes.Code
		kind      apierr.Kind
		inMessage string
	}{
		{"create without name", func(c context.Context) error {
			_, err := admin.CreateAPIKey(c, &apikeyv1.CreateAPIKeyRequest{})
			return err
		}, codes.InvalidArgument, apierr.InvalidRequest, "名称"},
		{"create with bad whitelist", func(c context.Context) error {
			_, err := admin.CreateAPIKey(c, &apikeyv1.CreateAPIKeyRequest{Name: "a", Whitelist: []string{"1.2.3.4", "example.com"}})
			return err
		}, codes.InvalidArgument, apierr.InvalidRequest, "example.com"},
		{"revoke unknown", func(c context.Context) error {
			_, err := admin.RevokeAPIKey(c, &apikeyv1.RevokeAPIKeyRequest{Id: 42})
			return err
		}, codes.NotFound, apierr.NotFound, "API密钥不存在"},
		{"set whitelist of unknown", func(c context.Context) error {
			_, err := admin.SetWhitelist(c, &apikeyv1.SetWhitelistRequest{Id: 42, Whitelist: []string{"1.2.3.4"}})
			return err
		}, codes.NotFound, apierr.NotFound, "API密钥不存在"},
		{"set bad whitelist", func(c context.Context) error {
			_, err := admin.SetWhitelist(c, &apikeyv1.SetWhitelistRequest{Id: 42, Whitelist: []string{"1.2.3.4/40"}})
			return err
		}, codes.InvalidArgument, apierr.InvalidRequest, "1.2.3.4/40"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := wantStatus(t, tc.call(ctx(t)), tc.code, tc.kind)
			if !strings.Contains(d.Message, tc.inMessage) {
				t.Errorf("message %q lacks %q", d.Message, tc.inMessage)
			}
		})
	}
}

// TestListenersAreSeparate: the internal listener, which AuthService and
// anything else inside the cluster can reach, has no admin RPC; the admin
// listener has no ValidateKey. Both answer health.
func TestListenersAreSeparate(t *testing.T) {
	s := startWithDB(t)

	adminOnInternal := apikeyv1.NewAPIKeyAdminServiceClient(s.internal)
	for name, call := range map[string]func(context.Context) error{
		"CreateAPIKey": func(c context.Context) error {
			_, err := adminOnInternal.CreateAPIKey(c, &apikeyv1.CreateAPIKeyRequest{Name: "sneaky"})
			return err
		},
		"ListAPIKeys": func(c context.Context) error {
			_, err := adminOnInternal.ListAPIKeys(c, &apikeyv1.ListAPIKeysRequest{})
			return err
		},
		"RevokeAPIKey": func(c context.Context) error {
			_, err := adminOnInternal.RevokeAPIKey(c, &apikeyv1.RevokeAPIKeyRequest{Id: 1})
			return err
		},
		"SetWhitelist": func(c context.Context) error {
			_, err := adminOnInternal.SetWhitelist(c, &apikeyv1.SetWhitelistRequest{Id: 1})
			return err
		},
	} {
		t.Run(name+" not on internal listener", func(t *testing.T) {
			if code := status.Code(call(ctx(t))); code != codes.Unimplemented {
				t.Fatalf("code = %s, want Unimplemented", code)
			}
		})
	}
	t.Run("ValidateKey not on admin listener", func(t *testing.T) {
		_, err := apikeyv1.NewAPIKeyServiceClient(s.admin).ValidateKey(ctx(t), &apikeyv1.ValidateKeyRequest{Key: "ml_x"})
		if code := status.Code(err); code != codes.Unimplemented {
			t.Fatalf("code = %s, want Unimplemented", code)
		}
	})

	// The sneaky create above must not have created anything.
	resp, err := apikeyv1.NewAPIKeyAdminServiceClient(s.admin).ListAPIKeys(ctx(t), &apikeyv1.ListAPIKeysRequest{})
	if err != nil || len(resp.GetApiKeys()) != 0 {
		t.Fatalf("list = %v, %v; want empty", resp.GetApiKeys(), err)
	}

	for name, conn := range map[string]*grpc.ClientConn{"internal": s.internal, "admin": s.admin} {
		t.Run("health on "+name, func(t *testing.T) {
			r, err := healthpb.NewHealthClient(conn).Check(ctx(t), &healthpb.HealthCheckRequest{})
			if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("health = %v, %v; want SERVING", r, err)
			}
		})
	}
}

// TestPostgresDown: with Postgres unreachable the service answers
// UNAVAILABLE at once, health says NOT_SERVING, and no internal detail
// reaches the caller.
func TestPostgresDown(t *testing.T) {
	addr := testenv.FreeAddr(t) // nothing listens there: Postgres is down
	db, err := gorm.Open(postgres.Open("postgres://postgres@"+addr+"/nothing?sslmode=disable&connect_timeout=2"),
		&gorm.Config{DisableAutomaticPing: true, Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, db)

	_, err = apikeyv1.NewAPIKeyServiceClient(s.internal).ValidateKey(ctx(t),
		&apikeyv1.ValidateKeyRequest{Key: secret.New("ml_", 64, secret.Hex), ClientIp: "192.0.2.1"})
	d := wantStatus(t, err, codes.Unavailable, apierr.Unavailable)
	if d.Message != apierr.DefaultMessage(apierr.Unavailable) || strings.Contains(status.Convert(err).Message(), addr) {
		t.Errorf("message %q reveals more than the default", status.Convert(err).Message())
	}
	_, err = apikeyv1.NewAPIKeyAdminServiceClient(s.admin).CreateAPIKey(ctx(t), &apikeyv1.CreateAPIKeyRequest{Name: "a"})
	wantStatus(t, err, codes.Unavailable, apierr.Unavailable)

	r, err := healthpb.NewHealthClient(s.internal).Check(ctx(t), &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health = %v, %v; want NOT_SERVING", r, err)
	}
}
