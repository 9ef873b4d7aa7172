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
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// opTimeout bounds every Redis round trip, so that an outage answers
// unavailable quickly instead of holding the request.
const opTimeout = 2 * time.Second

// Store implements oauth.Store.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ oauth.Store = (*Store)(nil)

// New returns a store writing keys under prefix (e.g. "moreid:").
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) stateKey(h string) string { return s.prefix + "state:" + h }

// The code and its used marker share the {hash} tag so that the redemption
// script touches a single slot on Redis Cluster.
func (s *Store) codeKey(h string) string   { return s.prefix + "code:{" + h + "}" }
func (s *Store) markerKey(h string) string { return s.prefix + "code:{" + h + "}:used" }
func (s *Store) tokenKey(h string) string  { return s.prefix + "token:" + h }

type stateRecord struct {
	KeyID int64 `json:"k"`
}

// PutState implements oauth.Store.
func (s *Store) PutState(ctx context.Context, stateHash string, keyID int64, ttl time.Duration) error {
	return s.put(ctx, s.stateKey(stateHash), stateRecord{KeyID: keyID}, ttl)
}

// StateOwner implements oauth.Store.
func (s *Store) StateOwner(ctx context.Context, stateHash string) (int64, bool, error) {
	var rec stateRecord
	found, err := s.get(ctx, s.stateKey(stateHash), &rec)
	return rec.KeyID, found, err
}

// consumeState deletes a state only when its "k" is the given key id, so a
// foreign key can never burn someone else's state. (cjson numbers are
// doubles: key ids are exact up to 2^53.)
var consumeState = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local rec = cjson.decode(v)
if rec.k ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// ConsumeState implements oauth.Store.
func (s *Store) ConsumeState(ctx context.Context, stateHash string, keyID int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	n, err := consumeState.Run(ctx, s.rdb, []string{s.stateKey(stateHash)}, strconv.FormatInt(keyID, 10)).Int()
	if err != nil {
		return false, unavailable("consume state", err)
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

// RedeemedBy implements oauth.Store.
func (s *Store) RedeemedBy(ctx context.Context, codeHash string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	v, err := s.rdb.Get(ctx, s.markerKey(codeHash)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("get code marker", err)
	}
	return v, true, nil
}

// redeemCode is the one atomic step of a code exchange. KEYS: code, marker.
// ARGV: key id, state hash, new token hash. The marker keeps the code's
// remaining lifetime (at least a second), so a replay within the code's
// lifetime is recognised.
var redeemCode = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local rec = cjson.decode(v)
  if rec.k == tonumber(ARGV[1]) and rec.s == ARGV[2] then
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl < 1000 then ttl = 1000 end
    redis.call('DEL', KEYS[1])
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
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
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	keys := []string{s.codeKey(codeHash), s.markerKey(codeHash)}
	res, err := redeemCode.Run(ctx, s.rdb, keys, strconv.FormatInt(keyID, 10), stateHash, tokenHash).StringSlice()
	if err != nil {
		return oauth.Redemption{}, unavailable("redeem code", err)
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
		return oauth.Redemption{Outcome: oauth.Replayed, PreviousToken: res[1]}, nil
	default:
		return oauth.Redemption{Outcome: oauth.Missing}, nil
	}
}

// PutToken implements oauth.Store.
func (s *Store) PutToken(ctx context.Context, tokenHash string, rec oauth.TokenRecord, ttl time.Duration) error {
	return s.put(ctx, s.tokenKey(tokenHash), rec, ttl)
}

// DeleteToken implements oauth.Store.
func (s *Store) DeleteToken(ctx context.Context, tokenHash string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := s.rdb.Del(ctx, s.tokenKey(tokenHash)).Err(); err != nil {
		return unavailable("delete token", err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return apierr.Wrap(apierr.Internal, fmt.Errorf("encode record: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := s.rdb.Set(ctx, key, b, ttl).Err(); err != nil {
		return unavailable("set record", err)
	}
	return nil
}

func (s *Store) get(ctx context.Context, key string, v any) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("get record", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, apierr.Wrap(apierr.Internal, fmt.Errorf("decode record: %w", err))
	}
	return true, nil
}

// unavailable wraps a Redis failure. The cause never contains a key: keys
// are hashes anyway, but go-redis errors name only the server.
func unavailable(op string, err error) error {
	return apierr.Wrap(apierr.Unavailable, fmt.Errorf("redis %s: %w", op, err))
}
