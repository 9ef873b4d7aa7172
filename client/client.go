package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// APIKeyMetadata is the gRPC metadata key that carries the API key: the wire
// contract's wire.APIKey, named here for the client's callers so they need
// not import proto/wire as well.
const APIKeyMetadata = wire.APIKey

// Client talks to Moreid's auth service. It is safe for concurrent use;
// make one per process and Close it on shutdown.
type Client struct {
	conn   *grpc.ClientConn
	auth   authv1.AuthServiceClient
	tokens authv1.TokenServiceClient
}

// Dial returns a client of the auth service at target ("127.0.0.1:9090", or
// "dns:///moreid-auth:9090" to balance over every replica behind a headless
// Kubernetes Service). apiKey is the calling service's key ("ml_..."), sent
// with every call. The connection is made lazily, on the first call.
//
// Without options the connection is plaintext, which only a local suite on
// loopback accepts: pass WithTLSFiles for any other.
func Dial(target, apiKey string, opts ...Option) (*Client, error) {
	if apiKey == "" {
		return nil, fmt.Errorf("moreid: dial %s: no API key: %w", target, ErrInvalidAPIKey)
	}
	cfg := config{timeout: DefaultTimeout}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("moreid: dial %s: %w", target, err)
		}
	}
	conn, err := grpc.NewClient(target, append([]grpc.DialOption{
		grpc.WithPerRPCCredentials(apiKeyCredentials(apiKey)),
		grpc.WithChainUnaryInterceptor(defaultDeadline(cfg.timeout), typedErrors),
	}, cfg.dialOptions()...)...)
	if err != nil {
		return nil, fmt.Errorf("moreid: dial %s: %w", target, err)
	}
	return &Client{conn: conn, auth: authv1.NewAuthServiceClient(conn), tokens: authv1.NewTokenServiceClient(conn)}, nil
}

// Close ends the connection; calls in flight fail with ErrUnavailable.
func (c *Client) Close() error { return c.conn.Close() }

// Auth is the full AuthService (the sign-in flows). Its errors are *Error
// values too.
func (c *Client) Auth() authv1.AuthServiceClient { return c.auth }

// Tokens is the full TokenService. Its errors are *Error values too.
func (c *Client) Tokens() authv1.TokenServiceClient { return c.tokens }

// Introspect says whether an access token is active and, when it is, whose
// it is and which API key it was issued to. An unknown, expired or revoked
// token (or one of a disabled user) is not an error: the answer's Active is
// false.
func (c *Client) Introspect(ctx context.Context, token string) (*authv1.IntrospectTokenResponse, error) {
	return c.tokens.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: token})
}

// RevokeToken ends an access token at once. Revoking an unknown or already
// revoked token succeeds.
func (c *Client) RevokeToken(ctx context.Context, token string) error {
	_, err := c.tokens.RevokeToken(ctx, &authv1.RevokeTokenRequest{Token: token})
	return err
}

// Token is an access token obtained by PasswordLogin.
type Token struct {
	// AccessToken is the secret ("token_..."): send it as
	// "Authorization: Bearer <AccessToken>", never log it.
	AccessToken string
	// TokenType is "Bearer".
	TokenType string
	// ExpiresIn is the lifetime the service granted.
	ExpiresIn time.Duration
	// ExpiresAt is when the token ends, by this machine's clock.
	ExpiresAt time.Time
	// User is whom the token belongs to.
	User *authv1.User
}

// String describes the token without its secret, so that printing or
// logging a Token by mistake leaks nothing.
func (t *Token) String() string {
	return fmt.Sprintf("client.Token{%s for user %q, expires %s}", t.TokenType, t.User.GetUserId(), t.ExpiresAt.Format(time.RFC3339))
}

// LogValue keeps the secret out of slog output as well.
func (t *Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token_type", t.TokenType),
		slog.String("user_id", t.User.GetUserId()),
		slog.Time("expires_at", t.ExpiresAt),
	)
}

// PasswordLogin signs userID in with their password and returns an access
// token: the documented password flow, authorize -> login -> token, in one
// call. It fails with ErrInvalidCredentials for a wrong user_id or password,
// ErrPasswordLoginDisabled when the client's key allows only the safe
// login, ErrAccountDisabled, or ErrRateLimited.
func (c *Client) PasswordLogin(ctx context.Context, userID, password string) (*Token, error) {
	authz, err := c.auth.Authorize(ctx, &authv1.AuthorizeRequest{})
	if err != nil {
		return nil, err
	}
	login, err := c.auth.Login(ctx, &authv1.LoginRequest{UserId: userID, Password: password, State: authz.GetState()})
	if err != nil {
		return nil, err
	}
	tok, err := c.auth.Token(ctx, &authv1.TokenRequest{Code: login.GetCode(), State: authz.GetState()})
	if err != nil {
		return nil, err
	}
	lifetime := time.Duration(tok.GetExpiresIn()) * time.Second
	return &Token{
		AccessToken: tok.GetAccessToken(),
		TokenType:   tok.GetTokenType(),
		ExpiresIn:   lifetime,
		ExpiresAt:   time.Now().Add(lifetime),
		User:        login.GetUser(),
	}, nil
}

// apiKeyCredentials attaches the API key to every call. It does not demand
// transport security because a local suite is plaintext on loopback (see
// Dial for TLS).
type apiKeyCredentials string

func (k apiKeyCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{APIKeyMetadata: string(k)}, nil
}

func (apiKeyCredentials) RequireTransportSecurity() bool { return false }

// defaultDeadline gives a call whose context has no deadline the
// WithTimeout one, so that a forgotten deadline cannot hang the caller.
func defaultDeadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, has := ctx.Deadline(); !has && d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// typedErrors turns every failed call's status into an *Error, so that the
// raw clients of Auth and Tokens answer in the same vocabulary as the
// convenience methods.
func typedErrors(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	if st, ok := status.FromError(err); ok {
		return fromStatus(method, st)
	}
	return err
}
