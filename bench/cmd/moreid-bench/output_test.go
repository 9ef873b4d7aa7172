package main

import (
	"testing"
	"time"

	"github.com/moreline/moreid/bench/internal/procstat"
	"github.com/moreline/moreid/bench/internal/report"
	"github.com/moreline/moreid/bench/internal/stats"
)

func row(rps float64, baselineRPS float64, halfP99 time.Duration) report.Row {
	r := report.Row{Peak: stats.Summary{Requests: int64(rps * 10), Elapsed: 10 * time.Second}, BaselineRPS: baselineRPS}
	if halfP99 > 0 {
		r.Half = &stats.Summary{P99: halfP99}
		r.HalfRate = rps / 2
	}
	return r
}

func TestTargets(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		byID  map[string]report.Row
		storm *stormMemory
		bound float64
		want  map[string]bool // target → met
	}{
		{
			name: "ratios at and below their thresholds",
			byID: map[string]report.Row{
				"authorize-http":     row(500, 1000, 0),
				"authorize-grpc":     row(690, 1000, 0),
				"userinfo-http":      row(499, 1000, 0),
				"userinfo-post-http": row(800, 1000, 0),
			},
			want: map[string]bool{
				"authorize via the gateway ≥ 0.5× the Redis baseline": true,
				"Authorize over gRPC ≥ 0.7× the Redis baseline":       false,
				"userinfo by Bearer ≥ 0.5× the Redis baseline":        false,
				"user/info ≥ 0.5× the Postgres baseline":              true,
			},
		},
		{
			name:  "login throughput against the argon2id bound",
			byID:  map[string]report.Row{"login-http": row(36, 0, 0)},
			bound: 40,
			want:  map[string]bool{"password logins/s within 10% of cores ÷ argon2id s/hash": true},
		},
		{
			name:  "a storm within the hashes' memory is flat",
			storm: &stormMemory{process: "moreid-user", before: procstat.Memory{RSS: 100 * mib}, peakDuring: 100*mib + 92*mib + 60*mib},
			want:  map[string]bool{"moreid-user peak RSS flat during the login storm": true},
		},
		{
			name:  "a storm growing with the clients is not",
			storm: &stormMemory{process: "moreid-user", before: procstat.Memory{RSS: 100 * mib}, peakDuring: 1000 * mib},
			want:  map[string]bool{"moreid-user peak RSS flat during the login storm": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := targets(tt.byID, tt.storm, tt.bound, 92*mib)
			if len(got) != len(tt.want) {
				t.Fatalf("targets = %+v, want %d", got, len(tt.want))
			}
			for _, g := range got {
				met, ok := tt.want[g.What]
				if !ok {
					t.Errorf("unexpected target %q", g.What)
				} else if g.Met != met {
					t.Errorf("%q met = %v (%s), want %v", g.What, g.Met, g.Got, met)
				}
			}
		})
	}
}

// Every endpoint with an open-loop phase gets a p99 target, in the run's
// order; the baselines get none.
func TestTargetsAtHalfLoad(t *testing.T) {
	byID := map[string]report.Row{
		"baseline-redis": row(1000, 0, 50*time.Millisecond),
		"token-grpc":     row(500, 0, 11*time.Millisecond),
		"authorize-http": row(500, 0, 10*time.Millisecond),
	}
	byID["token-grpc"] = named(byID["token-grpc"], "AuthService.Token", "gRPC")
	byID["authorize-http"] = named(byID["authorize-http"], "authorize", "HTTP")
	got := targets(byID, nil, 0, 0)
	want := []report.Target{
		{What: "authorize (HTTP): p99 ≤ 10 ms at half the peak", Got: "10.0 ms at 250/s", Met: true},
		{What: "AuthService.Token (gRPC): p99 ≤ 10 ms at half the peak", Got: "11.0 ms at 250/s", Met: false},
	}
	if len(got) != len(want) {
		t.Fatalf("targets = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func named(r report.Row, name, via string) report.Row {
	r.Scenario, r.Transport = name, via
	return r
}
