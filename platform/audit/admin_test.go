package audit_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/grpcx/grpctest"
	"github.com/moreline/moreid/platform/testenv"
	auditv1 "github.com/moreline/moreid/proto/gen/go/moreid/audit/v1"
)

// client serves AuditAdminService over db with the platform's interceptors,
// as auth's admin listener does, and returns a client of it.
func client(t *testing.T, db *gorm.DB) auditv1.AuditAdminServiceClient {
	t.Helper()
	srv := grpctest.NewServer()
	auditv1.RegisterAuditAdminServiceServer(srv, audit.NewAdminServer(db))
	return auditv1.NewAuditAdminServiceClient(grpctest.Dial(t, grpctest.Serve(t, srv)))
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestListAuditEvents(t *testing.T) {
	db := openDB(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	// Seeded with explicit times (inserting is allowed, and a writer stamps
	// the current time, which would not let the since filter be tested).
	seed := []struct {
		ago          time.Duration
		event, user  string
		key          any
		ip, outcome  string
		component    string
		request, det string
	}{
		{3 * time.Hour, "login", "alice", 1, "192.0.2.1", "failure", "auth", "r1", "invalid_credentials"}, // id 1
		{2 * time.Hour, "login", "bob", 1, "192.0.2.2", "success", "auth", "r2", "password"},              // id 2
		{time.Hour, "token.issued", "alice", 2, "192.0.2.1", "success", "auth", "r3", ""},                 // id 3
		{10 * time.Minute, "apikey.revoked", "", 2, "10.0.0.1", "success", "apikey", "r4", ""},            // id 4
		{time.Minute, "user.updated", "alice", nil, "2001:db8::5", "success", "auth", "r5", ""},           // id 5
		{time.Minute, "login", "alice", nil, "2001:db8::5", "throttled", "auth", "r6", "rate_limited"},    // id 6: same time, later id
	}
	for _, s := range seed {
		ensurePartition(t, db, now.Add(-s.ago))
		if err := db.Exec(`INSERT INTO audit_events (at, event, outcome, user_id, api_key_id, client_ip, component, request_id, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, now.Add(-s.ago), s.event, s.outcome, s.user, s.key, s.ip, s.component, s.request, s.det).Error; err != nil {
			t.Fatal(err)
		}
	}
	c := client(t, db)

	tests := []struct {
		name    string
		req     *auditv1.ListAuditEventsRequest
		wantIDs []int64
	}{
		{"everything, newest first", &auditv1.ListAuditEventsRequest{}, []int64{6, 5, 4, 3, 2, 1}},
		{"one user", &auditv1.ListAuditEventsRequest{UserId: "alice"}, []int64{6, 5, 3, 1}},
		{"since", &auditv1.ListAuditEventsRequest{Since: timestamppb.New(now.Add(-90 * time.Minute))}, []int64{6, 5, 4, 3}},
		{"since is inclusive", &auditv1.ListAuditEventsRequest{Since: timestamppb.New(now.Add(-time.Hour))}, []int64{6, 5, 4, 3}},
		{"user and since", &auditv1.ListAuditEventsRequest{UserId: "bob", Since: timestamppb.New(now.Add(-90 * time.Minute))}, nil},
		{"limit", &auditv1.ListAuditEventsRequest{Limit: 2}, []int64{6, 5}},
		{"unknown user", &auditv1.ListAuditEventsRequest{UserId: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.ListAuditEvents(callCtx(t), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, e := range resp.GetEvents() {
				ids = append(ids, e.GetId())
			}
			if !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("ids %v, want %v", ids, tt.wantIDs)
			}
		})
	}

	t.Run("every field", func(t *testing.T) {
		resp, err := c.ListAuditEvents(callCtx(t), &auditv1.ListAuditEventsRequest{UserId: "alice", Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		want := []*auditv1.AuditEvent{
			{Id: 6, Time: timestamppb.New(now.Add(-time.Minute)), Event: "login", Outcome: "throttled", UserId: "alice", ClientIp: "2001:db8::5", Component: "auth", RequestId: "r6", Detail: "rate_limited", Count: 1},
			{Id: 5, Time: timestamppb.New(now.Add(-time.Minute)), Event: "user.updated", Outcome: "success", UserId: "alice", ClientIp: "2001:db8::5", Component: "auth", RequestId: "r5", Count: 1},
			{Id: 3, Time: timestamppb.New(now.Add(-time.Hour)), Event: "token.issued", Outcome: "success", UserId: "alice", ApiKeyId: 2, ClientIp: "192.0.2.1", Component: "auth", RequestId: "r3", Count: 1},
			{Id: 1, Time: timestamppb.New(now.Add(-3 * time.Hour)), Event: "login", Outcome: "failure", UserId: "alice", ApiKeyId: 1, ClientIp: "192.0.2.1", Component: "auth", RequestId: "r1", Detail: "invalid_credentials", Count: 1},
		}
		if len(resp.GetEvents()) != len(want) {
			t.Fatalf("%d events, want %d", len(resp.GetEvents()), len(want))
		}
		for i, e := range resp.GetEvents() {
			if !proto.Equal(e, want[i]) {
				t.Errorf("event %d\n %v\nwant\n %v", i, e, want[i])
			}
		}
	})
}

func TestListAuditEventsLimits(t *testing.T) {
	db := openDB(t)
	ensurePartition(t, db, time.Now().Add(-time.Hour))
	if err := db.Exec(`INSERT INTO audit_events (at, event, outcome, user_id)
		SELECT now() - make_interval(secs => g), 'login', 'success', 'bulk' FROM generate_series(1, 1005) AS g`).Error; err != nil {
		t.Fatal(err)
	}
	c := client(t, db)
	tests := []struct {
		limit    int32
		wantN    int
		wantKind apierr.Kind
	}{
		{limit: 0, wantN: audit.DefaultListLimit},
		{limit: 1, wantN: 1},
		{limit: audit.MaxListLimit, wantN: audit.MaxListLimit},
		{limit: audit.MaxListLimit + 1, wantKind: apierr.InvalidRequest},
		{limit: -1, wantKind: apierr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			resp, err := c.ListAuditEvents(callCtx(t), &auditv1.ListAuditEventsRequest{Limit: tt.limit})
			if tt.wantKind != "" {
				st := status.Convert(err)
				if st.Code() != codes.InvalidArgument || apierr.FromStatus(st).Kind != tt.wantKind {
					t.Fatalf("err = %v, want %s", err, tt.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := len(resp.GetEvents()); n != tt.wantN {
				t.Errorf("%d events, want %d", n, tt.wantN)
			}
			evs := resp.GetEvents()
			if !slices.IsSortedFunc(evs, func(a, b *auditv1.AuditEvent) int { return b.GetTime().AsTime().Compare(a.GetTime().AsTime()) }) {
				t.Error("events are not newest first")
			}
		})
	}
}

func TestListAuditEventsPostgresDown(t *testing.T) {
	db, err := gorm.Open(postgres.Open("postgres://postgres@"+testenv.FreeAddr(t)+"/nothing?sslmode=disable&connect_timeout=2"),
		&gorm.Config{DisableAutomaticPing: true, Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client(t, db).ListAuditEvents(callCtx(t), &auditv1.ListAuditEventsRequest{})
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || apierr.FromStatus(st).Kind != apierr.Unavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
}
