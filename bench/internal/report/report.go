// Package report formats the benchmark's figures as Markdown tables, each
// throughput also as a ratio to the baseline it is compared with.
package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moreline/moreid/bench/internal/stats"
)

// Row is one line of the results table.
type Row struct {
	Scenario  string
	Transport string // "HTTP", "gRPC", "reference"
	Peak      stats.Summary
	// Bound marks a computed reference (the argon2id bound): it has a
	// throughput, BoundRPS, but no latencies.
	Bound    bool
	BoundRPS float64
	// Half is the open-loop phase at half the peak rate, if it ran.
	Half     *stats.Summary
	HalfRate float64
	// Baseline names the row this one is compared with, and BaselineRPS is
	// that row's throughput (0: no comparison).
	Baseline    string
	BaselineRPS float64
}

// RPS is the row's throughput: measured, or computed for a bound.
func (r Row) RPS() float64 {
	if r.Bound {
		return r.BoundRPS
	}
	return r.Peak.RPS()
}

// Ratio is the row's throughput over its baseline's, and whether there is
// one.
func (r Row) Ratio() (float64, bool) {
	if r.BaselineRPS <= 0 {
		return 0, false
	}
	return r.RPS() / r.BaselineRPS, true
}

// Table writes rows as a Markdown table.
func Table(w io.Writer, rows []Row) error {
	t := [][]string{{"scenario", "via", "req/s", "p50", "p99", "p99.9", "errors", "ratio", "vs", "p99 at 50% load"}}
	for _, r := range rows {
		line := []string{r.Scenario, r.Transport, fmt.Sprintf("%.0f", r.RPS())}
		if r.Bound {
			line = append(line, "—", "—", "—", "—")
		} else {
			line = append(line, Duration(r.Peak.P50), Duration(r.Peak.P99), Duration(r.Peak.P999), fmt.Sprint(r.Peak.Errors))
		}
		if ratio, ok := r.Ratio(); ok {
			line = append(line, fmt.Sprintf("%.2f×", ratio), r.Baseline)
		} else {
			line = append(line, "—", "—")
		}
		if r.Half != nil {
			cell := fmt.Sprintf("%s (%.0f/s)", Duration(r.Half.P99), r.HalfRate)
			if r.Half.Errors > 0 {
				cell += fmt.Sprintf(", %d errors", r.Half.Errors)
			}
			line = append(line, cell)
		} else {
			line = append(line, "—")
		}
		t = append(t, line)
	}
	return markdown(w, t)
}

// Process is one process's memory for the RSS table.
type Process struct {
	Name string
	Peak int64 // bytes (VmHWM)
	RSS  int64 // bytes (VmRSS) at the end
}

// Memory writes the processes' peak and final RSS as a Markdown table.
func Memory(w io.Writer, procs []Process) error {
	t := [][]string{{"process", "peak RSS (VmHWM)", "RSS at the end"}}
	for _, p := range procs {
		t = append(t, []string{p.Name, Bytes(p.Peak), Bytes(p.RSS)})
	}
	return markdown(w, t)
}

// Target is one of the performance targets and how it fared.
type Target struct {
	What string // "authorize via HTTP ≥ 0.5× the Redis baseline"
	Got  string // the measured figure
	Met  bool
}

// Targets writes the targets as a Markdown table.
func Targets(w io.Writer, targets []Target) error {
	t := [][]string{{"target", "measured", "met"}}
	for _, x := range targets {
		met := "no"
		if x.Met {
			met = "yes"
		}
		t = append(t, []string{x.What, x.Got, met})
	}
	return markdown(w, t)
}

// Duration prints a latency with the precision that matters at its size.
func Duration(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}

// Bytes prints a size in MiB.
func Bytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// markdown writes t (header first) as a pipe table with padded columns.
func markdown(w io.Writer, t [][]string) error {
	widths := make([]int, len(t[0]))
	for _, row := range t {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" " + c + strings.Repeat(" ", widths[i]-len([]rune(c))) + " |")
		}
		b.WriteString("\n")
	}
	line(t[0])
	sep := make([]string, len(widths))
	for i, n := range widths {
		sep[i] = strings.Repeat("-", n)
	}
	line(sep)
	for _, row := range t[1:] {
		line(row)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// CPURow is one scenario's CPU cost per successful request, by process
// (in the order of the table's process names), and the share of the
// machine's cores all of them used during the phase.
type CPURow struct {
	Scenario  string
	Transport string
	PerReq    []time.Duration // -1: not measured
	Busy      float64         // 0..1 of all cores
}

// CPU writes the CPU-per-request table.
func CPU(w io.Writer, procs []string, rows []CPURow) error {
	head := append([]string{"scenario", "via"}, procs...)
	t := [][]string{append(head, "total", "cores busy")}
	for _, r := range rows {
		line := []string{r.Scenario, r.Transport}
		var total time.Duration
		for _, d := range r.PerReq {
			if d < 0 {
				line = append(line, "—")
				continue
			}
			total += d
			line = append(line, fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)))
		}
		line = append(line, fmt.Sprintf("%.0f", float64(total)/float64(time.Microsecond)), fmt.Sprintf("%.0f%%", r.Busy*100))
		t = append(t, line)
	}
	return markdown(w, t)
}
