// Package cli is moreidctl: it parses an operator's command line, calls the
// admin gRPC services and prints the answer. Run is the whole program, with
// its inputs and outputs passed in so that tests can drive it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/moreline/moreid/platform/buildinfo"
	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/grpcx"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Environment variables and their defaults (docs/ARCHITECTURE.md). The
// admin addresses are the services' own definitions (platform/grpcx), so
// the CLI dials by default where a service listens by default.
const (
	envUserAdminAddr   = grpcx.EnvUserAdminAddr
	envAPIKeyAdminAddr = grpcx.EnvAPIKeyAdminAddr
	envAuthAdminAddr   = grpcx.EnvAuthAdminAddr
	envTimeout         = "MOREID_CTL_TIMEOUT"
	envCert            = "MOREID_CTL_CERT"
	envKey             = "MOREID_CTL_KEY"
	envCA              = "MOREID_CTL_CA"

	defaultUserAdminAddr   = grpcx.DefaultUserAdminAddr
	defaultAPIKeyAdminAddr = grpcx.DefaultAPIKeyAdminAddr
	defaultAuthAdminAddr   = grpcx.DefaultAuthAdminAddr
	defaultTimeout         = 10 * time.Second
)

// command is one leaf of the command tree.
type command struct {
	group, name string
	synopsis    string // the line shown in the usage listing
	// summary is the command's one line in the listing of every command: a
	// whole sentence, since the listing cannot wrap help's first line
	// without cutting it mid-sentence.
	summary string
	help    string // what it does, and its flags
	run     func(ctx context.Context, e *env, args []string) error
}

func (c *command) path() string { return c.group + " " + c.name }

func (c *command) usage() string {
	return "Usage:\n  moreidctl " + c.synopsis + "\n\n" + c.help
}

var commands = []*command{userCreate, userDisable, userEnable, userRevokeTokens, userWithdrawConsent, apikeyCreate, apikeyList, apikeyRevoke, apikeyWhitelist, apikeyRedirectURIs, auditList, auditPrune, signingKeyRotate, signingKeyList}

// env is what a command works with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// The global flags (--cert, --key, --ca); each overrides its variable.
	cert, key, ca string
}

// settings are read only when a command needs the network, so that help and
// usage errors work whatever the environment holds.
type settings struct {
	userAddr, apikeyAddr, authAddr string
	timeout                        time.Duration
	// transport is the operator's mutual TLS, nil for plaintext (a local
	// suite on loopback).
	transport grpc.DialOption
}

func (e *env) settings() (settings, error) {
	vals := map[string]string{}
	for _, k := range []string{envUserAdminAddr, envAPIKeyAdminAddr, envAuthAdminAddr, envTimeout, envCert, envKey, envCA} {
		vals[k] = e.getenv(k)
	}
	r := config.FromMap(vals)
	s := settings{
		userAddr:   r.String(envUserAdminAddr, defaultUserAdminAddr),
		apikeyAddr: r.String(envAPIKeyAdminAddr, defaultAPIKeyAdminAddr),
		authAddr:   r.String(envAuthAdminAddr, defaultAuthAdminAddr),
		timeout:    r.Duration(envTimeout, defaultTimeout),
	}
	cert, key, ca := or(e.cert, r.String(envCert, "")), or(e.key, r.String(envKey, "")), or(e.ca, r.String(envCA, ""))
	if err := r.Err(); err != nil {
		return s, err
	}
	switch {
	case cert == "" && key == "" && ca == "":
	case cert == "" || key == "" || ca == "":
		return s, fmt.Errorf("TLS needs the operator's certificate, its key and the suite's CA together (--cert, --key, --ca or %s, %s, %s)", envCert, envKey, envCA)
	default:
		t, err := grpcx.ClientTLS(cert, key, ca)
		if err != nil {
			return s, fmt.Errorf("operator certificate: %w", err)
		}
		s.transport = t
	}
	return s, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// usageError is a mistake in the command line: exit status 2 and the usage
// of the command concerned (or the whole listing when cmd is nil).
type usageError struct {
	cmd *command
	msg string
}

func (u *usageError) Error() string { return u.msg }

func usagef(cmd *command, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// helpRequest asks for the usage on stdout and a zero exit status.
type helpRequest struct{ cmd *command }

func (h *helpRequest) Error() string { return "help requested" }

// Run executes the command line args (without the program name) and returns
// the process exit status: 0 on success, 1 when the operation failed, 2 on a
// usage error.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	err := dispatch(ctx, e, args)

	var help *helpRequest
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &help):
		if help.cmd != nil {
			fmt.Fprintln(stdout, help.cmd.usage())
		} else {
			fmt.Fprint(stdout, mainUsage())
		}
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "moreidctl: %s\n\n", usage.msg)
		if usage.cmd != nil {
			fmt.Fprintf(stderr, "%s\n\nRun 'moreidctl help' for every command.\n", usage.cmd.usage())
		} else {
			fmt.Fprint(stderr, mainUsage())
		}
		return exitUsage
	default:
		fmt.Fprintf(stderr, "moreidctl: %s\n", err)
		return exitFailure
	}
}

