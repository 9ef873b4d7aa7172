package report

import (
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/bench/internal/stats"
)

func summary(requests int64, elapsed time.Duration, p50, p99, p999 time.Duration) stats.Summary {
	return stats.Summary{Requests: requests, Elapsed: elapsed, P50: p50, P99: p99, P999: p999}
}

func TestTable(t *testing.T) {
	half := summary(100, time.Second, time.Millisecond, 3*time.Millisecond, 4*time.Millisecond)
	halfErr := half
	halfErr.Errors = 2
	rows := []Row{
		{Scenario: "baseline", Transport: "HTTP", Peak: summary(20000, 2*time.Second, 500*time.Microsecond, 2*time.Millisecond, 5*time.Millisecond)},
		{Scenario: "authorize", Transport: "HTTP", Peak: summary(6000, 2*time.Second, 1500*time.Microsecond, 12*time.Millisecond, 150*time.Millisecond),
			Baseline: "Redis baseline", BaselineRPS: 10000, Half: &half, HalfRate: 1500},
		{Scenario: "login", Transport: "HTTP", Peak: summary(60, 2*time.Second, time.Second, 2*time.Second, 12*time.Second),
			Baseline: "argon2id bound", BaselineRPS: 40, Half: &halfErr, HalfRate: 15},
		{Scenario: "argon2id bound", Transport: "computed", Bound: true, BoundRPS: 40},
	}
	var b strings.Builder
	if err := Table(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 2+len(rows) {
		t.Fatalf("got %d lines, want header, separator and %d rows:\n%s", len(lines), len(rows), b.String())
	}
	cells := func(line string) []string {
		var out []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			out = append(out, strings.TrimSpace(c))
		}
		return out
	}
	for i, line := range lines {
		if len([]rune(line)) != len([]rune(lines[0])) {
			t.Errorf("line %d is not padded to the header's width:\n%s", i, b.String())
		}
	}
	want := [][]string{
		{"baseline", "HTTP", "10000", "0.50 ms", "2.00 ms", "5.00 ms", "0", "—", "—", "—"},
		{"authorize", "HTTP", "3000", "1.50 ms", "12.0 ms", "150 ms", "0", "0.30×", "Redis baseline", "3.00 ms (1500/s)"},
		{"login", "HTTP", "30", "1000 ms", "2000 ms", "12.0 s", "0", "0.75×", "argon2id bound", "3.00 ms (15/s), 2 errors"},
		{"argon2id bound", "computed", "40", "—", "—", "—", "—", "—", "—", "—"},
	}
	for i, w := range want {
		t.Run(w[0], func(t *testing.T) {
			got := cells(lines[i+2])
			if strings.Join(got, "|") != strings.Join(w, "|") {
				t.Errorf("row\n got %q\nwant %q", got, w)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		name string
		row  Row
		want float64
		ok   bool
	}{
		{"measured over baseline", Row{Peak: summary(500, time.Second, 0, 0, 0), BaselineRPS: 1000}, 0.5, true},
		{"no baseline", Row{Peak: summary(500, time.Second, 0, 0, 0)}, 0, false},
		{"bound over baseline", Row{Bound: true, BoundRPS: 30, BaselineRPS: 60}, 0.5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.row.Ratio()
			if got != tt.want || ok != tt.ok {
				t.Errorf("Ratio = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{84 * time.Microsecond, "0.08 ms"},
		{1234 * time.Microsecond, "1.23 ms"},
		{12345 * time.Microsecond, "12.3 ms"},
		{123456 * time.Microsecond, "123 ms"},
		{9 * time.Second, "9000 ms"},
		{12500 * time.Millisecond, "12.5 s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := Duration(tt.d); got != tt.want {
				t.Errorf("Duration(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestMemoryAndTargets(t *testing.T) {
	var b strings.Builder
	if err := Memory(&b, []Process{{Name: "moreid-user", Peak: 350 << 20, RSS: 3 << 19}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| moreid-user | 350.0 MiB        | 1.5 MiB        |") {
		t.Errorf("memory table:\n%s", b.String())
	}
	b.Reset()
	if err := Targets(&b, []Target{{What: "a", Got: "1", Met: true}, {What: "b", Got: "2"}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| a      | 1        | yes |", "| b      | 2        | no  |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("targets table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestCPU(t *testing.T) {
	var b strings.Builder
	rows := []CPURow{{Scenario: "authorize", Transport: "HTTP", PerReq: []time.Duration{120 * time.Microsecond, -1, 80 * time.Microsecond}, Busy: 0.955}}
	if err := CPU(&b, []string{"gateway", "user", "auth"}, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := []string{
		"| scenario  | via  | gateway | user | auth | total | cores busy |",
		"| --------- | ---- | ------- | ---- | ---- | ----- | ---------- |",
		"| authorize | HTTP | 120     | —    | 80   | 200   | 96%        |",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("CPU table:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
}
