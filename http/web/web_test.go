package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// eachEnv runs f once per database engine with a fresh Switchboard and UI.
func eachEnv(t *testing.T, f func(t *testing.T, e *testEnv)) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) { f(t, newTestEnv(t, d)) })
}

var roles = []string{"admin", "limited", "inbox", "bulk", "manual"}

// route is one page or action with the roles that may use it.
type route struct {
	method, path string
	form         url.Values
	allowed      []string
}

func (r route) allows(role string) bool {
	for _, a := range r.allowed {
		if a == role {
			return true
		}
	}
	return false
}

func routes(e *testEnv, batchID string) []route {
	all := roles
	phone := url.QueryEscape("+12025550142")
	return []route{
		{"GET", "/ui/", nil, all},
		{"GET", "/ui/conversation?phone=" + phone, nil, all},
		{"GET", "/ui/conversation/thread?phone=" + phone, nil, all},
		{"POST", "/ui/segments", url.Values{"body": {"hi"}}, all},
		{"GET", "/ui/templates/preview?template_id=none", nil, all},
		{"POST", "/ui/conversation/send", url.Values{"phone": {"+12025550142"}, "gateway": {e.Gateway.ID}}, all},
		{"POST", "/ui/conversation/subscription", url.Values{"phone": {"+12025550142"}, "sub_gateway": {e.Gateway.ID}, "status": {"bogus"}}, []string{"admin", "manual"}},
		{"GET", "/ui/inbox", nil, []string{"admin", "inbox"}},
		{"POST", "/ui/inbox/read", nil, []string{"admin", "inbox"}},
		{"GET", "/ui/bulk", nil, []string{"admin", "bulk"}},
		{"POST", "/ui/bulk/preview", nil, []string{"admin", "bulk"}},
		{"POST", "/ui/bulk/send", nil, []string{"admin", "bulk"}},
		{"GET", "/ui/bulk/" + batchID, nil, []string{"admin", "bulk"}},
		{"GET", "/ui/bulk/" + batchID + "/progress", nil, []string{"admin", "bulk"}},
		{"GET", "/ui/dashboard", nil, []string{"admin"}},
		{"GET", "/ui/chat/exports", nil, []string{"admin"}},
		{"POST", "/ui/chat/exports/re-export-skipped", nil, []string{"admin"}},
		{"POST", "/ui/chat/exports/nope/re-export", nil, []string{"admin"}},
		{"GET", "/ui/chat/settings", nil, []string{"admin"}},
		{"POST", "/ui/chat/settings", url.Values{"user_assignment": {"bogus"}}, []string{"admin"}},
		{"GET", "/ui/settings", nil, []string{"admin"}},
		{"GET", "/ui/settings/gateway-fields?provider=sim", nil, []string{"admin"}},
		{"POST", "/ui/settings/api-key", nil, []string{"admin"}},
		{"POST", "/ui/settings/toggles", url.Values{"name": {"bogus"}}, []string{"admin"}},
		{"POST", "/ui/settings/opt-in", url.Values{"mode": {"bogus"}}, []string{"admin"}},
		{"POST", "/ui/settings/salesforce/authorize", nil, []string{"admin"}},
		{"POST", "/ui/settings/salesforce/revoke", nil, []string{"admin"}},
		{"POST", "/ui/settings/salesforce/check", nil, []string{"admin"}},
		{"POST", "/ui/settings/gateways", url.Values{"provider": {"sim"}}, []string{"admin"}},
		{"POST", "/ui/settings/gateways/test", url.Values{"gateway": {e.Gateway.ID}}, []string{"admin"}},
		{"POST", "/ui/logout", nil, all},
	}
}

