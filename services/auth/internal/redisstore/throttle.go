package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// The brute-force counters (ARCHITECTURE "Redis records"). Every subject
// has a failure counter (a fixed window: its first failure starts it) and
// a sorted set of the attempts being checked right now ("held": member the
// attempt's id, score when its lease ends). A subject admits an attempt
// while failures + held < its limit, so that parallel attempts can never
// outnumber what is left of the budget. A failure turns its hold into a
// counted failure in one script; a success only drops its hold.
//
// Keys of one script share a hash tag (one slot on Redis Cluster): the
// per-(user, address) counter sits with the user's account counter, each
// other subject is alone with its own set. The user_id is hashed, so a
// listing of the keyspace names no account (nor the typos that are
// somebody's password).
func (s *Store) accountFailsKey(userID string) string {
	return s.prefix + "fail:{" + secret.Hash(userID) + "}"
}
func (s *Store) pairFailsKey(userID, ip string) string {
	return s.prefix + "fail:{" + secret.Hash(userID) + "}:ip:" + ip
}
func (s *Store) ipFailsKey(ip string) string { return s.prefix + "fail:ip:{" + ip + "}" }
func (s *Store) ucaFailsKey(h string) string { return s.prefix + "ucafail:{" + h + "}" }
func heldKey(failsKey string) string         { return failsKey + ":held" }
func (s *Store) rateKey(keyID, sec int64) string {
	return s.prefix + "rate:" + strconv.FormatInt(keyID, 10) + ":" + strconv.FormatInt(sec, 10)
}
func (s *Store) liveStatesKey(keyID, bucket int64) string {
	return s.prefix + "states:" + strconv.FormatInt(keyID, 10) + ":" + strconv.FormatInt(bucket, 10)
}

// holdLease bounds how long a hold outlives a replica that died holding
// it. Far longer than any attempt: the password check waits for the user
// service's hashing slots, so under a login storm it can take seconds.
const holdLease = time.Minute

// reserve is one subject's admission step. KEYS: failure counter, held
// set, and for the per-(user, address) subject the account's counter and
// held set. ARGV: limit, attempt id, lease ms, account ceiling. Above the
// ceiling (counting the account's attempts in flight, so that a burst
// cannot slip past it) an address may have one attempt at a time at the
// account and none once it has failed against it (until its own window
// ends): guessing from many addresses slows down to one guess per address
// and window, while an address that never failed (the user's own) is
// still admitted. Replies {verdict, ms}: ok, busy (retry soon), full or
// account (refused for ms).
var reserve = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local limit = tonumber(ARGV[1])
local f = tonumber(redis.call('GET', KEYS[1]) or '0')
local refusal = 'full'
if KEYS[3] then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  local a = tonumber(redis.call('GET', KEYS[3]) or '0') + redis.call('ZCARD', KEYS[4])
  if a >= tonumber(ARGV[4]) then
    limit = 1
    refusal = 'account'
  end
