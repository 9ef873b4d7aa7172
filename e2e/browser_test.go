package e2e

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/moreline/moreid/e2e/harness"
	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/grpcx"
	"github.com/moreline/moreid/platform/secret"
	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// chromiumPath is Debian's chromium, which .ci/run installs when missing.
// chromedp only ever starts this binary; it downloads nothing.
const chromiumPath = "/usr/bin/chromium"

// The phone the person holds: the confirmation page must work at this size.
const phoneWidth, phoneHeight = 390, 844

// TestSafeLoginInBrowser plays the person in headless Chromium at phone size
// while the seed document's own Python examples play the app: the safe login
// example (second python block) and the user/update example (third), each
// with only BASE_URL and API_KEY replaced, and for user/update the
// placeholder cookie replaced by the one the browser got.
func TestSafeLoginInBrowser(t *testing.T) {
	py := seedBlocks(t, "python")
	interpreter := python(t)
	ctx := newBrowser(t)
	s := harness.Start(t, harness.Options{})
	// The examples sign in (and update) as testid / Test123456.
	s.CreateUser(t, "testid", "测试用户", "test@example.com", "Test123456")
	const appName = "安全登录示例应用"
	key := s.CreateKey(t, appName)
	app := newClient(s.BaseURL, key)

	t.Run("python safe login (block 2)", func(t *testing.T) {
		ex := startExample(t, interpreter, configure(t, py[1], s.BaseURL, key))
		m := ex.waitFor(t, regexp.MustCompile(`确认页面URL: (\S+)`))
		pageURL := m[1]
		if !strings.HasPrefix(pageURL, s.BaseURL+"/api/oauth/user_confirmation?uca=uca_") {
			t.Fatalf("the example printed the confirmation URL %q", pageURL)
		}

		resp, err := chromedp.Run(timeout(t, ctx), chromedp.NavigateResponse(pageURL))
		if err != nil || resp.Status != 200 {
			t.Fatalf("open %s: %v (status %v)", pageURL, err, statusOf(resp))
		}
		browse(t, ctx, "sign-in form",
			chromedp.WaitVisible(chromedp.CSS(`form#login`)),
			chromedp.SendKeys(chromedp.CSS(`form#login input[name="user_id"]`), "testid"),
			chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), "Test123456"),
		)
		if text := pageText(t, ctx); !strings.Contains(text, appName) {
			t.Errorf("the page does not name the app asking (%q):\n%s", appName, text)
		}
		screenshot(t, ctx, "signin")

		// Enter in the password field submits, as on a phone keyboard.
		navigate(t, ctx, "sign in", 200, chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), "\r"))
		browse(t, ctx, "confirm or deny",
			chromedp.WaitVisible(chromedp.CSS(`button#confirm`)),
			chromedp.WaitVisible(chromedp.CSS(`button#deny`)),
		)
		screenshot(t, ctx, "confirm")

		navigate(t, ctx, "confirm", 200, chromedp.Click(chromedp.CSS(`button#confirm`)))
		browse(t, ctx, "login code", chromedp.WaitVisible(chromedp.CSS(`#login-code`)))
		code, err := chromedp.Run(timeout(t, ctx), chromedp.Text(chromedp.CSS(`#login-code`)))
		if err != nil {
			t.Fatal(err)
		}
		code = strings.TrimSpace(code)
		if !loginCodeFormat.MatchString(code) {
			t.Fatalf("#login-code shows %q, want 10 characters of %q", code, secret.LoginCode)
		}
		// The countdown below the copy button must not touch it (it did:
		// the button's margin was the only space and it is above it).
		gap, err := chromedp.Run(timeout(t, ctx), chromedp.Evaluate[float64](
			`document.querySelector("#copy + .timer").getBoundingClientRect().top - document.querySelector("#copy").getBoundingClientRect().bottom`))
		if err != nil || gap < 8 {
			t.Errorf("the time-left line is %v px below the copy button (%v), want at least 8", gap, err)
		}
		// The favicon the page links loads under the page's own CSP (an
		// image the CSP refused would fire onerror, not onload).
		icon, err := chromedp.Run(timeout(t, ctx), chromedp.Evaluate[string](`new Promise(resolve => {
			const link = document.querySelector('link[rel="icon"]');
			if (!link) { resolve("no link rel=icon"); return; }
			const img = new Image();
			img.onload = () => resolve(img.naturalWidth > 0 ? "" : "an empty image");
			img.onerror = () => resolve("the icon " + link.href + " does not load");
			img.src = link.href;
		})`, chromedp.EvalAwaitPromise))
		if err != nil || icon != "" {
			t.Errorf("favicon: %s (%v)", icon, err)
		}
		screenshot(t, ctx, "code")

		// The person types the code into the app's prompt (getpass reads
		// it from stdin: the example runs without a terminal).
		ex.waitFor(t, regexp.MustCompile(`请输入浏览器中显示的10位登录码`))
		ex.send(t, code+"\n")
		out := ex.wait(t)
		if !strings.Contains(out, "🎉 OAuth安全登录流程测试成功完成") || strings.Contains(out, "✗") {
			t.Fatalf("the example did not complete the safe login:\n%s", out)
		}

		// The UCA is used up: opening its page again is an error page.
		resp, err = chromedp.Run(timeout(t, ctx), chromedp.NavigateResponse(pageURL))
		if err != nil || resp.Status != 409 {
			t.Errorf("reopening the used UCA: %v (status %v), want 409", err, statusOf(resp))
		}
	})

	t.Run("python user/update (block 3) with the browser's session cookie", func(t *testing.T) {
		session := sessionCookie(t, ctx, s.BaseURL)
		// The example's own comment shows the cookie as a name=value string
		// (`"session=.eJ..."`); Moreid's session cookie is moreid_session.
		withCookie := func(value string) string {
			code := configure(t, py[2], s.BaseURL, key)
			const placeholder = `user_cookie = "your_user_cookie_here"`
			if strings.Count(code, placeholder) != 1 {
				t.Fatalf("the user/update example has no %s line", placeholder)
			}
			return strings.Replace(code, placeholder, `user_cookie = "`+wire.SessionCookie+`=`+value+`"`, 1)
		}
		username := func() string {
			a := app.do(t, "POST", "/api/oauth/user/info", map[string]string{"user_id": "testid"})
			user, _ := a.Body["user"].(map[string]any)
			name, _ := user["username"].(string)
			return name
		}

		forged := strings.Repeat("x", len(session))
		if out := runExample(t, interpreter, ".py", withCookie(forged), ""); !strings.Contains(out, "✗ 用户信息更新失败") {
			t.Fatalf("a forged cookie did not fail:\n%s", out)
		}
		if got := username(); got != "测试用户" {
			t.Fatalf("after the forged update the username is %q", got)
		}

		out := runExample(t, interpreter, ".py", withCookie(session), "")
		if !strings.Contains(out, "✓ 用户信息更新成功") || !strings.Contains(out, "更新后的用户名: newusername") {
			t.Fatalf("the update with the browser's cookie did not succeed:\n%s", out)
		}
		if got := username(); got != "newusername" {
			t.Fatalf("user/info says %q after the update, want newusername", got)
		}
	})

	t.Run("deny ends the UCA", func(t *testing.T) {
		if _, err := chromedp.Call(timeout(t, ctx), network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		_, uca := app.startSafeLogin(t)
		pageURL := confirmationURL(s.BaseURL, uca)
		browse(t, ctx, "sign-in form",
			chromedp.Navigate(pageURL),
			chromedp.WaitVisible(chromedp.CSS(`form#login`)),
			chromedp.SendKeys(chromedp.CSS(`form#login input[name="user_id"]`), "testid"),
		)
		navigate(t, ctx, "sign in", 200, chromedp.SendKeys(chromedp.CSS(`form#login input[name="password"]`), "Test123456\r"))
		browse(t, ctx, "confirm or deny", chromedp.WaitVisible(chromedp.CSS(`button#deny`)))
		navigate(t, ctx, "deny", 200, chromedp.Click(chromedp.CSS(`button#deny`)))
		left, err := chromedp.Run(timeout(t, ctx), chromedp.Evaluate[int](`document.querySelectorAll("#login-code, button#confirm, button#deny").length`))
		if err != nil || left != 0 {
			t.Errorf("after deny the page still has #login-code or the buttons (%d, %v)", left, err)
		}
		if text := pageText(t, ctx); !strings.Contains(text, "拒绝") {
			t.Errorf("the page does not say the sign-in was refused (拒绝):\n%s", text)
		}
		checkScreenshot(t, "denied", capture(t, ctx))

		resp, err := chromedp.Run(timeout(t, ctx), chromedp.NavigateResponse(pageURL))
		if err != nil || resp.Status != 409 {
			t.Errorf("reopening the denied UCA: %v (status %v), want 409", err, statusOf(resp))
		}

		// Even the signed-in person, with a valid CSRF token, can make no
		// login code from it any more: neither through the REST mapping
		// nor through ConfirmationService itself.
		session := sessionCookie(t, ctx, s.BaseURL)
		expectError(t, newClient(s.BaseURL, "").do(t, "POST", "/api/oauth/generate_login_code", map[string]string{"uca": uca},
			"Cookie", wire.SessionCookie+"="+session, "X-Csrf-Token", wire.CSRFToken(session)), 409, "invalid_code")
		conn, err := grpcx.Dial(s.Env["MOREID_AUTH_ADDR"])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		gctx := metadata.AppendToOutgoingContext(timeout(t, context.Background()),
			wire.Session, session, wire.CSRF, wire.CSRFToken(session))
		_, err = authv1.NewConfirmationServiceClient(conn).GenerateLoginCode(gctx, &authv1.GenerateLoginCodeRequest{Uca: uca})
		if st := status.Convert(err); st.Code() != codes.Aborted || apierr.FromStatus(st).Kind != apierr.InvalidCode {
			t.Errorf("GenerateLoginCode for a denied UCA: %v, want ABORTED invalid_code", err)
		}
	})
}

