// Package server exposes the user domain over gRPC: UserService on the
// internal listener and UserAdminService on the admin listener. It only
// translates between proto messages and domain values; errors pass through
// as apierr kinds for the grpcx interceptors to map.
package server

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/grpcx"
	userv1 "github.com/moreline/moreid/proto/gen/go/moreid/user/v1"
	"github.com/moreline/moreid/services/user/internal/user"
)

// NewInternal returns the internal listener's server: UserService and health.
func NewInternal(log *slog.Logger, svc *user.Service, health *grpcx.Health) *grpc.Server {
	srv := grpc.NewServer(grpcx.ServerOptions(log, nil)...)
	RegisterInternal(srv, svc, health)
	return srv
}

// RegisterInternal registers UserService and health on r, a gRPC server or
// an in-process one.
func RegisterInternal(r grpc.ServiceRegistrar, svc *user.Service, health *grpcx.Health) {
	userv1.RegisterUserServiceServer(r, &UserServer{svc: svc})
	healthpb.RegisterHealthServer(r, health)
}

// NewAdmin returns the admin listener's server: UserAdminService and health.
// Keeping the admin RPCs on their own server means no public path can reach
// them, whatever the gateway maps. Every admin change, done or refused, is
// recorded to rec.
func NewAdmin(log *slog.Logger, svc *user.Service, health *grpcx.Health, rec audit.Recorder) *grpc.Server {
	srv := grpc.NewServer(grpcx.ServerOptions(log, nil)...)
	RegisterAdmin(srv, svc, health, rec)
	return srv
}

// RegisterAdmin registers UserAdminService and health on r.
func RegisterAdmin(r grpc.ServiceRegistrar, svc *user.Service, health *grpcx.Health, rec audit.Recorder) {
	userv1.RegisterUserAdminServiceServer(r, &AdminServer{svc: svc, rec: rec})
	healthpb.RegisterHealthServer(r, health)
}

// UserServer implements userv1.UserServiceServer.
type UserServer struct {
	userv1.UnimplementedUserServiceServer
	svc *user.Service
}

// GetUser implements userv1.UserServiceServer.
func (s *UserServer) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	u, err := s.svc.GetUser(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	return &userv1.GetUserResponse{User: toProto(u)}, nil
}

// VerifyPassword implements userv1.UserServiceServer.
func (s *UserServer) VerifyPassword(ctx context.Context, req *userv1.VerifyPasswordRequest) (*userv1.VerifyPasswordResponse, error) {
	u, err := s.svc.VerifyPassword(ctx, req.GetUserId(), req.GetPassword())
	if err != nil {
		return nil, err
	}
	return &userv1.VerifyPasswordResponse{User: toProto(u)}, nil
}

// UpdateProfile implements userv1.UserServiceServer.
func (s *UserServer) UpdateProfile(ctx context.Context, req *userv1.UpdateProfileRequest) (*userv1.UpdateProfileResponse, error) {
	u, err := s.svc.UpdateProfile(ctx, req.GetUserId(), user.ProfileChange{Username: req.Username, Bio: req.Bio})
	if err != nil {
		return nil, err
	}
	return &userv1.UpdateProfileResponse{User: toProto(u)}, nil
}

// AdminServer implements userv1.UserAdminServiceServer.
type AdminServer struct {
	userv1.UnimplementedUserAdminServiceServer
	svc *user.Service
	rec audit.Recorder
}

// record notes an admin operation on userID. The client IP is the admin
// caller's: the admin listener is dialed directly.
func (s *AdminServer) record(ctx context.Context, event, userID string, err error) {
	outcome, detail := audit.Result(err)
	s.rec.Record(ctx, audit.Event{Event: event, Outcome: outcome, UserID: userID, ClientIP: audit.PeerIP(ctx), Detail: detail})
}

// CreateUser implements userv1.UserAdminServiceServer.
func (s *AdminServer) CreateUser(ctx context.Context, req *userv1.CreateUserRequest) (*userv1.CreateUserResponse, error) {
	u, err := s.svc.CreateUser(ctx, user.NewUser{
		UserID:   req.GetUserId(),
		Username: req.GetUsername(),
		Email:    req.GetEmail(),
		Password: req.GetPassword(),
	})
	s.record(ctx, audit.UserCreated, req.GetUserId(), err)
	if err != nil {
		return nil, err
	}
	return &userv1.CreateUserResponse{User: toProto(u)}, nil
}

// SetUserDisabled implements userv1.UserAdminServiceServer.
func (s *AdminServer) SetUserDisabled(ctx context.Context, req *userv1.SetUserDisabledRequest) (*userv1.SetUserDisabledResponse, error) {
	u, err := s.svc.SetDisabled(ctx, req.GetUserId(), req.GetDisabled())
	event := audit.UserEnabled
	if req.GetDisabled() {
		event = audit.UserDisabled
	}
	s.record(ctx, event, req.GetUserId(), err)
	if err != nil {
		return nil, err
	}
	return &userv1.SetUserDisabledResponse{User: toProto(u)}, nil
}

func toProto(u user.User) *userv1.User {
	return &userv1.User{
		Id:        u.ID,
		UserId:    u.UserID,
		Username:  u.Username,
		Email:     u.Email,
		Bio:       u.Bio,
		AvatarUrl: u.AvatarURL,
		Disabled:  u.Disabled,
		CreatedAt: timestamppb.New(u.CreatedAt),
		UpdatedAt: timestamppb.New(u.UpdatedAt),
	}
}
