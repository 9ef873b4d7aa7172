// Package redisstore keeps the sign-in flows' short-lived records in Redis
// (ARCHITECTURE "Redis records"): keys are <prefix><kind>:<sha256 hex>,
// values JSON, lifetimes native TTLs. Every failure to reach Redis is an
// apierr.Unavailable; an absent record is not an error.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// markerTTL is how long a consuming script remembers its answer to one
// attempt: a little above the longest a call with its one re-ask can take
// (2 × opTimeout), so that every copy of the call that go-redis or consume
// re-sends finds the answer instead of acting again.
func (s *Store) markerTTL() time.Duration { return 2*s.opTimeout + time.Second }

// once makes a consuming script safe to send again. go-redis re-sends a
// command after a read timeout or a broken connection (MaxRetries, and the
// Cluster client's redirections), and consume asks once more when it
// cannot tell whether a call ran; a second run of "take the record" would
// find it gone and answer as if somebody else had used it. So every call
// carries a random attempt id, in the name of the last KEYS element (a
// marker key in the record's own hash slot, see sameSlot), and the last
// ARGV is markerTTL in ms: the first run stores its answer there, and a
// run that finds the marker returns that answer and touches nothing. body
// is the script proper; it reads only KEYS and ARGV before those two and
// must return a string, a number or an array of them.
func once(body string) *redis.Script {
	return redis.NewScript(`
local done = redis.call('GET', KEYS[#KEYS])
if done then return cjson.decode(done) end
local function body()
` + body + `
end
local r = body()
redis.call('SET', KEYS[#KEYS], cjson.encode(r), 'PX', ARGV[#ARGV])
return r
`)
}

// consume runs a once script for one attempt. When the call fails in a way
// that leaves its outcome unknown (a timeout, a lost connection: the
// script may have run), it asks once more with the same attempt id, which
// answers what the first run did or runs it now. If that fails too the
// answer is unavailable: the record is intact or was used by this attempt,
// never by anybody else. slotKey is the record the marker goes with.
func (s *Store) consume(ctx context.Context, op string, script *redis.Script, slotKey string, keys []string, args ...any) *redis.Cmd {
	keys = append(keys, sameSlot(slotKey, ":once:"+secret.New("", 22, secret.Alphanumeric)))
	args = append(args, s.markerTTL().Milliseconds())
	run := func() *redis.Cmd {
		ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		defer cancel()
		return script.Run(ctx, s.rdb, keys, args...)
	}
	cmd := run()
	if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) && ctx.Err() == nil {
		s.reasks.Add(1)
		cmd = run()
	}
	if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
		cmd.SetErr(unavailable(op, err))
	}
	return cmd
}

// sameSlot names a key in key's Redis Cluster hash slot: key itself with a
// suffix when key has a hash tag (a non-empty {...}, which alone decides
// the slot), else key wrapped in braces, which makes all of key the tag.
func sameSlot(key, suffix string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key + suffix
		}
	}
	return "{" + key + "}" + suffix
}

// Store implements oauth.Store.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
	// opTimeout bounds every Redis round trip (MOREID_REDIS_TIMEOUT), so
	// that an outage answers unavailable quickly instead of holding the
	// request, while a slow reply within it only makes the request slower.
	opTimeout time.Duration
	// reasks counts the calls consume asked again, for tests.
	reasks atomic.Int64
	// orphans are throttle holds whose removal Redis did not answer
	// (throttle.go, dropLater).
	orphans     chan orphan
	orphansOnce sync.Once
}

var _ oauth.Store = (*Store)(nil)

// New returns a store writing keys under prefix (e.g. "moreid:"), each
// call bounded by opTimeout (redisdb.Timeout).
func New(rdb redis.UniversalClient, prefix string, opTimeout time.Duration) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: time.Now, opTimeout: opTimeout}
}

// Reasks is how many consuming calls had to ask Redis a second time
// because the first answer was lost.
func (s *Store) Reasks() int64 { return s.reasks.Load() }

// The state, its failure counter, its held set and its login codes share
// the {hash} tag, so that login_safe's script touches a single slot on
// Redis Cluster.
func (s *Store) stateKey(h string) string     { return s.prefix + "state:{" + h + "}" }
func (s *Store) failsKey(h string) string     { return s.prefix + "state:{" + h + "}:fails" }
func (s *Store) stateHeldKey(h string) string { return s.prefix + "state:{" + h + "}:held" }
func (s *Store) loginCodeKey(state, h string) string {
	return s.prefix + "logincode:{" + state + "}:" + h
}