// newBrowser starts headless Chromium with a fresh profile, at phone size.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Chromium at %s (.ci/run installs Debian's chromium package): %v", chromiumPath, err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first call starts the browser and binds it to ctx, which has no
	// deadline; every later step gets its own (timeout).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(phoneWidth, phoneHeight,
		chromedp.EmulateScale(1), chromedp.EmulateMobile, chromedp.EmulateTouch)); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// timeout bounds one browser step (or one call) to 15 s.
func timeout(t testing.TB, ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// browse runs browser steps and fails the test with what was being done.
func browse(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(timeout(t, ctx), steps...); err != nil {
		t.Fatalf("browser, %s: %v\npage text: %s", what, err, pageText(t, ctx))
	}
}

// navigate runs a step that makes the page navigate (a form submission),
// waits for the new document and checks its HTTP status.
func navigate(t *testing.T, ctx context.Context, what string, status int64, step chromedp.Action[chromedp.Void]) {
	t.Helper()
	resp, err := chromedp.RunResponse(timeout(t, ctx), step)
	if err != nil {
		t.Fatalf("browser, %s: %v\npage text: %s", what, err, pageText(t, ctx))
	}
	if resp.Status != status {
		t.Fatalf("browser, %s: status %d, want %d\npage text: %s", what, resp.Status, status, pageText(t, ctx))
	}
}

// pageText is what the person reads on the page.
func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	text, err := chromedp.Run(timeout(t, ctx), chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return text
}

func statusOf(resp *network.Response) any {
	if resp == nil {
		return "none"
	}
	return resp.Status
}

// sessionCookie is the value of the browser's moreid_session cookie for
// base, which must be HttpOnly and SameSite=Lax.
func sessionCookie(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	res, err := chromedp.Call(timeout(t, ctx), network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name != wire.SessionCookie {
			continue
		}
		if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" {
			t.Errorf("moreid_session: HttpOnly %v, SameSite %q, Path %q; want HttpOnly, Lax, /", c.HTTPOnly, c.SameSite, c.Path)
		}
		return c.Value
	}
	t.Fatalf("the browser has no moreid_session cookie for %s", base)
	return ""
}

