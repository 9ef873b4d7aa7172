package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/moreline/moreid/e2e/harness"
)

// hungSLO is how fast a Postgres-backed request must answer while Postgres
// is hung: 503 within a second (MOREID_POSTGRES_TIMEOUT, 700 ms, after at most the
// key cache's 250 ms fallback), asserted with a margin
// for a slow, shared machine.
const hungSLO = 1500 * time.Millisecond

// TestPostgresHung freezes the suite's own Postgres (SIGSTOP on the
// postmaster and every backend: connections stay open, nothing answers)
// and sends rounds of Postgres-backed requests at once: each must answer
// 503 within hungSLO, not hold until a 5 s statement timeout. After SIGCONT
// the same requests succeed again, without restarting anything.
func TestPostgresHung(t *testing.T) {
	pg := harness.StartPostgres(t)
	// No profile cache: user/info must read Postgres (a cached profile
	// would be served, correctly, since a frozen Postgres changes nothing).
	s := harness.Start(t, harness.Options{PostgresServer: pg.URL, Env: map[string]string{
		"MOREID_USER_CACHE_SIZE": "0",
		// The production budget this test is about.
		"MOREID_POSTGRES_TIMEOUT": harness.ProductionPostgresTimeout,
	}})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Hung app"))
	app.login(t, "alice", alicePassword) // auth knows the key now
	var states []string
	for range 3 * 8 {
		states = append(states, app.authorize(t))
	}

	pg.Pause(t)
	paused := time.Now()
	var slowest time.Duration
	for round := range 3 {
		// Rounds 600 ms apart: auth's key cache (500 ms) expires in
		// between, so some rounds also wait for the key service.
		time.Sleep(time.Until(paused.Add(time.Duration(round) * 600 * time.Millisecond)))
		var reqs []hungRequest
		for i := range 8 {
			reqs = append(reqs,
				hungRequest{"user/info", map[string]string{"user_id": "alice"}},
				hungRequest{"login", map[string]string{"user_id": "alice", "password": alicePassword, "state": states[round*8+i]}})
		}
		for _, r := range sendAtOnce(app, reqs) {
			slowest = max(slowest, r.took)
			switch {
			case r.err != nil:
				t.Errorf("round %d %s: %v", round, r.endpoint, r.err)
			case r.status != 503 || r.kind != "unavailable":
				t.Errorf("round %d %s: %d %q while Postgres is hung, want 503 unavailable", round, r.endpoint, r.status, r.kind)
			case r.took > hungSLO:
				t.Errorf("round %d %s: 503 after %s, want ≤ %s", round, r.endpoint, r.took.Round(time.Millisecond), hungSLO)
			}
		}
	}
	t.Logf("Postgres hung: slowest of 48 Postgres-backed requests answered 503 in %s (SLO %s)", slowest.Round(time.Millisecond), hungSLO)

	pg.Resume(t)
	resumed := time.Now()
	for {
		info := app.do(t, "POST", "/api/oauth/user/info", map[string]string{"user_id": "alice"})
		if info.Status == 200 {
			break
		}
		if time.Since(resumed) > 15*time.Second {
			t.Fatalf("user/info still answers %d %s 15 s after SIGCONT", info.Status, info.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("Postgres thawed: user/info 200 again after %s", time.Since(resumed).Round(time.Millisecond))
	// A state whose login failed with 503 is intact: it still signs in.
	code := app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": alicePassword, "state": states[0]})
	expectSuccess(t, code, "登录成功")
}

type hungRequest struct {
	endpoint string
	body     map[string]string
}

type hungAnswer struct {
	endpoint string
	status   int
	kind     string
	took     time.Duration
	err      error
}

// sendAtOnce POSTs every request to /api/oauth/<endpoint> in parallel, the
// goroutines released together, and returns each answer with its latency.
func sendAtOnce(c *apiClient, reqs []hungRequest) []hungAnswer {
	out := make([]hungAnswer, len(reqs))
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: len(reqs)}}
	defer hc.CloseIdleConnections()
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		ready.Add(1)
		done.Go(func() {
			data, _ := json.Marshal(r.body)
			req, err := http.NewRequest("POST", c.base+"/api/oauth/"+r.endpoint, bytes.NewReader(data))
			if err != nil {
				panic(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", c.key)
			ready.Done()
			<-start
			a := hungAnswer{endpoint: r.endpoint}
			t0 := time.Now()
			resp, err := hc.Do(req)
			if err == nil {
				var body map[string]any
				if jerr := json.NewDecoder(resp.Body).Decode(&body); jerr != nil {
					err = fmt.Errorf("answer %d is not JSON: %w", resp.StatusCode, jerr)
				}
				resp.Body.Close()
				a.status, a.kind = resp.StatusCode, str(body, "error")
			}
			a.took, a.err = time.Since(t0), err
			out[i] = a
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
	return out
}
