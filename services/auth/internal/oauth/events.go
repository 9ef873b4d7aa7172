package oauth

import (
	"context"
	"errors"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
)

// record adds the caller's client IP to e and hands it to the audit
// trail. Events name users, keys and outcomes, never a secret.
func (s *Service) record(ctx context.Context, e audit.Event) {
	e.ClientIP = ClientIP(ctx)
	s.events.Record(ctx, e)
}

// recordResult records the outcome of a call: success with okDetail, or
// the error's kind (or, when throttled, which limit refused) as detail.
func (s *Service) recordResult(ctx context.Context, event string, keyID int64, userID string, err error, okDetail string) {
	e := audit.Event{Event: event, Outcome: audit.Success, UserID: userID, APIKeyID: keyID, Detail: okDetail}
	if err != nil {
		e.Outcome, e.Detail = audit.Failure, string(apierr.KindOf(err))
		var by throttledBy
		if errors.As(err, &by) {
			e.Outcome, e.Detail = audit.Throttled, string(by)
		}
	}
	s.record(ctx, e)
}