// TestPermissionsOnEveryRoute checks every page and action as a user of
// each permission set: the ones not allowed answer 403 naming the
// permission set; nothing answers without a session.
func TestPermissionsOnEveryRoute(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		res, err := e.Hub.Bulk(context.Background(), e.Admin, hub.BulkRequest{GatewayID: e.Gateway.ID, Body: "hi", Recipients: []hub.Recipient{{To: "+12025550142"}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range roles {
			t.Run(role, func(t *testing.T) {
				b := e.signIn(t, role)
				for _, r := range routes(e, res.BatchID) { // sign-out last
					var p *result
					if r.method == "GET" {
						p = b.get(r.path)
					} else {
						p = b.post(r.path, r.form)
					}
					forbidden := p.Status == http.StatusForbidden
					if r.allows(role) && forbidden {
						t.Errorf("%s %s as %s: 403, want allowed: %s", r.method, r.path, role, p.Body)
					}
					if !r.allows(role) {
						if !forbidden {
							t.Errorf("%s %s as %s: %d, want 403", r.method, r.path, role, p.Status)
						} else if !p.has("System Admin") {
							t.Errorf("%s %s as %s: the 403 page does not name the permission sets", r.method, r.path, role)
						}
					}
					if p.Status >= 500 && p.Status != http.StatusServiceUnavailable {
						t.Errorf("%s %s as %s: %d", r.method, r.path, role, p.Status)
					}
				}
			})
		}
		t.Run("signed out", func(t *testing.T) {
			b := e.browser(t)
			for _, r := range routes(e, res.BatchID) {
				var p *result
				if r.method == "GET" {
					p = b.get(r.path)
				} else {
					p = b.post(r.path, r.form)
				}
				loc := p.Header.Get("Location")
				if p.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/login") {
					t.Errorf("%s %s signed out: %d to %q, want 303 to the sign-in page", r.method, r.path, p.Status, loc)
				}
				if r.method == "GET" && loc != "/ui/login?next="+url.QueryEscape(r.path) {
					t.Errorf("GET %s signed out: sent to %q, want it to come back after sign-in", r.path, loc)
				}
			}
			// htmx requests (a thread's poll) are sent to the sign-in page whole.
			p := b.get("/ui/conversation/thread?phone=%2B12025550142", "HX-Request", "true")
			if p.Status != http.StatusUnauthorized || p.Header.Get("HX-Redirect") != "/ui/login" {
				t.Errorf("htmx poll signed out: %d HX-Redirect %q", p.Status, p.Header.Get("HX-Redirect"))
			}
		})
	})
}

func (e *testEnv) apiKeys(t *testing.T) int {
	t.Helper()
	keys, err := e.DB.APIKeys(context.Background(), e.Org.ID)
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

func TestCSRF(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		admin := e.signIn(t, "admin")
		other := e.signIn(t, "admin") // a second session of the same user
		before := e.apiKeys(t)
		for _, tc := range []struct {
			name    string
			form    url.Values
			headers []string
			want    int
		}{
			{"no token", url.Values{"csrf": {""}}, nil, http.StatusForbidden},
			{"forged token", url.Values{"csrf": {"forged"}}, nil, http.StatusForbidden},
			{"another session's token", url.Values{"csrf": {other.csrf}}, nil, http.StatusForbidden},
			{"token prefix", url.Values{"csrf": {admin.csrf[:len(admin.csrf)-1]}}, nil, http.StatusForbidden},
			{"right token from another site", nil, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
			{"forged header", url.Values{"csrf": {""}}, []string{"X-CSRF-Token", "forged", "HX-Request", "true"}, http.StatusForbidden},
			{"right token in the form", nil, nil, http.StatusOK},
			{"right token in the htmx header", url.Values{"csrf": {""}}, []string{"X-CSRF-Token", admin.csrf, "HX-Request", "true"}, http.StatusOK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n := e.apiKeys(t)
				p := admin.post("/ui/settings/api-key", tc.form, tc.headers...)
				if p.Status != tc.want {
					t.Fatalf("status %d, want %d: %s", p.Status, tc.want, p.Body)
				}
				created := e.apiKeys(t) - n
				if tc.want == http.StatusForbidden && (created != 0 || !p.has("this form has expired")) {
					t.Fatalf("a rejected request created %d keys (page: %s)", created, p.Body)
				}
				if tc.want == http.StatusOK && created != 1 {
					t.Fatalf("an accepted request created %d keys", created)
				}
			})
		}
		if got := e.apiKeys(t) - before; got != 2 {
			t.Fatalf("%d keys created, want 2", got)
		}
		t.Run("sign-in form without its cookie", func(t *testing.T) {
			b := e.browser(t)
			p := b.do(http.MethodPost, "/ui/login", url.Values{"email": {e.Admin.Email}, "password": {testPassword}, "csrf": {"guess"}}.Encode(),
				"application/x-www-form-urlencoded", nil)
			if p.Status != http.StatusForbidden || p.Header.Get("Set-Cookie") == "" || strings.Contains(p.Header.Get("Set-Cookie"), sessionCookie) {
				t.Fatalf("sign-in without the double-submit cookie: %d %v", p.Status, p.Header["Set-Cookie"])
			}
		})
	})
}

