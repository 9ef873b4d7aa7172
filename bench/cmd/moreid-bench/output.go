package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moreline/moreid/bench/internal/procstat"
	"github.com/moreline/moreid/bench/internal/report"
)

// writeReport prints the run as Markdown: machine, settings, results,
// memory, the login storm and the targets.
func (b *bench) writeReport(w io.Writer, rows []report.Row, ids []string, storm *stormMemory, took time.Duration) error {
	cpu, mem := procstat.Machine()
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Machine\n\n")
	p("- %d cores (nproc), %s, %s memory\n", runtime.NumCPU(), cpu, report.Bytes(mem))
	p("- load average (1 min) %.2f when the run started, %.2f at its end: anything above ~0.5 is other work competing for the cores\n", b.loadBefore, procstat.LoadAverageNow())
	p("- %s, PostgreSQL %s, Redis %s\n", runtime.Version(), b.pgVersion, b.rdVersion)
	p("- closed loop: %d workers for %s per scenario after %s warm-up; open loop at %.0f%% of the peak for %s; storm: %d clients for %s; measured in %s\n",
		b.cfg.workers, b.cfg.duration, b.cfg.warmup, b.cfg.half*100, b.cfg.openDuration, b.cfg.stormClients, b.cfg.stormDuration, took.Round(time.Second))
	p("- argon2id %s, measured just before the login scenarios: %s per hash on one core → bound %.1f logins/s on %d cores\n", b.argon, report.Duration(b.perHash), b.argonBound, runtime.NumCPU())
	p("- the same hashes on all %d cores at once, nothing else running: %.1f/s (%.0f%% of that bound: the hashes share memory bandwidth and cache)\n\n", runtime.NumCPU(), b.argonTogether, 100*b.argonTogether/b.argonBound)
	p("## Results\n\n")
	if err := report.Table(w, rows); err != nil {
		return err
	}
	if len(b.cpuRows) > 0 {
		p("\n## CPU per request (µs of CPU per successful request in the peak phase, from /proc/<pid>/stat; 10 ms resolution)\n\n")
		names := make([]string, len(b.procs))
		for i, np := range b.procs {
			names[i] = strings.TrimPrefix(np.name, "moreid-")
		}
		if err := report.CPU(w, names, b.cpuRows); err != nil {
			return err
		}
	}
	p("\n## Peak RSS\n\n")
	var procs []report.Process
	for _, np := range b.procs {
		m, err := procstat.Read(np.pid)
		if err != nil {
			p("- %s: %v\n", np.name, err)
			continue
		}
		procs = append(procs, report.Process{Name: np.name, Peak: m.Peak, RSS: m.RSS})
	}
	if err := report.Memory(w, procs); err != nil {
		return err
	}
	limit := argonMemoryLimit(b.argon)
	if storm != nil {
		p("\n## Login storm\n\n")
		since := "since the reset just before the storm"
		if !storm.reset {
			since = "since the process started (the peak could not be reset)"
		}
		p("%s: RSS %s and peak %s (since start) just before the storm; peak during the storm %s (%s). "+
			"%d argon2id computations at once × %d KiB = %s.\n",
			storm.process, report.Bytes(storm.before.RSS), report.Bytes(storm.before.Peak), report.Bytes(storm.peakDuring), since,
			argonConcurrency(), b.argon.memoryKiB, report.Bytes(limit))
	}
	byID := map[string]report.Row{}
	for i, id := range ids {
		byID[id] = rows[i]
	}
	p("\n## Targets (issue 7)\n\n")
	return report.Targets(w, targets(byID, storm, b.argonBound, limit))
}

// argonConcurrency is the user service's MOREID_ARGON2_CONCURRENCY (its
// default is the CPU count).
func argonConcurrency() int {
	if n, err := strconv.Atoi(os.Getenv("MOREID_ARGON2_CONCURRENCY")); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// argonMemoryLimit is what the hashes running at once may hold.
func argonMemoryLimit(p argonParams) int64 {
	return int64(argonConcurrency()) * int64(p.memoryKiB) * 1024
}

// stormSlack is the growth allowed on top of the argon2id memory during the
// storm (goroutines, buffers and garbage of 200 concurrent requests) for
// the RSS to count as flat: 200 unbounded hashes would add gigabytes.
const stormSlack = 64 << 20

// targets checks the measured figures against issue 7's targets. A target
// whose scenario did not run is left out.
func targets(byID map[string]report.Row, storm *stormMemory, bound float64, argonMem int64) []report.Target {
	var out []report.Target
	ratio := func(id, what string, min float64) {
		r, ok := byID[id]
		if !ok {
			return
		}
		got, has := r.Ratio()
		if !has {
			return
		}
		out = append(out, report.Target{What: what, Got: fmt.Sprintf("%.2f× (%.0f vs %.0f req/s)", got, r.RPS(), r.BaselineRPS), Met: got >= min})
	}
	ratio("authorize-http", "authorize via the gateway ≥ 0.5× the Redis baseline", 0.5)
	ratio("authorize-grpc", "Authorize over gRPC ≥ 0.7× the Redis baseline", 0.7)
	ratio("userinfo-http", "userinfo by Bearer ≥ 0.5× the Redis baseline", 0.5)
	ratio("userinfo-post-http", "user/info ≥ 0.5× the Postgres baseline", 0.5)
	for _, id := range sortedIDs(byID) {
		r := byID[id]
		if r.Half == nil || strings.HasPrefix(id, "baseline") {
			continue
		}
		out = append(out, report.Target{
			What: fmt.Sprintf("%s (%s): p99 ≤ 10 ms at half the peak", r.Scenario, r.Transport),
			Got:  fmt.Sprintf("%s at %.0f/s", report.Duration(r.Half.P99), r.HalfRate),
			Met:  r.Half.P99 <= 10*time.Millisecond && r.Half.Errors == 0,
		})
	}
	if r, ok := byID["login-http"]; ok && bound > 0 {
		got := r.RPS() / bound
		out = append(out, report.Target{What: "password logins/s within 10% of cores ÷ argon2id s/hash",
			Got: fmt.Sprintf("%.0f of %.1f/s (%.0f%%)", r.RPS(), bound, got*100), Met: got >= 0.9})
	}
	if storm != nil && storm.before.RSS > 0 {
		growth := storm.peakDuring - storm.before.RSS
		out = append(out, report.Target{What: storm.process + " peak RSS flat during the login storm",
			Got: fmt.Sprintf("%s before → peak %s (+%s; argon2id bound %s)", report.Bytes(storm.before.RSS), report.Bytes(storm.peakDuring), report.Bytes(growth), report.Bytes(argonMem)),
			Met: growth <= argonMem+stormSlack})
	}
	return out
}

// sortedIDs lists the scenario ids in the run's order (the order of
// scenarios()), so the targets table follows the results table.
func sortedIDs(byID map[string]report.Row) []string {
	var ids []string
	for _, s := range (&bench{}).scenarios() {
		if _, ok := byID[s.id]; ok {
			ids = append(ids, s.id)
		}
	}
	return ids
}
