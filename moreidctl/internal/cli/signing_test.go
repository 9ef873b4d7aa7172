package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

// fakeSigningKeys is auth's admin listener's signing-key calls over a fixed
// list; rotate appends a key.
type fakeSigningKeys struct {
	authv1.UnimplementedAuthAdminServiceServer
	mu      sync.Mutex
	keys    []*authv1.SigningKey
	rotated int
	fail    error
}

var signingT0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func (f *fakeSigningKeys) RotateSigningKey(context.Context, *authv1.RotateSigningKeyRequest) (*authv1.RotateSigningKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.rotated++
	k := &authv1.SigningKey{Kid: "bmV4dC1rZXktMDAwMDAwMA", Alg: "RS256", State: "next", Jwk: `{"kty":"RSA"}`,
		CreatedAt: timestamppb.New(signingT0), ActivateAt: timestamppb.New(signingT0.Add(time.Minute))}
	f.keys = append(f.keys, k)
	return &authv1.RotateSigningKeyResponse{Key: k}, nil
}

func (f *fakeSigningKeys) ListSigningKeys(context.Context, *authv1.ListSigningKeysRequest) (*authv1.ListSigningKeysResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	return &authv1.ListSigningKeysResponse{Keys: f.keys}, nil
}

func twoKeys() []*authv1.SigningKey {
	retired := timestamppb.New(signingT0.Add(-time.Hour))
	return []*authv1.SigningKey{
		{Kid: "b2xkLWtleS0wMDAwMDAwMA", Alg: "RS256", State: "retired", Jwk: `{"kty":"RSA","d":"never-shown"}`,
			CreatedAt: timestamppb.New(signingT0.Add(-48 * time.Hour)), ActivateAt: timestamppb.New(signingT0.Add(-48 * time.Hour)), RetiredAt: retired},
		{Kid: "Y3VyLWtleS0wMDAwMDAwMA", Alg: "RS256", State: "current", Jwk: `{"kty":"RSA"}`,
			CreatedAt: timestamppb.New(signingT0.Add(-time.Hour - time.Minute)), ActivateAt: retired},
	}
}

func TestSigningKeyCommands(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		keys        []*authv1.SigningKey
		fail        error
		wantCode    int
		wantStdout  string
		wantStderr  []string
		wantRotated int
	}{
		{
			name:        "rotate",
			args:        []string{"signing-key", "rotate"},
			wantStdout:  "new signing key bmV4dC1rZXktMDAwMDAwMA: published now, signs from 2026-12-01T12:01:00Z (in 1m0s)\n",
			wantRotated: 1,
		},
		{
			name:       "rotate refused",
			args:       []string{"signing-key", "rotate"},
			fail:       apierr.Newf(apierr.Unavailable, "服务暂不可用"),
			wantCode:   1,
			wantStderr: []string{"rotate the signing key: 服务暂不可用 (unavailable)"},
		},
		{name: "rotate with an argument", args: []string{"signing-key", "rotate", "now"}, wantCode: 2,
			wantStderr: []string{`unexpected argument "now"`, "Usage:\n  moreidctl signing-key rotate"}},
		{
			name: "list",
			args: []string{"signing-key", "list"},
			keys: twoKeys(),
			wantStdout: "KID                     ALG    STATE    CREATED               SIGNS FROM            RETIRED\n" +
				"b2xkLWtleS0wMDAwMDAwMA  RS256  retired  2026-11-29T12:00:00Z  2026-11-29T12:00:00Z  2026-12-01T11:00:00Z\n" +
				"Y3VyLWtleS0wMDAwMDAwMA  RS256  current  2026-12-01T10:59:00Z  2026-12-01T11:00:00Z  \n",
		},
		{name: "list empty", args: []string{"signing-key", "list"}, wantStdout: "no signing keys (auth creates the first at start)\n"},
		{name: "list empty JSON", args: []string{"signing-key", "list", "--json"}, wantStdout: "[]\n"},
		{name: "list with a stray flag", args: []string{"signing-key", "list", "--all"}, wantCode: 2,
			wantStderr: []string{"unknown flag --all (see 'moreidctl signing-key list --help')"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSigningKeys{keys: tt.keys, fail: tt.fail}
			addr := serve(t, func(g *grpc.Server) { authv1.RegisterAuthAdminServiceServer(g, f) })
			got := run(t, map[string]string{envAuthAdminAddr: addr}, "", tt.args...)
			if got.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got.code, tt.wantCode, got.stderr)
			}
			if got.stdout != tt.wantStdout {
				t.Errorf("stdout =\n%q\nwant\n%q", got.stdout, tt.wantStdout)
			}
			if len(tt.wantStderr) == 0 && got.stderr != "" {
				t.Errorf("stderr = %q, want none", got.stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
			if f.rotated != tt.wantRotated {
				t.Errorf("%d rotations, want %d", f.rotated, tt.wantRotated)
			}
		})
	}
}

// The JSON has exactly the documented fields, retired_at null for a key
// not retired, and never the JWK (let alone a private member).
func TestSigningKeyListJSON(t *testing.T) {
	f := &fakeSigningKeys{keys: twoKeys()}
	addr := serve(t, func(g *grpc.Server) { authv1.RegisterAuthAdminServiceServer(g, f) })
	got := run(t, map[string]string{envAuthAdminAddr: addr}, "", "signing-key", "list", "--json")
	if got.code != 0 {
		t.Fatalf("exit %d: %s", got.code, got.stderr)
	}
	var out []map[string]any
	if err := json.Unmarshal([]byte(got.stdout), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got.stdout)
	}
	if len(out) != 2 {
		t.Fatalf("%d keys, want 2", len(out))
	}
	want := []map[string]any{
		{"kid": "b2xkLWtleS0wMDAwMDAwMA", "alg": "RS256", "state": "retired", "created_at": "2026-11-29T12:00:00Z",
			"activate_at": "2026-11-29T12:00:00Z", "retired_at": "2026-12-01T11:00:00Z"},
		{"kid": "Y3VyLWtleS0wMDAwMDAwMA", "alg": "RS256", "state": "current", "created_at": "2026-12-01T10:59:00Z",
			"activate_at": "2026-12-01T11:00:00Z", "retired_at": nil},
	}
	for i := range want {
		if len(out[i]) != len(want[i]) {
			t.Errorf("key %d has fields %v, want %v", i, out[i], want[i])
		}
		for k, v := range want[i] {
			if out[i][k] != v {
				t.Errorf("key %d: %s = %v, want %v", i, k, out[i][k], v)
			}
		}
	}
	if strings.Contains(got.stdout, "never-shown") || strings.Contains(got.stdout, "kty") {
		t.Errorf("the JSON shows key material:\n%s", got.stdout)
	}
}