// stateKeys are the first KEYS of every script on a state (stateLua): the
// state, its failure counter and its held set; more follow them.
func (s *Store) stateKeys(h string, more ...string) []string {
	return append([]string{s.stateKey(h), s.failsKey(h), s.stateHeldKey(h)}, more...)
}

// stateLua is the one definition of what the scripts on a state share,
// KEYS[1..3] being stateKeys. own_state: the state exists and was issued
// to the key id, the only key that may use, count against or end it (a
// foreign key must not be able to burn someone else's state; cjson numbers
// are doubles: key ids are exact up to 2^53). end_state deletes the state
// with its counter and held set, and any further keys given: consumed
// (login, login_safe, user/update) or burned (failState), a state leaves
// nothing behind.
const stateLua = `
local function own_state(key_id)
  local sv = redis.call('GET', KEYS[1])
  return sv and cjson.decode(sv).k == tonumber(key_id)
end
local function end_state(...)
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], ...)
end
`

// The code and its used marker share the {hash} tag so that the redemption
// script touches a single slot on Redis Cluster.
func (s *Store) codeKey(h string) string    { return s.prefix + "code:{" + h + "}" }
func (s *Store) markerKey(h string) string  { return s.prefix + "code:{" + h + "}:used" }
func (s *Store) tokenKey(h string) string   { return s.prefix + "token:" + h }
func (s *Store) ucaKey(h string) string     { return s.prefix + "uca:" + h }
func (s *Store) sessionKey(h string) string { return s.prefix + "session:" + h }

// userTokensKey indexes a user's token hashes, for revoking them all. The
// user_id is no secret.
func (s *Store) userTokensKey(userID string) string { return s.prefix + "usertokens:" + userID }

// PutState implements oauth.Store.
func (s *Store) PutState(ctx context.Context, stateHash string, keyID int64, ttl time.Duration) error {
	return s.put(ctx, s.stateKey(stateHash), oauth.StateRecord{KeyID: keyID}, ttl)
}

// State implements oauth.Store.
func (s *Store) State(ctx context.Context, stateHash string) (oauth.StateRecord, bool, error) {
	var rec oauth.StateRecord
	ttl, found, err := s.getWithTTL(ctx, s.stateKey(stateHash), &rec)
	rec.TTL = ttl
	return rec, found, err
}

// consumeState ends a state of the given key id. KEYS: stateKeys. ARGV:
// key id.
var consumeState = once(stateLua + `
if not own_state(ARGV[1]) then return 0 end
end_state()
return 1
`)

