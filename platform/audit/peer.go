package audit

import (
	"context"
	"net"
	"net/netip"

	"google.golang.org/grpc/peer"

	"github.com/moreline/moreid/platform/apierr"
)

// PeerIP is the IP of the gRPC caller, "" when unknown. It is the client IP
// of events recorded on admin listeners, whose callers (moreidctl, an
// operator's script) connect directly.
func PeerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if t, ok := p.Addr.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap().WithZone("").String()
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil {
		return ""
	}
	return ap.Addr().Unmap().WithZone("").String()
}

// Result is the outcome and detail of an event for the error an operation
// returned: Success and "" for nil, otherwise Failure and the error's kind
// (which names what went wrong without repeating any input).
func Result(err error) (outcome, detail string) {
	if err == nil {
		return Success, ""
	}
	return Failure, string(apierr.KindOf(err))
}
