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

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
)

// maxPasswordLine bounds what is read from stdin, so that piping a large
// file by mistake fails instead of eating memory.
const maxPasswordLine = 4096

var userCreate = &command{
	group: "user", name: "create",
	synopsis: "user create --user-id ID --username NAME --email EMAIL --password-stdin",
	summary:  "Create a user (the password on standard input).",
	help: `Create a user. The password is the first line of standard input.
  --user-id ID        the login name the user types (required)
  --username NAME     the display name (required)
  --email EMAIL       the user's email address (required)
  --password-stdin    read the password from standard input (required: a
                      password is never accepted as a flag, where it would
                      land in shell history and process listings)
Example: printf '%s\n' "$PASSWORD" | moreidctl user create --user-id alice --username Alice --email alice@example.com --password-stdin`,
}

var userDisable = &command{
	group: "user", name: "disable",
	synopsis: "user disable USER_ID",
	summary:  "Disable a user and revoke their access tokens.",
	help: `Disable a user and revoke every access token they hold.
A disabled user cannot sign in nor change their profile. The user is disabled
through the user admin listener first, then their tokens are revoked through
the auth admin listener. Should that second step fail, the user stays
disabled (auth refuses a disabled user's tokens anyway); run
'moreidctl user revoke-tokens USER_ID' to finish.`,
}

var userEnable = &command{
	group: "user", name: "enable",
	synopsis: "user enable USER_ID",
	summary:  "Re-enable a disabled user.",
	help: `Re-enable a disabled user, who can then sign in again.
Tokens revoked while the user was disabled stay revoked.`,
}

var userRevokeTokens = &command{
	group: "user", name: "revoke-tokens",
	synopsis: "user revoke-tokens USER_ID",
	summary:  "Revoke every access token of a user.",
	help: `Revoke every access token of a user at once, and print how many were live.
The user can still sign in and obtain new tokens (see 'user disable').`,
}

var userWithdrawConsent = &command{
	group: "user", name: "withdraw-consent",
	synopsis: "user withdraw-consent USER_ID [--client CLIENT_ID]",
	summary:  "Withdraw a user's consent to OpenID Connect apps.",
	help: `Withdraw the consent a user gave to OpenID Connect apps, and print how many
apps' consents ended. The access tokens and refresh tokens those apps hold for
the user end too, so an app must ask the user again before it gets new ones.
The user stays signed in, and the tokens of the other apps live on.
  --client CLIENT_ID  only this app (its mlc_... client ID); without it, every
                      app the user consented to`,
}

func init() {
	userCreate.run = runUserCreate
	userDisable.run = runUserDisable
	userEnable.run = runUserEnable
	userRevokeTokens.run = runUserRevokeTokens
	userWithdrawConsent.run = runUserWithdrawConsent
}

func userTarget(s settings) target {
	return target{service: "user admin service", addr: s.userAddr, envVar: envUserAdminAddr}
}

