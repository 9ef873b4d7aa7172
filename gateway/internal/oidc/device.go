package oidc

import (
	"net/http"
	"net/url"

	"google.golang.org/grpc/metadata"

	"github.com/moreline/moreid/gateway/internal/page"
	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// deviceCookie is the double-submit cookie of the device page's sign-in
// form. The form has no request to bind its token to (the user code is
// typed after signing in), so the token is bound to the page.
const (
	deviceCookie = "moreid_device_csrf"
	deviceBind   = "device"
)

// device is /device, the verification URI (RFC 8628 section 3.3). GET
// shows form#login without a session, else form#device (prefilled from
// ?user_code=, the verification_uri_complete). The POSTs are told apart by
// action: login, code (look the code up, then consent), confirm or deny.
func (e *Edge) device(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		code := r.URL.Query().Get("user_code")
		if !page.Sendable("", code) || len(code) > 16 {
			code = ""
		}
		if c, err := r.Cookie(wire.SessionCookie); err == nil && c.Value != "" {
			e.deviceForm(w, r, http.StatusOK, code, "")
			return
		}
		e.deviceLogin(w, r, http.StatusOK, code, "", "")
		return
	}
	if !e.postForm(w, r) {
		return
	}
	code := r.PostForm.Get("user_code")
	switch r.PostForm.Get("action") {
	case "login":
		e.deviceSignIn(w, r, code)
	case "code":
		e.deviceLookup(w, r, code)
	case "confirm", "deny":
		e.deviceDecide(w, r, code, r.PostForm.Get("action") == "confirm")
	default:
		e.kit.FailKind(w, r, apierr.InvalidRequest)
	}
}

func (e *Edge) deviceForm(w http.ResponseWriter, r *http.Request, status int, code, notice string) {
	e.kit.Render(w, r, status, &page.View{Kind: "device", Title: "连接设备", Post: DevicePath, UserCode: code, Notice: notice})
}

func (e *Edge) deviceLogin(w http.ResponseWriter, r *http.Request, status int, code, notice, userID string) {
	token := e.kit.FormToken(w, r, deviceCookie, DevicePath, deviceBind)
	e.kit.Render(w, r, status, &page.View{Kind: "device_login", Title: "登录", Post: DevicePath,
		UserCode: code, CSRF: token, Notice: notice, UserID: userID})
}

// deviceSessionGone answers a call that found no valid session: the dead
// cookie goes and the sign-in form comes back.
func (e *Edge) deviceSessionGone(w http.ResponseWriter, r *http.Request, code string) {
	e.kit.Note(r, apierr.Unauthenticated)
	e.kit.ClearCookie(w, r, wire.SessionCookie, "/")
	e.deviceLogin(w, r, http.StatusUnauthorized, code, "登录已过期，请重新登录。", "")
}

func (e *Edge) deviceSignIn(w http.ResponseWriter, r *http.Request, code string) {
	if !e.kit.FormTokenValid(r, deviceCookie, deviceBind) {
		e.kit.FailKind(w, r, apierr.CSRFFailed)
		return
	}
	userID := r.PostForm.Get("user_id")
	res, err := e.front.SignIn(metadata.NewOutgoingContext(r.Context(), e.frontMD(r, "")), &authv1.OIDCServiceSignInRequest{
		UserId: userID, Password: r.PostForm.Get("password"),
	})
	if err != nil {
		if d := page.Details(err); fixable(d.Kind) {
			e.kit.Note(r, d.Kind)
			if d.RetryAfter != "" {
				w.Header().Set("Retry-After", d.RetryAfter)
			}
			e.deviceLogin(w, r, d.HTTPStatus, code, d.Message, userID)
			return
		}
		e.kit.Fail(w, r, err)
		return
	}
	e.kit.SetSession(w, r, res.GetSession(), int(res.GetExpiresIn()))
	e.kit.ClearCookie(w, r, deviceCookie, DevicePath)
	to := DevicePath
	if code != "" {
		to += "?user_code=" + url.QueryEscape(code)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (e *Edge) deviceLookup(w http.ResponseWriter, r *http.Request, code string) {
	if code == "" {
		e.deviceForm(w, r, http.StatusBadRequest, code, "请输入设备上显示的代码。")
		return
	}
	res, err := e.front.GetDevice(metadata.NewOutgoingContext(r.Context(), e.frontMD(r, "")), &authv1.GetDeviceRequest{UserCode: code})
	if err != nil {
		switch d := page.Details(err); d.Kind {
		case apierr.Unauthenticated:
			e.deviceSessionGone(w, r, code)
		case apierr.InvalidCode, apierr.InvalidRequest, apierr.NotFound, apierr.InvalidState:
			e.kit.Note(r, d.Kind)
			e.deviceForm(w, r, http.StatusBadRequest, code, "代码无效或已过期，请核对设备上显示的代码。")
		case apierr.RateLimited:
			e.kit.Note(r, d.Kind)
			if d.RetryAfter != "" {
				w.Header().Set("Retry-After", d.RetryAfter)
			}
			e.deviceForm(w, r, d.HTTPStatus, code, d.Message)
		default:
			e.kit.Fail(w, r, err)
		}
		return
	}
	dev := res.GetDevice()
	if dev.GetUser() == nil {
		e.deviceSessionGone(w, r, code)
		return
	}
	left := int32(0)
	if t := dev.GetExpiresAt(); t != nil {
		left = int32(t.AsTime().Sub(e.now()).Seconds())
	}
	shown := dev.GetUserCode()
	if shown == "" {
		shown = code
	}
	e.kit.Render(w, r, http.StatusOK, &page.View{
		Kind: "device_consent", Title: "授权设备", App: dev.GetAppName(), Post: DevicePath, UserCode: shown,
		User: dev.GetUser(), CSRF: dev.GetCsrfToken(), Scopes: scopeTexts(dev.GetScopes()),
		ExpiresIn: left, TimerLabel: "代码剩余有效时间",
	})
}

func (e *Edge) deviceDecide(w http.ResponseWriter, r *http.Request, code string, approve bool) {
	csrf := r.PostForm.Get("csrf_token")
	if code == "" || csrf == "" {
		e.kit.FailKind(w, r, apierr.CSRFFailed)
		return
	}
	_, err := e.front.DecideDevice(metadata.NewOutgoingContext(r.Context(), e.frontMD(r, csrf)),
		&authv1.DecideDeviceRequest{UserCode: code, Approve: approve})
	if err != nil {
		if page.Details(err).Kind == apierr.Unauthenticated {
			e.deviceSessionGone(w, r, code)
			return
		}
		e.kit.Fail(w, r, err)
		return
	}
	v := &page.View{Kind: "device_done", Title: "设备已连接"}
	if !approve {
		v.Title, v.Message = "已拒绝", "你已拒绝该设备的授权请求，设备不会获得访问权限。"
	}
	e.kit.Render(w, r, http.StatusOK, v)
}
