package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/platform/audit"
	auditv1 "github.com/moreline/moreid/proto/gen/go/moreid/audit/v1"
)

// The limits of ListAuditEvents are the service's own (platform/audit), so
// that the CLI refuses exactly what the service would.
const (
	defaultAuditLimit = audit.DefaultListLimit
	maxAuditLimit     = audit.MaxListLimit
)

var auditList = &command{
	group: "audit", name: "list",
	synopsis: "audit list [--user ID] [--since DURATION] [--limit N] [--json]",
	summary:  "List the audit trail, newest first.",
	help: `List the audit trail (sign-ins, codes and tokens issued, revocations, key
and user changes), newest first.
  --user ID          only the events of this user
  --since DURATION   only events of the last DURATION: 15m, 24h, 7d, 1d12h
  --limit N          at most N events, the newest (default ` + strconv.Itoa(defaultAuditLimit) + `, at most ` + strconv.Itoa(maxAuditLimit) + `)
  --json             print a JSON array of {time, event, outcome, count,
                     last_time, user_id, api_key_id, client_ip, component,
                     request_id, detail}
Repeated failures of one subject within a minute are one row: COUNT says
how many, time is the first and last_time the last.
The services write the trail in batches, a fraction of a second apart: a list
run right after a change may not show it yet.`,
}

func init() { auditList.run = runAuditList }

// auditJSON is one element of `audit list --json`: exactly these fields.
// api_key_id is null for an event that concerns no key.
type auditJSON struct {
	Time      string  `json:"time"`
	Event     string  `json:"event"`
	Outcome   string  `json:"outcome"`
	Count     int64   `json:"count"`
	LastTime  *string `json:"last_time"` // null for a single event
	UserID    string  `json:"user_id"`
	APIKeyID  *int64  `json:"api_key_id"`
	ClientIP  string  `json:"client_ip"`
	Component string  `json:"component"`
	RequestID string  `json:"request_id"`
	Detail    string  `json:"detail"`
}

func runAuditList(ctx context.Context, e *env, args []string) error {
	cmd := auditList
	fs := flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	userID := fs.String("user", "", "")
	sinceFlag := fs.String("since", "", "")
	limit := fs.Int("limit", defaultAuditLimit, "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(cmd, "unexpected argument %q", pos[0])
	}
	if flagSet(fs, "user") && strings.TrimSpace(*userID) == "" {
		return usagef(cmd, "--user needs a user ID")
	}
	if *limit < 1 || *limit > maxAuditLimit {
		return usagef(cmd, "--limit must be between 1 and %d", maxAuditLimit)
	}
	req := &auditv1.ListAuditEventsRequest{UserId: strings.TrimSpace(*userID), Limit: int32(*limit)}
	if flagSet(fs, "since") {
		d, err := parseSince(*sinceFlag)
		if err != nil {
			return usagef(cmd, "--since: %v", err)
		}
		req.Since = timestamppb.New(time.Now().Add(-d))
	}

	s, err := e.settings()
	if err != nil {
		return err
	}
	what := "list audit events"
	if req.UserId != "" {
		what += " of user " + oneLine(req.UserId)
	}
	var events []*auditv1.AuditEvent
	err = call(ctx, s, authTarget(s), what, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := auditv1.NewAuditAdminServiceClient(conn).ListAuditEvents(ctx, req)
		events = resp.GetEvents()
		return err
	})
	if err != nil {
		return err
	}

	if *asJSON {
		out := make([]auditJSON, 0, len(events))
		for _, ev := range events {
			var key *int64
			if id := ev.GetApiKeyId(); id != 0 {
				key = &id
			}
			out = append(out, auditJSON{
				Time:      preciseTimestamp(ev.GetTime()),
				Event:     ev.GetEvent(),
				Outcome:   ev.GetOutcome(),
				Count:     count(ev),
				LastTime:  lastTime(ev),
				UserID:    ev.GetUserId(),
				APIKeyID:  key,
				ClientIP:  ev.GetClientIp(),
				Component: ev.GetComponent(),
				RequestID: ev.GetRequestId(),
				Detail:    ev.GetDetail(),
			})
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return fmt.Errorf("%s: encoding JSON: %w", what, err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}

	if len(events) == 0 {
		fmt.Fprintln(e.stdout, "no audit events")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tOUTCOME\tCOUNT\tUSER\tKEY ID\tCLIENT IP\tDETAIL")
	for _, ev := range events {
		key := "-"
		if id := ev.GetApiKeyId(); id != 0 {
			key = strconv.FormatInt(id, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
			timestamp(ev.GetTime().AsTime(), ev.GetTime() != nil), cell(ev.GetEvent()), cell(ev.GetOutcome()), count(ev),
			cell(ev.GetUserId()), key, cell(ev.GetClientIp()), cell(ev.GetDetail()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(events) == *limit {
		// Say so, or the operator may take the page for the whole trail;
		// on stderr, so that the table stays clean for scripts.
		fmt.Fprintf(e.stderr, "showing the newest %d events; older ones may exist (see --limit and --since)\n", *limit)
	}
	return nil
}

// count is how many events a row stands for; a service older than the
// aggregation sends none, and its every row is one event.
func count(ev *auditv1.AuditEvent) int64 { return max(ev.GetCount(), 1) }

// lastTime is when the last of the events a row stands for happened, nil
// for a single one.
func lastTime(ev *auditv1.AuditEvent) *string {
	if ev.GetLastTime() == nil {
		return nil
	}
	t := preciseTimestamp(ev.GetLastTime())
	return &t
}

// cell is a table cell: "-" when empty, and quoted when it holds control
// characters or tabs. Values such as a user ID typed into a login form come
// from the internet and must not drive the terminal or break the columns.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return oneLine(s)
}

// preciseTimestamp is t in RFC 3339 with the sub-second digits that order
// events recorded within the same second, or "" when the service sent none.
func preciseTimestamp(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339Nano)
}

var daysPrefix = regexp.MustCompile(`^([0-9]+)d`)

// parseSince reads a positive Go duration ("15m", "24h"), also with a
// leading number of days ("7d", "1d12h"), which Go durations lack.
func parseSince(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	rest := s
	if m := daysPrefix.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > 36500 {
			return 0, fmt.Errorf("%q: more than a century", s)
		}
		d = time.Duration(days) * 24 * time.Hour
		rest = s[len(m[0]):]
	}
	if rest != "" {
		more, err := time.ParseDuration(rest)
		if err != nil || more < 0 {
			return 0, fmt.Errorf("%q is not a duration such as 15m, 24h or 7d", s)
		}
		if more > math.MaxInt64-d {
			return 0, fmt.Errorf("%q: more than a century", s)
		}
		d += more
	}
	if s == "" || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration such as 15m, 24h or 7d", s)
	}
	return d, nil
}
