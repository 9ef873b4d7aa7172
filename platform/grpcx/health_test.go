package grpcx_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry/telemetrytest"
	"github.com/moreline/moreid/platform/testenv"
)

var errDown = errors.New("down")

func probe(err error) grpcx.Probe { return func(context.Context) error { return err } }

// Readiness (the empty service name) is the component's own dependencies
// only: a downstream component that is not ready never makes it unready,
// and is answered for by name.
func TestHealthReadinessIsOwnDependenciesOnly(t *testing.T) {
	cases := []struct {
		name             string
		own, downstream  error
		ready, downReady bool
	}{
		{"all up", nil, nil, true, true},
		{"downstream down", nil, errDown, true, false},
		{"own dependency down", errDown, nil, false, true},
		{"both down", errDown, errDown, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tel, reg := telemetrytest.New(t)
			h := grpcx.NewHealth(map[string]grpcx.Probe{"redis": probe(tc.own)}).
				Downstream("auth-test", slog.New(slog.DiscardHandler), tel, map[string]grpcx.Probe{"user": probe(tc.downstream)})
			ctx := context.Background()
			want := func(service string, serving bool) {
				t.Helper()
				r, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
				if err != nil {
					t.Fatalf("Check(%q): %v", service, err)
				}
				if got := r.GetStatus() == healthpb.HealthCheckResponse_SERVING; got != serving {
					t.Fatalf("Check(%q) = %v, want serving %v", service, r.GetStatus(), serving)
				}
			}
			want("", tc.ready)
			want("redis", tc.ready)
			want("user", tc.downReady)
			// The named check has just reported the downstream state.
			wantGauge := 0.0
			if tc.downReady {
				wantGauge = 1
			}
			if g := reg.Gauge("moreid_downstream_up", "component", "auth-test", "downstream", "user"); g != wantGauge {
				t.Fatalf("moreid_downstream_up = %v, want %v", g, wantGauge)
			}
		})
	}
}

// The gateway's probe of auth: up while auth's health service answers, be
// it NOT_SERVING (auth's own outage is not the gateway's); down when
// nothing answers.
func TestConnectionProbe(t *testing.T) {
	srv := grpctest.NewServer()
	ownDown := grpcx.NewHealth(map[string]grpcx.Probe{"redis": probe(errDown)})
	healthpb.RegisterHealthServer(srv, ownDown)
	notServing := healthpb.NewHealthClient(grpctest.Dial(t, grpctest.Serve(t, srv)))
	nobody := healthpb.NewHealthClient(grpctest.Dial(t, testenv.FreeAddr(t)))
	log := slog.New(slog.DiscardHandler)
	tel, reg := telemetrytest.New(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := grpcx.ConnectionProbe("gw-test", "auth", log, tel, notServing)(ctx); err != nil {
		t.Fatalf("auth answering NOT_SERVING: %v, want ready", err)
	}
	if g := reg.Gauge("moreid_downstream_up", "component", "gw-test", "downstream", "auth"); g != 0 {
		t.Fatalf("moreid_downstream_up = %v, want 0 (auth not serving)", g)
	}
	if err := grpcx.ConnectionProbe("gw-test", "auth", log, tel, nobody)(ctx); err == nil {
		t.Fatal("nothing listening: ready, want an error")
	}
}

// TestHealthFailsFirstAtShutdown: once its unit is quiesced (SIGTERM), a
// server answers NOT_SERVING on connections it already had, while it still
// serves them, whatever its probes say.
func TestHealthFailsFirstAtShutdown(t *testing.T) {
	callers := run.NewCallers()
	srv := grpc.NewServer(grpc.StatsHandler(callers))
	healthpb.RegisterHealthServer(srv, grpcx.NewHealth(map[string]grpcx.Probe{"redis": func(context.Context) error { return nil }}))
	unit, err := run.GRPC("test", "127.0.0.1:0", srv, callers) // the unit keeps the port
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = unit.Serve() }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(unit.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		return r.GetStatus()
	}
	for _, service := range []string{"", "redis"} {
		if got := check(service); got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("before shutdown, Check(%q) = %v", service, got)
		}
	}
	unit.Quiesce()
	for _, service := range []string{"", "redis"} {
		if got := check(service); got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("after quiesce, Check(%q) = %v, want NOT_SERVING", service, got)
		}
	}
}
