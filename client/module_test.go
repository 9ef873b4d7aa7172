package client_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// consumer is a program of another module that uses the client.
const consumer = `package main

import (
	"fmt"

	"github.com/moreline/moreid/client"
)

func main() {
	c, err := client.Dial("127.0.0.1:9090", "ml_key")
	fmt.Println(c, err)
}
`

// The client is fetchable on its own: a module outside the workspace that
// requires it (and proto, as a tagged client/vX.Y.Z would) builds, and
// neither Prometheus (whose default registry a dependency would register
// in), OpenTelemetry nor platform comes with it. The replace directives
// stand for the proxy's client/vX.Y.Z and proto/vX.Y.Z.
func TestModuleOutsideWorkspace(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	clientDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	protoDir := filepath.Join(filepath.Dir(clientDir), "proto")
	dir := t.TempDir()
	gomod := "module example.com/consumer\n\ngo 1.26.0\n\n" +
		"require (\n\tgithub.com/moreline/moreid/client v0.0.0\n\tgithub.com/moreline/moreid/proto v0.0.0\n)\n\n" +
		"replace github.com/moreline/moreid/client => " + clientDir + "\n" +
		"replace github.com/moreline/moreid/proto => " + protoDir + "\n"
	// The client's and proto's sums cover every module the consumer needs,
	// so no checksum database is asked (the proxy serves, or the module
	// cache already holds, the modules themselves).
	var sums []byte
	for _, f := range []string{filepath.Join(clientDir, "go.sum"), filepath.Join(protoDir, "go.sum")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, b...)
	}
	for name, content := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sums, "main.go": []byte(consumer)} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	goCmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOSUMDB=off", "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	goCmd("build", "-o", filepath.Join(dir, "consumer"), ".")
	deps := strings.Fields(goCmd("list", "-deps", "."))
	modules := strings.Fields(goCmd("list", "-m", "all"))
	for _, want := range []string{"github.com/moreline/moreid/client", "google.golang.org/grpc"} {
		if !slices.Contains(deps, want) {
			t.Errorf("the consumer's packages lack %s: %v", want, deps)
		}
	}
	for _, banned := range []string{"github.com/prometheus/", "go.opentelemetry.io/", "github.com/moreline/moreid/platform"} {
		for _, p := range deps {
			if strings.HasPrefix(p, banned) {
				t.Errorf("the consumer imports %s", p)
			}
		}
	}
	if slices.Contains(modules, "github.com/moreline/moreid/platform") {
		t.Errorf("the consumer's module graph holds platform, which no proxy serves: %v", modules)
	}
}
