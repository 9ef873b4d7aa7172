package server_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/platform/apierr"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/services/auth/internal/oauth"
)

// burst runs n calls truly at once (every goroutine waits for one start
// signal) and tallies their answers by error kind ("" for success).
func burst(n int, call func(i int) error) map[apierr.Kind]int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	tally := map[apierr.Kind]int{}
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			k := kindOf(call(i))
			mu.Lock()
			defer mu.Unlock()
			tally[k]++
		})
	}
	close(start)
	wg.Wait()
	return tally
}

// kindOf is the error kind a client reads from a status, "" for none.
func kindOf(err error) apierr.Kind {
	if err == nil {
		return ""
	}
	return apierr.Kind(reason(status.Convert(err)))
}

// A burst of guesses at one user from one address costs exactly what the
// same guesses one after another do: the limit's number are checked, the
// rest refused unchecked.
func TestBurstAtOneUser(t *testing.T) {
	e := newEnv(t, options{})
	const n = 120
	states := make([]string, n)
	for i := range states {
		states[i] = e.authorize(t, keyA) // one each: no state burns
	}
	before := e.users.verifies.Load()
	got := burst(n, func(i int) error {
		return e.loginFrom(t, ip1, aliceID, "wrong guess "+strconv.Itoa(i), states[i])
	})
	checked := e.users.verifies.Load() - before
	t.Logf("%d parallel guesses: %d checked, answers %v", n, checked, got)
	limit := oauth.DefaultLimits.PerUser
	if checked != int64(limit) || got[apierr.InvalidCredentials] != limit || got[apierr.RateLimited] != n-limit {
		t.Fatalf("%d passwords checked, answers %v; want %d checked, %d invalid_credentials, %d rate_limited", checked, got, limit, limit, n-limit)
	}
	// Sequentially the next one is refused too, right password or not.
	wantErr(t, e.loginFrom(t, ip1, aliceID, alicePass, e.authorize(t, keyA)), apierr.RateLimited)
}

// The same on the confirmation page, where no API key is needed: one UCA
// takes MaxUCAFails wrong passwords, and then signs nobody in.
func TestBurstOnOnePage(t *testing.T) {
	e := newEnv(t, options{})
	const n = 80
	uca := e.createUCA(t, keyA, e.authorize(t, keyA))
	before := e.users.verifies.Load()
	got := burst(n, func(i int) error {
		// Many users, so that the page's own limit is the one that holds.
		_, err := e.conf.SignIn(from(t, "", ip1), &authv1.SignInRequest{Uca: uca, UserId: "user" + strconv.Itoa(i%20), Password: "wrong guess " + strconv.Itoa(i)})
		return err
	})
	checked := e.users.verifies.Load() - before
	t.Logf("%d parallel sign-ins on one page: %d checked, answers %v", n, checked, got)
	if checked != oauth.MaxUCAFails || got[apierr.InvalidCredentials] != oauth.MaxUCAFails || got[apierr.RateLimited] != n-oauth.MaxUCAFails {
		t.Fatalf("%d passwords checked, answers %v; want %d checked and the rest rate_limited", checked, got, oauth.MaxUCAFails)
	}
	_, err := e.conf.SignIn(from(t, "", ip2), &authv1.SignInRequest{Uca: uca, UserId: aliceID, Password: alicePass})
	wantErr(t, err, apierr.RateLimited)
	// Another page is not concerned.
	e.signIn(t, e.createUCA(t, keyA, e.authorize(t, keyA)), aliceID, alicePass)
}

// No password oracle: the right password, checked while 29 wrong ones race
// it on the same state, gets its code. Before, the wrong ones burned the
// state meanwhile and the right one alone answered invalid_state.
func TestNoOracleOnOneState(t *testing.T) {
	t.Run("the right password checked first, the wrong ones all at once", func(t *testing.T) {
		e := newEnv(t, options{})
		state := e.authorize(t, keyA)
		e.users.holdRight, e.users.entered = make(chan struct{}), make(chan struct{}, 1)
		right := make(chan error, 1)
		go func() { right <- e.loginFrom(t, "198.51.100.200", aliceID, alicePass, state) }()
		<-e.users.entered
		// The right password is checked and held there until five wrong
		// ones were checked (which burned the state before) or, since that
		// must not happen now, for a few seconds.
		var wrong atomic.Int64
		fifth := make(chan struct{})
		go func() {
			select {
			case <-fifth:
			case <-time.After(3 * time.Second):
			}
			close(e.users.holdRight)
		}()
		// From 29 addresses, so that only the state's limit is shared.
		got := burst(29, func(i int) error {
			err := e.loginFrom(t, "198.51.100."+strconv.Itoa(i+1), aliceID, "wrong guess "+strconv.Itoa(i), state)
			if kindOf(err) == apierr.InvalidCredentials && wrong.Add(1) == oauth.MaxStateFails {
				close(fifth)
			}
			return err
		})
		err := <-right
		t.Logf("wrong guesses answered %v; the right one %v", got, kindOf(err))
		if err != nil {
			t.Fatalf("the right password, checked, answered %v", err)
		}
		if got[apierr.InvalidCredentials] > oauth.MaxStateFails-1 {
			t.Fatalf("%d wrong passwords checked while the right one held a place", got[apierr.InvalidCredentials])
		}
	})
	t.Run("60 at once: a checked right password always gets its code", func(t *testing.T) {
		e := newEnv(t, options{})
		state := e.authorize(t, keyA)
		var rightErr error
		// From 60 addresses (198.51.100.1-60): only the state is shared.
		got := burst(60, func(i int) error {
			pass := "wrong guess " + strconv.Itoa(i)
			if i == 17 {
				pass = alicePass
			}
			err := e.loginFrom(t, "198.51.100."+strconv.Itoa(i+1), aliceID, pass, state)
			if i == 17 {
				rightErr = err
			}
			return err
		})
		t.Logf("answers %v; the right one %q; right passwords checked %d", got, kindOf(rightErr), e.users.rightVerified.Load())
		if e.users.rightVerified.Load() == 1 && rightErr != nil {
			t.Fatalf("the right password was checked and answered %v", rightErr)
		}
	})
}

// A storm of right passwords at one account from one address (a NAT, the
// load tool) all sign in, on one replica and across two: attempts beyond
// what the limits admit at once wait for a place instead of being refused.
func TestLoginStormOfOneAccount(t *testing.T) {
	e := newEnv(t, options{})
	twin := e.twin(t)
	const n = 80
	states := make([]string, n)
	for i := range states {
		states[i] = e.authorize(t, keyA)
	}
	got := burst(n, func(i int) error {
		replica := e
		if i%2 == 1 {
			replica = twin
		}
		return replica.loginFrom(t, ip1, aliceID, alicePass, states[i])
	})
	if got[""] != n {
		t.Fatalf("answers %v; want %d successes", got, n)
	}
	// Nothing is held or counted afterwards.
	if n := countKeys(t, e, e.prefix+"fail:*"); n != 0 {
		t.Fatalf("%d counters left after successes", n)
	}
}
