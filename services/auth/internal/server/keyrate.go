package server

import (
	"context"
	"strings"

	"google.golang.org/grpc"

	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// KeyRateInterceptor refuses AuthService calls beyond their API key's rate
// (oauth.KeyRate) with rate_limited and Retry-After. It runs after
// KeyInterceptor, which put the validated key in the context: only a
// valid key is counted, so nobody can spend another app's rate with a
// made-up key.
func KeyRateInterceptor(rate *oauth.KeyRate) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, authMethodPrefix) {
			return next(ctx, req)
		}
		if k, ok := KeyFromContext(ctx); ok {
			if err := rate.Admit(ctx, k.GetId()); err != nil {
				return nil, err
			}
		}
		return next(ctx, req)
	}
}
