package server

import (
	"context"

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

const (
	msgLoginCode = "生成登录码成功"
	msgDenied    = "已拒绝授权"
)

// Confirmation implements authv1.ConfirmationServiceServer. It takes no API
// key: the UCA, the session metadata and the CSRF token protect it. A key
// sent with GenerateLoginCode is validated by KeyInterceptor and must be the
// UCA's own.
type Confirmation struct {
	authv1.UnimplementedConfirmationServiceServer
	flows *oauth.Service
}

// GetConfirmation implements ConfirmationService.
func (c *Confirmation) GetConfirmation(ctx context.Context, req *authv1.GetConfirmationRequest) (*authv1.GetConfirmationResponse, error) {
	conf, err := c.flows.GetConfirmation(ctx, incoming(ctx, wire.Session), req.GetUca())
	if err != nil {
		return nil, err
	}
	r := &authv1.GetConfirmationResponse{AppName: conf.App, ExpiresIn: conf.ExpiresIn, CsrfToken: conf.CSRF}
	if conf.User != nil {
		r.User = summary(*conf.User)
	}
	return r, nil
}

// SignIn implements ConfirmationService.
func (c *Confirmation) SignIn(ctx context.Context, req *authv1.SignInRequest) (*authv1.SignInResponse, error) {
	in, err := c.flows.SignIn(ctx, req.GetUca(), req.GetUserId(), req.GetPassword())
	if err != nil {
		return nil, err
	}
	return &authv1.SignInResponse{Session: in.Session, CsrfToken: in.CSRF, ExpiresIn: in.ExpiresIn, User: summary(in.User)}, nil
}

// GenerateLoginCode implements ConfirmationService.
func (c *Confirmation) GenerateLoginCode(ctx context.Context, req *authv1.GenerateLoginCodeRequest) (*authv1.GenerateLoginCodeResponse, error) {
	var keyID int64 // no key sent: the page's own call
	if k, ok := KeyFromContext(ctx); ok {
		keyID = k.GetId()
	}
	code, expiresIn, err := c.flows.GenerateLoginCode(ctx, keyID, incoming(ctx, wire.Session), incoming(ctx, wire.CSRF), req.GetUca())
	if err != nil {
		return nil, err
	}
	return &authv1.GenerateLoginCodeResponse{Success: true, Message: msgLoginCode, LoginCode: code, ExpiresIn: expiresIn}, nil
}

// DenyConfirmation implements ConfirmationService.
func (c *Confirmation) DenyConfirmation(ctx context.Context, req *authv1.DenyConfirmationRequest) (*authv1.DenyConfirmationResponse, error) {
	if err := c.flows.DenyConfirmation(ctx, incoming(ctx, wire.Session), incoming(ctx, wire.CSRF), req.GetUca()); err != nil {
		return nil, err
	}
	return &authv1.DenyConfirmationResponse{Success: true, Message: msgDenied}, nil
}
