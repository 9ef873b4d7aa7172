// Command moreidctl is the operator CLI of Moreid: it creates, disables and
// re-enables users, revokes their access tokens, issues, lists, revokes and
// restricts API keys, and lists the audit trail over the admin listeners.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/moreline/moreid/moreidctl/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
