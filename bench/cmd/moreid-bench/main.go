// Command moreid-bench measures the Moreid suite under load, side by side
// with two baselines on the same machine in the same run: a minimal
// net/http handler doing authorize's Redis write, and one doing one
// Postgres lookup by primary key. It starts the suite with the e2e harness
// (the real binaries as separate processes, on a fresh database and Redis
// keyspace) or targets a running one, and prints a Markdown report:
// throughput and p50/p99/p99.9 per scenario, each as a ratio to its
// baseline, p99 at half the peak rate, peak RSS of every process and the
// user service's memory during a login storm.
//
//	go run ./bench/cmd/moreid-bench                 # the whole run, ~2–3 minutes
//	go run ./bench/cmd/moreid-bench -run 'authorize|baseline-redis' -duration 3s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/bench/internal/load"
	"github.com/moreline/moreid/bench/internal/procstat"
	"github.com/moreline/moreid/bench/internal/report"
	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/testenv"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

type config struct {
	workers                        int
	duration, openDuration, warmup time.Duration
	rebaseline                     time.Duration
	half                           float64
	stormClients                   int
	stormDuration                  time.Duration
	codes                          int
	run                            *regexp.Regexp
	out, cpuprofile, logs          string
	baseURL, authAddr, apiKey      string
	userID, password               string
	redisURL, postgresServer       string
	combined                       bool
}

func main() {
	var (
		cfg                config
		runPattern         string
		serveKind, serveOn string
	)
	flag.IntVar(&cfg.workers, "c", 16, "concurrent workers of the closed-loop phases")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "closed-loop (peak throughput) phase of each scenario")
	flag.DurationVar(&cfg.openDuration, "open-duration", 3*time.Second, "open-loop phase at -half of the peak rate (0: none)")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "warm-up before each scenario")
	flag.DurationVar(&cfg.rebaseline, "rebaseline", 2*time.Second, "measure a scenario's baseline again for this long just before it, and divide by that (0: by the baseline's own row)")
	flag.Float64Var(&cfg.half, "half", 0.5, "rate of the open-loop phase, as a fraction of the peak")
	flag.IntVar(&cfg.stormClients, "storm", 200, "clients logging in at once in the login storm")
	flag.DurationVar(&cfg.stormDuration, "storm-duration", 5*time.Second, "how long the storm's clients keep logging in")
	flag.IntVar(&cfg.codes, "codes", 5000, "authorization codes prepared for each token-exchange peak phase (it ends early when they run out)")
	flag.StringVar(&runPattern, "run", "", "only the scenarios whose id matches this regexp (ids: -list)")
	list := flag.Bool("list", false, "list the scenario ids and exit")
	flag.StringVar(&cfg.out, "out", "", "also write the report to this file")
	flag.BoolVar(&cfg.combined, "combined", false, "start the suite as the one `moreid serve` process (in-process internal calls) instead of one process per role")
	flag.StringVar(&cfg.logs, "logs", "", "write the suite's logs to this file at the end")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "directory for CPU profiles of the suite's processes per scenario (from /debug/pprof on their metrics listeners)")
	flag.StringVar(&cfg.baseURL, "base-url", "", "target a running suite's gateway instead of starting one (needs -auth-addr, -api-key, -user-id; password in MOREID_BENCH_PASSWORD)")
	flag.StringVar(&cfg.authAddr, "auth-addr", "", "AuthService address of the running suite")
	flag.StringVar(&cfg.apiKey, "api-key", "", "API key for the running suite (or MOREID_BENCH_API_KEY)")
	flag.StringVar(&cfg.userID, "user-id", "", "an existing user of the running suite")
	flag.StringVar(&cfg.redisURL, "redis-url", testenv.RedisURL(), "Redis of the baseline (and of the suite the tool starts)")
	flag.StringVar(&cfg.postgresServer, "postgres-server", testenv.PostgresServer(), "Postgres server of the baseline's database (and of the suite the tool starts)")
	flag.StringVar(&serveKind, "serve-baseline", "", "internal: serve the redis or postgres baseline")
	flag.StringVar(&serveOn, "listen", "127.0.0.1:0", "internal: address of -serve-baseline")
	flag.Parse()

	if serveKind != "" {
		if err := serveBaseline(serveKind, serveOn); err != nil {
			fmt.Fprintln(os.Stderr, "moreid-bench baseline:", err)
			os.Exit(1)
		}
		return
	}
	var err error
	if cfg.run, err = regexp.Compile(runPattern); err != nil {
		fmt.Fprintln(os.Stderr, "moreid-bench: -run:", err)
		os.Exit(2)
	}
	if cfg.apiKey == "" {
		cfg.apiKey = os.Getenv("MOREID_BENCH_API_KEY")
	}
	cfg.password = os.Getenv("MOREID_BENCH_PASSWORD")
	e := newEnv()
	defer e.close()
	b := &bench{cfg: cfg, e: e}
	if *list {
		for _, s := range b.scenarios() {
			fmt.Printf("%-20s %s (%s)\n", s.id, s.name, s.via)
		}
		return
	}
	b.setup(context.Background())
	b.runAll(context.Background())
}

