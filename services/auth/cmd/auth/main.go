// Command auth serves AuthService, ConfirmationService and TokenService (the
// sign-in flows over Redis, with API keys checked by the apikey service and
// users by the user service) and, on a separate admin listener,
// AuthAdminService and the audit trail's AuditAdminService. Security events
// go to the audit trail in Postgres, written in the background. The wiring
// lives in package app.
package main

import (
	"context"
	"log/slog"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
	"github.com/moreline/moreid/services/auth/app"
)

func main() {
	log := logging.New("auth")
	logging.Exit(log, serve(log))
}

func serve(log *slog.Logger) error {
	cfg, err := app.ReadSettings(config.FromEnv())
	if err != nil {
		return err
	}
	sec, err := grpcx.ReadSecurity(config.FromEnv())
	if err != nil {
		return err
	}
	shutdown, err := run.NewShutdown(config.FromEnv(), cfg.Drain)
	if err != nil {
		return err
	}
	ctx, stop := run.SignalContext()
	defer stop()

	tel, err := telemetry.Setup(ctx, config.FromEnv(), "auth")
	if err != nil {
		return err
	}
	defer tel.Close(context.Background())

	userConn, err := grpcx.Dial(cfg.UserAddr, sec.DialOptions()...)
	if err != nil {
		return err
	}
	defer userConn.Close()
	apikeyConn, err := grpcx.Dial(cfg.APIKeyAddr, sec.DialOptions()...)
	if err != nil {
		return err
	}
	defer apikeyConn.Close()

	a, err := app.New(ctx, log, cfg, userConn, apikeyConn)
	if err != nil {
		return err
	}
	defer a.Close()

	// The public listener: AuthService behind the key interceptor, the
	// keyless ConfirmationService and TokenService; the admin listener:
	// operator RPCs, never mapped by the gateway.
	listeners, err := grpcx.Listeners(log, "auth", cfg.Addr, cfg.AdminAddr, sec, a, a.KeyInterceptors()...)
	if err != nil {
		return err
	}
	// The trail comes after the listeners: stopped last, it flushes what
	// their final calls recorded.
	units := append(listeners, a.Units()...)
	return run.Group(ctx, log, shutdown, append(units, tel.Metrics)...)
}
