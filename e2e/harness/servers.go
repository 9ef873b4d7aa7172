package harness

import "github.com/moreline/moreid/platform/testenv"

// Server is a Redis or Postgres server of the test's own (see
// testenv.Server: Kill, Restart, Pause, Resume).
type Server = testenv.Server

// StartRedis runs a redis-server of the test's own (testenv.StartRedis).
func StartRedis(t TB) *Server { return testenv.StartRedis(t) }

// StartPostgres runs a Postgres of the test's own (testenv.StartPostgres).
func StartPostgres(t TB) *Server { return testenv.StartPostgres(t) }
