package cli

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/tlstest"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
)

// adminOnly is a component whose admin listener serves the fake user
// admin service.
type adminOnly struct{ users *fakeUsers }

func (adminOnly) Register(grpc.ServiceRegistrar) {}
func (a adminOnly) RegisterAdmin(r grpc.ServiceRegistrar) {
	userv1.RegisterUserAdminServiceServer(r, a.users)
}

// TestOperatorTLS: against an admin listener with TLS, moreidctl works with
// the operator's certificate (flags or environment) and is refused with
// none, a component's or a stranger's.
func TestOperatorTLS(t *testing.T) {
	pki := tlstest.New(t)
	sec, err := grpcx.ReadSecurity(config.FromMap(pki.ServerEnv()))
	if err != nil {
		t.Fatal(err)
	}
	users := &fakeUsers{}
	units, err := grpcx.Listeners(slog.New(slog.DiscardHandler), nil, "user", "127.0.0.1:0", "127.0.0.1:0", sec, adminOnly{users})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		go func() { _ = u.Serve() }()
		t.Cleanup(func() { u.Stop(context.Background()) })
	}
	admin := units[1].Name[strings.LastIndex(units[1].Name, " ")+1:]
	keyPEM, err := os.ReadFile(pki.Operator.Key)
	if err != nil {
		t.Fatal(err)
	}

	base := map[string]string{envUserAdminAddr: admin, envTimeout: "20s"}
	with := func(kv ...string) map[string]string {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	flags := func(p tlstest.Pair) []string { return []string{"--cert", p.Cert, "--key", p.Key, "--ca", pki.CA} }
	create := []string{"user", "create", "--user-id", "u", "--username", "U", "--email", "u@example.com", "--password-stdin"}
	tests := []struct {
		name       string
		env        map[string]string
		flags      []string
		wantCode   int
		wantStderr string
	}{
		{"operator certificate by flags", base, flags(pki.Operator), 0, ""},
		{"operator certificate by environment", with(envCert, pki.Operator.Cert, envKey, pki.Operator.Key, envCA, pki.CA), nil, 0, ""},
		{"flags override the environment", with(envCert, pki.Component.Cert, envKey, pki.Component.Key, envCA, pki.CA), flags(pki.Operator), 0, ""},
		{"no certificate", base, nil, 1, "operator certificate"},
		{"a component's certificate", base, flags(pki.Component), 1, "operators' CA"},
		{"a stranger's certificate", base, flags(pki.Stranger), 1, "operators' CA"},
		{"a certificate without its key", base, []string{"--cert", pki.Operator.Cert, "--ca", pki.CA}, 1, "together"},
		{"an unreadable key", base, []string{"--cert", pki.Operator.Cert, "--key", pki.Operator.Key + ".missing", "--ca", pki.CA}, 1, "no such file"},
		{"a bad global flag", base, []string{"--certificate", "x"}, 2, "unknown flag --certificate"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{}, tt.flags...), create...)
			// A user id of its own per case: the fake refuses duplicates.
			args[len(tt.flags)+3] = "u" + string(rune('a'+i))
			r := run(t, tt.env, password+"\n", args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.wantStderr)
			}
			if strings.Contains(r.stderr, strings.TrimSpace(string(keyPEM))) || strings.Contains(r.stderr, "PRIVATE KEY") {
				t.Errorf("stderr shows the key: %s", r.stderr)
			}
		})
	}
}
