package buildinfo

import (
	"runtime/debug"
	"testing"
)

// TestVersionLine: what `moreid version` and `moreidctl --version` say for the builds an operator meets.
// Pure logic over the build information, which only the toolchain can
// produce for real.
func TestVersionLine(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name    string
		stamped string // -ldflags -X ...buildinfo.version
		info    *debug.BuildInfo
		ok      bool
		want    string
	}{
		{
			name: "go install of a tag",
			info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			ok:   true,
			want: "moreidctl v1.4.0 (go1.26.8)",
		},
		{
			name: "make build in a clean checkout",
			info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
				Settings: vcs("vcs.revision", "664b355c0ffee0123456789abcdef0123456789a", "vcs.time", "2026-12-01T11:00:00Z", "vcs.modified", "false")},
			ok:   true,
			want: "moreidctl (devel) (commit 664b355c0ffe, committed 2026-12-01T11:00:00Z, go1.26.8)",
		},
		{
			name: "a checkout with uncommitted changes",
			info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
				Settings: vcs("vcs.revision", "664b355c0ffee0123456789abcdef0123456789a", "vcs.modified", "true")},
			ok:   true,
			want: "moreidctl (devel) (commit 664b355c0ffe with uncommitted changes, go1.26.8)",
		},
		{
			name:    "stamped by -ldflags wins over the module version",
			stamped: "v2.0.0-rc1",
			info:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", "abc123")},
			ok:      true,
			want:    "moreidctl v2.0.0-rc1 (commit abc123, go1.26.8)",
		},
		{
			name: "no build information",
			want: "moreidctl unknown",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := line("moreidctl", tt.stamped, tt.info, tt.ok); got != tt.want {
				t.Errorf("line = %q, want %q", got, tt.want)
			}
		})
	}
}