// TestCSRFOnEveryPOSTRoute walks every POST route the UI registers and
// posts to it, as a signed-in System Admin (who may use them all), without
// the session's CSRF token, with a forged one, and with a forged htmx
// header: each is refused with 403 and changes nothing.
func TestCSRFOnEveryPOSTRoute(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		res, err := e.Hub.Bulk(ctx, e.Admin, hub.BulkRequest{GatewayID: e.Gateway.ID, Body: "hi", Recipients: []hub.Recipient{{To: "+12025550142"}}})
		if err != nil {
			t.Fatal(err)
		}
		e.WaitFor("the bulk send", func() bool { return len(e.Carrier.Inbox("+12025550142")) == 1 })
		state := func() string {
			msgs, _ := e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{Limit: 1000})
			gws, _ := e.DB.Gateways(ctx, e.Org.ID)
			org, _ := e.DB.Org(ctx, e.Org.ID)
			return fmt.Sprintf("%d messages, %d gateways, %d API keys, settings %+v", len(msgs), len(gws), e.apiKeys(t), org.Settings)
		}
		before := state()
		admin := e.signIn(t, "admin")
		posts := 0
		for _, rt := range e.UI.routeTable() {
			method, path, _ := strings.Cut(rt.Pattern, " ")
			if method != http.MethodPost {
				continue
			}
			posts++
			path = strings.NewReplacer("{id}", res.BatchID, "{$}", "").Replace(path)
			for _, tc := range []struct {
				name    string
				form    url.Values
				headers []string
			}{
				{"no token", url.Values{"csrf": {""}}, nil},
				{"forged token", url.Values{"csrf": {"forged"}}, nil},
				{"forged htmx header", url.Values{"csrf": {""}}, []string{"X-CSRF-Token", "forged", "HX-Request", "true"}},
			} {
				p := admin.post(path, tc.form, tc.headers...)
				if p.Status != http.StatusForbidden || !(p.has("this form has expired") || p.has("The sign-in form expired")) {
					t.Errorf("POST %s with %s: %d, want 403 naming the expired form", path, tc.name, p.Status)
				}
			}
		}
		if posts < 15 {
			t.Fatalf("found only %d POST routes", posts)
		}
		if after := state(); after != before {
			t.Fatalf("refused requests changed something:\nbefore %s\nafter  %s", before, after)
		}
		if p := admin.get("/ui/settings"); p.Status != http.StatusOK {
			t.Fatalf("the session did not survive the refused requests (a refused sign-out?): %d", p.Status)
		}
	})
}

