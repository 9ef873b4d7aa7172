// Command moreid is the Moreid server: one binary whose roles are the
// suite's components.
//
//	moreid serve [ROLE...]   serve the roles (gateway, auth, user, apikey); none means all
//	moreid migrate           apply the database schemas as the owner and exit
//	moreid version           print the version
//
// `moreid serve` runs every role in one process, the shape of `make run` and
// of a small install; `moreid serve auth` runs one, the shape Kubernetes
// scales. A role calls a role of the same process in-process, through the
// callee's full interceptor chain, and any other over the network at its
// MOREID_*_ADDR. Every role reads the MOREID_* settings it always read
// (README, "Configuration"). moreidctl, the operators' tool, is a separate
// binary.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/moreline/moreid/platform/buildinfo"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/logging"
)

const usage = `Usage:
  moreid serve [ROLE...]   Serve the given roles in one process; no ROLE serves all of them.
                           Roles: gateway, auth, user, apikey.
  moreid migrate           Apply the database schemas (as MOREID_POSTGRES_OWNER_DSN, else
                           MOREID_POSTGRES_DSN), grant the serving role, and exit.
  moreid version           Print the version moreid was built from.
  moreid help              Print this text.
`

func main() { os.Exit(command(os.Args[1:], os.Stdout, os.Stderr)) }

// command is the command line: it returns the exit status, 2 for a usage error.
func command(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "moreid: no command given\n\n"+usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		roles, err := parseRoles(rest)
		if err != nil {
			fmt.Fprintf(stderr, "moreid serve: %v\n\n%s", err, usage)
			return 2
		}
		cfg, err := readSettings(config.FromEnv(), roles)
		log := logging.New(roles.name(), cfg.level)
		// A library that logs only to slog's default logger (zitadel/oidc's
		// op ignores the logger it is given) then writes the process's JSON
		// lines too, not plain text beside them.
		slog.SetDefault(log)
		if err != nil {
			return logging.Status(log, err)
		}
		return logging.Status(log, serve(log, roles, cfg))
	case "migrate":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "moreid migrate: takes no arguments (got %q)\n", rest)
			return 2
		}
		env := config.FromEnv()
		log := logging.New("migrate", logging.Level(env))
		return logging.Status(log, migrate(log, env))
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, buildinfo.Line("moreid"))
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "moreid: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
