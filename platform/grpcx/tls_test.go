package grpcx_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/tlstest"
	auditv1 "github.com/moreline/moreid/proto/gen/go/moreid/audit/v1"
)

// component is a service with health on both listeners and one RPC on
// each (AuditAdminService stands for any of them), as every Moreid
// component has.
type component struct{}

func (component) Register(r grpc.ServiceRegistrar) {
	healthpb.RegisterHealthServer(r, health.NewServer())
	auditv1.RegisterAuditAdminServiceServer(r, audit{})
}

func (component) RegisterAdmin(r grpc.ServiceRegistrar) {
	healthpb.RegisterHealthServer(r, health.NewServer())
	auditv1.RegisterAuditAdminServiceServer(r, audit{})
}

type audit struct {
	auditv1.UnimplementedAuditAdminServiceServer
}

func (audit) ListAuditEvents(context.Context, *auditv1.ListAuditEventsRequest) (*auditv1.ListAuditEventsResponse, error) {
	return &auditv1.ListAuditEventsResponse{}, nil
}

// serve runs the component's listeners on fresh loopback ports (bound by
// the listener itself and kept, so no other process can take them) and
// returns their addresses: public, admin, then health when configured.
func serve(t *testing.T, sec *grpcx.Security) []string {
	t.Helper()
	units, err := grpcx.Listeners(slog.New(slog.DiscardHandler), nil, "auth", "127.0.0.1:0", "127.0.0.1:0", sec, component{})
	if err != nil {
		t.Fatalf("Listeners: %v", err)
	}
	var addrs []string
	for _, u := range units {
		go func() { _ = u.Serve() }()
		t.Cleanup(func() { u.Stop(context.Background()) })
		// run.GRPC names a unit "<name> <address>".
		addrs = append(addrs, u.Name[strings.LastIndex(u.Name, " ")+1:])
	}
	return addrs
}

func security(t *testing.T, env map[string]string) *grpcx.Security {
	t.Helper()
	sec, err := grpcx.ReadSecurity(config.FromMap(env))
	if err != nil {
		t.Fatalf("ReadSecurity: %v", err)
	}
	return sec
}

// client is one way of calling: a transport and a name.
type client struct {
	name string
	opt  grpc.DialOption
}

func tlsClient(t *testing.T, name string, pair *tlstest.Pair, ca string) client {
	t.Helper()
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if pair != nil {
		cert, err := tls.LoadX509KeyPair(pair.Cert, pair.Key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return client{name, grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
}

// call makes one health check and one RPC of the listener at addr and
// returns the first failure.
func call(t *testing.T, addr string, c client) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, c.opt)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		return err
	}
	_, err = auditv1.NewAuditAdminServiceClient(conn).ListAuditEvents(ctx, &auditv1.ListAuditEventsRequest{})
	return err
}

// TestListenersTLS: with TLS on, the public listener admits only
// component certificates and the admin listener only operator
// certificates; nobody gets in without a certificate or with a stranger's.
func TestListenersTLS(t *testing.T) {
	pki := tlstest.New(t)
	addrs := serve(t, security(t, pki.ServerEnv()))
	public, admin := addrs[0], addrs[1]

	var (
		component = tlsClient(t, "a component certificate", &pki.Component, pki.CA)
		operator  = tlsClient(t, "an operator certificate", &pki.Operator, pki.CA)
		stranger  = tlsClient(t, "a certificate of another CA", &pki.Stranger, pki.CA)
		noCert    = tlsClient(t, "TLS without a certificate", nil, pki.CA)
		plaintext = client{"plaintext", grpc.WithTransportCredentials(insecure.NewCredentials())}
	)
	tests := []struct {
		listener, addr string
		c              client
		admitted       bool
	}{
		{"public", public, component, true},
		{"public", public, operator, false},
		{"public", public, stranger, false},
		{"public", public, noCert, false},
		{"public", public, plaintext, false},
		{"admin", admin, operator, true},
		{"admin", admin, component, false},
		{"admin", admin, stranger, false},
		{"admin", admin, noCert, false},
		{"admin", admin, plaintext, false},
	}
	for _, tt := range tests {
		t.Run(tt.listener+" with "+tt.c.name, func(t *testing.T) {
			err := call(t, tt.addr, tt.c)
			if tt.admitted && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.admitted && status.Code(err) != codes.Unavailable {
				t.Fatalf("got %v, want the connection refused (Unavailable)", err)
			}
		})
	}

	t.Run("a component dials another with Security.DialOptions", func(t *testing.T) {
		sec := security(t, pki.ServerEnv())
		conn, err := grpcx.Dial(public, sec.DialOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("health over mTLS: %v", err)
		}
	})
	t.Run("moreidctl's ClientTLS with the operator's files", func(t *testing.T) {
		opt, err := grpcx.ClientTLS(pki.Operator.Cert, pki.Operator.Key, pki.CA)
		if err != nil {
			t.Fatal(err)
		}
		if err := call(t, admin, client{"ClientTLS", opt}); err != nil {
			t.Fatalf("admin with ClientTLS: %v", err)
		}
	})
}

