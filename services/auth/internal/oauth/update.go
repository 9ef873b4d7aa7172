package oauth

import (
	"cmp"
	"context"

	"github.com/moreline/moreid/platform/account"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/audit"
	"github.com/moreline/moreid/platform/secret"
)

// Consent is how a user/update call proves the user agrees: the user's web
// session (the cookie field) or an access token of the user issued to the
// calling key. Cookie wins when both are given.
type Consent struct {
	Cookie string
	Bearer string
}

// UpdateUser changes a user's username and/or bio. Order: fields, who the
// caller speaks for, that it is this user, then the state, consumed
// atomically before the update so that one state yields at most one update
// even under concurrency. The profile is checked here by the rules the user
// service applies (platform/account), so that a change it would refuse
// (say, a username too long) does not cost the state; only an outage
// after the state is consumed gives it back (below).
func (s *Service) UpdateUser(ctx context.Context, key Key, userID, state string, consent Consent, c ProfileChange) (updated User, err error) {
	if err := cmp.Or(account.CheckUserID(userID), required(field{"state", state, maxState})); err != nil {
		return User{}, err
	}
	defer func() { s.recordResult(ctx, audit.ProfileUpdated, key.ID, userID, err, "") }()
	if err := account.CheckProfileChange(c.Username, c.Bio); err != nil {
		return User{}, err
	}
	if len(consent.Cookie) > maxCookie {
		return User{}, apierr.Newf(apierr.InvalidRequest, "参数过长: cookie（最多%d个字符）", maxCookie)
	}

	user, err := s.consentingUser(ctx, key, consent)
	if err != nil {
		return User{}, err
	}
	if user.UserID != userID {
		return User{}, apierr.New(apierr.Forbidden)
	}

	stateHash := secret.Hash(state)
	st, err := s.ownState(ctx, key, stateHash)
	if err != nil {
		return User{}, err
	}
	consumed, err := s.store.ConsumeState(ctx, stateHash, key.ID)
	if err != nil {
		return User{}, err
	}
	if !consumed {
		return User{}, apierr.New(apierr.InvalidState)
	}
	updated, err = s.users.UpdateProfile(ctx, userID, c)
	if apierr.Is(err, apierr.Unavailable) {
		// The user service could not reach Postgres: no update happened
		// (or, after a lost reply, the user's own change did), so the
		// state goes back for the app's retry, with the lifetime it had.
		if perr := s.store.PutState(context.WithoutCancel(ctx), stateHash, key.ID, st.TTL); perr != nil {
			s.log.WarnContext(ctx, "restore state after a failed update", "state", short(stateHash), "error", perr.Error())
		}
	}
	return updated, err
}

// consentingUser is the user the consent speaks for.
func (s *Service) consentingUser(ctx context.Context, key Key, consent Consent) (User, error) {
	switch {
	case consent.Cookie != "":
		session := SessionFromCookie(consent.Cookie)
		if session == "" {
			return User{}, apierr.New(apierr.Unauthenticated)
		}
		user, err := s.sessionUser(ctx, session)
		if err != nil {
			return User{}, err
		}
		if user.Disabled {
			return User{}, apierr.New(apierr.AccountDisabled)
		}
		return user, nil
	case consent.Bearer != "":
		t, err := s.keyToken(ctx, key, consent.Bearer)
		if err != nil {
			return User{}, err
		}
		// The profile is what an OpenID Connect token must hold the
		// profile scope to touch: consent to sign in is not consent to
		// change one's name.
		if profile, _ := claimsAllowed(t.Record); !profile {
			return User{}, apierr.Newf(apierr.Forbidden, "该访问令牌未获授权修改资料（缺少 profile 权限）")
		}
		return t.User, nil
	default:
		return User{}, apierr.Newf(apierr.Unauthenticated, "缺少用户凭证（cookie 或 Authorization: Bearer）")
	}
}
