// Package buildinfo says which build a Moreid binary is: the version
// stamped at build time, or else what the Go toolchain embeds (module
// version, commit, dirty tree, Go version). moreid and moreidctl print the
// same line with their own name.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// version may be stamped at build time with
// -ldflags "-X github.com/moreline/moreid/platform/buildinfo.version=v1.2.3"
// (deploy/images.mk does); when it is not (make build does not), the
// version comes from the build information the toolchain embeds.
var version string

// Line is what `PROGRAM version` prints, e.g.
// "moreid v1.4.0 (commit 664b355c0ffe, go1.26.8)".
func Line(program string) string {
	info, ok := debug.ReadBuildInfo()
	return line(program, version, info, ok)
}

// line is the stamped version, or the main module's version (a tagged `go
// install` gives v1.2.3, a build in the checkout "(devel)"), then the
// commit it was built from, whether the tree had uncommitted changes and
// the Go version. Without any of them the line still says what is unknown
// instead of printing nothing.
func line(program, stamped string, info *debug.BuildInfo, ok bool) string {
	v := stamped
	if v == "" && ok && info.Main.Version != "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "unknown"
	}
	line := program + " " + v
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
