package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// The OpenID Connect back channel's records (oauth/oidcgrant.go):
//
//	<prefix>oidc:code:{<h>}            OIDCCodeRecord (written by the front channel)
//	<prefix>oidc:code:{<h>}:used       {c: client_id, g: grant}, the code's remaining lifetime
//	<prefix>oidc:grant:{<gid>}         hash: "t:<token hash>" and "f:<family id>" members,
//	                                   "revoked" once a code replay ended it
//	<prefix>oidc:family:{<fid>}        hash: "rec" FamilyRecord JSON, "cur" hash of the
//	                                   current refresh token, "r:<hash>" rotated-out tokens,
//	                                   "t:<hash>" access tokens it minted; deleted when revoked
//	<prefix>oidc:userfam:{<user_id>}   set of the user's family ids
//	<prefix>oidc:device:{<h>}          DeviceRecord; ":t" its tombstone (expired vs unknown)
//	<prefix>oidc:usercode:{<h>}        hash(device code)
//	<prefix>oidc:consent:{<users.id>}  hash: client_id -> ConsentRecord
//
// A record and its markers share a hash tag (one slot on Redis Cluster);
// records of different slots are never touched by one script: the order
// of the steps between them (oauth/oidcgrant.go) is what keeps them
// consistent.

var _ oauth.GrantStore = (*Store)(nil)

func (s *Store) oidcCodeKey(h string) string   { return s.prefix + "oidc:code:{" + h + "}" }
func (s *Store) oidcMarkerKey(h string) string { return s.prefix + "oidc:code:{" + h + "}:used" }
func (s *Store) grantKey(g string) string      { return s.prefix + "oidc:grant:{" + g + "}" }
func (s *Store) familyKey(f string) string     { return s.prefix + "oidc:family:{" + f + "}" }
func (s *Store) userFamKey(u string) string    { return s.prefix + "oidc:userfam:{" + u + "}" }
func (s *Store) deviceKey(h string) string     { return s.prefix + "oidc:device:{" + h + "}" }
func (s *Store) tombKey(h string) string       { return s.prefix + "oidc:device:{" + h + "}:t" }
func (s *Store) userCodeKey(h string) string   { return s.prefix + "oidc:usercode:{" + h + "}" }
func (s *Store) consentKey(user int32) string {
	return s.prefix + "oidc:consent:{" + strconv.FormatInt(int64(user), 10) + "}"
}

// OIDCCode implements oauth.GrantStore.
func (s *Store) OIDCCode(ctx context.Context, codeHash string) (oauth.OIDCCodeRecord, bool, error) {
	var rec oauth.OIDCCodeRecord
	found, err := s.get(ctx, s.oidcCodeKey(codeHash), &rec)
	return rec, found, err
}

// redeemOIDCCode is the one atomic step of a code exchange. KEYS: code,
// marker. ARGV: client id. Like redeemCode: the record goes, the marker
// naming the client and grant takes the code's remaining lifetime (at
// least a second); another client's attempt leaves the record alone.
var redeemOIDCCode = once(`
local v = redis.call('GET', KEYS[1])
if v then
  local rec = cjson.decode(v)
  if rec.c ~= ARGV[1] then return {'mismatch', ''} end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 1000 then ttl = 1000 end
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], cjson.encode({c = ARGV[1], g = rec.g, pc = rec.pc}), 'PX', ttl)
  return {'ok', v}
end
local used = redis.call('GET', KEYS[2])
if used then return {'used', used} end
return {'missing', ''}
`)

// RedeemOIDCCode implements oauth.GrantStore.
func (s *Store) RedeemOIDCCode(ctx context.Context, codeHash, clientID string) (oauth.CodeRedemption, error) {
	key := s.oidcCodeKey(codeHash)
	res, err := s.consume(ctx, "redeem oidc code", redeemOIDCCode, key, []string{key, s.oidcMarkerKey(codeHash)}, clientID).StringSlice()
	if err != nil {
		return oauth.CodeRedemption{}, err
	}
	if len(res) != 2 {
		return oauth.CodeRedemption{}, apierr.Wrap(apierr.Internal, fmt.Errorf("redeem oidc code: unexpected reply of %d elements", len(res)))
	}
	switch res[0] {
	case "ok":
		return oauth.CodeRedemption{Outcome: oauth.Redeemed}, nil
	case "mismatch":
		return oauth.CodeRedemption{Outcome: oauth.Mismatch}, nil
	case "used":
		var m struct {
			C  string `json:"c"`
			G  string `json:"g"`
			PC string `json:"pc"`
		}
		if err := decode([]byte(res[1]), &m); err != nil {
			return oauth.CodeRedemption{}, err
		}
		return oauth.CodeRedemption{Outcome: oauth.Replayed, ClientID: m.C, Grant: m.G, Challenge: m.PC}, nil
	default:
		return oauth.CodeRedemption{Outcome: oauth.Missing}, nil
	}
}