// TestHealthListener: the plaintext health listener (for the kubelet's
// gRPC probe, which speaks no TLS) answers health and nothing else.
func TestHealthListener(t *testing.T) {
	pki := tlstest.New(t)
	env := pki.ServerEnv()
	env["MOREID_AUTH_HEALTH_ADDR"] = "127.0.0.1:0"
	addrs := serve(t, security(t, env))
	if len(addrs) != 3 {
		t.Fatalf("%d listeners, want public, admin and health", len(addrs))
	}
	conn, err := grpc.NewClient(addrs[2], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", r, err)
	}
	_, err = auditv1.NewAuditAdminServiceClient(conn).ListAuditEvents(ctx, &auditv1.ListAuditEventsRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("another service on the health listener: %v, want Unimplemented", err)
	}
}

// TestPlaintextRule: without TLS a listener must be on loopback, unless
// MOREID_ALLOW_PLAINTEXT=1 (public listeners only); with TLS the admin
// listener needs the operators' CA.
func TestPlaintextRule(t *testing.T) {
	pki := tlstest.New(t)
	noAdminCA := pki.ServerEnv()
	delete(noAdminCA, "MOREID_ADMIN_CLIENT_CA")
	allow := map[string]string{"MOREID_ALLOW_PLAINTEXT": "1"}
	tests := []struct {
		name          string
		env           map[string]string
		public, admin string
		ok            bool
	}{
		{"plaintext on loopback", nil, "127.0.0.1:0", "127.0.0.1:0", true},
		{"plaintext on localhost and ::1", nil, "localhost:0", "[::1]:0", true},
		{"plaintext public on every interface", nil, ":0", "127.0.0.1:0", false},
		{"plaintext public on 0.0.0.0", nil, "0.0.0.0:0", "127.0.0.1:0", false},
		{"plaintext admin on every interface", nil, "127.0.0.1:0", ":0", false},
		{"allowed plaintext public", allow, ":0", "127.0.0.1:0", true},
		{"allowed plaintext never covers admin", allow, "127.0.0.1:0", ":0", false},
		{"TLS on every interface", pki.ServerEnv(), ":0", ":0", true},
		{"TLS without the operators' CA", noAdminCA, "127.0.0.1:0", "127.0.0.1:0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			units, err := grpcx.Listeners(slog.New(slog.DiscardHandler), nil, "user", tt.public, tt.admin, security(t, tt.env), component{})
			for _, u := range units {
				u.Stop(context.Background())
			}
			if tt.ok != (err == nil) {
				t.Fatalf("Listeners(%s, %s) error = %v, want ok=%v", tt.public, tt.admin, err, tt.ok)
			}
		})
	}
}

func TestReadSecurity(t *testing.T) {
	pki := tlstest.New(t)
	with := func(k, v string) map[string]string {
		env := pki.ServerEnv()
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name string
		env  map[string]string
		want string // part of the error; "" for none
	}{
		{"nothing: plaintext", nil, ""},
		{"everything", pki.ServerEnv(), ""},
		{"no key", with("MOREID_TLS_KEY", ""), "together"},
		{"no CA", with("MOREID_TLS_CA", ""), "together"},
		{"only the operators' CA", map[string]string{"MOREID_ADMIN_CLIENT_CA": pki.OperatorCA}, "together"},
		{"a missing file", with("MOREID_TLS_CERT", pki.CA+".missing"), "no such file"},
		{"a key of another certificate", with("MOREID_TLS_KEY", pki.Operator.Key), "private key does not match"},
		{"a CA file without a certificate", with("MOREID_TLS_CA", pki.Component.Key), "no PEM certificate"},
		{"the operators' CA is the components'", with("MOREID_ADMIN_CLIENT_CA", pki.CA), "another CA"},
		{"a bad switch", map[string]string{"MOREID_ALLOW_PLAINTEXT": "yes"}, "MOREID_ALLOW_PLAINTEXT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := grpcx.ReadSecurity(config.FromMap(tt.env))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ReadSecurity: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("ReadSecurity error = %v, want one with %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("the error shows a key: %v", err)
			}
		})
	}
}

// TestCertificateRotation: a certificate replaced on disk (cert-manager
// renewing a Secret) is served from the next handshake on, no restart.
func TestCertificateRotation(t *testing.T) {
	first, second := tlstest.New(t), tlstest.New(t)
	dir := t.TempDir()
	certPath, keyPath := dir+"/tls.crt", dir+"/tls.key"
	install := func(p tlstest.Pair, mod time.Time) {
		t.Helper()
		for src, dst := range map[string]string{p.Cert: certPath, p.Key: keyPath} {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o600); err != nil {
				t.Fatal(err)
			}
			// An explicit time: a file system's clock granularity must not
			// hide the change.
			if err := os.Chtimes(dst, mod, mod); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(first.Component, time.Now().Add(-time.Hour))
	env := first.ServerEnv()
	env["MOREID_TLS_CERT"], env["MOREID_TLS_KEY"] = certPath, keyPath
	addrs := serve(t, security(t, env))

	// Signed by the first CA (which the server trusts for clients), and
	// trusting only the second CA's server certificates.
	c := tlsClient(t, "a client trusting the new CA", &first.Component, second.CA)
	if err := call(t, addrs[0], c); status.Code(err) != codes.Unavailable {
		t.Fatalf("before the rotation: %v, want the old certificate refused by the client", err)
	}
	install(second.Component, time.Now())
	if err := call(t, addrs[0], c); err != nil {
		t.Fatalf("after the rotation: %v, want the new certificate served", err)
	}
}
