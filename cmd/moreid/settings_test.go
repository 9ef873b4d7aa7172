package main

import (
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/testenv"
)

// TestReadSettingsNamesEveryBadSetting: the process reads the settings of
// every role it serves, and of its own, from one Reader and fails once,
// naming every bad one (each once, though several roles read it), never a
// secret's value; a role not served is not read.
func TestReadSettingsNamesEveryBadSetting(t *testing.T) {
	bad := map[string]string{
		"MOREID_LOG_LEVEL":            "loud",
		"MOREID_ARGON2_THREADS":       "999",
		"MOREID_HTTP_ADDR":            "127.0.0.1:8080", // fine
		"MOREID_DRAIN_TIMEOUT":        "-1",
		"MOREID_GATEWAY_CIDRS":        "10.0.0.0/33",
		"MOREID_CSRF_KEY":             "short-secret",
		"MOREID_PPROF":                "on",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317",
		"MOREID_TLS_CERT":             "/no/such/cert.pem",
	}
	tests := []struct {
		name  string
		env   map[string]string
		roles []string
		want  []string // variables the error names; none: no error
	}{
		{"all roles", bad, nil, []string{
			"MOREID_LOG_LEVEL", "MOREID_ARGON2_THREADS", "MOREID_DRAIN_TIMEOUT", "MOREID_GATEWAY_CIDRS",
			"MOREID_CSRF_KEY", "MOREID_PPROF", "OTEL_EXPORTER_OTLP_ENDPOINT", "MOREID_TLS_KEY", "MOREID_TLS_CA"}},
		// user's and auth's settings are not read by a gateway.
		{"the gateway alone", bad, []string{"gateway"}, []string{
			"MOREID_LOG_LEVEL", "MOREID_DRAIN_TIMEOUT", "MOREID_CSRF_KEY", "MOREID_PPROF",
			"OTEL_EXPORTER_OTLP_ENDPOINT", "MOREID_TLS_KEY", "MOREID_TLS_CA"}},
		{"every setting fine", map[string]string{"MOREID_LOG_LEVEL": "DEBUG", "MOREID_ARGON2_THREADS": "4",
			"MOREID_GATEWAY_CIDRS": "10.0.0.0/8", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roles, err := parseRoles(tt.roles)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := readSettings(config.FromMap(tt.env), roles)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("readSettings: %v", err)
				}
				if cfg.level != slog.LevelDebug {
					t.Errorf("MOREID_LOG_LEVEL=DEBUG gave level %v", cfg.level)
				}
				return
			}
			if err == nil {
				t.Fatal("bad settings accepted")
			}
			msg := err.Error()
			for _, name := range tt.want {
				if n := strings.Count(msg, name+"=") + strings.Count(msg, name+":"); n != 1 {
					t.Errorf("the error names %s %d times, want once:\n%s", name, n, msg)
				}
			}
			for _, name := range []string{"MOREID_HTTP_ADDR", "short-secret"} {
				if strings.Contains(msg, name) {
					t.Errorf("the error shows %s:\n%s", name, msg)
				}
			}
			if lines := strings.Count(msg, "\n") + 1; lines != len(tt.want) {
				t.Errorf("%d errors, want %d (one per bad setting):\n%s", lines, len(tt.want), msg)
			}
		})
	}
}

// TestServeNamesEveryBadSetting: `moreid serve` with bad settings of
// several roles exits non-zero before serving anything, its log naming
// every one of them.
func TestServeNamesEveryBadSetting(t *testing.T) {
	bin := testenv.BuildBinary(t, ".")
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"MOREID_LOG_LEVEL=loud",
		"MOREID_ARGON2_THREADS=999",
		"MOREID_HTTP_ADDR="+addr,
		"MOREID_DRAIN_TIMEOUT=-1",
		"MOREID_GATEWAY_CIDRS=not-a-cidr",
	)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("moreid serve with bad settings: %v, want exit status 1\n%s", err, out)
	}
	for _, name := range []string{"MOREID_LOG_LEVEL", "MOREID_ARGON2_THREADS", "MOREID_DRAIN_TIMEOUT", "MOREID_GATEWAY_CIDRS"} {
		if !strings.Contains(string(out), name) {
			t.Errorf("the output does not name %s:\n%s", name, out)
		}
	}
	if strings.Contains(string(out), "MOREID_HTTP_ADDR") {
		t.Errorf("the output names MOREID_HTTP_ADDR, which is fine:\n%s", out)
	}
}