// bench is one run: the suite, the clients and what was measured.
type bench struct {
	cfg   config
	e     *env
	suite *harness.Suite

	rest, redisBase, pgBase *restClient
	rpc                     *rpcClient
	userID, password, token string
	sessionMD               metadata.MD
	states                  queue[string]
	codes                   queue[codeState]

	loadBefore float64 // 1-minute load average when the run started

	argon         argonParams
	perHash       time.Duration
	argonBound    float64 // logins per second the CPUs allow
	argonTogether float64 // hashes per second all cores sustain at once

	procs     []namedPid
	cpuRows   []report.CPURow
	prof      *profiler
	pgVersion string
	rdVersion string
}

type namedPid struct {
	name string
	pid  int
}

func (b *bench) logf(format string, args ...any) {
	b.e.Logf("moreid-bench %s: "+format, append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// setup starts (or finds) the suite and the baselines, creates the user,
// key, web session and access token the scenarios use, and measures
// argon2id.
func (b *bench) setup(ctx context.Context) {
	e, cfg := b.e, b.cfg
	b.loadBefore = procstat.LoadAverageNow()
	var err error
	if b.argon, err = argonFromEnv(); err != nil {
		e.Fatalf("%v", err)
	}
	var redisPrefix string
	if cfg.baseURL == "" {
		// Production's log level: debug logging would be measured too.
		suiteEnv := map[string]string{"MOREID_LOG_LEVEL": "info"}
		b.prof = &profiler{dir: cfg.cpuprofile}
		if cfg.cpuprofile != "" {
			if err := os.MkdirAll(cfg.cpuprofile, 0o755); err != nil {
				e.Fatalf("%v", err)
			}
			// The profiler is off unless asked for.
			suiteEnv["MOREID_PPROF"] = "1"
		}
		b.logf("building and starting the suite")
		shape := harness.PerRole
		if cfg.combined {
			shape = harness.AllRoles
		}
		b.suite = harness.Start(e, harness.Options{
			Env:            suiteEnv,
			RedisURL:       cfg.redisURL,
			PostgresServer: cfg.postgresServer,
			Shape:          shape,
		})
		components, metricsVar := b.suite.Processes(), func(c string) string { return "MOREID_" + strings.ToUpper(c) + "_METRICS_ADDR" }
		if cfg.combined {
			metricsVar = func(string) string { return "MOREID_METRICS_ADDR" }
		}
		e.Cleanup(harness.Cleanup)
		if cfg.cpuprofile != "" {
			// Every component serves /debug/pprof/ on its metrics listener (MOREID_PPROF=1 above).
			b.prof.targets = map[string]string{}
			for _, c := range components {
				b.prof.targets[c] = b.suite.Env[metricsVar(c)]
			}
		}
		if cfg.logs != "" {
			e.Cleanup(func() { _ = os.WriteFile(cfg.logs, []byte(b.suite.Logs()), 0o600) })
		}
		redisPrefix = b.suite.RedisPrefix
		e.Cleanup(func() { unlinkPrefix(b.suite.Redis, redisPrefix) })
		b.userID, b.password = "bench-user", secret.New("", 20, secret.Alphanumeric)
		b.suite.CreateUser(e, b.userID, "压测用户", "bench@example.com", b.password)
		cfg.apiKey = b.suite.CreateKey(e, "moreid-bench")
		cfg.baseURL = b.suite.BaseURL
		cfg.authAddr = b.suite.Env["MOREID_AUTH_ADDR"]
		for _, c := range components {
			name := "moreid-" + c
			if c == "moreid" {
				name = "moreid"
			}
			b.procs = append(b.procs, namedPid{name, b.suite.Proc(c, 0).Pid()})
		}
	} else {
		if cfg.authAddr == "" || cfg.apiKey == "" || cfg.userID == "" || cfg.password == "" {
			e.Fatalf("-base-url needs -auth-addr, -api-key (or MOREID_BENCH_API_KEY), -user-id and MOREID_BENCH_PASSWORD")
		}
		b.userID, b.password = cfg.userID, cfg.password
		var rdb redis.UniversalClient
		rdb, redisPrefix = testenv.RedisOn(e, cfg.redisURL)
		e.Cleanup(func() { unlinkPrefix(rdb, redisPrefix) })
	}
	b.cfg = cfg
	maxConns := max(cfg.workers, cfg.stormClients) + 16
	b.rest = newREST(cfg.baseURL, cfg.apiKey, maxConns)
	if b.rpc, err = newRPC(cfg.authAddr, cfg.apiKey); err != nil {
		e.Fatalf("%v", err)
	}
	e.Cleanup(func() { _ = b.rpc.conn.Close() })

	b.logf("starting the baselines")
	rb := startBaseline(e, "redis", []string{envRedisURL + "=" + cfg.redisURL, envRedisPrefix + "=" + redisPrefix + "baseline:"})
	pb := startBaseline(e, "postgres", []string{envPostgresDSN + "=" + testenv.PostgresOn(e, cfg.postgresServer), envProfileUser + "=" + b.userID})
	b.redisBase, b.pgBase = newREST(rb.URL, "", maxConns), newREST(pb.URL, "", maxConns)
	b.procs = append(b.procs, namedPid{"baseline (Redis)", rb.Pid}, namedPid{"baseline (Postgres)", pb.Pid},
		namedPid{"moreid-bench (load generator)", os.Getpid()})
	var redisPid int
	b.pgVersion, b.rdVersion, redisPid = serverVersions(ctx, cfg.postgresServer, cfg.redisURL)
	if redisPid > 0 {
		if _, err := procstat.CPU(redisPid); err == nil { // a local server
			b.procs = append(b.procs, namedPid{"redis-server (shared)", redisPid})
		}
	}

	b.measureArgon() // sizes the login scenarios' inputs; measured again before them

	// A web session for preparing codes through the safe login, and one
	// access token for the userinfo scenarios.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	a, err := b.rpc.auth.Authorize(b.rpc.withKey(cctx), &authv1.AuthorizeRequest{})
	if err != nil {
		e.Fatalf("authorize: %v", err)
	}
	u, err := b.rpc.auth.CreateUCA(b.rpc.withKey(cctx), &authv1.CreateUCARequest{State: a.GetState()})
	if err != nil {
		e.Fatalf("ucaoncecode: %v", err)
	}
	si, err := b.rpc.confirm.SignIn(cctx, &authv1.SignInRequest{Uca: u.GetUcaoncecode(), UserId: b.userID, Password: b.password})
	if err != nil {
		e.Fatalf("sign in on the confirmation service: %v", err)
	}
	b.sessionMD = metadata.Pairs(wire.Session, si.GetSession(), wire.CSRF, si.GetCsrfToken())
	c, err := b.newCode(cctx)
	if err != nil {
		e.Fatalf("%v", err)
	}
	tok, err := b.rpc.auth.Token(b.rpc.withKey(cctx), &authv1.TokenRequest{Code: c.code, State: c.state})
	if err != nil {
		e.Fatalf("token: %v", err)
	}
	b.token = tok.GetAccessToken()
}

// measureArgon measures the argon2id bound: one hash on one core, and all
// cores hashing at once.
func (b *bench) measureArgon() {
	b.logf("measuring argon2id (%s)", b.argon)
	b.perHash = secondsPerHash(b.argon, 2*time.Second)
	b.argonBound = float64(runtime.NumCPU()) / b.perHash.Seconds()
	b.argonTogether = parallelHashRate(b.argon, runtime.NumCPU(), 2*time.Second)
}

func (b *bench) withSession(ctx context.Context) context.Context {
	return metadata.NewOutgoingContext(ctx, b.sessionMD)
}

// runAll measures every selected scenario and prints the report.
func (b *bench) runAll(ctx context.Context) {
	baselines := map[string]float64{}
	baseOps := map[string]load.Op{}
	adjacent := map[string]float64{} // scenario id → its baseline measured just before it
	var rows []report.Row
	var ids []string
	var storm *stormMemory
	start := time.Now()
	for _, s := range b.scenarios() {
		if !b.cfg.run.MatchString(s.id) {
			continue
		}
		// This machine's speed drifts by 10-20% over minutes (other
		// tenants): a ratio compares figures of the same moment, so each
		// baseline is measured again right before the scenario divided by it.
		if s.baseline == vsArgon2 && baselines[vsArgon2] == 0 {
			b.measureArgon()
			baselines[vsArgon2] = b.argonBound
		}
		if op := baseOps[s.baseline]; op != nil && b.cfg.rebaseline > 0 {
			b.logf("%s: its baseline again for %s", s.name, b.cfg.rebaseline)
			adjacent[s.id] = load.Closed(ctx, b.cfg.workers, b.cfg.rebaseline, op).Summary().RPS()
		}
		var row report.Row
		if s.id == "storm" {
			var mem stormMemory
			row, mem = b.storm(ctx, s)
			storm = &mem
		} else {
			row = b.measure(ctx, s)
		}
		if s.provides != "" {
			baselines[s.provides] = row.Peak.RPS()
			baseOps[s.provides] = s.op
		}
		rows = append(rows, row)
		ids = append(ids, s.id)
	}
	// Ratios are filled in at the end: a baseline filtered out by -run
	// leaves its scenarios without one rather than failing.
	names := map[string]string{vsRedis: "Redis baseline", vsPostgres: "Postgres baseline", vsArgon2: "argon2id bound"}
	for i, s := range b.selected() {
		if s.baseline != "" && baselines[s.baseline] > 0 {
			rows[i].Baseline, rows[i].BaselineRPS = names[s.baseline], baselines[s.baseline]
			if rps := adjacent[s.id]; rps > 0 {
				rows[i].BaselineRPS = rps
			}
		}
	}
	rows = append(rows, report.Row{Scenario: fmt.Sprintf("argon2id bound: %d cores ÷ %s per hash", runtime.NumCPU(), report.Duration(b.perHash)),
		Transport: "computed", Bound: true, BoundRPS: b.argonBound})

	var out io.Writer = os.Stdout
	if b.cfg.out != "" {
		f, err := os.Create(b.cfg.out)
		if err != nil {
			b.e.Fatalf("%v", err)
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	if err := b.writeReport(out, rows, ids, storm, time.Since(start)); err != nil {
		b.e.Fatalf("writing the report: %v", err)
	}
}

func (b *bench) selected() []scenario {
	var out []scenario
	for _, s := range b.scenarios() {
		if b.cfg.run.MatchString(s.id) {
			out = append(out, s)
		}
	}
	return out
}

// measure runs one scenario: warm-up, closed-loop peak, open-loop at half
// the peak rate.
func (b *bench) measure(ctx context.Context, s scenario) report.Row {
	cfg := b.cfg
	b.logf("%s (%s)", s.name, s.via)
	if s.ensure != nil {
		b.prepare(ctx, s, cfg.workers*4)
	}
	if cfg.warmup > 0 {
		if w := load.Closed(ctx, cfg.workers, cfg.warmup, s.op); w.Hist.TotalCount() == 0 && w.FirstErr != nil {
			b.e.Fatalf("%s: every warm-up request failed: %v", s.name, w.FirstErr)
		}
	}
	if s.ensure != nil {
		b.prepare(ctx, s, s.closedNeed)
	}
	wait := b.prof.capture(ctx, s.id, cfg.duration)
	cpu0 := b.cpuTimes()
	res := load.Closed(ctx, cfg.workers, cfg.duration, s.op)
	b.cpuRows = append(b.cpuRows, b.cpuRow(s, cpu0, res))
	wait()
	b.warnErrors(s, "peak", res)
	row := report.Row{Scenario: s.name, Transport: s.via, Peak: res.Summary()}
	if cfg.openDuration > 0 && cfg.half > 0 && !s.noHalf && row.Peak.RPS() > 0 {
		rate := row.Peak.RPS() * cfg.half
		if s.ensure != nil {
			b.prepare(ctx, s, int(math.Ceil(rate*cfg.openDuration.Seconds()))+cfg.workers)
		}
		half := load.Open(ctx, rate, cfg.openDuration, max(4*cfg.workers, 256), s.op)
		b.warnErrors(s, "half-rate", half)
		sum := half.Summary()
		row.Half, row.HalfRate = &sum, rate
	}
	return row
}

func (b *bench) prepare(ctx context.Context, s scenario, n int) {
	if err := s.ensure(ctx, n); err != nil {
		b.e.Fatalf("%s: %v", s.name, err)
	}
}

func (b *bench) warnErrors(s scenario, phase string, r load.Result) {
	if r.Errors > 0 {
		b.logf("  %s phase: %d errors, the first: %v", phase, r.Errors, r.FirstErr)
	}
	if r.Exhausted > 0 {
		b.logf("  %s phase: %d requests not made for want of prepared inputs", phase, r.Exhausted)
	}
}

// cpuTimes reads every known process's CPU time (-1 where unreadable).
func (b *bench) cpuTimes() []time.Duration {
	out := make([]time.Duration, len(b.procs))
	for i, p := range b.procs {
		d, err := procstat.CPU(p.pid)
		if err != nil {
			d = -1
		}
		out[i] = d
	}
	return out
}

// cpuRow is the CPU each process spent per successful request of a phase
// that started at the CPU times before.
func (b *bench) cpuRow(s scenario, before []time.Duration, res load.Result) report.CPURow {
	after := b.cpuTimes()
	row := report.CPURow{Scenario: s.name, Transport: s.via, PerReq: make([]time.Duration, len(after))}
	n := res.Hist.TotalCount()
	var total time.Duration
	for i := range after {
		if before[i] < 0 || after[i] < 0 || n == 0 {
			row.PerReq[i] = -1
			continue
		}
		used := after[i] - before[i]
		total += used
		row.PerReq[i] = used / time.Duration(n)
	}
	if res.Elapsed > 0 {
		row.Busy = total.Seconds() / (res.Elapsed.Seconds() * float64(runtime.NumCPU()))
	}
	return row
}

// stormMemory is the user service's memory around the login storm.
type stormMemory struct {
	process    string          // the process that hashes: moreid-user, or moreid with -combined
	before     procstat.Memory // just before: RSS, and peak since start
	peakDuring int64           // VmHWM reset just before the storm
	reset      bool            // whether the reset worked (else peakDuring is since start)
}

// storm has stormClients clients log in at once, back to back, and reads
// the user service's peak RSS before and during.
func (b *bench) storm(ctx context.Context, s scenario) (report.Row, stormMemory) {
	b.logf("%s", s.name)
	b.prepare(ctx, s, s.closedNeed)
	var mem stormMemory
	pid := 0
	for _, p := range b.procs {
		if p.name == "moreid-user" || p.name == "moreid" {
			pid, mem.process = p.pid, p.name
		}
	}
	if pid != 0 {
		var err error
		if mem.before, err = procstat.Read(pid); err != nil {
			b.e.Fatalf("%v", err)
		}
		mem.reset = procstat.ResetPeak(pid) == nil
	}
	res := load.Closed(ctx, b.cfg.stormClients, b.cfg.stormDuration, s.op)
	b.warnErrors(s, "storm", res)
	if pid != 0 {
		after, err := procstat.Read(pid)
		if err != nil {
			b.e.Fatalf("%v", err)
		}
		mem.peakDuring = after.Peak
	}
	return report.Row{Scenario: s.name, Transport: s.via, Peak: res.Summary()}, mem
}

// unlinkPrefix deletes the run's Redis keys in batches: a run leaves
// hundreds of thousands of states and tokens, which testenv's key-by-key
// cleanup would take minutes over.
func unlinkPrefix(rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 5000).Result()
		if err != nil {
			return
		}
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
		}
		if cursor = next; cursor == 0 {
			return
		}
	}
}

// serverVersions asks Postgres and Redis their versions, for the report.
func serverVersions(ctx context.Context, pgURL, redisURL string) (pg, rd string, redisPid int) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if conn, err := pgconn.Connect(ctx, pgURL); err == nil {
		pg = conn.ParameterStatus("server_version")
		conn.Close(ctx)
	}
	if opts, err := redis.ParseURL(redisURL); err == nil {
		c := redis.NewClient(opts)
		if info, err := c.InfoMap(ctx, "server").Result(); err == nil {
			rd = info["Server"]["redis_version"]
			redisPid, _ = strconv.Atoi(info["Server"]["process_id"])
		}
		c.Close()
	}
	return pg, rd, redisPid
}
