package main

import (
	"context"
	"fmt"
	"math"

	"github.com/moreline/moreid/bench/internal/load"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
)

// What each scenario is compared with.
const (
	vsRedis    = "redis"    // the net/http + Redis SET baseline
	vsPostgres = "postgres" // the net/http + Postgres lookup baseline
	vsArgon2   = "argon2"   // cores ÷ seconds per argon2id hash
)

// scenario is one measured endpoint or flow.
type scenario struct {
	id   string // for -run
	name string
	via  string
	// baseline is what the scenario is compared with; a baseline itself
	// sets provides instead.
	baseline string
	provides string
	op       load.Op
	// ensure, when set, prepares at least n single-use inputs (states,
	// codes) for op; closedNeed is how many the closed phase needs.
	ensure     func(ctx context.Context, n int) error
	closedNeed int
	// noHalf skips the open-loop phase (the storm).
	noHalf bool
}

// codeState is an authorization code and the state it was issued for.
type codeState struct{ code, state string }

type stateAnswer struct {
	State string `json:"state"`
}

type codeAnswer struct {
	Code string `json:"code"`
}

func (b *bench) scenarios() []scenario {
	loginNeed := int(math.Ceil(b.argonBound*b.cfg.duration.Seconds()*1.5)) + b.cfg.workers
	userInfo := mustJSON(map[string]string{"user_id": b.userID})
	loginBody := func(state string) []byte {
		return mustJSON(map[string]string{"user_id": b.userID, "password": b.password, "state": state})
	}
	restLogin := func(ctx context.Context) error {
		st, ok := b.states.take()
		if !ok {
			return load.ErrExhausted
		}
		return b.rest.call(ctx, "POST", "/api/oauth/login", loginBody(st), "", nil)
	}
	return []scenario{
		{id: "baseline-redis", name: "baseline: net/http + Redis SET with TTL", via: "HTTP", provides: vsRedis,
			op: func(ctx context.Context) error { return b.redisBase.call(ctx, "GET", "/authorize", nil, "", nil) }},
		{id: "baseline-postgres", name: "baseline: net/http + Postgres lookup by PK", via: "HTTP", provides: vsPostgres,
			op: func(ctx context.Context) error {
				return b.pgBase.call(ctx, "POST", "/user/info", userInfo, "", nil)
			}},
		{id: "authorize-http", name: "authorize", via: "HTTP", baseline: vsRedis,
			op: func(ctx context.Context) error { return b.rest.call(ctx, "GET", "/api/oauth/authorize", nil, "", nil) }},
		{id: "authorize-grpc", name: "AuthService.Authorize", via: "gRPC", baseline: vsRedis,
			op: func(ctx context.Context) error {
				_, err := b.rpc.auth.Authorize(b.rpc.withKey(ctx), &authv1.AuthorizeRequest{})
				return err
			}},
		{id: "userinfo-http", name: "userinfo (Bearer)", via: "HTTP", baseline: vsRedis,
			op: func(ctx context.Context) error {
				return b.rest.call(ctx, "GET", "/api/oauth/userinfo", nil, b.token, nil)
			}},
		{id: "userinfo-grpc", name: "TokenService.GetUserinfo (Bearer)", via: "gRPC", baseline: vsRedis,
			op: func(ctx context.Context) error {
				_, err := b.rpc.tokens.GetUserinfo(b.rpc.withBearer(ctx, b.token), &authv1.GetUserinfoRequest{})
				return err
			}},
		{id: "token-http", name: "token exchange", via: "HTTP", baseline: vsRedis,
			ensure: b.ensureCodes, closedNeed: b.cfg.codes,
			op: func(ctx context.Context) error {
				c, ok := b.codes.take()
				if !ok {
					return load.ErrExhausted
				}
				return b.rest.call(ctx, "POST", "/api/oauth/token", mustJSON(map[string]string{"code": c.code, "state": c.state}), "", nil)
			}},
		{id: "token-grpc", name: "AuthService.Token", via: "gRPC", baseline: vsRedis,
			ensure: b.ensureCodes, closedNeed: b.cfg.codes,
			op: func(ctx context.Context) error {
				c, ok := b.codes.take()
				if !ok {
					return load.ErrExhausted
				}
				_, err := b.rpc.auth.Token(b.rpc.withKey(ctx), &authv1.TokenRequest{Code: c.code, State: c.state})
				return err
			}},
		{id: "userinfo-post-http", name: "user/info", via: "HTTP", baseline: vsPostgres,
			op: func(ctx context.Context) error {
				return b.rest.call(ctx, "POST", "/api/oauth/user/info", userInfo, "", nil)
			}},
		{id: "profile-grpc", name: "AuthService.GetPublicProfile", via: "gRPC", baseline: vsPostgres,
			op: func(ctx context.Context) error {
				_, err := b.rpc.auth.GetPublicProfile(b.rpc.withKey(ctx), &authv1.GetPublicProfileRequest{UserId: b.userID})
				return err
			}},
		{id: "login-http", name: "login (password)", via: "HTTP", baseline: vsArgon2,
			ensure: b.ensureStates, closedNeed: loginNeed, op: restLogin},
		{id: "login-grpc", name: "AuthService.Login", via: "gRPC", baseline: vsArgon2,
			ensure: b.ensureStates, closedNeed: loginNeed,
			op: func(ctx context.Context) error {
				st, ok := b.states.take()
				if !ok {
					return load.ErrExhausted
				}
				_, err := b.rpc.auth.Login(b.rpc.withKey(ctx), &authv1.LoginRequest{UserId: b.userID, Password: b.password, State: st})
				return err
			}},
		{id: "flow-http", name: "password flow (authorize → login → token)", via: "HTTP", baseline: vsArgon2,
			op: func(ctx context.Context) error {
				var st stateAnswer
				if err := b.rest.call(ctx, "GET", "/api/oauth/authorize", nil, "", &st); err != nil {
					return err
				}
				var c codeAnswer
				if err := b.rest.call(ctx, "POST", "/api/oauth/login", loginBody(st.State), "", &c); err != nil {
					return err
				}
				return b.rest.call(ctx, "POST", "/api/oauth/token", mustJSON(map[string]string{"code": c.Code, "state": st.State}), "", nil)
			}},
		{id: "storm", name: fmt.Sprintf("login storm (%d clients)", b.cfg.stormClients), via: "HTTP", baseline: vsArgon2,
			ensure:     b.ensureStates,
			closedNeed: int(math.Ceil(b.argonBound*b.cfg.stormDuration.Seconds()*1.5)) + b.cfg.stormClients,
			noHalf:     true, op: restLogin},
	}
}