// capture screenshots the viewport and checks the page fits the phone's
// width (no sideways scrolling).
func capture(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	fits, err := chromedp.Run(timeout(t, ctx), chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
	if err != nil || !fits {
		t.Errorf("the page is wider than the %d px phone screen (%v)", phoneWidth, err)
	}
	buf, err := chromedp.Run(timeout(t, ctx), chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// screenshot captures the page and, with MOREID_UPDATE_SCREENSHOTS=1, writes
// it to docs/screenshots/<name>.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf := capture(t, ctx)
	checkScreenshot(t, name, buf)
	if os.Getenv("MOREID_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	// Without a Chinese font the page's text renders as empty boxes: such
	// screenshots must not replace the documented ones.
	if out, err := exec.Command("fc-list", ":lang=zh").Output(); err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("MOREID_UPDATE_SCREENSHOTS=1 needs a Chinese font for Chromium (Debian: apt-get install fonts-noto-cjk); fc-list :lang=zh: %v", err)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkScreenshot asserts a valid PNG exactly as wide as the phone.
func checkScreenshot(t *testing.T, name string, buf []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if w := img.Bounds().Dx(); w != phoneWidth {
		t.Errorf("screenshot %s is %d px wide, want %d", name, w, phoneWidth)
	}
}

// example is a seed example running as a separate process that the test
// talks to through its stdin and reads as it writes.
type example struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	err   error

	mu  sync.Mutex
	out bytes.Buffer
}

// startExample runs Python code in a new session, so that it has no
// controlling terminal: getpass then reads from stdin. BROWSER=true makes
// webbrowser.open run `true URL` instead of a browser.
func startExample(t *testing.T, interpreter, code string) *example {
	t.Helper()
	file := filepath.Join(t.TempDir(), "example.py")
	if err := os.WriteFile(file, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(interpreter, file)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8", "PYTHONUNBUFFERED=1", "BROWSER=true", "NO_PROXY=*", "no_proxy=*")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	ex := &example{cmd: cmd, done: make(chan struct{})}
	var err error
	if ex.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", interpreter, err)
	}
	var readers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		readers.Go(func() {
			buf := make([]byte, 4096)
			for {
				n, err := r.Read(buf)
				ex.mu.Lock()
				ex.out.Write(buf[:n])
				ex.mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		ex.err = cmd.Wait()
		close(ex.done)
	}()
	t.Cleanup(func() {
		select {
		case <-ex.done:
		default:
			_ = cmd.Process.Kill()
			<-ex.done
		}
	})
	return ex
}

func (ex *example) output() string {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.out.String()
}

// waitFor waits up to 20 s for the output to match re and returns the match.
func (ex *example) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(ex.output()); m != nil {
			return m
		}
		select {
		case <-ex.done:
			if m := re.FindStringSubmatch(ex.output()); m != nil {
				return m
			}
			t.Fatalf("the example ended (%v) without printing %s:\n%s", ex.err, re, ex.output())
		case <-deadline:
			t.Fatalf("the example did not print %s within 20 s:\n%s", re, ex.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// send types into the example's stdin and closes it.
func (ex *example) send(t *testing.T, input string) {
	t.Helper()
	if _, err := io.WriteString(ex.stdin, input); err != nil {
		t.Fatalf("writing to the example: %v\n%s", err, ex.output())
	}
	ex.stdin.Close()
}

// wait waits up to 20 s for the example to exit 0 and returns its output.
func (ex *example) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-ex.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the example did not exit within 20 s:\n%s", ex.output())
	}
	if ex.err != nil {
		t.Fatalf("the example failed: %v\n%s", ex.err, ex.output())
	}
	return ex.output()
}
