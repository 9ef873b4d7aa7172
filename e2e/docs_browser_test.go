package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/moreline/moreid/e2e/harness"
)

// TestAPIDocsOnPhone reads /api/docs in headless Chromium at the phone's
// 390 px: nothing may make the page scroll sideways, every table stays
// inside its operation's card, a header cell is one line (a squeezed column
// used to wrap 状态 one character a line), and a path wraps only between
// its segments. It writes docs/screenshots/docs.png beside the page's.
func TestAPIDocsOnPhone(t *testing.T) {
	ctx := newBrowser(t)
	s := harness.Start(t, harness.Options{})
	resp, err := chromedp.Run(timeout(t, ctx), chromedp.NavigateResponse(s.BaseURL+"/api/docs"))
	if err != nil || resp.Status != 200 {
		t.Fatalf("open /api/docs: %v (status %v)", err, statusOf(resp))
	}
	browse(t, ctx, "reference", chromedp.WaitVisible(chromedp.CSS(`section.op`)))

	// Each check returns what breaks it, one line per offender, "" when
	// nothing does: the failure then names the table, header or path.
	for _, tt := range []struct {
		name, script string
	}{
		{"the page is no wider than the phone", `
			document.documentElement.scrollWidth > document.documentElement.clientWidth
				? "scrollWidth " + document.documentElement.scrollWidth + " > clientWidth " + document.documentElement.clientWidth : ""`},
		{"every table stays inside its card", `
			[...document.querySelectorAll("section.op table")].flatMap(t => {
				const c = t.closest("section.op").getBoundingClientRect(), r = t.getBoundingClientRect();
				return r.left < c.left - 0.5 || r.right > c.right + 0.5
					? [t.closest("section.op").id + ": table " + r.left + ".." + r.right + " outside card " + c.left + ".." + c.right] : [];
			}).join("\n")`},
		{"every header cell is one line", `
			[...document.querySelectorAll("th")].flatMap(th => {
				const r = document.createRange(); r.selectNodeContents(th);
				const lines = new Set([...r.getClientRects()].map(b => Math.round(b.top))).size;
				return lines > 1 ? [th.closest("section.op").id + ": header " + JSON.stringify(th.textContent) + " on " + lines + " lines"] : [];
			}).join("\n")`},
		{"a path wraps only after a slash", `
			[...document.querySelectorAll("section.op h2 .path")].flatMap(p => {
				// Every word of the path (the text between slashes) must
				// sit on one line, whatever the markup inside .path.
				const text = p.textContent;
				const walker = document.createTreeWalker(p, NodeFilter.SHOW_TEXT);
				const nodes = []; for (let n; (n = walker.nextNode());) nodes.push(n);
				const bad = [];
				for (const n of nodes) {
					let start = 0;
					for (const w of n.data.split("/")) {
						if (w.length > 1) {
							const r = document.createRange(); r.setStart(n, start); r.setEnd(n, start + w.length);
							const lines = new Set([...r.getClientRects()].map(b => Math.round(b.top))).size;
							if (lines > 1) bad.push(text + ": " + JSON.stringify(w) + " broken over " + lines + " lines");
						}
						start += w.length + 1;
					}
				}
				return bad;
			}).join("\n")`},
		{"WWW-Authenticate is spelled as RFC 9110 does", `
			document.body.innerText.includes("Www-Authenticate") || !document.body.innerText.includes("WWW-Authenticate")
				? "the reference shows Www-Authenticate, or no WWW-Authenticate at all" : ""`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad, err := chromedp.Run(timeout(t, ctx), chromedp.Evaluate[string](tt.script))
			if err != nil {
				t.Fatal(err)
			}
			if bad = strings.TrimSpace(bad); bad != "" {
				t.Errorf("at %d px:\n%s", phoneWidth, bad)
			}
		})
	}

	// The screenshot shows an operation from its title down into its
	// request and response tables, the parts that used to spill out.
	if _, err := chromedp.Run(timeout(t, ctx), chromedp.Evaluate[bool](
		`(document.querySelector('section.op[data-path="/api/oauth/login"]').scrollIntoView({block: "start"}), true)`)); err != nil {
		t.Fatalf("scroll to the login operation: %v", err)
	}
	screenshot(t, ctx, "docs")
}