// ensureStates prepares fresh states (over gRPC: preparing is not what is
// measured, and gRPC is the cheaper way).
func (b *bench) ensureStates(ctx context.Context, n int) error {
	return fill(ctx, &b.states, n-b.states.len(), 8, func(ctx context.Context) (string, error) {
		r, err := b.rpc.auth.Authorize(b.rpc.withKey(ctx), &authv1.AuthorizeRequest{})
		if err != nil {
			return "", fmt.Errorf("prepare a state: %w", err)
		}
		return r.GetState(), nil
	})
}

// ensureCodes prepares authorization codes through the safe login (states,
// UCA, login code, login_safe), which costs no argon2id hash: the code
// supply for thousands of token exchanges per second cannot come from
// password logins at a few dozen per second.
func (b *bench) ensureCodes(ctx context.Context, n int) error {
	return fill(ctx, &b.codes, n-b.codes.len(), 8, b.newCode)
}

func (b *bench) newCode(ctx context.Context) (codeState, error) {
	a, err := b.rpc.auth.Authorize(b.rpc.withKey(ctx), &authv1.AuthorizeRequest{})
	if err != nil {
		return codeState{}, fmt.Errorf("prepare a code: authorize: %w", err)
	}
	u, err := b.rpc.auth.CreateUCA(b.rpc.withKey(ctx), &authv1.CreateUCARequest{State: a.GetState()})
	if err != nil {
		return codeState{}, fmt.Errorf("prepare a code: ucaoncecode: %w", err)
	}
	lc, err := b.rpc.confirm.GenerateLoginCode(b.withSession(ctx), &authv1.GenerateLoginCodeRequest{Uca: u.GetUcaoncecode()})
	if err != nil {
		return codeState{}, fmt.Errorf("prepare a code: generate_login_code: %w", err)
	}
	ls, err := b.rpc.auth.LoginSafe(b.rpc.withKey(ctx), &authv1.LoginSafeRequest{State: a.GetState(), LoginCode: lc.GetLoginCode()})
	if err != nil {
		return codeState{}, fmt.Errorf("prepare a code: login_safe: %w", err)
	}
	return codeState{code: ls.GetCode(), state: a.GetState()}, nil
}
