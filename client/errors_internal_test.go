package client

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/proto/wire"
)

// fromStatus goes by a Moreid service's ErrorInfo when there is one, and
// by the code alone for statuses gRPC or a proxy made.
func TestFromStatus(t *testing.T) {
	withInfo := func(code codes.Code, info *errdetails.ErrorInfo) *status.Status {
		st, err := status.New(code, "text").WithDetails(info)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	tests := []struct {
		name       string
		st         *status.Status
		kind       Kind
		retryAfter time.Duration
	}{
		{"a Moreid reason", withInfo(codes.PermissionDenied, &errdetails.ErrorInfo{Domain: wire.ErrorDomain, Reason: wire.ReasonIPNotAllowed}), ErrIPNotAllowed, 0},
		{"the reason wins over the code", withInfo(codes.Unavailable, &errdetails.ErrorInfo{Domain: wire.ErrorDomain, Reason: wire.ReasonInvalidState}), ErrInvalidState, 0},
		{"a rate limit's wait", withInfo(codes.ResourceExhausted, &errdetails.ErrorInfo{Domain: wire.ErrorDomain, Reason: wire.ReasonRateLimited, Metadata: map[string]string{wire.RetryAfterMetadata: "7"}}), ErrRateLimited, 7 * time.Second},
		{"an unreadable wait", withInfo(codes.ResourceExhausted, &errdetails.ErrorInfo{Domain: wire.ErrorDomain, Reason: wire.ReasonRateLimited, Metadata: map[string]string{wire.RetryAfterMetadata: "soon"}}), ErrRateLimited, 0},
		{"a reason newer than this client", withInfo(codes.PermissionDenied, &errdetails.ErrorInfo{Domain: wire.ErrorDomain, Reason: "mfa_required"}), Kind("mfa_required"), 0},
		{"another domain's ErrorInfo", withInfo(codes.PermissionDenied, &errdetails.ErrorInfo{Domain: "proxy.example", Reason: "denied"}), ErrInternal, 0},
		{"connection refused", status.New(codes.Unavailable, "connection refused"), ErrUnavailable, 0},
		{"deadline", status.New(codes.DeadlineExceeded, "context deadline exceeded"), ErrUnavailable, 0},
		{"canceled", status.New(codes.Canceled, "context canceled"), ErrUnavailable, 0},
		{"a foreign refusal", status.New(codes.PermissionDenied, "RBAC: access denied"), ErrInternal, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fromStatus("/m", tt.st)
			if e.Kind != tt.kind || e.RetryAfter != tt.retryAfter || e.Message != tt.st.Message() || e.Status != tt.st {
				t.Errorf("got %+v, want kind %q retry after %s", e, tt.kind, tt.retryAfter)
			}
		})
	}
}
