package e2e

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/moreline/moreid/e2e/harness"
)

// verifies is how many password checks the user service has answered.
func verifies(t *testing.T, s *harness.Suite) float64 {
	t.Helper()
	m := scrape(t, s.Env, "user")
	var n float64
	for _, code := range []string{"OK", "Unauthenticated", "PermissionDenied"} {
		n += rpcCount(m, rpcVerifyPassword, code)
	}
	return n
}

// atOnce runs n calls at once (the goroutines released by one signal, so
// that they really race) and returns their results in call order.
func atOnce[T any](n int, call func(i int) T) []T {
	results := make([]T, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = call(i)
		})
	}
	close(start)
	wg.Wait()
	return results
}

// together runs n calls at once and tallies their HTTP statuses.
func together(n int, call func(i int) int) map[int]int {
	tally := map[int]int{}
	for _, status := range atOnce(n, call) {
		tally[status]++
	}
	return tally
}

// TestLoginBurst: 120 parallel wrong passwords at one user from one address,
// through the gateway, cost what ten sequential ones do; meanwhile the user
// signs in from her own address.
func TestLoginBurst(t *testing.T) {
	// The gateway believes X-Forwarded-For from loopback: each request
	// names its client address.
	s := harness.Start(t, harness.Options{Env: map[string]string{"MOREID_TRUSTED_PROXIES": "127.0.0.0/8"}})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Burst app"))
	const n = 120
	states := make([]string, n)
	for i := range states {
		states[i] = app.authorize(t)
	}
	before := verifies(t, s)
	var mu sync.Mutex
	var wrongAnswers []answer
	got := together(n, func(i int) int {
		a := app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": "guess " + strconv.Itoa(i), "state": states[i]},
			"X-Forwarded-For", "203.0.113.7")
		mu.Lock()
		defer mu.Unlock()
		if a.Status == 429 {
			wrongAnswers = append(wrongAnswers, a)
		}
		return a.Status
	})
	checked := verifies(t, s) - before
	t.Logf("%d parallel guesses through the gateway: %v passwords checked, statuses %v", n, checked, got)
	if checked != 10 || got[401] != 10 || got[429] != n-10 {
		t.Fatalf("%v passwords checked, statuses %v; want 10 checked, 10 × 401, %d × 429", checked, got, n-10)
	}
	expectError(t, wrongAnswers[0], 429, "rate_limited")
	if ra, err := strconv.Atoi(wrongAnswers[0].Header.Get("Retry-After")); err != nil || ra < 1 || ra > 900 {
		t.Fatalf("Retry-After %q", wrongAnswers[0].Header.Get("Retry-After"))
	}
	// The attacker's address is refused now, right password or not; the
	// user's own is not.
	a := app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": alicePassword, "state": app.authorize(t)}, "X-Forwarded-For", "203.0.113.7")
	expectError(t, a, 429, "rate_limited")
	a = app.do(t, "POST", "/api/oauth/login", map[string]string{"user_id": "alice", "password": alicePassword, "state": app.authorize(t)}, "X-Forwarded-For", "198.51.100.20")
	expectSuccess(t, a, "登录成功")
}

// TestPageSignInBurst: 80 parallel sign-ins on one confirmation page (the
// form needs no API key) check five passwords; then that page signs
// nobody in, and another page still does.
func TestPageSignInBurst(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	s.CreateUser(t, "alice", "Alice", "alice@example.com", alicePassword)
	app := newClient(s.BaseURL, s.CreateKey(t, "Page app"))
	_, uca := app.startSafeLogin(t)

	// One visit to the page gives the form, its hidden fields and its
	// double-submit cookie; the burst posts that form 80 times at once.
	person := newPageClient(t, s.BaseURL)
	page := person.get(t, confirmationURL(s.BaseURL, uca))
	form := page.byID("login")
	if form == nil {
		t.Fatalf("no form#login:\n%s", page.Body)
	}
	fields := url.Values{}
	walk(form, func(n *html.Node) {
		if n.Type == html.ElementNode && n.DataAtom == atom.Input && attr(n, "type") == "hidden" {
			fields.Set(attr(n, "name"), attr(n, "value"))
		}
	})
	action, err := page.URL.Parse(attr(form, "action"))
	if err != nil {
		t.Fatal(err)
	}
	cookies := person.hc.Jar.Cookies(page.URL)
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(userID, password string) int {
		v := url.Values{}
		for k, vs := range fields {
			v[k] = vs
		}
		v.Set("user_id", userID)
		v.Set("password", password)
		req, err := http.NewRequest("POST", action.String(), strings.NewReader(v.Encode()))
		if err != nil {
			t.Error(err)
			return 0
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", page.URL.Scheme+"://"+page.URL.Host)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	const n = 80
	before := verifies(t, s)
	got := together(n, func(i int) int { return post("alice", "guess "+strconv.Itoa(i)) })
	checked := verifies(t, s) - before
	t.Logf("%d parallel sign-ins on one page: %v passwords checked, statuses %v", n, checked, got)
	if checked != 5 || got[401] != 5 || got[429] != n-5 {
		t.Fatalf("%v passwords checked, statuses %v; want 5 checked, 5 × 401, %d × 429", checked, got, n-5)
	}
	if status := post("alice", alicePassword); status != 429 {
		t.Fatalf("the right password on the burned page: status %d, want 429", status)
	}
	_, other := app.startSafeLogin(t)
	if code := newPageClient(t, s.BaseURL).confirm(t, other, "alice", alicePassword); !loginCodeFormat.MatchString(code) {
		t.Fatalf("login code %q on another page", code)
	}
}