// ConsumeState implements oauth.Store.
func (s *Store) ConsumeState(ctx context.Context, stateHash string, keyID int64) (bool, error) {
	n, err := s.consume(ctx, "consume state", consumeState, s.stateKey(stateHash), s.stateKeys(stateHash), strconv.FormatInt(keyID, 10)).Int()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// PutCode implements oauth.Store.
func (s *Store) PutCode(ctx context.Context, codeHash string, rec oauth.CodeRecord, ttl time.Duration) error {
	return s.put(ctx, s.codeKey(codeHash), rec, ttl)
}

// Code implements oauth.Store.
func (s *Store) Code(ctx context.Context, codeHash string) (oauth.CodeRecord, bool, error) {
	var rec oauth.CodeRecord
	found, err := s.get(ctx, s.codeKey(codeHash), &rec)
	return rec, found, err
}

// DeleteCode implements oauth.Store.
func (s *Store) DeleteCode(ctx context.Context, codeHash string) error {
	return s.del(ctx, "delete code", s.codeKey(codeHash))
}

// RedeemedBy implements oauth.Store.
func (s *Store) RedeemedBy(ctx context.Context, codeHash string) (oauth.CodeUse, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	v, err := s.rdb.Get(ctx, s.markerKey(codeHash)).Result()
	if errors.Is(err, redis.Nil) {
		return oauth.CodeUse{}, false, nil
	}
	if err != nil {
		return oauth.CodeUse{}, false, unavailable("get code marker", err)
	}
	return codeUse(v), true, nil
}

// usedMarker is the value of a code's used marker: who redeemed it (the
// key id, as a string so that no id loses digits in Lua's doubles, and
// the state hash) and for which token.
type usedMarker struct {
	Token string `json:"t"`
	Key   string `json:"k"`
	State string `json:"s"`
}

// codeUse reads a used marker. Markers written before they named the key
// hold only the token hash: they name no key, so no replay can match them
// and revoke.
func codeUse(v string) oauth.CodeUse {
	var m usedMarker
	if json.Unmarshal([]byte(v), &m) != nil {
		return oauth.CodeUse{Token: v}
	}
	id, _ := strconv.ParseInt(m.Key, 10, 64)
	return oauth.CodeUse{Token: m.Token, KeyID: id, StateHash: m.State}
}

// redeemCode is the one atomic step of a code exchange. KEYS: code, marker.
// ARGV: key id, state hash, new token hash. The marker keeps the code's
// remaining lifetime (at least a second), so a replay within the code's
// lifetime is recognised, and names the key and state that redeemed it, so
// that only the same client's replay revokes (RFC 6749 4.1.2).
var redeemCode = once(`
local v = redis.call('GET', KEYS[1])
if v then
  local rec = cjson.decode(v)
  if rec.k == tonumber(ARGV[1]) and rec.s == ARGV[2] then
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl < 1000 then ttl = 1000 end
    redis.call('DEL', KEYS[1])
    redis.call('SET', KEYS[2], cjson.encode({t = ARGV[3], k = ARGV[1], s = ARGV[2]}), 'PX', ttl)
    return {'ok', ''}
  end
  return {'mismatch', ''}
end
local used = redis.call('GET', KEYS[2])
if used then return {'used', used} end
return {'missing', ''}
`)

// RedeemCode implements oauth.Store.
func (s *Store) RedeemCode(ctx context.Context, codeHash string, keyID int64, stateHash, tokenHash string) (oauth.Redemption, error) {
	key := s.codeKey(codeHash)
	keys := []string{key, s.markerKey(codeHash)}
	res, err := s.consume(ctx, "redeem code", redeemCode, key, keys, strconv.FormatInt(keyID, 10), stateHash, tokenHash).StringSlice()
	if err != nil {
		return oauth.Redemption{}, err
	}
	if len(res) != 2 {
		return oauth.Redemption{}, apierr.Wrap(apierr.Internal, fmt.Errorf("redeem code: unexpected reply of %d elements", len(res)))
	}
	switch res[0] {
	case "ok":
		return oauth.Redemption{Outcome: oauth.Redeemed}, nil
	case "mismatch":
		return oauth.Redemption{Outcome: oauth.Mismatch}, nil
	case "used":
		return oauth.Redemption{Outcome: oauth.Replayed, Previous: codeUse(res[1])}, nil
	default:
		return oauth.Redemption{Outcome: oauth.Missing}, nil
	}
}

// PutToken implements oauth.Store. The record and its index entry are
// written in one pipeline, not a MULTI transaction: they live in different
// hash slots, which a transaction refuses on Redis Cluster. If the pipeline
// fails half-way the error reaches the caller and the token is never handed
// out. The index lives as long as the longest-lived
// of its tokens (NX sets the first lifetime, GT only ever extends it, so a
// shorter configured lifetime cannot cut older tokens out of the index).
func (s *Store) PutToken(ctx context.Context, tokenHash string, rec oauth.TokenRecord, ttl time.Duration) error {
	b, err := encode(storedToken{TokenRecord: rec, Exp: s.now().Add(ttl).UnixMilli()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	index := s.userTokensKey(rec.UserID)
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.tokenKey(tokenHash), b, ttl)
		if rec.UserID == "" {
			// A client_credentials token has no user to revoke it with.
			return nil
		}
		p.SAdd(ctx, index, tokenHash)
		ms := ttl.Milliseconds()
		p.Do(ctx, "PEXPIRE", index, ms, "NX")
		p.Do(ctx, "PEXPIRE", index, ms, "GT")
		return nil
	})
	if err != nil {
		return unavailable("put token", err)
	}
	return nil
}

// storedToken is a token record as kept in Redis: with its expiry, so that
// reading it (every Bearer call) is one GET rather than GET + PTTL. Redis's
// own TTL on the key still decides when it is gone; Exp only tells the
// remaining lifetime, to within the clock skew between auth replicas.
type storedToken struct {
	oauth.TokenRecord
	Exp int64 `json:"exp,omitempty"` // unix ms; absent in records written before it existed
}

// Token implements oauth.Store.
func (s *Store) Token(ctx context.Context, tokenHash string) (oauth.TokenRecord, bool, error) {
	var st storedToken
	key := s.tokenKey(tokenHash)
	found, err := s.get(ctx, key, &st)
	if !found || err != nil {
		return oauth.TokenRecord{}, false, err
	}
	rec := st.TokenRecord
	if st.Exp == 0 { // written by an older release: ask Redis
		rec.TTL, found, err = s.getWithTTL(ctx, key, &rec)
		return rec, found, err
	}
	rec.TTL = time.UnixMilli(st.Exp).Sub(s.now())
	if rec.TTL <= 0 {
		return oauth.TokenRecord{}, false, nil
	}
	return rec, true, nil
}

