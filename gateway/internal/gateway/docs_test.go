package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"

	"github.com/moreline/moreid/platform/apierr"
)

// documented are the REST operations of SPEC section 2 (all but the HTML
// page) and section 6.
var documented = []string{
	"GET /api/oauth/authorize",
	"POST /api/oauth/login",
	"POST /api/oauth/token",
	"POST /api/oauth/user/update",
	"POST /api/oauth/user/info",
	"POST /api/oauth/ucaoncecode",
	"POST /api/oauth/generate_login_code",
	"POST /api/oauth/login_safe",
	"GET /api/oauth/token/user",
	"GET /api/oauth/userinfo",
}

type openAPI struct {
	Info struct {
		Title, Description string
	}
	Paths map[string]map[string]struct {
		Responses map[string]struct {
			Description string
			Schema      map[string]any
			Examples    map[string]map[string]any
		}
	}
}

func fetch(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, raw
}

// TestAPIDocs: /api/openapi.json describes every documented operation with
// its error answers, and /api/docs shows exactly the same operations and
// statuses.
func TestAPIDocs(t *testing.T) {
	b := startBackend(t)
	srv := startGateway(t, b.conn, nil, discard())

	res, raw := fetch(t, srv.URL+"/api/openapi.json")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("openapi.json: status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var spec openAPI
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Info.Title != "Moreid REST API" || spec.Info.Description == "" {
		t.Fatalf("info %+v", spec.Info)
	}
	specOps := map[string][]string{} // "METHOD path" -> statuses
	for path, methods := range spec.Paths {
		for m, op := range methods {
			var statuses []string
			for s := range op.Responses {
				statuses = append(statuses, s)
			}
			slices.Sort(statuses)
			specOps[strings.ToUpper(m)+" "+path] = statuses
		}
	}

	res, raw = fetch(t, srv.URL+"/api/docs")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("docs: status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "http") {
		t.Fatalf("docs Content-Security-Policy %q", csp)
	}
	if strings.Contains(string(raw), "http://") || strings.Contains(string(raw), "https://") {
		t.Fatal("docs reference an external URL")
	}
	doc, err := html.Parse(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	docOps := map[string][]string{}
	for _, sec := range findAll(doc, func(n *html.Node) bool { return n.Data == "section" && attr(n, "data-method") != "" }) {
		key := attr(sec, "data-method") + " " + attr(sec, "data-path")
		if _, dup := docOps[key]; dup {
			t.Errorf("docs list %s twice", key)
		}
		var statuses []string
		for _, r := range findAll(sec, func(n *html.Node) bool { return attr(n, "data-status") != "" }) {
			statuses = append(statuses, attr(r, "data-status"))
		}
		slices.Sort(statuses)
		docOps[key] = statuses
	}

	t.Run("docs and OpenAPI list the same operations and statuses", func(t *testing.T) {
		if !reflect.DeepEqual(docOps, specOps) {
			t.Fatalf("docs %v\nopenapi %v", docOps, specOps)
		}
	})
	t.Run("every documented path is described", func(t *testing.T) {
		for _, op := range documented {
			if _, ok := specOps[op]; !ok {
				t.Errorf("%s missing from openapi.json", op)
			}
			if _, ok := docOps[op]; !ok {
				t.Errorf("%s missing from /api/docs", op)
			}
		}
		if len(specOps) != len(documented) {
			t.Errorf("openapi.json has %d operations, want the %d documented ones: %v", len(specOps), len(documented), specOps)
		}
	})
	t.Run("error answers have the documented shape and Chinese messages", func(t *testing.T) {
		allowed := map[string]bool{"400": true, "401": true, "403": true, "404": true, "408": true, "409": true, "429": true, "500": true, "503": true}
		for path, methods := range spec.Paths {
			for m, op := range methods {
				for _, must := range []string{"200", "401", "500", "503"} {
					if _, ok := op.Responses[must]; !ok {
						t.Errorf("%s %s does not document %s", m, path, must)
					}
				}
				for status, r := range op.Responses {
					if status == "200" {
						continue
					}
					if !allowed[status] {
						t.Errorf("%s %s documents status %s", m, path, status)
					}
					ex := r.Examples["application/json"]
					kind, _ := ex["error"].(string)
					msg, _ := ex["message"].(string)
					if ex["success"] != false || kind == "" || !hasHan(msg) || !hasHan(r.Description) {
						t.Errorf("%s %s %s: example %v, description %q", m, path, status, ex, r.Description)
						continue
					}
					if got := apierr.HTTPStatus(apierr.Kind(kind)); status != strconv.Itoa(got) {
						t.Errorf("%s %s %s: example kind %s answers %d", m, path, status, kind, got)
					}
					if msg != apierr.DefaultMessage(apierr.Kind(kind)) {
						t.Errorf("%s %s %s: message %q is not %s's %q", m, path, status, msg, kind, apierr.DefaultMessage(apierr.Kind(kind)))
					}
				}
			}
		}
	})
	t.Run("docs show request and response fields in proto order", func(t *testing.T) {
		sec := findAll(doc, func(n *html.Node) bool { return attr(n, "data-path") == "/api/oauth/login" })[0]
		body := text(sec)
		fields := []string{"user_id", "password", "state", "code", "user.id", "user.username", "user.user_id", "user.email"}
		last := -1
		for _, f := range fields {
			i := strings.Index(body, f)
			if i < 0 || i < last {
				t.Fatalf("login section lacks %q or shows it out of order:\n%s", f, body)
			}
			last = i
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		assertError(t, send(t, srv, request{method: "POST", path: "/api/docs", body: "{}"}), 405, apierr.MethodNotAllowed, "")
	})
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}