func authTarget(s settings) target {
	return target{service: "auth admin service", addr: s.authAddr, envVar: envAuthAdminAddr}
}

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
	var user *userv1.User
	err = call(ctx, s, userTarget(s), fmt.Sprintf("create user %s", *userID), func(ctx context.Context, conn *grpc.ClientConn) error {
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

func runUserDisable(ctx context.Context, e *env, args []string) error {
	userID, s, err := userCommand(userDisable, e, args)
	if err != nil {
		return err
	}
	u, err := setDisabled(ctx, s, userID, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "disabled user %s (id %d)\n", u.GetUserId(), u.GetId())
	n, err := revokeTokens(ctx, s, userID)
	if err != nil {
		// The disable stands: say so plainly, since the operator's next step
		// depends on it, and how to finish the job.
		return fmt.Errorf("user %s IS disabled, but its access tokens could not be revoked: %w\n"+
			"(auth refuses a disabled user's tokens anyway; run 'moreidctl user revoke-tokens %s' to revoke them)",
			userID, err, userID)
	}
	fmt.Fprintf(e.stdout, "revoked %s of user %s\n", tokens(n), userID)
	return nil
}

func runUserEnable(ctx context.Context, e *env, args []string) error {
	userID, s, err := userCommand(userEnable, e, args)
	if err != nil {
		return err
	}
	u, err := setDisabled(ctx, s, userID, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "enabled user %s (id %d)\n", u.GetUserId(), u.GetId())
	return nil
}

func runUserRevokeTokens(ctx context.Context, e *env, args []string) error {
	userID, s, err := userCommand(userRevokeTokens, e, args)
	if err != nil {
		return err
	}
	n, err := revokeTokens(ctx, s, userID)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "revoked %s of user %s\n", tokens(n), userID)
	return nil
}

func runUserWithdrawConsent(ctx context.Context, e *env, args []string) error {
	cmd := userWithdrawConsent
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	clientID := fs.String("client", "", "")
	userID, s, err := userCommandFlags(cmd, fs, e, args)
	if err != nil {
		return err
	}
	// An empty --client (a shell variable that was never set) would otherwise
	// withdraw every app's consent, the widest thing this command does.
	if flagSet(fs, "client") && strings.TrimSpace(*clientID) == "" {
		return usagef(cmd, "--client needs a client ID (leave the flag out to withdraw every app's consent)")
	}
	what := "withdraw the consent of user " + userID
	if *clientID != "" {
		what += " to client " + *clientID
	}
	var n int32
	err = call(ctx, s, authTarget(s), what, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := authv1.NewAuthAdminServiceClient(conn).WithdrawConsent(ctx, &authv1.WithdrawConsentRequest{UserId: userID, ClientId: *clientID})
		n = resp.GetWithdrawn()
		return err
	})
	if err != nil {
		return err
	}
	if *clientID != "" {
		fmt.Fprintf(e.stdout, "withdrew the consent of %s for user %s (client %s)\n", apps(n), userID, *clientID)
		return nil
	}
	fmt.Fprintf(e.stdout, "withdrew the consent of %s for user %s\n", apps(n), userID)
	return nil
}

// userCommand parses the command line of a command that takes a single
// USER_ID, and reads the settings.
func userCommand(cmd *command, e *env, args []string) (string, settings, error) {
	return userCommandFlags(cmd, flag.NewFlagSet(cmd.path(), flag.ContinueOnError), e, args)
}

// userCommandFlags is userCommand for a command that also has flags, which
// the caller defines on fs.
func userCommandFlags(cmd *command, fs *flag.FlagSet, e *env, args []string) (string, settings, error) {
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return "", settings{}, err
	}
	switch {
	case len(pos) == 0 || strings.TrimSpace(pos[0]) == "":
		return "", settings{}, usagef(cmd, "USER_ID is required")
	case len(pos) > 1:
		return "", settings{}, usagef(cmd, "unexpected argument %q", pos[1])
	}
	s, err := e.settings()
	return pos[0], s, err
}

func setDisabled(ctx context.Context, s settings, userID string, disabled bool) (*userv1.User, error) {
	what := "disable user " + userID
	if !disabled {
		what = "enable user " + userID
	}
	var user *userv1.User
	err := call(ctx, s, userTarget(s), what, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := userv1.NewUserAdminServiceClient(conn).SetUserDisabled(ctx, &userv1.SetUserDisabledRequest{UserId: userID, Disabled: disabled})
		user = resp.GetUser()
		return err
	})
	return user, err
}

func revokeTokens(ctx context.Context, s settings, userID string) (int32, error) {
	var n int32
	err := call(ctx, s, authTarget(s), "revoke the access tokens of user "+userID, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := authv1.NewAuthAdminServiceClient(conn).RevokeUserTokens(ctx, &authv1.RevokeUserTokensRequest{UserId: userID})
		n = resp.GetRevoked()
		return err
	})
	return n, err
}

func tokens(n int32) string {
	if n == 1 {
		return "1 access token"
	}
	return fmt.Sprintf("%d access tokens", n)
}

func apps(n int32) string {
	if n == 1 {
		return "1 app"
	}
	return fmt.Sprintf("%d apps", n)
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
