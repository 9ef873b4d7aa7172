package pgdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/moreline/moreid/platform/apierr"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want apierr.Kind
	}{
		{"connection refused", &pgconn.ConnectError{}, apierr.Unavailable},
		{"bad connection", driver.ErrBadConn, apierr.Unavailable},
		{"server went away mid-statement", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), apierr.Unavailable},
		{"EOF", io.EOF, apierr.Unavailable},
		{"deadline", context.DeadlineExceeded, apierr.Unavailable},
		{"conn closed", errors.New("conn closed"), apierr.Unavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, apierr.Unavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, apierr.Unavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, apierr.Unavailable},
		{"unique violation", &pgconn.PgError{Code: "23505"}, apierr.Internal},
		{"syntax error", &pgconn.PgError{Code: "42601"}, apierr.Internal},
		{"anything else", errors.New("boom"), apierr.Internal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Classify("op", tc.err)
			if got := apierr.KindOf(err); got != tc.want {
				t.Fatalf("Classify(%v) kind %s, want %s", tc.err, got, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("Classify dropped the cause")
			}
		})
	}
}
