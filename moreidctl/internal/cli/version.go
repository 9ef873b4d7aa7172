package cli

import (
	"runtime/debug"
	"strings"
)

// version may be stamped at build time with
// -ldflags "-X github.com/moreline/moreid/moreidctl/internal/cli.version=v1.2.3";
// when it is not (the Makefile does not), the version comes from the build
// information the Go toolchain embeds in every binary.
var version string

// readBuildInfo is debug.ReadBuildInfo; a variable so that tests can give
// the build information of a release or of a dirty checkout.
var readBuildInfo = func() (*debug.BuildInfo, bool) { return debug.ReadBuildInfo() }

// versionLine is what `moreidctl --version` prints: the stamped version, or
// the main module's version (a tagged `go install` gives v1.2.3, a build in
// the checkout "(devel)"), then the commit it was built from, whether the
// tree had uncommitted changes and the Go version. Without any of them the
// line still says what is unknown instead of printing nothing.
func versionLine(info *debug.BuildInfo, ok bool) string {
	v := version
	if v == "" && ok && info.Main.Version != "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "unknown"
	}
	line := "moreidctl " + v
	if !ok {
		return line
	}
	var rev, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var extra []string
	if rev != "" {
		r := "commit " + rev[:min(len(rev), 12)]
		if modified {
			r += " with uncommitted changes"
		}
		extra = append(extra, r)
	}
	if at != "" {
		extra = append(extra, "committed "+at)
	}
	if info.GoVersion != "" {
		extra = append(extra, info.GoVersion)
	}
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	return line
}