// addGrantMember adds a member to a grant unless the grant was revoked.
// KEYS: grant. ARGV: member, ttl ms. The grant lives as long as its
// longest member (GT only extends it).
var addGrantMember = once(`
if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2], 'NX')
redis.call('PEXPIRE', KEYS[1], ARGV[2], 'GT')
return 1
`)

// AddGrantMember implements oauth.GrantStore.
func (s *Store) AddGrantMember(ctx context.Context, grant, member string, ttl time.Duration) (bool, error) {
	key := s.grantKey(grant)
	n, err := s.consume(ctx, "add grant member", addGrantMember, key, []string{key}, member, ttl.Milliseconds()).Int()
	return n == 1, err
}

// revokeGrant marks a grant revoked (so that no member joins it any more)
// and returns its members. KEYS: grant. ARGV: ttl ms of the mark.
var revokeGrant = once(`
local all = redis.call('HKEYS', KEYS[1])
local out = {}
for _, f in ipairs(all) do
  if f ~= 'revoked' then
    table.insert(out, f)
    redis.call('HDEL', KEYS[1], f)
  end
end
redis.call('HSET', KEYS[1], 'revoked', '1')
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return out
`)

// RevokeGrant implements oauth.GrantStore.
func (s *Store) RevokeGrant(ctx context.Context, grant string, ttl time.Duration) ([]string, error) {
	key := s.grantKey(grant)
	return s.consume(ctx, "revoke grant", revokeGrant, key, []string{key}, ttl.Milliseconds()).StringSlice()
}

// PutFamily implements oauth.GrantStore. The family and its user index
// entry are written in one pipeline (two slots); an error means the
// refresh token is never handed out.
func (s *Store) PutFamily(ctx context.Context, family string, rec oauth.FamilyRecord, refreshHash, accessHash string, ttl time.Duration) error {
	b, err := encode(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	key, index := s.familyKey(family), s.userFamKey(rec.UserID)
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "rec", b, "cur", refreshHash, "t:"+accessHash, "1")
		p.PExpire(ctx, key, ttl)
		p.SAdd(ctx, index, family)
		ms := ttl.Milliseconds()
		p.Do(ctx, "PEXPIRE", index, ms, "NX")
		p.Do(ctx, "PEXPIRE", index, ms, "GT")
		return nil
	})
	if err != nil {
		return unavailable("put family", err)
	}
	return nil
}

// Family implements oauth.GrantStore.
func (s *Store) Family(ctx context.Context, family string) (oauth.Family, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	var vals *redis.SliceCmd
	var ttl *redis.DurationCmd
	key := s.familyKey(family)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		vals = p.HMGet(ctx, key, "rec", "cur", "iat")
		ttl = p.PTTL(ctx, key)
		return nil
	})
	if err != nil {
		return oauth.Family{}, false, unavailable("get family", err)
	}
	v := vals.Val()
	rec, _ := v[0].(string)
	cur, _ := v[1].(string)
	if rec == "" || cur == "" || ttl.Val() <= 0 {
		return oauth.Family{}, false, nil
	}
	var f oauth.Family
	if err := decode([]byte(rec), &f.Record); err != nil {
		return oauth.Family{}, false, err
	}
	f.Current, f.TTL = cur, ttl.Val()
	f.IssuedAt = f.Record.IssuedAt
	if iat, ok := v[2].(string); ok {
		f.IssuedAt, _ = strconv.ParseInt(iat, 10, 64)
	}
	return f, true, nil
}

