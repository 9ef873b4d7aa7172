// Package testenv gives tests their own Postgres database and Redis keyspace
// on the real servers (never the ones `make run` uses), and removes them when
// the test ends. Set MOREID_TEST_POSTGRES_URL / MOREID_TEST_REDIS_URL to
// point tests elsewhere. It also hands out free loopback addresses, runs
// Redis, Redis Cluster and Postgres servers of a test's own (to crash or
// freeze them), and builds and runs a command's binary for the tests of
// main packages.
package testenv

import (
	"context"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/redisdb"
	"github.com/moreline/moreid/platform/secret"
)

// TB is what this package needs of its caller. testing.TB satisfies it, and
// so can a command (the load tool in bench/) that needs a database and a
// keyspace of its own outside a test.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
}

// PostgresServer is the server URL tests create their databases on.
func PostgresServer() string {
	if v := os.Getenv("MOREID_TEST_POSTGRES_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL is the Redis tests use: database 15, so that even a leaked key
// never lands in the keyspace of `make run` (database 0).
func RedisURL() string {
	if v := os.Getenv("MOREID_TEST_REDIS_URL"); v != "" {
		return v
	}
	return "redis://127.0.0.1:6379/15"
}

// Postgres creates a fresh, empty database for the test and returns its DSN.
// The database is dropped when the test ends.
func Postgres(t TB) string {
	t.Helper()
	return PostgresOn(t, PostgresServer())
}

// PostgresOn creates a fresh, empty database for the test on the server at
// serverURL and returns its DSN; it is dropped when the test ends.
func PostgresOn(t TB, serverURL string) string {
	t.Helper()
	server, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("postgres server URL: %v", err)
	}
	name := "moreid_test_" + secret.New("", 12, "abcdefghijklmnopqrstuvwxyz0123456789")
	execSQL(t, server.String(), "CREATE DATABASE "+name)
	t.Cleanup(func() { execSQL(t, server.String(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	dsn := *server
	dsn.Path = "/" + name
	return dsn.String()
}

// PostgresRoles sets up the two roles of a deployment for the test: a
// fresh database on the test server, whose DSN (owner) connects as the
// server's own role and so owns whatever it migrates, and a login role of
// the test's own with no privilege beyond what the schemas grant it
// (serving), the role the services connect as. Both are removed when the
// test ends.
func PostgresRoles(t TB) (owner, serving string) {
	t.Helper()
	return PostgresRolesOn(t, PostgresServer())
}

// PostgresRolesOn is PostgresRoles on the server at serverURL.
func PostgresRolesOn(t TB, serverURL string) (owner, serving string) {
	t.Helper()
	server, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("postgres server URL: %v", err)
	}
	role := "moreid_test_" + secret.New("", 12, "abcdefghijklmnopqrstuvwxyz0123456789")
	password := secret.New("", 24, secret.Hex) // for servers that do not trust loopback
	execSQL(t, server.String(), "CREATE ROLE "+role+" LOGIN PASSWORD '"+password+"'")
	// Registered before the database's cleanup, so it runs after it: the
	// role's privileges go with the database.
	t.Cleanup(func() { execSQL(t, server.String(), "DROP ROLE IF EXISTS "+role) })
	owner = PostgresOn(t, server.String())
	u, err := url.Parse(owner)
	if err != nil {
		t.Fatalf("postgres DSN: %v", err)
	}
	u.User = url.UserPassword(role, password)
	return owner, u.String()
}

func execSQL(t TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to test postgres: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Redis returns a client on the test Redis and a key prefix unique to this
// test. Every key under the prefix is deleted when the test ends.
func Redis(t TB) (redis.UniversalClient, string) {
	t.Helper()
	return RedisOn(t, RedisURL())
}

// RedisOn is Redis for the server at redisURL, in any form
// MOREID_REDIS_URL takes (a Cluster's too).
func RedisOn(t TB, redisURL string) (redis.UniversalClient, string) {
	t.Helper()
	opts, err := redisdb.Options(redisURL, 5*time.Second)
	if err != nil {
		t.Fatalf("redis URL: %v", err)
	}
	client := redis.NewUniversalClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("test redis: %v", err)
	}
	prefix := "moreidtest:" + secret.New("", 10, secret.Hex) + ":"
	t.Cleanup(func() {
		DeleteKeys(t, client, prefix)
		_ = client.Close()
	})
	return client, prefix
}

// DeleteKeys removes every key that starts with prefix.
// On a Cluster it scans every master.
func DeleteKeys(t TB, client redis.UniversalClient, prefix string) {
	t.Helper()
	ctx := context.Background()
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			node.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cc, ok := client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	} else {
		err = scan(ctx, client)
	}
	if err != nil && !strings.Contains(err.Error(), "closed") {
		t.Logf("cleaning redis keys %s*: %v", prefix, err)
	}
}
