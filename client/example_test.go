package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/moreline/moreid/client"
)

// An internal service signs a user in with their password, checks the token
// it got, and revokes it. It needs a running suite (`make run`) and an API
// key (`moreidctl apikey create --name my-service`), so it is compiled but
// not run by `go test`.
func Example() {
	// One client per process; it is safe for concurrent use.
	c, err := client.Dial("127.0.0.1:9090", os.Getenv("MOREID_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Calls without a deadline get client.DefaultTimeout; a deadline of the
	// caller's own says what the caller can wait.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	tok, err := c.PasswordLogin(ctx, "alice", os.Getenv("ALICE_PASSWORD"))
	var e *client.Error
	switch {
	case errors.Is(err, client.ErrInvalidCredentials):
		fmt.Println("wrong user ID or password")
		return
	case errors.Is(err, client.ErrRateLimited) && errors.As(err, &e):
		fmt.Println("too many attempts, retry in", e.RetryAfter)
		return
	case errors.Is(err, client.ErrUnavailable):
		fmt.Println("Moreid is unreachable, try again later")
		return
	case err != nil:
		log.Fatal(err) // never logs the password: errors carry no secrets
	}
	fmt.Println("signed in:", tok) // prints no secret either

	info, err := c.Introspect(ctx, tok.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("active:", info.GetActive(), "user:", info.GetUser().GetUserId())

	if err := c.RevokeToken(ctx, tok.AccessToken); err != nil {
		log.Fatal(err)
	}
}

// userKey is where the middleware below puts the token's user; a handler
// reads it with r.Context().Value(userKey{}).(*authv1.UserProfile).
type userKey struct{}

// An HTTP middleware that lets a request through only with an active Bearer
// token, and tells the handler whose it is.
func ExampleClient_Introspect() {
	// In a cluster the suite admits only callers with a certificate of its CA.
	c, err := client.Dial("dns:///moreid-auth:9090", os.Getenv("MOREID_API_KEY"),
		client.WithTLSFiles("/tls/tls.crt", "/tls/tls.key", "/tls/ca.crt"))
	if err != nil {
		log.Fatal(err)
	}
	requireUser := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				http.Error(w, "missing bearer token", http.StatusUnauthorized)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			info, err := c.Introspect(ctx, bearer)
			switch {
			case errors.Is(err, client.ErrUnavailable):
				http.Error(w, "identity service unavailable", http.StatusServiceUnavailable)
				return
			case err != nil:
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			case !info.GetActive(): // unknown, expired, revoked, or a disabled user's
				http.Error(w, "invalid token", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, info.GetUser())))
		})
	}
	http.Handle("/api/", requireUser(http.NotFoundHandler()))
}
