package main

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"

	gatewayapp "github.com/moreline/moreid/gateway/app"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/grpcx/inproc"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
	apikeyapp "github.com/moreline/moreid/services/apikey/app"
	authapp "github.com/moreline/moreid/services/auth/app"
	userapp "github.com/moreline/moreid/services/user/app"
)

// settings are the configuration of the process: its own (log level,
// telemetry, shutdown, TLS) and that of the roles it serves; a role not
// served leaves its part zero.
type settings struct {
	level    slog.Level
	tel      telemetry.Settings
	shutdown run.Shutdown
	sec      *grpcx.Security
	user     userapp.Settings
	apikey   apikeyapp.Settings
	auth     authapp.Settings
	gateway  gatewayapp.Settings
}

// readSettings reads every setting of the process and of its roles from
// the one Reader, then fails once, naming every bad setting: an operator
// fixes them in one round, not one per restart.
func readSettings(r *config.Reader, roles roles) (settings, error) {
	s := settings{
		level:    logging.Level(r),
		tel:      telemetry.ReadSettings(r, roles.name()),
		shutdown: run.NewShutdown(r),
	}
	if roles["user"] {
		s.user = userapp.ReadSettings(r)
	}
	if roles["apikey"] {
		s.apikey = apikeyapp.ReadSettings(r)
	}
	if roles["auth"] {
		s.auth = authapp.ReadSettings(r)
	}
	if roles["gateway"] {
		s.gateway = gatewayapp.ReadSettings(r)
	}
	// Its error is r's so far: returned below, with every other.
	s.sec, _ = grpcx.ReadSecurity(r)
	return s, r.Err()
}

// peer is how a role reaches a role it calls: in-process when the callee
// runs here, else over the network.
type peer struct {
	conn  grpc.ClientConnInterface
	close func() error
}

func dial(addr string, sec *grpcx.Security, tel *telemetry.Telemetry) (peer, error) {
	c, err := grpcx.Dial(addr, append(sec.DialOptions(), tel.GRPCDialOptions()...)...)
	if err != nil {
		return peer{}, err
	}
	return peer{conn: c, close: c.Close}, nil
}

// app is a gRPC role's wired service (userapp, apikeyapp, authapp).
type app interface {
	grpcx.Service
	Units() []run.Unit
}

// serve runs the roles until SIGTERM or SIGINT, then drains them: callers
// stop before their callees, and the audit trails flush last.
func serve(log *slog.Logger, roles roles, cfg settings) error {
	ctx, stop := run.SignalContext()
	defer stop()
	// One registry and one Telemetry for every role of the process, as
	// one /metrics shows them.
	reg := telemetry.NewRegistry()
	tel, err := telemetry.New(ctx, cfg.tel, reg, roles.name())
	if err != nil {
		return err
	}
	defer tel.Close(context.Background())
	metrics, err := telemetry.MetricsServer(cfg.tel.MetricsAddr, cfg.tel.Profiling, reg)
	if err != nil {
		return err
	}

	// Each role's listeners, and the background units (audit trails,
	// change listeners) that must stop after every listener.
	listeners := map[string][]run.Unit{}
	var background []run.Unit
	// local serves a gRPC role on its listeners and returns the in-process
	// connection the roles of this process call it through, with the same
	// interceptor chain.
	local := func(name, addr, admin string, log *slog.Logger, a app, extra ...grpc.UnaryServerInterceptor) (peer, error) {
		in := inproc.NewServer(grpcx.UnaryChain(log, tel, extra...))
		a.Register(in)
		l, err := grpcx.Listeners(log, tel, name, addr, admin, cfg.sec, a, extra...)
		listeners[name] = l
		background = append(background, a.Units()...)
		return peer{conn: in.Conn()}, err
	}

	// Callees first: each role's callers need its connection.
	var users, keys peer
	if roles["user"] {
		ulog := logging.New("user", cfg.level)
		a, err := userapp.New(ctx, ulog, tel, cfg.user)
		if err != nil {
			return err
		}
		defer a.Close()
		if users, err = local("user", cfg.user.Addr, cfg.user.AdminAddr, ulog, a); err != nil {
			return err
		}
	}
	if roles["apikey"] {
		klog := logging.New("apikey", cfg.level)
		a, err := apikeyapp.New(ctx, klog, tel, cfg.apikey)
		if err != nil {
			return err
		}
		defer a.Close()
		if keys, err = local("apikey", cfg.apikey.Addr, cfg.apikey.AdminAddr, klog, a); err != nil {
			return err
		}
	}
	var auth peer
	if roles["auth"] {
		alog := logging.New("auth", cfg.level)
		for _, p := range []struct {
			have *peer
			addr string
		}{{&users, cfg.auth.UserAddr}, {&keys, cfg.auth.APIKeyAddr}} {
			if p.have.conn == nil {
				if *p.have, err = dial(p.addr, cfg.sec, tel); err != nil {
					return err
				}
				defer p.have.close()
			}
		}
		a, err := authapp.New(ctx, alog, tel, cfg.auth, users.conn, keys.conn)
		if err != nil {
			return err
		}
		defer a.Close()
		if auth, err = local("auth", cfg.auth.Addr, cfg.auth.AdminAddr, alog, a, a.KeyInterceptors()...); err != nil {
			return err
		}
	}
	if roles["gateway"] {
		glog := logging.New("gateway", cfg.level)
		if auth.conn == nil {
			if auth, err = dial(cfg.gateway.AuthAddr, cfg.sec, tel); err != nil {
				return err
			}
			defer auth.close()
		}
		srv, err := gatewayapp.NewServer(auth.conn, cfg.gateway, glog, tel)
		if err != nil {
			return err
		}
		u, err := run.HTTP("http", cfg.gateway.HTTPAddr, srv)
		if err != nil {
			return err
		}
		listeners["gateway"] = []run.Unit{u}
	}

	// Stopped in this order: callers before callees (auth finishes its
	// callers' calls while user and apikey still serve it, in process and
	// to other processes), then the trails, which flush what the final
	// calls recorded, then the metrics.
	var units []run.Unit
	for _, r := range allRoles {
		units = append(units, listeners[r]...)
	}
	units = append(append(units, background...), metrics)
	log.Info("starting", "roles", fmt.Sprint(roles.list()))
	return run.Group(ctx, log, cfg.shutdown, units...)
}
