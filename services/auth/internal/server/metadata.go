package server

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/proto/wire"
)

// incoming is the first non-empty value of key in the call's metadata. It
// reads that one key: metadata.FromIncomingContext copies the whole map on
// every call, which was a tenth of a userinfo call's allocations.
func incoming(ctx context.Context, key string) string {
	for _, v := range metadata.ValueFromIncomingContext(ctx, key) {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// bearer is the access token of an "authorization: Bearer ..." metadata
// entry; "" when there is none (the flows then answer as for no token).
func bearer(ctx context.Context) string {
	v := incoming(ctx, wire.Authorization)
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
