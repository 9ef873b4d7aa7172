package pgdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/moreline/moreid/platform/apierr"
)

// Classify turns a database error into the shared vocabulary: Unavailable
// when Postgres could not be reached or gave up on the connection (so the
// client gets a fast 503 and retries), Internal otherwise. Callers map the
// answers they expect (not found, duplicate) before calling it.
func Classify(op string, err error) error {
	err = fmt.Errorf("%s: %w", op, err)
	if Unreachable(err) {
		return apierr.Wrap(apierr.Unavailable, err)
	}
	return apierr.Wrap(apierr.Internal, err)
}

// Unreachable reports whether err means the database could not be reached,
// dropped the connection or did not answer in time, as opposed to rejecting
// the statement.
func Unreachable(err error) bool {
	var (
		connErr *pgconn.ConnectError
		netErr  net.Error
		pgErr   *pgconn.PgError
	)
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		pgconn.Timeout(err):
		return true
	case errors.As(err, &pgErr):
		// Class 08: connection exception; 57P0x: the server is shutting down
		// or starting; 53300: too many connections.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0") || pgErr.Code == "53300"
	}
	// pgx reports a connection that died under a statement without a typed
	// error in some paths ("conn closed", "conn busy").
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "conn busy") || strings.Contains(msg, "connection reset")
}

// Code is the SQLSTATE of a Postgres error, or "".
func Code(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
