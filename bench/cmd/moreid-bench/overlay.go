package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moreline/moreid/e2e/harness"
)

// The services serve no pprof endpoint, and Go's CPU profiler only runs
// in-process. With -cpuprofile the tool therefore builds the suite with a
// build overlay (go build -overlay, passed to the harness's builds through
// GOFLAGS) that adds one file to each command's main package: it mounts
// net/http/pprof on a listener of its own when MOREID_BENCH_PPROF_<COMPONENT>
// names an address. The source tree is not touched, and binaries built
// without the overlay are unchanged.
const pprofFile = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

// Added by moreid-bench's build overlay (-cpuprofile); not in the source tree.
func init() {
	if addr := os.Getenv(%q); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

func pprofEnv(component string) string {
	return "MOREID_BENCH_PPROF_" + strings.ToUpper(component)
}

// pprofOverlay writes the overlay into dir and sets GOFLAGS so that the
// harness's go build uses it; it returns the environment the suite needs
// (a pprof address per component) and those addresses by component.
func pprofOverlay(e *env, dir string) (suiteEnv, addrs map[string]string) {
	root, err := harness.RepoRoot()
	if err != nil {
		e.Fatalf("%v", err)
	}
	replace := map[string]string{}
	suiteEnv, addrs = map[string]string{}, map[string]string{}
	for _, c := range harness.Components {
		pkg, ok := harness.Binaries["moreid-"+c]
		if !ok {
			e.Fatalf("no binary for component %s", c)
		}
		src := filepath.Join(dir, c+"_pprof.go")
		if err := os.WriteFile(src, []byte(fmt.Sprintf(pprofFile, pprofEnv(c))), 0o600); err != nil {
			e.Fatalf("overlay: %v", err)
		}
		replace[filepath.Join(root, pkg, "zz_moreid_bench_pprof.go")] = src
		addrs[c] = freeAddr(e)
		suiteEnv[pprofEnv(c)] = addrs[c]
	}
	data, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		e.Fatalf("overlay: %v", err)
	}
	overlay := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlay, data, 0o600); err != nil {
		e.Fatalf("overlay: %v", err)
	}
	flags := strings.TrimSpace(os.Getenv("GOFLAGS") + " -overlay=" + overlay)
	if err := os.Setenv("GOFLAGS", flags); err != nil {
		e.Fatalf("GOFLAGS: %v", err)
	}
	return suiteEnv, addrs
}