// rotateRefresh is the one atomic step of a refresh. KEYS: family. ARGV:
// presented hash, client id, new refresh hash, new access hash, ttl ms,
// rotation time (unix s). The presented token current: it is rotated out
// and the new pair joins the family, whose lifetime starts again. Rotated
// out already: the family is ended (deleted) and its user and access
// tokens returned, which RotateRefresh deletes. Another client's attempt touches nothing.
var rotateRefresh = once(`
local rec = redis.call('HGET', KEYS[1], 'rec')
if not rec then return {'missing'} end
if cjson.decode(rec).c ~= ARGV[2] then return {'mismatch'} end
local cur = redis.call('HGET', KEYS[1], 'cur')
if cur == ARGV[1] then
  redis.call('HSET', KEYS[1], 'cur', ARGV[3], 'r:' .. ARGV[1], '1', 't:' .. ARGV[4], '1', 'iat', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {'ok'}
end
if redis.call('HEXISTS', KEYS[1], 'r:' .. ARGV[1]) == 0 then return {'missing'} end
local out = {'reuse', cjson.decode(rec).uid}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 't:' then table.insert(out, string.sub(f, 3)) end
end
redis.call('DEL', KEYS[1])
return out
`)

// RotateRefresh implements oauth.GrantStore.
func (s *Store) RotateRefresh(ctx context.Context, family, presentedHash, clientID, newRefreshHash, newAccessHash string, ttl time.Duration) (oauth.Rotation, error) {
	key := s.familyKey(family)
	res, err := s.consume(ctx, "rotate refresh", rotateRefresh, key, []string{key},
		presentedHash, clientID, newRefreshHash, newAccessHash, ttl.Milliseconds(), s.now().Unix()).StringSlice()
	if err != nil {
		return oauth.Rotation{}, err
	}
	if len(res) == 0 {
		return oauth.Rotation{}, apierr.Wrap(apierr.Internal, errors.New("rotate refresh: empty reply"))
	}
	switch res[0] {
	case "ok":
		return oauth.Rotation{Outcome: oauth.Rotated}, nil
	case "mismatch":
		return oauth.Rotation{Outcome: oauth.RotationMismatch}, nil
	case "reuse":
		if len(res) < 2 {
			return oauth.Rotation{}, apierr.Wrap(apierr.Internal, errors.New("rotate refresh: short reuse reply"))
		}
		return oauth.Rotation{Outcome: oauth.Reused}, s.deleteTokens(ctx, res[1], family, res[2:])
	default:
		return oauth.Rotation{Outcome: oauth.RotationMissing}, nil
	}
}

// revokeFamily ends a family. KEYS: family. ARGV: presented hash and
// client id, both "" for an unconditional end (the operator, a code
// replay); else the token must be one of the family's (current or rotated
// out) and the family the client's. Returns {ended 0/1, user_id, access
// token hashes...}.
var revokeFamily = once(`
local rec = redis.call('HGET', KEYS[1], 'rec')
if not rec then return {'0', ''} end
local r = cjson.decode(rec)
if ARGV[1] ~= '' then
  if r.c ~= ARGV[2] then return {'0', ''} end
  if redis.call('HGET', KEYS[1], 'cur') ~= ARGV[1] and redis.call('HEXISTS', KEYS[1], 'r:' .. ARGV[1]) == 0 then return {'0', ''} end
end
local out = {'1', r.uid}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 't:' then table.insert(out, string.sub(f, 3)) end
end
redis.call('DEL', KEYS[1])
return out
`)

// RevokeFamily implements oauth.GrantStore. The family's access tokens
// are deleted too, and the family leaves its user's index.
func (s *Store) RevokeFamily(ctx context.Context, family, presentedHash, clientID string) (bool, error) {
	key := s.familyKey(family)
	res, err := s.consume(ctx, "revoke family", revokeFamily, key, []string{key}, presentedHash, clientID).StringSlice()
	if err != nil {
		return false, err
	}
	if len(res) < 2 || res[0] != "1" {
		return false, nil
	}
	return true, s.deleteTokens(ctx, res[1], family, res[2:])
}

// deleteTokens deletes an ended family's access tokens and its user index
// entry (DEL is safe to send twice).
func (s *Store) deleteTokens(ctx context.Context, userID, family string, hashes []string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, h := range hashes {
			p.Del(ctx, s.tokenKey(h))
			if userID != "" {
				p.SRem(ctx, s.userTokensKey(userID), h)
			}
		}
		if userID != "" && family != "" {
			p.SRem(ctx, s.userFamKey(userID), family)
		}
		return nil
	})
	if err != nil {
		return unavailable("delete family tokens", err)
	}
	return nil
}

// UserFamilies implements oauth.GrantStore.
func (s *Store) UserFamilies(ctx context.Context, userID string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	fams, err := s.rdb.SMembers(ctx, s.userFamKey(userID)).Result()
	if err != nil {
		return nil, unavailable("list user families", err)
	}
	return fams, nil
}

