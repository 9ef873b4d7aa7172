package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// The OpenID Connect front channel's records (oauth/oidc.go and
// oauth/oidcfront.go list them). Each key carries its own hash tag, so
// that a record and its once-markers share a slot on Redis Cluster; the
// scripts here each touch one record.
func (s *Store) frontAuthReqKey(id string) string { return s.prefix + "oidc:authreq:{" + id + "}" }
func (s *Store) frontCodeKey(h string) string     { return s.prefix + "oidc:code:{" + h + "}" }
func (s *Store) frontDeviceKey(h string) string   { return s.prefix + "oidc:device:{" + h + "}" }
func (s *Store) frontUserCodeKey(h string) string { return s.prefix + "oidc:usercode:{" + h + "}" }
func (s *Store) frontConsentKey(user int32) string {
	return s.prefix + "oidc:consent:{" + strconv.FormatInt(int64(user), 10) + "}"
}

func (s *Store) frontLiveAuthReqsKey(keyID, bucket int64) string {
	return s.prefix + "oidc:authreqs:" + strconv.FormatInt(keyID, 10) + ":" + strconv.FormatInt(bucket, 10)
}

// PutAuthRequest implements oauth.Store.
func (s *Store) PutAuthRequest(ctx context.Context, id string, rec oauth.AuthRequestRecord, ttl time.Duration) error {
	return s.put(ctx, s.frontAuthReqKey(id), rec, ttl)
}

// AuthRequest implements oauth.Store.
func (s *Store) AuthRequest(ctx context.Context, id string) (oauth.AuthRequestRecord, bool, error) {
	var rec oauth.AuthRequestRecord
	ttl, found, err := s.getWithTTL(ctx, s.frontAuthReqKey(id), &rec)
	rec.TTL = ttl
	return rec, found, err
}

// PutCountedAuthRequest implements oauth.Store: PutCountedState's
// counting (the requests issued for the key in this window and the one
// before bound its live ones from above) for authorization requests, in
// their own counters.
func (s *Store) PutCountedAuthRequest(ctx context.Context, id string, rec oauth.AuthRequestRecord, ttl time.Duration, max int) (time.Duration, error) {
	b, err := encode(rec)
	if err != nil {
		return 0, err
	}
	now := s.now()
	bucket := now.UnixMilli() / ttl.Milliseconds()
	cur, prev := s.frontLiveAuthReqsKey(rec.KeyID, bucket), s.frontLiveAuthReqsKey(rec.KeyID, bucket-1)
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	var n *redis.IntCmd
	var before *redis.StringCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.frontAuthReqKey(id), b, ttl)
		n = p.Incr(ctx, cur)
		p.PExpire(ctx, cur, 2*ttl)
		before = p.Get(ctx, prev)
		return nil
	})
	// GET of a window that counted nothing answers nil: no failure.
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, unavailable("put auth request", err)
	}
	earlier, _ := before.Int64()
	if n.Val()+earlier <= int64(max) {
		return 0, nil
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.frontAuthReqKey(id))
		p.Decr(ctx, cur)
		return nil
	})
	if err != nil {
		return 0, unavailable("refuse auth request", err)
	}
	return time.UnixMilli((bucket + 1) * ttl.Milliseconds()).Sub(now), nil
}

// takeAuthRequest reads and deletes an authorization request. KEYS: the
// request. Absent: "".
var takeAuthRequest = once(`
local v = redis.call('GETDEL', KEYS[1])
if not v then return '' end
return v
`)

// FinishAuthRequest implements oauth.Store. The code record and the
// request are in different slots (their hash tags are the code's hash and
// the request id), so no one script can hold both on Redis Cluster.
// Instead the code is written first, under a hash nobody knows yet, and
// the request is taken by a retry-safe single-slot script: the one caller
// that takes it keeps its code, every other caller deletes its own. The
// take alone decides, so of any number of concurrent finishers exactly
// one gets a code; a code that another caller's delete could not remove
// is an orphan nobody was told (it expires with OIDCCodeTTL).
func (s *Store) FinishAuthRequest(ctx context.Context, id, codeHash string, code *oauth.OIDCCodeRecord, ttl time.Duration) (oauth.AuthRequestRecord, bool, error) {
	var rec oauth.AuthRequestRecord
	if code != nil {
		if err := s.put(ctx, s.frontCodeKey(codeHash), code, ttl); err != nil {
			return rec, false, err
		}
	}
	key := s.frontAuthReqKey(id)
	v, err := s.consume(ctx, "take auth request", takeAuthRequest, key, []string{key}).Text()
	if err == nil && v != "" {
		err = decode([]byte(v), &rec)
		if err == nil {
			return rec, true, nil
		}
	}
	if code != nil {
		// Not taken (or not known to be): the code must not outlive the
		// answer that hands it to nobody. A failure here leaves an orphan
		// nobody knows, which is harmless.
		_ = s.del(context.WithoutCancel(ctx), "delete unissued oidc code", s.frontCodeKey(codeHash))
	}
	return oauth.AuthRequestRecord{}, false, err
}

