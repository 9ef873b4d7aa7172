package redisdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestOptionsChooseTheTopology(t *testing.T) {
	cases := []struct {
		url      string
		addrs    []string
		master   string
		db       int
		password string
		wantErr  bool
	}{
		{url: "redis://127.0.0.1:6379/0", addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://:s3cret@cache:6380/2", addrs: []string{"cache:6380"}, db: 2, password: "s3cret"},
		{url: "redis://n1:6379?addr=n2:6379&addr=n3:6379", addrs: []string{"n1:6379", "n2:6379", "n3:6379"}},
		{url: "redis://s1:26379/1?addr=s2:26379&master_name=mymaster", addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster", db: 1},
		{url: "http://example.com", wantErr: true},
		{url: "redis://h:6379/0?bogus=1", wantErr: true},
		{url: "::not a url", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			opts, err := Options(tc.url, DefaultTimeout)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", opts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(opts.Addrs, tc.addrs) || opts.MasterName != tc.master || opts.DB != tc.db || opts.Password != tc.password {
				t.Fatalf("got addrs %v master %q db %d password %q", opts.Addrs, opts.MasterName, opts.DB, opts.Password)
			}
		})
	}
}

// The connection's timeouts derive from MOREID_REDIS_TIMEOUT, and the
// caller's deadline bounds reads: a reply slower than usual but within the
// budget is waited for, and nothing is re-sent after a read timeout while
// the first attempt may still run.
func TestOptionsDeriveTimeouts(t *testing.T) {
	for _, timeout := range []time.Duration{500 * time.Millisecond, DefaultTimeout, 10 * time.Second} {
		opts, err := Options("redis://127.0.0.1:6379/0", timeout)
		if err != nil {
			t.Fatal(err)
		}
		if opts.ReadTimeout != timeout || opts.WriteTimeout != timeout || opts.DialTimeout != timeout/2 ||
			opts.PoolTimeout != timeout || !opts.ContextTimeoutEnabled || opts.MaxRetries != 1 {
			t.Errorf("timeout %s: read %s write %s dial %s pool %s context %v retries %d", timeout,
				opts.ReadTimeout, opts.WriteTimeout, opts.DialTimeout, opts.PoolTimeout, opts.ContextTimeoutEnabled, opts.MaxRetries)
		}
	}
}

// A failing Cluster command asks for a slot-map reload, at most once per
// interval; answers (a missing key, a script error) and a caller that gave
// up do not.
func TestSlotRefresherReloadsOnConnectionErrors(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	cases := []struct {
		err    error
		reload bool
	}{
		{refused, true},
		{fmt.Errorf("eval: %w", io.EOF), true},
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
		{redis.ErrClosed, true},
		{redis.Nil, false},
		{context.Canceled, false},
		{errors.New("ERR Error running script"), false},
		{nil, false},
	}
	for _, tc := range cases {
		reloads := 0
		r := newSlotRefresher(func(context.Context) { reloads++ }, time.Second)
		r.failed(context.Background(), tc.err)
		if got := reloads == 1; got != tc.reload {
			t.Errorf("%v: reloaded %v, want %v", tc.err, got, tc.reload)
		}
	}

	now := time.Unix(1000, 0)
	reloads := 0
	r := newSlotRefresher(func(context.Context) { reloads++ }, 200*time.Millisecond)
	r.now = func() time.Time { return now }
	for step, want := range []int{1, 1, 2, 2, 3, 3} {
		r.failed(context.Background(), refused)
		if reloads != want {
			t.Fatalf("step %d at %s: %d reloads, want %d", step, now.Format("05.000"), reloads, want)
		}
		now = now.Add(100 * time.Millisecond)
	}
}