// takeToken reads and deletes a token record. KEYS: token. Absent: "".
var takeToken = once(`
local v = redis.call('GETDEL', KEYS[1])
if not v then return '' end
return v
`)

// DeleteToken implements oauth.Store.
func (s *Store) DeleteToken(ctx context.Context, tokenHash string) (oauth.TokenRecord, bool, error) {
	var rec oauth.TokenRecord
	key := s.tokenKey(tokenHash)
	v, err := s.consume(ctx, "delete token", takeToken, key, []string{key}).Text()
	if err != nil {
		return rec, false, err
	}
	if v == "" {
		return rec, false, nil
	}
	// The token is gone; its index entry is only tidied up. A stale entry
	// would be harmless: revoking a user's tokens counts live records. An
	// undecodable record is gone all the same.
	if json.Unmarshal([]byte(v), &rec) == nil && rec.UserID != "" {
		ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		defer cancel()
		if err := s.rdb.SRem(ctx, s.userTokensKey(rec.UserID), tokenHash).Err(); err != nil {
			return rec, true, unavailable("unindex token", err)
		}
	}
	return rec, true, nil
}

// DeleteUserTokens implements oauth.Store. Only the index entries read are
// removed, so a token issued meanwhile stays indexed. The user's OpenID
// Connect refresh token families end first (each with the access tokens
// it minted), so that none can mint a token after the index was read;
// every family ended counts as one.
func (s *Store) DeleteUserTokens(ctx context.Context, userID string) (int, error) {
	fams, err := s.UserFamilies(ctx, userID)
	if err != nil {
		return 0, err
	}
	ended := 0
	for _, f := range fams {
		ok, err := s.RevokeFamily(ctx, f, "", "")
		if err != nil {
			return 0, err
		}
		if ok {
			ended++
		} else if err := s.deleteTokens(ctx, userID, f, nil); err != nil {
			// Expired meanwhile: only its index entry is left.
			return 0, err
		}
	}
	n, err := s.deleteUserTokens(ctx, userID)
	return n + ended, err
}

func (s *Store) deleteUserTokens(ctx context.Context, userID string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	index := s.userTokensKey(userID)
	hashes, err := s.rdb.SMembers(ctx, index).Result()
	if err != nil {
		return 0, unavailable("list user tokens", err)
	}
	if len(hashes) == 0 {
		return 0, nil
	}
	dels := make([]*redis.IntCmd, len(hashes))
	members := make([]any, len(hashes))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			dels[i] = p.Del(ctx, s.tokenKey(h))
			members[i] = h
		}
		p.SRem(ctx, index, members...)
		return nil
	})
	if err != nil {
		return 0, unavailable("delete user tokens", err)
	}
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, nil
}

// PutUCA implements oauth.Store.
func (s *Store) PutUCA(ctx context.Context, ucaHash string, rec oauth.UCARecord, ttl time.Duration) error {
	return s.put(ctx, s.ucaKey(ucaHash), rec, ttl)
}

// UCA implements oauth.Store.
func (s *Store) UCA(ctx context.Context, ucaHash string) (oauth.UCARecord, bool, error) {
	var rec oauth.UCARecord
	ttl, found, err := s.getWithTTL(ctx, s.ucaKey(ucaHash), &rec)
	rec.TTL = ttl
	return rec, found, err
}

// takeUCA reads and deletes a UCA. KEYS: uca. Absent: "".
var takeUCA = once(`
local v = redis.call('GETDEL', KEYS[1])
if not v then return '' end
return v
`)

// TakeUCA implements oauth.Store: of concurrent takers exactly one gets the
// record, and a re-sent take gets what the first one got.
func (s *Store) TakeUCA(ctx context.Context, ucaHash string) (oauth.UCARecord, bool, error) {
	var rec oauth.UCARecord
	key := s.ucaKey(ucaHash)
	v, err := s.consume(ctx, "take uca", takeUCA, key, []string{key}).Text()
	if err != nil || v == "" {
		return rec, false, err
	}
	if err := decode([]byte(v), &rec); err != nil {
		return rec, false, err
	}
	return rec, true, nil
}

// PutLoginCode implements oauth.Store.
func (s *Store) PutLoginCode(ctx context.Context, stateHash, codeHash string, rec oauth.LoginCodeRecord, ttl time.Duration) error {
	return s.put(ctx, s.loginCodeKey(stateHash, codeHash), rec, ttl)
}

