package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"

	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
)

// maxPasswordLine bounds what is read from stdin, so that piping a large
// file by mistake fails instead of eating memory.
const maxPasswordLine = 4096

var userCreate = &command{
	group: "user", name: "create",
	synopsis: "user create --user-id ID --username NAME --email EMAIL --password-stdin",
	help: `Create a user. The password is the first line of standard input.
  --user-id ID        the login name the user types (required)
  --username NAME     the display name (required)
  --email EMAIL       the user's email address (required)
  --password-stdin    read the password from standard input (required: a
                      password is never accepted as a flag, where it would
                      land in shell history and process listings)
Example: printf '%s\n' "$PASSWORD" | moreidctl user create --user-id alice --username Alice --email alice@example.com --password-stdin`,
}

func init() { userCreate.run = runUserCreate }

func runUserCreate(ctx context.Context, e *env, args []string) error {
	cmd := userCreate
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	userID := fs.String("user-id", "", "")
	username := fs.String("username", "", "")
	email := fs.String("email", "", "")
	fromStdin := fs.Bool("password-stdin", false, "")
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(cmd, "unexpected argument %q", pos[0])
	}
	for _, f := range []struct{ name, val string }{{"user-id", *userID}, {"username", *username}, {"email", *email}} {
		if strings.TrimSpace(f.val) == "" {
			return usagef(cmd, "--%s is required", f.name)
		}
	}
	if !*fromStdin {
		return usagef(cmd, "--password-stdin is required: the password is read from standard input")
	}
	password, err := readPassword(e.stdin)
	if err != nil {
		return err
	}

	s, err := e.settings()
	if err != nil {
		return err
	}
	t := target{service: "user admin service", addr: s.userAddr, envVar: envUserAdminAddr}
	var user *userv1.User
	err = call(ctx, s, t, fmt.Sprintf("create user %s", *userID), func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := userv1.NewUserAdminServiceClient(conn).CreateUser(ctx, &userv1.CreateUserRequest{
			UserId:   *userID,
			Username: *username,
			Email:    *email,
			Password: password,
		})
		user = resp.GetUser()
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "created user %s (id %d)\n", user.GetUserId(), user.GetId())
	return nil
}

// readPassword returns the first line of r without its line ending. An
// empty or oversized password is a usage error. The error never contains the
// password.
func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", usagef(userCreate, "no standard input to read the password from")
	}
	// Room for the longest allowed line and a CRLF; anything longer fails
	// instead of being silently truncated.
	line, err := bufio.NewReader(io.LimitReader(r, maxPasswordLine+3)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	switch {
	case line == "":
		return "", usagef(userCreate, "the password on standard input is empty")
	case len(line) > maxPasswordLine:
		return "", usagef(userCreate, "the password on standard input is longer than %d bytes", maxPasswordLine)
	}
	return line, nil
}