// TestEveryRouteIsPermissionTested: the permissions test's table covers
// every route the UI registers, so a new page cannot skip it.
func TestEveryRouteIsPermissionTested(t *testing.T) {
	e := newTestEnv(t, store.SQLite)
	table := routes(e, "01b2c3d4-0000-7000-8000-000000000000")
	for _, rt := range e.UI.routeTable() {
		if rt.public != nil {
			continue // the sign-in form needs no session
		}
		m := http.NewServeMux()
		m.HandleFunc(rt.Pattern, func(http.ResponseWriter, *http.Request) {})
		found := false
		for _, r := range table {
			req := httptest.NewRequest(r.method, r.path, nil)
			if _, pattern := m.Handler(req); pattern == rt.Pattern {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("route %s is not in the permissions test's table", rt.Pattern)
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ui := e.UI.d
		t.Run("idle", func(t *testing.T) {
			b := e.signIn(t, "limited")
			e.Clock.Advance(ui.SessionIdle - time.Minute)
			if p := b.get("/ui/"); p.Status != http.StatusOK {
				t.Fatalf("before the idle timeout: %d", p.Status)
			}
			e.Clock.Advance(ui.SessionIdle - time.Minute) // the last request counts as use
			if p := b.get("/ui/"); p.Status != http.StatusOK {
				t.Fatalf("used within the idle timeout: %d", p.Status)
			}
			e.Clock.Advance(ui.SessionIdle + time.Second)
			if p := b.get("/ui/"); p.Status != http.StatusSeeOther {
				t.Fatalf("idle too long: %d, want a redirect to sign in", p.Status)
			}
			if p := b.post("/ui/conversation/send", url.Values{"phone": {"+12025550142"}, "body": {"x"}}); p.Status != http.StatusSeeOther {
				t.Fatalf("action after expiry: %d", p.Status)
			}
		})
		t.Run("absolute", func(t *testing.T) {
			b := e.signIn(t, "limited")
			step := ui.SessionIdle - time.Minute
			elapsed := time.Duration(0)
			for elapsed+step <= ui.SessionMaxAge {
				e.Clock.Advance(step)
				elapsed += step
				if p := b.get("/ui/"); p.Status != http.StatusOK {
					t.Fatalf("active session after %v: %d", elapsed, p.Status)
				}
			}
			e.Clock.Advance(ui.SessionMaxAge - elapsed + time.Second)
			if p := b.get("/ui/"); p.Status != http.StatusSeeOther {
				t.Fatalf("older than the maximum age: %d, want a redirect", p.Status)
			}
		})
		t.Run("sign-out ends the session", func(t *testing.T) {
			b := e.signIn(t, "limited")
			cookie := sessionToken(t, b)
			p := b.post("/ui/logout", nil)
			if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/ui/login?signed_out=1" {
				t.Fatalf("sign-out: %d %q", p.Status, p.Header.Get("Location"))
			}
			if _, err := e.DB.Session(context.Background(), tokenHash(cookie)); !sb.IsCode(err, sb.ENotFound) {
				t.Fatalf("session still stored after sign-out: %v", err)
			}
			// Replaying the old cookie does not sign in.
			replay := e.browser(t)
			u, _ := url.Parse(e.Srv.URL)
			replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: cookie, Path: "/"}})
			if p := replay.get("/ui/"); p.Status != http.StatusSeeOther {
				t.Fatalf("old cookie after sign-out: %d", p.Status)
			}
		})
		t.Run("cookie attributes", func(t *testing.T) {
			b := e.browser(t)
			lp := b.get("/ui/login")
			m := csrfField.FindStringSubmatch(lp.Body)
			p := b.do(http.MethodPost, "/ui/login", url.Values{"email": {e.Admin.Email}, "password": {testPassword}, "csrf": {m[1]}, "next": {"https://evil.example/"}}.Encode(), "application/x-www-form-urlencoded", nil)
			if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/ui/" {
				t.Fatalf("sign-in with a foreign next: %d to %q, want /ui/", p.Status, p.Header.Get("Location"))
			}
			var c *http.Cookie
			for _, ck := range (&http.Response{Header: p.Header}).Cookies() {
				if ck.Name == sessionCookie {
					c = ck
				}
			}
			if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.MaxAge != int(ui.SessionMaxAge.Seconds()) {
				t.Fatalf("session cookie: %+v", c)
			}
		})
	})
}

// TestSecureCookies: behind an https public URL the cookies are Secure and
// the session cookie takes the __Host- prefix.
func TestSecureCookies(t *testing.T) {
	e := newTestEnv(t, store.SQLite, func(d *Deps) { d.SecureCookies = true })
	b := e.browser(t)
	lp := b.get("/ui/login")
	m := csrfField.FindStringSubmatch(lp.Body)
	p := b.do(http.MethodPost, "/ui/login", url.Values{"email": {e.Admin.Email}, "password": {testPassword}, "csrf": {m[1]}}.Encode(), "application/x-www-form-urlencoded", nil)
	if p.Status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", p.Status)
	}
	cookies := (&http.Response{Header: p.Header}).Cookies()
	var session *http.Cookie
	for _, c := range append(cookies, (&http.Response{Header: lp.Header}).Cookies()...) {
		if !c.Secure || !c.HttpOnly {
			t.Errorf("cookie %s is not Secure and HttpOnly", c.Name)
		}
		if c.Name == secureSessionCookie {
			session = c
		}
	}
	if session == nil || session.Path != "/" || session.Domain != "" {
		t.Fatalf("session cookie: %+v", session)
	}
}

