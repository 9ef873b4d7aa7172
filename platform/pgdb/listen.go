package pgdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/moreline/moreid/platform/run"
	"github.com/moreline/moreid/platform/telemetry"
)

// Listener keeps one connection of its own LISTENing on a channel and
// hands every notification's payload to onNotify. onLive(true) is called
// once the LISTEN is in place, and onLive(false) as soon as the connection
// is found broken (by an error, or by a ping failing after a quiet spell):
// a cache fed by the channel must stop trusting itself then, because
// notifications sent while nobody listens are lost for good.
type Listener struct {
	dsn      string
	channel  string
	onNotify func(payload string)
	onLive   func(live bool)
	log      *slog.Logger
	tel      *telemetry.Telemetry

	// Quiet is how long to wait for a notification before pinging the
	// server; Retry is the pause between reconnection attempts.
	Quiet, Retry time.Duration

	stop context.CancelFunc
	ctx  context.Context
	done chan struct{}
}

// NewListener returns a listener on channel of the database at dsn (a
// postgres:// URL), whose state tel records in moreid_postgres_listener_live
// (nil: not recorded). Serve it with Unit.
func NewListener(dsn, channel string, onNotify func(string), onLive func(bool), log *slog.Logger, tel *telemetry.Telemetry) *Listener {
	ctx, stop := context.WithCancel(context.Background())
	return &Listener{
		dsn: dsn, channel: channel, onNotify: onNotify, onLive: onLive, log: log, tel: tel,
		Quiet: 10 * time.Second, Retry: time.Second,
		ctx: ctx, stop: stop, done: make(chan struct{}),
	}
}

// Unit runs the listener until stopped, reconnecting after every failure.
func (l *Listener) Unit() run.Unit {
	return run.Unit{Name: "postgres listener " + l.channel, Serve: l.serve, Stop: func(ctx context.Context) {
		l.stop()
		select {
		case <-l.done:
		case <-ctx.Done():
		}
	}}
}

func (l *Listener) serve() error {
	defer close(l.done)
	for {
		err := l.listen()
		l.setLive(false)
		if l.ctx.Err() != nil {
			return nil
		}
		l.log.Warn("postgres listener lost; cache off until it is back", "channel", l.channel, "error", err.Error(), "retry_in", l.Retry.String())
		select {
		case <-time.After(l.Retry):
		case <-l.ctx.Done():
			return nil
		}
	}
}

func (l *Listener) setLive(live bool) {
	l.tel.ListenerLive(l.channel, live)
	l.onLive(live)
}

// listen runs one connection's life: connect, LISTEN, go live, deliver
// notifications until something fails.
func (l *Listener) listen() error {
	u, err := parseDSN(l.dsn)
	if err != nil {
		return err
	}
	cfg, err := pgconn.ParseConfig(l.dsn)
	if err != nil {
		return fmt.Errorf("parse dsn: %w", redact(err, u))
	}
	// Named so that an operator can tell it in pg_stat_activity.
	cfg.RuntimeParams["application_name"] = "moreid listen " + l.channel
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		if n.Channel == l.channel {
			l.onNotify(n.Payload)
		}
	}
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", redact(err, u))
	}
	defer func() {
		// A dead peer must not hold up the reconnection.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	}()
	ctx, cancel = context.WithTimeout(l.ctx, 5*time.Second)
	_, err = conn.Exec(ctx, "LISTEN "+quoteIdent(l.channel)).ReadAll()
	cancel()
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	l.setLive(true)
	l.log.Info("postgres listener live", "channel", l.channel)
	for {
		ctx, cancel := context.WithTimeout(l.ctx, l.Quiet)
		err := conn.WaitForNotification(ctx)
		cancel()
		switch {
		case err == nil:
		case l.ctx.Err() != nil:
			return l.ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// A quiet spell: make sure the silence is not a dead peer.
			ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
			err := conn.Ping(ctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return fmt.Errorf("wait: %w", err)
		}
	}
}