// UserTokens implements oauth.GrantStore.
func (s *Store) UserTokens(ctx context.Context, userID string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	hashes, err := s.rdb.SMembers(ctx, s.userTokensKey(userID)).Result()
	if err != nil {
		return nil, unavailable("list user tokens", err)
	}
	return hashes, nil
}

// PutDevice implements oauth.GrantStore. The user code is claimed first
// (SET NX): a clash stores nothing. The tombstone outlives the record by
// a day, so that a poll after the end says expired_token, not
// invalid_grant.
func (s *Store) PutDevice(ctx context.Context, deviceHash, userCodeHash string, rec oauth.DeviceRecord, ttl time.Duration) (bool, error) {
	b, err := encode(rec)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	ok, err := s.rdb.SetNX(ctx, s.userCodeKey(userCodeHash), deviceHash, ttl).Result()
	if err != nil {
		return false, unavailable("claim user code", err)
	}
	if !ok {
		return false, nil
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.deviceKey(deviceHash), b, ttl)
		p.Set(ctx, s.tombKey(deviceHash), "1", ttl+24*time.Hour)
		return nil
	})
	if err != nil {
		return false, unavailable("put device", err)
	}
	return true, nil
}

// pollDevice is a device's poll, atomically. KEYS: device, tombstone.
// ARGV: client id, now (unix ms). cjson turns an empty array into an
// object, so an empty scope list is dropped before re-encoding (Go reads
// it back as none).
var pollDevice = once(`
local v = redis.call('GET', KEYS[1])
if not v then
  if redis.call('EXISTS', KEYS[2]) == 1 then return {'expired', ''} end
  return {'missing', ''}
end
local rec = cjson.decode(v)
if rec.c ~= ARGV[1] then return {'mismatch', ''} end
local now = tonumber(ARGV[2])
if rec.exp and rec.exp * 1000 <= now then
  redis.call('DEL', KEYS[1])
  return {'expired', ''}
end
if type(rec.sc) == 'table' and next(rec.sc) == nil then rec.sc = nil end
local function save() redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL') end
if rec.st == 'redeemed' then return {'redeemed', ''} end
if rec.lp and rec.lp > 0 and now - rec.lp < rec.iv * 1000 then
  rec.iv = rec.iv + 5
  rec.lp = now
  save()
  return {'slow_down', tostring(rec.iv)}
end
rec.lp = now
if rec.st == 'denied' then
  redis.call('DEL', KEYS[1])
  return {'denied', ''}
end
if rec.st == 'approved' then
  rec.st = 'redeemed'
  save()
  return {'ok', v}
end
save()
return {'pending', ''}
`)

// PollDevice implements oauth.GrantStore.
func (s *Store) PollDevice(ctx context.Context, deviceHash, clientID string, now time.Time) (oauth.DevicePoll, error) {
	key := s.deviceKey(deviceHash)
	res, err := s.consume(ctx, "poll device", pollDevice, key, []string{key, s.tombKey(deviceHash)}, clientID, now.UnixMilli()).StringSlice()
	if err != nil {
		return oauth.DevicePoll{}, err
	}
	if len(res) != 2 {
		return oauth.DevicePoll{}, apierr.Wrap(apierr.Internal, fmt.Errorf("poll device: unexpected reply of %d elements", len(res)))
	}
	p := oauth.DevicePoll{Outcome: oauth.PollOutcome(res[0])}
	switch p.Outcome {
	case oauth.PollApproved:
		if err := decode([]byte(res[1]), &p.Record); err != nil {
			return oauth.DevicePoll{}, err
		}
	case oauth.PollSlowDown:
		p.Interval, _ = strconv.Atoi(res[1])
	}
	return p, nil
}

// DeleteConsents implements oauth.GrantStore: one client's consent, or
// every one ("" client).
func (s *Store) DeleteConsents(ctx context.Context, user int32, clientID string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	key := s.consentKey(user)
	if clientID != "" {
		n, err := s.rdb.HDel(ctx, key, clientID).Result()
		if err != nil {
			return nil, unavailable("delete consent", err)
		}
		if n == 0 {
			return nil, nil
		}
		return []string{clientID}, nil
	}
	var clients *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		clients = p.HKeys(ctx, key)
		p.Del(ctx, key)
		return nil
	})
	if err != nil {
		return nil, unavailable("delete consents", err)
	}
	return clients.Val(), nil
}
