package apierr

import (
	"errors"
	"net/http"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/proto/wire"
)

// TestTransport: what a caller of another Moreid service returns for each
// kind of failure, and whether the fault is its own to log.
func TestTransport(t *testing.T) {
	moreid := ToStatus(Newf(NotFound, "用户不存在")).Err()
	moreidFault := ToStatus(Wrap(Unavailable, errors.New("postgres down"))).Err()
	tests := []struct {
		name       string
		err        error
		kind       Kind
		passed     bool // returned unchanged
		originated bool // after FromTransport: the caller's own fault
	}{
		{"a Moreid verdict passes through", moreid, NotFound, true, false},
		{"a Moreid fault passes through", moreidFault, Unavailable, true, false},
		{"connection refused", status.Error(codes.Unavailable, "dial tcp: connection refused"), Unavailable, false, true},
		{"deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), Unavailable, false, true},
		{"a foreign status", status.Error(codes.PermissionDenied, "detail that must not leak"), Internal, false, true},
		{"not a status", errors.New("boom"), Internal, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromTransport(tt.err)
			if KindOf(got) != tt.kind {
				t.Errorf("kind %s, want %s", KindOf(got), tt.kind)
			}
			if (got == tt.err) != tt.passed {
				t.Errorf("passed through unchanged: %v, want %v", got == tt.err, tt.passed)
			}
			if OriginatedHere(got) != tt.originated {
				t.Errorf("OriginatedHere %v, want %v", OriginatedHere(got), tt.originated)
			}
			// What the client finally sees is the same kind.
			if FromStatus(ToStatus(got)).Kind != tt.kind {
				t.Errorf("client sees %s, want %s", FromStatus(ToStatus(got)).Kind, tt.kind)
			}
		})
	}
	if FromTransport(nil) != nil {
		t.Error("FromTransport(nil) is not nil")
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		name   string
		st     *status.Status
		kind   Kind
		moreid bool
	}{
		{"made by a Moreid service", ToStatus(New(RateLimited)), RateLimited, true},
		{"made by gRPC", status.New(codes.Unavailable, "connection refused"), "", false},
		{"nil", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, ok := Reason(tt.st); k != tt.kind || ok != tt.moreid {
				t.Errorf("Reason = %q, %v; want %q, %v", k, ok, tt.kind, tt.moreid)
			}
		})
	}
}

func TestKindOfHTTP(t *testing.T) {
	for code, want := range map[int]Kind{
		http.StatusBadRequest: InvalidRequest, http.StatusNotFound: NotFound,
		http.StatusMethodNotAllowed: MethodNotAllowed, http.StatusTeapot: Internal,
	} {
		if got := KindOfHTTP(code); got != want || HTTPStatus(got) != map[bool]int{true: code, false: 500}[want != Internal] {
			t.Errorf("KindOfHTTP(%d) = %s (HTTP %d), want %s", code, got, HTTPStatus(got), want)
		}
	}
}

// TestWireEncoding pins what the Go client (which cannot import this
// package) decodes: the ErrorInfo's domain, reason and retry metadata are
// the names of proto/wire.
func TestWireEncoding(t *testing.T) {
	st := ToStatus(&Error{Kind: RateLimited, RetryAfterSeconds: 42})
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info.GetDomain() != wire.ErrorDomain || info.GetReason() != wire.ReasonRateLimited || info.GetMetadata()[wire.RetryAfterMetadata] != "42" {
		t.Fatalf("ErrorInfo %v, want domain %q reason %q and %s=42", info, wire.ErrorDomain, wire.ReasonRateLimited, wire.RetryAfterMetadata)
	}
}
