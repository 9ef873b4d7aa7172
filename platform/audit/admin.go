package audit

import (
	"context"
	"database/sql"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/pgdb"
	auditv1 "github.com/moreline/moreid/proto/gen/go/moreid/audit/v1"
)

// Limits of ListAuditEvents.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
	queryTimeout     = 5 * time.Second
)

// NewAdminServer returns AuditAdminService over the audit_events table of
// db. Serve it on an admin listener only.
func NewAdminServer(db *gorm.DB) auditv1.AuditAdminServiceServer { return &adminServer{db: db} }

type adminServer struct {
	auditv1.UnimplementedAuditAdminServiceServer
	db *gorm.DB
}

// stored is a row of audit_events as read back.
type stored struct {
	ID        int64         `gorm:"column:id"`
	At        time.Time     `gorm:"column:at"`
	Event     string        `gorm:"column:event"`
	Outcome   string        `gorm:"column:outcome"`
	UserID    string        `gorm:"column:user_id"`
	APIKeyID  sql.NullInt64 `gorm:"column:api_key_id"`
	ClientIP  string        `gorm:"column:client_ip"`
	Component string        `gorm:"column:component"`
	RequestID string        `gorm:"column:request_id"`
	Detail    string        `gorm:"column:detail"`
	Count     int64         `gorm:"column:count"`
	LastAt    sql.NullTime  `gorm:"column:last_at"`
}

// ListAuditEvents returns events newest first. A limit beyond MaxListLimit
// (or negative) is refused rather than silently cut, so that a script never
// mistakes a truncated answer for the whole trail.
func (s *adminServer) ListAuditEvents(ctx context.Context, req *auditv1.ListAuditEventsRequest) (*auditv1.ListAuditEventsResponse, error) {
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0 || limit > MaxListLimit:
		return nil, apierr.Newf(apierr.InvalidRequest, "limit必须在1到%d之间", MaxListLimit)
	}
	if len(req.GetUserId()) > maxUserID {
		return nil, apierr.Newf(apierr.InvalidRequest, "user_id过长")
	}

	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	q := s.db.WithContext(ctx).Table("audit_events").
		Select("id, at, event, outcome, user_id, api_key_id, client_ip, component, request_id, detail, count, last_at")
	if uid := req.GetUserId(); uid != "" {
		q = q.Where("user_id = ?", uid)
	}
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return nil, apierr.Newf(apierr.InvalidRequest, "since时间无效")
		}
		q = q.Where("at >= ?", req.GetSince().AsTime())
	}
	var rows []stored
	if err := q.Order("at DESC, id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, pgdb.Classify("list audit events", err)
	}

	out := make([]*auditv1.AuditEvent, len(rows))
	for i, r := range rows {
		out[i] = &auditv1.AuditEvent{
			Id:        r.ID,
			Time:      timestamppb.New(r.At),
			Event:     r.Event,
			Outcome:   r.Outcome,
			UserId:    r.UserID,
			ApiKeyId:  r.APIKeyID.Int64,
			ClientIp:  r.ClientIP,
			Component: r.Component,
			RequestId: r.RequestID,
			Detail:    r.Detail,
			Count:     r.Count,
		}
		if r.LastAt.Valid {
			out[i].LastTime = timestamppb.New(r.LastAt.Time)
		}
	}
	return &auditv1.ListAuditEventsResponse{Events: out}, nil
}