func dispatch(ctx context.Context, e *env, args []string) error {
	// The global flags come before the command.
	global := flag.NewFlagSet("moreidctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	global.Usage = func() {}
	global.StringVar(&e.cert, "cert", "", "")
	global.StringVar(&e.key, "key", "", "")
	global.StringVar(&e.ca, "ca", "", "")
	showVersion := global.Bool("version", false, "")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{}
		}
		return usagef(nil, "%s", flagError(err, "moreidctl --help"))
	}
	if *showVersion {
		fmt.Fprintln(e.stdout, buildinfo.Line("moreidctl"))
		return nil
	}
	args = global.Args()
	if len(args) == 0 {
		return usagef(nil, "no command given")
	}
	if isHelp(args[0]) {
		return &helpRequest{}
	}
	group := args[0]
	var inGroup []*command
	for _, c := range commands {
		if c.group == group {
			inGroup = append(inGroup, c)
		}
	}
	if len(inGroup) == 0 {
		return usagef(nil, "unknown command %q", group)
	}
	if len(args) < 2 {
		return usagef(nil, "%q needs a subcommand: %s", group, names(inGroup))
	}
	if isHelp(args[1]) {
		return &helpRequest{}
	}
	for _, c := range inGroup {
		if c.name == args[1] {
			return c.run(ctx, e, args[2:])
		}
	}
	return usagef(nil, "unknown command %q (%s has: %s)", group+" "+args[1], group, names(inGroup))
}

func isHelp(a string) bool { return a == "help" || a == "-h" || a == "--help" || a == "-help" }

func names(cs []*command) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return strings.Join(out, ", ")
}

func mainUsage() string {
	var b strings.Builder
	b.WriteString("moreidctl operates a Moreid suite through its admin listeners.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  moreidctl %s\n", c.synopsis)
	}
	b.WriteString("  moreidctl help\n  moreidctl --version\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-21s %s\n", c.path(), c.summary)
	}
	fmt.Fprintf(&b, "  %-21s %s\n", "help", "Print this listing.")
	fmt.Fprintf(&b, "  %-21s %s\n", "--version", "Print the version moreidctl was built from.")
	b.WriteString("'moreidctl COMMAND SUBCOMMAND --help' prints one command's flags.\n")
	fmt.Fprintf(&b, `
TLS flags, before the command (moreidctl --cert F --key F --ca F user ...):
a suite with TLS admits only operator certificates; without them moreidctl
speaks plaintext, which a suite allows only on loopback.
  --cert FILE   the operator's certificate (PEM), or %s
  --key FILE    its private key (PEM), or %s
  --ca FILE     the CA that signed the suite's certificates, or %s

Environment:
  %-26s user admin listener (default %s)
  %-26s API-key admin listener (default %s)
  %-26s auth admin listener (default %s)
  %-26s time limit of one command (default %s)
  %-26s audit prune: the trail's owner (no default)

Exit status: 0 success, 1 the operation failed, 2 usage error.
`, envCert, envKey, envCA, envUserAdminAddr, defaultUserAdminAddr, envAPIKeyAdminAddr, defaultAPIKeyAdminAddr,
		envAuthAdminAddr, defaultAuthAdminAddr, envTimeout, defaultTimeout, envOwnerDSN)
	return b.String()
}

// parseFlags parses args with fs, accepting flags before and after the
// positional arguments ("revoke 7 --json" as well as "revoke --json 7"),
// which the standard flag package alone does not.
func parseFlags(cmd *command, fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequest{cmd: cmd}
			}
			return nil, usagef(cmd, "%s", flagError(err, "moreidctl "+cmd.path()+" --help"))
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// After a "--" terminator everything is positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// flagSet reports whether the named flag appeared on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

// flagErrorForms are the errors of the flag package that name a flag, in its
// single-dash spelling ("-jsn"), with the wording moreidctl uses instead: the
// flags are documented as --name, and an operator who mistyped one should
// read it back the way the help writes it.
var flagErrorForms = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^flag provided but not defined: -+(.*)$`), "unknown flag --$1"},
	{regexp.MustCompile(`^flag needs an argument: -+(.*)$`), "flag --$1 needs a value"},
	{regexp.MustCompile(`^(invalid (?:boolean )?value ".*" for)(?: flag)? -+([^:]*)(: .*)?$`), "$1 flag --$2$3"},
}

// flagError rewords a flag parsing error in the --flag style and points to
// the help that lists the flags (help is the command line that prints it).
func flagError(err error, help string) string {
	msg := err.Error()
	for _, f := range flagErrorForms {
		if f.re.MatchString(msg) {
			msg = f.re.ReplaceAllString(msg, f.repl)
			break
		}
	}
	return fmt.Sprintf("%s (see '%s')", msg, help)
}