func sessionToken(t *testing.T, b *browser) string {
	t.Helper()
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func TestSignIn(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		noPassword := &sb.User{OrgID: e.Org.ID, Email: "api-only@example.org", Name: "API Only"}
		if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.CreateUser(ctx, noPassword, "") }); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, email, password string
			want                  int
			text                  string
		}{
			{"right password", e.Admin.Email, testPassword, http.StatusSeeOther, ""},
			{"email in another case", strings.ToUpper(e.Admin.Email), testPassword, http.StatusSeeOther, ""},
			{"wrong password", e.Admin.Email, "wrong password", http.StatusUnauthorized, "not right"},
			{"unknown user", "nobody@example.org", testPassword, http.StatusUnauthorized, "not right"},
			{"user without a password", noPassword.Email, "anything at all", http.StatusUnauthorized, "not right"},
			{"empty password", e.Admin.Email, "", http.StatusBadRequest, "Enter your email address and password"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := e.browser(t).login(tc.email, tc.password, tc.want)
				if tc.text != "" && !p.has(tc.text) {
					t.Fatalf("page lacks %q: %s", tc.text, p.Body)
				}
			})
		}
	})
}

func TestSignInRateLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		// Small limits keep the test quick (every attempt costs a bcrypt).
		e := newTestEnv(t, d, func(d *Deps) { d.MaxFailuresPerUser, d.MaxFailuresPerAddr = 3, 6 })
		email := e.Users["limited"].Email
		for range 3 {
			e.browser(t).login(email, "wrong password", http.StatusUnauthorized)
		}
		// Locked: even the right password is not checked now.
		p := e.browser(t).login(email, testPassword, http.StatusTooManyRequests)
		if !p.has("Too many failed sign-ins. Try again in 15 minutes.") || p.Header.Get("Retry-After") != "900" {
			t.Fatalf("locked page: %q %s", p.Header.Get("Retry-After"), p.Body)
		}
		// Another user is not locked by it.
		e.browser(t).login(e.Users["inbox"].Email, testPassword, http.StatusSeeOther)
		e.Clock.Advance(LoginWindow - time.Minute)
		p = e.browser(t).login(email, testPassword, http.StatusTooManyRequests)
		if !p.has("Try again in 1 minute.") {
			t.Fatalf("near the end of the window: %s", p.Body)
		}
		e.Clock.Advance(time.Minute)
		e.browser(t).login(email, testPassword, http.StatusSeeOther)
		// A success forgets the user's failures.
		for range 2 {
			e.browser(t).login(email, "wrong password", http.StatusUnauthorized)
		}
		e.browser(t).login(email, testPassword, http.StatusSeeOther)
		e.browser(t).login(email, "wrong password", http.StatusUnauthorized)

		// Per client address: failures for any email count together (3 of
		// the 6 are the limited user's since the window moved).
		for i := range 3 {
			e.browser(t).login(fmt.Sprintf("guess%d@example.org", i), "wrong password", http.StatusUnauthorized)
		}
		e.browser(t).login(e.Users["manual"].Email, testPassword, http.StatusTooManyRequests)
		e.Clock.Advance(LoginWindow)
		e.browser(t).login(e.Users["manual"].Email, testPassword, http.StatusSeeOther)
	})
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "/ui/",
		"/ui/inbox":                "/ui/inbox",
		"/ui/conversation?phone=1": "/ui/conversation?phone=1",
		"https://evil.example/ui/": "/ui/",
		"//evil.example/ui/":       "/ui/",
		"/ui/\\evil":               "/ui/",
		"/other":                   "/ui/",
		"/ui/\r\nSet-Cookie: x":    "/ui/",
		"javascript:alert(1)":      "/ui/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newTestEnv(t, store.SQLite)
	b := e.signIn(t, "admin")
	p := b.get("/ui/settings")
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
	} {
		if got := p.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP: %q", csp)
	}
	s := b.get("/ui/static/htmx.min.js")
	if s.Status != http.StatusOK || !strings.Contains(s.Header.Get("Content-Type"), "javascript") || !strings.Contains(s.Body, "version:\"2.0.11\"") {
		t.Errorf("htmx: %d %q", s.Status, s.Header.Get("Content-Type"))
	}
	if nf := b.get("/ui/nowhere"); nf.Status != http.StatusNotFound || !nf.has("there is no page at /ui/nowhere") {
		t.Errorf("unknown page: %d", nf.Status)
	}
}
