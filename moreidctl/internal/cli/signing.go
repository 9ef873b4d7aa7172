package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"

	"google.golang.org/grpc"

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

var signingKeyRotate = &command{
	group: "signing-key", name: "rotate",
	synopsis: "signing-key rotate",
	summary:  "Create the next OpenID Connect ID token signing key.",
	help: `Create the next OpenID Connect ID token signing key, and print its kid and
when it starts signing. It is published in the JWKS at once but signs only
after the propagation delay (MOREID_SIGNING_KEY_PROPAGATION on auth), so
relying parties already know it; the current key then retires and stays
published until every token it signed has expired.`,
}

var signingKeyList = &command{
	group: "signing-key", name: "list",
	synopsis: "signing-key list [--json]",
	summary:  "List the OpenID Connect signing keys and their states.",
	help: `List the OpenID Connect ID token signing keys, oldest first, with their state:
next (published, not signing yet), current (signs now), retired (a newer key
signs; still published for its tokens) or expired (no longer published).
Only public parts are ever shown.
  --json    print a JSON array of {kid, alg, state, created_at, activate_at,
            retired_at} (retired_at null while the key is not retired)`,
}

func init() {
	signingKeyRotate.run = runSigningKeyRotate
	signingKeyList.run = runSigningKeyList
}

// signingKeyJSON is one element of `signing-key list --json`: exactly these
// fields.
type signingKeyJSON struct {
	KID        string  `json:"kid"`
	Alg        string  `json:"alg"`
	State      string  `json:"state"`
	CreatedAt  string  `json:"created_at"`
	ActivateAt string  `json:"activate_at"`
	RetiredAt  *string `json:"retired_at"`
}

func runSigningKeyRotate(ctx context.Context, e *env, args []string) error {
	cmd := signingKeyRotate
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(cmd, "unexpected argument %q", pos[0])
	}
	s, err := e.settings()
	if err != nil {
		return err
	}
	var key *authv1.SigningKey
	err = call(ctx, s, authTarget(s), "rotate the signing key", func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := authv1.NewAuthAdminServiceClient(conn).RotateSigningKey(ctx, &authv1.RotateSigningKeyRequest{})
		key = resp.GetKey()
		return err
	})
	if err != nil {
		return err
	}
	if key.GetKid() == "" || key.GetActivateAt() == nil {
		return fmt.Errorf("rotate the signing key: the auth admin service answered without the new key")
	}
	// The delay is the service's own (activate_at - created_at), so the
	// operator's clock does not enter into it.
	delay := key.GetActivateAt().AsTime().Sub(key.GetCreatedAt().AsTime())
	fmt.Fprintf(e.stdout, "new signing key %s: published now, signs from %s (in %s)\n",
		oneLine(key.GetKid()), timestamp(key.GetActivateAt().AsTime(), true), delay)
	return nil
}

func runSigningKeyList(ctx context.Context, e *env, args []string) error {
	cmd := signingKeyList
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(cmd, "unexpected argument %q", pos[0])
	}
	s, err := e.settings()
	if err != nil {
		return err
	}
	var keys []*authv1.SigningKey
	err = call(ctx, s, authTarget(s), "list signing keys", func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := authv1.NewAuthAdminServiceClient(conn).ListSigningKeys(ctx, &authv1.ListSigningKeysRequest{})
		keys = resp.GetKeys()
		return err
	})
	if err != nil {
		return err
	}

	if *asJSON {
		out := make([]signingKeyJSON, 0, len(keys))
		for _, k := range keys {
			j := signingKeyJSON{
				KID: k.GetKid(), Alg: k.GetAlg(), State: k.GetState(),
				CreatedAt:  timestamp(k.GetCreatedAt().AsTime(), k.GetCreatedAt() != nil),
				ActivateAt: timestamp(k.GetActivateAt().AsTime(), k.GetActivateAt() != nil),
			}
			if k.GetRetiredAt() != nil {
				r := timestamp(k.GetRetiredAt().AsTime(), true)
				j.RetiredAt = &r
			}
			out = append(out, j)
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return fmt.Errorf("list signing keys: encoding JSON: %w", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}

	if len(keys) == 0 {
		fmt.Fprintln(e.stdout, "no signing keys (auth creates the first at start)")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
			oneLine(k.GetKid()), oneLine(k.GetAlg()), oneLine(k.GetState()),
			timestamp(k.GetCreatedAt().AsTime(), k.GetCreatedAt() != nil),
			timestamp(k.GetActivateAt().AsTime(), k.GetActivateAt() != nil),
			timestamp(k.GetRetiredAt().AsTime(), k.GetRetiredAt() != nil))
	}
	return tw.Flush()
}
