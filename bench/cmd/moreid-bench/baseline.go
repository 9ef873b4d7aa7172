package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/testenv"
)

// The baselines are the least a server can do for the same answer: a plain
// net/http handler with no middleware. They run in a process of their own
// (this binary again, with -serve-baseline) so that they compete for the
// CPU as the suite's processes do, and so that their RSS can be read.
const (
	envRedisURL    = "MOREID_BENCH_REDIS_URL"
	envRedisPrefix = "MOREID_BENCH_REDIS_PREFIX"
	envPostgresDSN = "MOREID_BENCH_POSTGRES_DSN"
	envProfileUser = "MOREID_BENCH_USER_ID"
)

// serveBaseline runs a baseline server on addr until SIGTERM.
func serveBaseline(kind, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var h http.Handler
	switch kind {
	case "redis":
		opts, err := redis.ParseURL(os.Getenv(envRedisURL))
		if err != nil {
			return fmt.Errorf("redis URL: %w", err)
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		h = redisHandler(rdb, os.Getenv(envRedisPrefix))
	case "postgres":
		pool, err := pgxpool.New(ctx, os.Getenv(envPostgresDSN))
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		defer pool.Close()
		if err := seedProfiles(ctx, pool, os.Getenv(envProfileUser)); err != nil {
			return err
		}
		h = postgresHandler(pool)
	default:
		return fmt.Errorf("unknown baseline %q (want redis or postgres)", kind)
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// redisHandler does what authorize does to Redis, and no more: a fresh
// 32-character state, its SHA-256 as the key, one SET with a 10-minute TTL,
// and a small JSON answer.
func redisHandler(rdb *redis.Client, prefix string) http.Handler {
	type answer struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
		State   string `json:"state"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state := secret.New("", 32, secret.Alphanumeric)
		if err := rdb.Set(r.Context(), prefix+"state:{"+secret.Hash(state)+"}", `{"k":1}`, 10*time.Minute).Err(); err != nil {
			http.Error(w, `{"success":false,"message":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer{Success: true, Message: "授权初始化成功", State: state})
	})
}

func seedProfiles(ctx context.Context, pool *pgxpool.Pool, userID string) error {
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS profiles (
		user_id text PRIMARY KEY, username text NOT NULL, avatar_url text NOT NULL)`)
	if err == nil {
		_, err = pool.Exec(ctx, `INSERT INTO profiles VALUES ($1, 'bench', 'https://example.com/a.svg')
			ON CONFLICT DO NOTHING`, userID)
	}
	if err != nil {
		return fmt.Errorf("seed the baseline table: %w", err)
	}
	return nil
}

// postgresHandler answers user/info's shape from one lookup by primary key.
func postgresHandler(pool *pgxpool.Pool) http.Handler {
	type profile struct {
		Username  string `json:"username"`
		AvatarURL string `json:"avatar_url"`
	}
	type answer struct {
		Success bool    `json:"success"`
		Message string  `json:"message"`
		User    profile `json:"user"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			UserID string `json:"user_id"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, `{"success":false,"message":"bad request"}`, http.StatusBadRequest)
			return
		}
		var p profile
		err := pool.QueryRow(r.Context(), `SELECT username, avatar_url FROM profiles WHERE user_id = $1`, req.UserID).Scan(&p.Username, &p.AvatarURL)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			http.Error(w, `{"success":false,"message":"not found"}`, http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, `{"success":false,"message":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer{Success: true, Message: "获取用户信息成功", User: p})
	})
}

// baselineProc is a running baseline server.
type baselineProc struct {
	URL string
	Pid int
}

// startBaseline runs this binary again as a baseline server of kind with
// the given environment and waits until it answers.
func startBaseline(e *env, kind string, extraEnv []string) *baselineProc {
	self, err := os.Executable()
	if err != nil {
		e.Fatalf("own executable: %v", err)
	}
	addr := testenv.FreeAddr(e)
	cmd := exec.Command(self, "-serve-baseline", kind, "-listen", addr)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		e.Fatalf("start the %s baseline: %v", kind, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	e.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			e.Fatalf("the %s baseline exited early", kind)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return &baselineProc{URL: "http://" + addr, Pid: cmd.Process.Pid}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.Fatalf("the %s baseline does not listen on %s", kind, addr)
	return nil
}