end
if f >= limit then return {refusal, redis.call('PTTL', KEYS[1])} end
if f + redis.call('ZCARD', KEYS[2]) >= limit then return {'busy', 0} end
for i = 2, #KEYS, 2 do
  redis.call('ZADD', KEYS[i], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return {'ok', 0}
`)

// fail turns a hold into a counted failure. KEYS: pairs of failure counter
// and held set (the subject's, and the account's). ARGV: attempt id,
// window ms. Only a hold that is still there is counted, so a copy of the
// call that go-redis re-sends after a slow reply counts nothing twice. A
// counter found without an expiry gets one, so no counter outlives its
// window.
var fail = redis.NewScript(`
for i = 1, #KEYS, 2 do
  if redis.call('ZREM', KEYS[i + 1], ARGV[1]) == 1 then
    redis.call('INCR', KEYS[i])
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
  end
end
return 1
`)

// reserveState is a state's admission step, shared by password logins
// and login_safe. KEYS: stateKeys. ARGV: key id, failures that burn the
// state, attempt id, lease ms. A state that is not this key's is reported
// before anything is held, so nobody can block another key's state.
var reserveState = redis.NewScript(stateLua + `
if not own_state(ARGV[1]) then return {'nostate', 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if f + redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[2]) then return {'busy', 0} end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {'ok', 0}
`)

// failState is the one state-burn step, for a wrong password (Login) and
// a wrong login code (LoginSafe) alike: it turns a hold on a state into a
// counted failure and ends the state at the limit. KEYS: stateKeys. ARGV:
// key id, failures that burn the state, attempt id. Replies 0 (no such
// state of this key), 1 (counted), 2 (burned). As in fail, only a hold
// still there is counted: a re-sent copy counts nothing.
var failState = redis.NewScript(stateLua + `
if redis.call('ZREM', KEYS[3], ARGV[3]) == 0 then return 1 end
if not own_state(ARGV[1]) then return 0 end
local n = redis.call('INCR', KEYS[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
if n >= tonumber(ARGV[2]) then
  end_state()
  return 2
end
return 1
`)

// subject is one counter an attempt touches, as the scripts see it.
type subject struct {
	limit string   // oauth's name of the limit
	keys  []string // of the scripts
	held  []string // the held sets among keys
	max   int      // the limit's number
}

// subjects lists the counters of an attempt.
func (s *Store) subjects(a oauth.Attempt, l oauth.Limits) []subject {
	var subs []subject
	if a.StateHash != "" {
		subs = append(subs, subject{oauth.LimitState, s.stateKeys(a.StateHash), []string{s.stateHeldKey(a.StateHash)}, oauth.MaxStateFails})
	}
	if a.UCAHash != "" {
		k := s.ucaFailsKey(a.UCAHash)
		subs = append(subs, subject{oauth.LimitUCA, []string{k, heldKey(k)}, []string{heldKey(k)}, oauth.MaxUCAFails})
	}
	if a.UserID != "" && a.IP != "" {
		k, acct := s.pairFailsKey(a.UserID, a.IP), s.accountFailsKey(a.UserID)
		subs = append(subs, subject{oauth.LimitUser, []string{k, heldKey(k), acct, heldKey(acct)}, []string{heldKey(k), heldKey(acct)}, l.PerUser})
	}
	if a.IP != "" {
		k := s.ipFailsKey(a.IP)
		subs = append(subs, subject{oauth.LimitIP, []string{k, heldKey(k)}, []string{heldKey(k)}, l.PerIP})
	}
	return subs
}

// Reserve implements oauth.Store. The subjects live in different slots, so
// each is reserved by its own single-slot script, all in one pipeline; when
// any of them does not admit the attempt, the holds that were granted are
// dropped again before Reserve returns (a second round trip, only then).
func (s *Store) Reserve(ctx context.Context, a oauth.Attempt, l oauth.Limits) (oauth.Verdict, error) {
	subs := s.subjects(a, l)
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	lease := holdLease.Milliseconds()
	cmds := make([]*redis.Cmd, len(subs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, sub := range subs {
			if sub.limit == oauth.LimitState {
				cmds[i] = reserveState.Eval(ctx, p, sub.keys, a.KeyID, sub.max, a.ID, lease)
			} else {
				cmds[i] = reserve.Eval(ctx, p, sub.keys, sub.max, a.ID, lease, l.PerAccount)
			}
		}
		return nil
	})
	if err != nil {
		// Some of the scripts may have run and granted a hold.
		s.dropLater(a.ID, subs)
		return oauth.Verdict{}, unavailable("reserve attempt", err)
	}
	verdicts := make([]oauth.Verdict, len(subs))
	var granted []subject
	for i, c := range cmds {
		res, err := c.Slice()
		if err != nil || len(res) != 2 {
			return oauth.Verdict{}, apierr.Wrap(apierr.Internal, fmt.Errorf("reserve attempt: unexpected reply %v, %v", res, err))
		}
		ms, _ := res[1].(int64)
		v := oauth.Verdict{Limit: subs[i].limit, RetryAfter: time.Duration(ms) * time.Millisecond}
		switch res[0] {
		case "ok":
			v.Granted = true
			granted = append(granted, subs[i])
		case "nostate":
			v.NoState = true
		case "busy":
			v.Busy = true
		case "account":
			v.Limit = oauth.LimitAccount
		}
		verdicts[i] = v
	}
	v := oauth.Join(verdicts...)
	if !v.Granted {
		if err := s.drop(ctx, a.ID, granted); err != nil {
			s.dropLater(a.ID, granted)
			return oauth.Verdict{}, err
		}
	}
	return v, nil
}

// orphan is an attempt's holds that could not be removed when the attempt
// ended, because Redis did not answer.
type orphan struct {
	id    string
	subs  []subject
	until time.Time // when the holds' lease ends them anyway
}

// dropLater hands holds whose removal failed to a background retry. Left
// alone they would keep their places for the whole lease (a minute): after
// a Redis failover every user and address that had an attempt in flight
// would find its limit full of dead attempts and wait. The queue is
// bounded; if it is full, the lease is the backstop.
func (s *Store) dropLater(id string, subs []subject) {
	if len(subs) == 0 {
		return
	}
	s.orphansOnce.Do(func() {
		s.orphans = make(chan orphan, 4096)
		go s.dropOrphans()
	})
	select {
	case s.orphans <- orphan{id: id, subs: subs, until: time.Now().Add(holdLease)}:
	default:
	}
}

// orphanRetry is the pause between two tries at the orphans.
const orphanRetry = 200 * time.Millisecond

// dropOrphans retries the removal of orphaned holds until it succeeds or
// their lease has ended.
func (s *Store) dropOrphans() {
	var pending []orphan
	for {
		if len(pending) == 0 {
			pending = append(pending, <-s.orphans)
		}
	collect:
		for {
			select {
			case o := <-s.orphans:
				pending = append(pending, o)
			default:
				break collect
			}
		}
		kept := pending[:0]
		for _, o := range pending {
			if time.Now().After(o.until) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
			err := s.drop(ctx, o.id, o.subs)
			cancel()
			if err != nil {
				kept = append(kept, o)
			}
		}
		pending = kept
		if len(pending) > 0 {
			time.Sleep(orphanRetry)
		}
	}
}

// drop removes the attempt's holds on subs.
func (s *Store) drop(ctx context.Context, id string, subs []subject) error {
	if len(subs) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, sub := range subs {
			for _, h := range sub.held {
				p.ZRem(ctx, h, id)
			}
		}
		return nil
	})
	if err != nil {
		return unavailable("release attempt", err)
	}
	return nil
}

// Release implements oauth.Store: the attempt was no failure.
func (s *Store) Release(ctx context.Context, a oauth.Attempt, l oauth.Limits) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	subs := s.subjects(a, l)
	err := s.drop(ctx, a.ID, subs)
	if err != nil {
		s.dropLater(a.ID, subs)
	}
	return err
}

// Fail implements oauth.Store: every hold of the attempt becomes a counted
// failure, in one pipeline of single-slot scripts.
func (s *Store) Fail(ctx context.Context, a oauth.Attempt, l oauth.Limits) (burned bool, err error) {
	subs := s.subjects(a, l)
	if len(subs) == 0 {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	var state *redis.Cmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, sub := range subs {
			switch sub.limit {
			case oauth.LimitState:
				state = failState.Eval(ctx, p, sub.keys, a.KeyID, sub.max, a.ID)
			case oauth.LimitUCA:
				// A UCA lives at most UCATTL; so does its counter.
				fail.Eval(ctx, p, sub.keys, a.ID, oauth.UCATTL.Milliseconds())
			default:
				fail.Eval(ctx, p, sub.keys, a.ID, l.Window.Milliseconds())
			}
		}
		return nil
	})
	if err != nil {
		// Not counted: at least its places must not stay taken.
		s.dropLater(a.ID, subs)
		return false, unavailable("count failure", err)
	}
	if state != nil {
		n, _ := state.Int()
		burned = n == 2
	}
	return burned, nil
}

// countRequest is one step of a fixed one-second window. KEYS: the
// second's counter. The counter outlives its second a little, never more.
var countRequest = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], 2000) end
return n
`)

// CountKeyRequest implements oauth.Store.
func (s *Store) CountKeyRequest(ctx context.Context, keyID, second int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	n, err := countRequest.Run(ctx, s.rdb, []string{s.rateKey(keyID, second)}).Int64()
	if err != nil {
		return 0, unavailable("count key request", err)
	}
	return n, nil
}

// PutCountedState implements oauth.Store. The states a key was issued are
// counted in windows as long as a state lives: a live state was issued in
// this window or the one before, so their sum bounds the key's live
// states from above. Writing the state, counting it and reading the
// previous window are one pipeline, the round trip authorize makes
// anyway; only a refusal costs a second one (the state is deleted
// again, uncounted).
func (s *Store) PutCountedState(ctx context.Context, stateHash string, keyID int64, ttl time.Duration, max int) (time.Duration, error) {
	b, err := encode(oauth.StateRecord{KeyID: keyID})
	if err != nil {
		return 0, err
	}
	now := s.now()
	bucket := now.UnixMilli() / ttl.Milliseconds()
	cur, prev := s.liveStatesKey(keyID, bucket), s.liveStatesKey(keyID, bucket-1)
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	var n *redis.IntCmd
	var before *redis.StringCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.stateKey(stateHash), b, ttl)
		n = p.Incr(ctx, cur)
		p.PExpire(ctx, cur, 2*ttl)
		before = p.Get(ctx, prev)
		return nil
	})
	// GET of a window that counted nothing answers nil: no failure.
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, unavailable("put state", err)
	}
	earlier, _ := before.Int64()
	if n.Val()+earlier <= int64(max) {
		return 0, nil
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.stateKey(stateHash))
		p.Decr(ctx, cur)
		return nil
	})
	if err != nil {
		return 0, unavailable("refuse state", err)
	}
	// The window before stops counting when this one ends.
	return time.UnixMilli((bucket + 1) * ttl.Milliseconds()).Sub(now), nil
}