// LoginCode implements oauth.Store.
func (s *Store) LoginCode(ctx context.Context, stateHash, codeHash string) (oauth.LoginCodeRecord, bool, error) {
	var rec oauth.LoginCodeRecord
	found, err := s.get(ctx, s.loginCodeKey(stateHash, codeHash), &rec)
	return rec, found, err
}

// DeleteLoginCode implements oauth.Store.
func (s *Store) DeleteLoginCode(ctx context.Context, stateHash, codeHash string) error {
	return s.del(ctx, "delete login code", s.loginCodeKey(stateHash, codeHash))
}

// redeemLoginCode is login_safe's one atomic step: it ends the state
// together with the login code. KEYS: stateKeys, login code (one slot).
// ARGV: key id. A state that is not this key's is reported as none. A
// wrong code is only reported: the caller holds a reservation on the state
// and counts the failure with it (throttle.go), so that a right code
// holding one always finds the state.
var redeemLoginCode = once(stateLua + `
if not own_state(ARGV[1]) then return {'nostate', ''} end
local v = redis.call('GET', KEYS[4])
if v and cjson.decode(v).k == tonumber(ARGV[1]) then
  end_state(KEYS[4])
  return {'ok', v}
end
return {'wrong', ''}
`)

// RedeemLoginCode implements oauth.Store.
func (s *Store) RedeemLoginCode(ctx context.Context, stateHash, codeHash string, keyID int64) (oauth.LoginCodeRecord, oauth.LoginOutcome, error) {
	keys := s.stateKeys(stateHash, s.loginCodeKey(stateHash, codeHash))
	res, err := s.consume(ctx, "redeem login code", redeemLoginCode, s.stateKey(stateHash), keys, strconv.FormatInt(keyID, 10)).StringSlice()
	var rec oauth.LoginCodeRecord
	if err != nil {
		return rec, 0, err
	}
	if len(res) != 2 {
		return rec, 0, apierr.Wrap(apierr.Internal, fmt.Errorf("redeem login code: unexpected reply of %d elements", len(res)))
	}
	switch res[0] {
	case "ok":
		if err := decode([]byte(res[1]), &rec); err != nil {
			return rec, 0, err
		}
		return rec, oauth.LoginRedeemed, nil
	case "nostate":
		return rec, oauth.LoginNoState, nil
	default:
		return rec, oauth.LoginWrong, nil
	}
}

// PutSession implements oauth.Store.
func (s *Store) PutSession(ctx context.Context, sessionHash string, rec oauth.SessionRecord, ttl time.Duration) error {
	return s.put(ctx, s.sessionKey(sessionHash), rec, ttl)
}

// Session implements oauth.Store.
func (s *Store) Session(ctx context.Context, sessionHash string) (oauth.SessionRecord, bool, error) {
	var rec oauth.SessionRecord
	found, err := s.get(ctx, s.sessionKey(sessionHash), &rec)
	return rec, found, err
}

func (s *Store) put(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := encode(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if err := s.rdb.Set(ctx, key, b, ttl).Err(); err != nil {
		return unavailable("set record", err)
	}
	return nil
}

// del removes a record that nobody has been given yet (a DEL is safe to
// send twice).
func (s *Store) del(ctx context.Context, op, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if err := s.rdb.Del(ctx, key).Err(); err != nil {
		return unavailable(op, err)
	}
	return nil
}

func (s *Store) get(ctx context.Context, key string, v any) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	b, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("get record", err)
	}
	if err := decode(b, v); err != nil {
		return false, err
	}
	return true, nil
}

// getWithTTL is get that also reads the record's remaining lifetime, in one
// round trip.
func (s *Store) getWithTTL(ctx context.Context, key string, v any) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	var get *redis.StringCmd
	var ttl *redis.DurationCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		ttl = p.PTTL(ctx, key)
		return nil
	})
	if errors.Is(get.Err(), redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, unavailable("get record", err)
	}
	b, _ := get.Bytes()
	if err := decode(b, v); err != nil {
		return 0, false, err
	}
	// The record may expire between the two commands: PTTL then says -2,
	// and the record is as good as gone.
	d := ttl.Val()
	if d <= 0 {
		return 0, false, nil
	}
	return d, true, nil
}

func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, apierr.Wrap(apierr.Internal, fmt.Errorf("encode record: %w", err))
	}
	return b, nil
}

func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return apierr.Wrap(apierr.Internal, fmt.Errorf("decode record: %w", err))
	}
	return nil
}

// unavailable wraps a Redis failure. The cause never contains a key: keys
// are hashes anyway, but go-redis errors name only the server.
func unavailable(op string, err error) error {
	return apierr.Wrap(apierr.Unavailable, fmt.Errorf("redis %s: %w", op, err))
}
