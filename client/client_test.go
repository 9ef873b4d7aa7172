package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/client"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, addr, key string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(addr, key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Every call, whether through a convenience method or a raw client,
// carries the API key exactly once in the x-api-key metadata.
func TestAPIKeyReachesServer(t *testing.T) {
	f := newFakeAuth()
	c := dial(t, serve(t, f), goodKey)
	ctx := callCtx(t)

	tok, err := c.PasswordLogin(ctx, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Introspect(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeToken(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Authorize(ctx, &authv1.AuthorizeRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tokens().IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: "token_x"}); err != nil {
		t.Fatal(err)
	}

	want := []string{"AuthService/Authorize", "AuthService/Login", "AuthService/Token",
		"TokenService/IntrospectToken", "TokenService/RevokeToken", "AuthService/Authorize", "TokenService/IntrospectToken"}
	calls := f.received()
	if got := f.methods(); !slices.Equal(got, want) {
		t.Fatalf("server saw %v, want %v", got, want)
	}
	for _, c := range calls {
		if !slices.Equal(c.keys, []string{goodKey}) {
			t.Errorf("%s carried x-api-key %q, want exactly the client's key", c.method, c.keys)
		}
	}
}

func TestDialWithoutKey(t *testing.T) {
	f := newFakeAuth()
	addr := serve(t, f)
	c, err := client.Dial(addr, "")
	if c != nil || !errors.Is(err, client.ErrInvalidAPIKey) {
		t.Fatalf("Dial without a key = %v, %v; want ErrInvalidAPIKey", c, err)
	}
	if n := len(f.received()); n != 0 {
		t.Fatalf("%d calls reached the server", n)
	}
}

func TestPasswordLogin(t *testing.T) {
	f := newFakeAuth()
	addr := serve(t, f)
	c := dial(t, addr, goodKey)

	before := time.Now()
	tok, err := c.PasswordLogin(callCtx(t), "alice", "alice-password")
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}

	// The three steps ran in order, each with what the previous one gave.
	calls := f.received()
	if got := f.methods(); !slices.Equal(got, []string{"AuthService/Authorize", "AuthService/Login", "AuthService/Token"}) {
		t.Fatalf("steps %v", got)
	}
	login := calls[1].req.(*authv1.LoginRequest)
	redeem := calls[2].req.(*authv1.TokenRequest)
	if login.GetUserId() != "alice" || login.GetPassword() != "alice-password" || login.GetState() == "" {
		t.Errorf("Login request %v", login)
	}
	if redeem.GetState() != login.GetState() || !strings.HasPrefix(redeem.GetCode(), "code_") {
		t.Errorf("Token request %v does not redeem the code of state %q", redeem, login.GetState())
	}

	if !strings.HasPrefix(tok.AccessToken, "token_") || tok.TokenType != "Bearer" || tok.ExpiresIn != time.Hour {
		t.Errorf("token %q type %q expires in %s", tok.AccessToken, tok.TokenType, tok.ExpiresIn)
	}
	if tok.ExpiresAt.Before(before.Add(time.Hour)) || tok.ExpiresAt.After(after.Add(time.Hour)) {
		t.Errorf("ExpiresAt %s not an hour after the call", tok.ExpiresAt)
	}
	if u := tok.User; u.GetId() != 1 || u.GetUserId() != "alice" || u.GetUsername() != "Alice" || u.GetEmail() != "alice@example.com" {
		t.Errorf("user %v", u)
	}

	// The token works, and revoking it ends it.
	info, err := c.Introspect(callCtx(t), tok.AccessToken)
	if err != nil || !info.GetActive() || info.GetUser().GetUserId() != "alice" {
		t.Fatalf("Introspect = %v, %v", info, err)
	}
	if err := c.RevokeToken(callCtx(t), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	info, err = c.Introspect(callCtx(t), tok.AccessToken)
	if err != nil || info.GetActive() || info.GetUser() != nil {
		t.Fatalf("Introspect after revoking = %v, %v; want inactive", info, err)
	}
}

func TestPasswordLoginFailures(t *testing.T) {
	tests := []struct {
		name, key, userID, password string
		want                        error
		wantSteps                   []string
		retryAfter                  time.Duration
	}{
		{"wrong password", goodKey, "alice", "wrong", client.ErrInvalidCredentials, []string{"Authorize", "Login"}, 0},
		{"unknown user", goodKey, "nobody", "alice-password", client.ErrInvalidCredentials, []string{"Authorize", "Login"}, 0},
		{"disabled user", goodKey, "bob", "bob-password", client.ErrAccountDisabled, []string{"Authorize", "Login"}, 0},
		{"rate limited", goodKey, "mallory", "x", client.ErrRateLimited, []string{"Authorize", "Login"}, 42 * time.Second},
		{"key allows only the safe login", safeOnlyKey, "alice", "alice-password", client.ErrPasswordLoginDisabled, []string{"Authorize", "Login"}, 0},
		{"unknown key", "ml_unknown", "alice", "alice-password", client.ErrInvalidAPIKey, []string{"Authorize"}, 0},
		{"IP not in the key's whitelist", blockedKey, "alice", "alice-password", client.ErrIPNotAllowed, []string{"Authorize"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAuth()
			c := dial(t, serve(t, f), tt.key)
			tok, err := c.PasswordLogin(callCtx(t), tt.userID, tt.password)
			if tok != nil || !errors.Is(err, tt.want) {
				t.Fatalf("PasswordLogin = %v, %v; want %v", tok, err, tt.want)
			}
			var e *client.Error
			if !errors.As(err, &e) || e.RetryAfter != tt.retryAfter {
				t.Errorf("error %#v, want RetryAfter %s", e, tt.retryAfter)
			}
			var steps []string
			for _, m := range f.methods() {
				steps = append(steps, strings.TrimPrefix(m, "AuthService/"))
			}
			if !slices.Equal(steps, tt.wantSteps) {
				t.Errorf("steps %v, want %v (a failed step ends the flow)", steps, tt.wantSteps)
			}
			if strings.Contains(err.Error(), tt.password) {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

// kinds is every documented code: a service's answer of each reaches the
// caller as that kind.
var kinds = []client.Kind{
	client.ErrInvalidRequest, client.ErrInvalidAPIKey, client.ErrInvalidCredentials,
	client.ErrUnauthenticated, client.ErrInvalidToken, client.ErrAccountDisabled,
	client.ErrCSRFFailed, client.ErrIPNotAllowed, client.ErrPasswordLoginDisabled,
	client.ErrForbidden, client.ErrNotFound, client.ErrMethodNotAllowed,
	client.ErrInvalidState, client.ErrInvalidCode, client.ErrConflict,
	client.ErrRateLimited, client.ErrInternal, client.ErrUnavailable,
}

// Each kind a service answers is matched by its kind and by no other,
// through the convenience methods and the raw clients alike, also when the
// caller wraps it; the service's message and gRPC status stay readable.
func TestTypedErrors(t *testing.T) {
	f := newFakeAuth()
	c := dial(t, serve(t, f), goodKey)
	calls := map[string]func(ctx context.Context, token string) error{
		"RevokeToken": c.RevokeToken,
		"raw client": func(ctx context.Context, token string) error {
			_, err := c.Tokens().RevokeToken(ctx, &authv1.RevokeTokenRequest{Token: token})
			return err
		},
	}
	for _, kind := range kinds {
		for via, revoke := range calls {
			t.Run(string(kind)+"/"+via, func(t *testing.T) {
				err := revoke(callCtx(t), "fail:"+string(kind))
				for _, e := range []error{err, fmt.Errorf("caller's context: %w", err)} {
					if !errors.Is(e, kind) {
						t.Fatalf("errors.Is(%v, %v) = false", e, kind)
					}
					for _, other := range kinds {
						if other != kind && errors.Is(e, other) {
							t.Errorf("%v also matches %v", e, other)
						}
					}
				}
				var e *client.Error
				if !errors.As(err, &e) {
					t.Fatalf("%T is not a *client.Error", err)
				}
				if e.Kind != kind || e.Method != "/moreid.auth.v1.TokenService/RevokeToken" || e.Message != failMessage {
					t.Errorf("Kind %q Method %q Message %q", e.Kind, e.Method, e.Message)
				}
				if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), string(kind)) {
					t.Errorf("status.Code = %s, Error() = %q", status.Code(err), err)
				}
			})
		}
	}
}

// A kind is an error in its own right, so that a caller can wrap one, and a
// switch on Error.Kind reads the same names.
func TestKindIsError(t *testing.T) {
	for _, k := range kinds {
		wrapped := fmt.Errorf("checking: %w", k)
		if !errors.Is(wrapped, k) || k.Error() != "moreid: "+string(k) {
			t.Errorf("%q: errors.Is(wrapped) = %v, Error() = %q", k, errors.Is(wrapped, k), k.Error())
		}
	}
}

// A service that cannot be reached, a deadline that passes and a closed
// client are all ErrUnavailable; the deadline also matches
// context.DeadlineExceeded.
func TestUnavailable(t *testing.T) {
	f := newFakeAuth()
	addr := serve(t, f)

	t.Run("nothing listening", func(t *testing.T) {
		c := dial(t, "127.0.0.1:1", goodKey)
		_, err := c.Introspect(callCtx(t), "token_x")
		if !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		c := dial(t, addr, goodKey)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := c.RevokeToken(ctx, "slow")
		if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want ErrUnavailable and context.DeadlineExceeded", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		c := dial(t, addr, goodKey)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Introspect(ctx, "token_x")
		if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("closed client", func(t *testing.T) {
		c, err := client.Dial(addr, goodKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.RevokeToken(callCtx(t), "token_x"); !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}

// Printing or logging a Token does not show the access token.
func TestTokenHidesSecret(t *testing.T) {
	f := newFakeAuth()
	c := dial(t, serve(t, f), goodKey)
	tok, err := c.PasswordLogin(callCtx(t), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("signed in", "token", tok)
	outputs := map[string]string{
		"%v":  fmt.Sprintf("%v", tok),
		"%+v": fmt.Sprintf("%+v", tok),
		"%s":  fmt.Sprint(tok),
		"log": logged.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, tok.AccessToken) {
			t.Errorf("%s shows the token: %s", name, out)
		}
		if !strings.Contains(out, "alice") {
			t.Errorf("%s does not say whose token it is: %s", name, out)
		}
	}
}