// grantConsent merges scopes into a user's consent for a client. KEYS: the
// user's consent hash. ARGV: client_id, time, scopes... Sending it twice
// is harmless (a union), so it needs no once-marker.
var grantConsent = redis.NewScript(`
local sc, seen = {}, {}
local function add(s)
  if not seen[s] then
    seen[s] = true
    sc[#sc + 1] = s
  end
end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local rec = cjson.decode(v)
  if type(rec.sc) == 'table' then
    for _, s in ipairs(rec.sc) do add(s) end
  end
end
for i = 3, #ARGV do add(ARGV[i]) end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({sc = sc, t = tonumber(ARGV[2])}))
return 1
`)

// GrantConsent implements oauth.Store.
func (s *Store) GrantConsent(ctx context.Context, user int32, clientID string, scopes []string, at int64) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	args := []any{clientID, at}
	for _, sc := range scopes {
		args = append(args, sc)
	}
	if err := grantConsent.Run(ctx, s.rdb, []string{s.frontConsentKey(user)}, args...).Err(); err != nil {
		return unavailable("grant consent", err)
	}
	return nil
}

// RememberedConsent implements oauth.Store.
func (s *Store) RememberedConsent(ctx context.Context, user int32, clientID string) (oauth.ConsentRecord, bool, error) {
	var rec oauth.ConsentRecord
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	b, err := s.rdb.HGet(ctx, s.frontConsentKey(user), clientID).Bytes()
	if errors.Is(err, redis.Nil) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, unavailable("get consent", err)
	}
	if err := decode(b, &rec); err != nil {
		return rec, false, err
	}
	return rec, true, nil
}

// LookupDevice implements oauth.Store: the user-code index names the
// device code's hash, whose record is then read (two slots, two reads; the
// index and the record are written together and end together).
func (s *Store) LookupDevice(ctx context.Context, userCodeHash string) (string, oauth.DeviceRecord, bool, error) {
	var rec oauth.DeviceRecord
	deviceHash, found, err := s.getString(ctx, s.frontUserCodeKey(userCodeHash))
	if err != nil || !found {
		return "", rec, false, err
	}
	found, err = s.get(ctx, s.frontDeviceKey(deviceHash), &rec)
	if err != nil || !found {
		return "", rec, false, err
	}
	return deviceHash, rec, true, nil
}

// getString reads a plain string value.
func (s *Store) getString(ctx context.Context, key string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	v, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("get record", err)
	}
	return v, true, nil
}

// decideDevice is the person's decision on a device authorization, in one
// step on its record. KEYS: the device record. ARGV: "1" to approve, user,
// user_id, auth time. Only a pending record changes; its lifetime is kept.
// The record is re-encoded by cjson, which writes an empty array as {}:
// that one case is written back as [] so that the Go side still reads a
// list. Fields this script does not know (appended later) survive.
var decideDevice = once(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local rec = cjson.decode(v)
if rec.st ~= 'pending' then return 0 end
if ARGV[1] == '1' then
  rec.st = 'approved'
  rec.u = tonumber(ARGV[2])
  rec.uid = ARGV[3]
  rec.at = tonumber(ARGV[4])
else
  rec.st = 'denied'
end
local out = cjson.encode(rec)
if type(rec.sc) == 'table' and next(rec.sc) == nil then
  out = (string.gsub(out, '"sc":{}', '"sc":[]'))
end
redis.call('SET', KEYS[1], out, 'KEEPTTL')
return 1
`)

// DecideDevice implements oauth.Store.
func (s *Store) DecideDevice(ctx context.Context, deviceHash string, d oauth.DeviceDecision) (bool, error) {
	key := s.frontDeviceKey(deviceHash)
	approve := "0"
	if d.Approve {
		approve = "1"
	}
	n, err := s.consume(ctx, "decide device", decideDevice, key, []string{key}, approve, d.User, d.UserID, d.AuthTime).Int()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// DeleteSession implements oauth.Store.
func (s *Store) DeleteSession(ctx context.Context, sessionHash string) error {
	return s.del(ctx, "delete session", s.sessionKey(sessionHash))
}
