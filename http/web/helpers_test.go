package web

import (
	"bytes"
	"context"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/form"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/link"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/store"
	sbtemplate "github.com/switchboard/switchboard/template"
)

// testPassword is every seeded user's password.
const testPassword = "correct horse battery"

// fakeClock is the UI's clock in tests: sessions and sign-in limits move
// only when a test moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEnv is a whole Switchboard with the UI mounted, the content features
// wired as cmd/switchboard wires them, and users holding each permission
// set.
type testEnv struct {
	*hubtest.Env
	Templates *sbtemplate.Service
	Forms     *form.Service
	Links     *link.Service
	Chat      *chat.Service
	UI        *UI
	Srv       *httptest.Server
	Clock     *fakeClock
	Users     map[string]*sb.User
}

// Seeded users by role: their permission sets.
var rolePerms = map[string][]sb.Permission{
	"limited": {sb.PermLimitedAccess},
	"inbox":   {sb.PermLimitedAccess, sb.PermInbox},
	"bulk":    {sb.PermLimitedAccess, sb.PermBulkSMS},
	"manual":  {sb.PermLimitedAccess, sb.PermManualOptInOut},
}

func newTestEnv(t testing.TB, d store.Dialect, deps ...func(*Deps)) *testEnv {
	t.Helper()
	return newTestEnvWith(t, d, hubtest.Options{}, deps...)
}

func newTestEnvWith(t testing.TB, d store.Dialect, ho hubtest.Options, deps ...func(*Deps)) *testEnv {
	t.Helper()
	var forms *form.Service
	var links *link.Service
	var chats *chat.Service
	setup := ho.Setup
	ho.Setup = func(he *hubtest.Env, cfg *river.Config) {
		forms, links = form.New(he.DB, he.Hub), link.New(he.DB, he.Hub, link.Options{})
		chats = chat.New(he.DB, he.Hub.CRMs, logging.Discard())
		if he.Hub.Salesforce != nil {
			chats.Connector = he.Hub.Salesforce
		}
		forms.AddWorkers(cfg.Workers)
		links.AddWorkers(cfg.Workers)
		chats.Workers(cfg.Workers)
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, forms.PeriodicJobs()...)
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, links.PeriodicJobs()...)
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, chats.PeriodicJobs()...)
		t.Cleanup(func() { _ = links.Close(context.Background()) })
		if setup != nil {
			setup(he, cfg)
		}
	}
	e := &testEnv{Env: hubtest.New(t, d, ho), Forms: forms, Links: links, Chat: chats, Clock: &fakeClock{t: time.Now().UTC()}, Users: map[string]*sb.User{}}
	e.Templates = sbtemplate.New(e.DB, e.Hub.CRMs)
	e.Hub.Renderer = e.Templates
	e.Hub.OutgoingHooks = append(e.Hub.OutgoingHooks, forms, links) // forms first: URLs in questions get shortened
	e.Hub.IncomingHooks = append(e.Hub.IncomingHooks, forms)
	dp := Deps{Hub: e.Hub, DB: e.DB, Builtin: e.Builtin, Log: logging.Discard(), Now: e.Clock.Now, Templates: TemplatesFrom(e.Templates), Forms: FormsFrom(forms), Chat: chats}
	for _, f := range deps {
		f(&dp)
	}
	e.UI = New(dp)
	srv := &sbhttp.Server{Hub: e.Hub, DB: e.DB, Builtin: e.Builtin, Log: logging.Discard(), Sim: e.Carrier, UI: e.UI, Ready: func() bool { return true }, Chat: chats,
		Content: &sbhttp.Content{Templates: e.Templates, Links: links, Forms: forms}}
	e.Srv = httptest.NewServer(srv.Handler())
	t.Cleanup(e.Srv.Close)

	ctx := context.Background()
	hash, err := sbhttp.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	e.Users["admin"] = e.Admin
	err = e.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.SetPassword(ctx, e.Admin.ID, hash); err != nil {
			return err
		}
		for role, perms := range rolePerms {
			u := &sb.User{OrgID: e.Org.ID, Email: role + "@example.org", Name: strings.ToUpper(role[:1]) + role[1:] + " User", Permissions: perms}
			if err := tx.CreateUser(ctx, u, hash); err != nil {
				return err
			}
			e.Users[role] = u
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// contact stores a built-in CRM contact.
func (e *testEnv) contact(first, last, phone string, optOut bool) *sb.CRMRecord {
	e.T.Helper()
	ctx := context.Background()
	c := &sb.CRMRecord{FirstName: first, LastName: last, Phone: phone, OptOut: optOut}
	if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveContact(ctx, e.Org.ID, c) }); err != nil {
		e.T.Fatal(err)
	}
	return c
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    testing.TB
	c    *http.Client
	base string
	// csrf is the session's token, read from the last page.
	csrf string
}

type result struct {
	Status int
	Header http.Header
	Body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

func (e *testEnv) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: e.Srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn signs a seeded user in and returns their browser.
func (e *testEnv) signIn(t testing.TB, role string) *browser {
	t.Helper()
	b := e.browser(t)
	b.login(e.Users[role].Email, testPassword, http.StatusSeeOther)
	p := b.get("/ui/")
	if p.Status != http.StatusOK {
		t.Fatalf("home after sign-in: %d", p.Status)
	}
	return b
}

// login posts the sign-in form and checks the status.
func (b *browser) login(email, password string, want int) *result {
	b.t.Helper()
	lp := b.get("/ui/login")
	m := csrfField.FindStringSubmatch(lp.Body)
	if m == nil {
		b.t.Fatalf("sign-in page has no csrf field: %s", lp.Body)
	}
	p := b.do(http.MethodPost, "/ui/login", url.Values{"email": {email}, "password": {password}, "csrf": {html.UnescapeString(m[1])}}.Encode(), "application/x-www-form-urlencoded", nil)
	if p.Status != want {
		b.t.Fatalf("sign-in as %s: status %d, want %d: %s", email, p.Status, want, p.Body)
	}
	return p
}

func (b *browser) get(path string, headers ...string) *result {
	b.t.Helper()
	return b.do(http.MethodGet, path, "", "", headers)
}

// post sends a form with the session's CSRF token (unless the form names
// its own csrf value).
func (b *browser) post(path string, form url.Values, headers ...string) *result {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	return b.do(http.MethodPost, path, form.Encode(), "application/x-www-form-urlencoded", headers)
}

// postFile sends a multipart form with one file.
func (b *browser) postFile(path string, form url.Values, field, name string, content []byte) *result {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	for k, vs := range form {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	fw, _ := mw.CreateFormFile(field, name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	return b.do(http.MethodPost, path, buf.String(), mw.FormDataContentType(), nil)
}

func (b *browser) do(method, path, body, contentType string, headers []string) *result {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := &result{Status: resp.StatusCode, Header: resp.Header, Body: string(raw)}
	if m := csrfField.FindStringSubmatch(p.Body); m != nil && !strings.HasPrefix(path, "/ui/login") {
		b.csrf = html.UnescapeString(m[1])
	}
	return p
}

// has reports whether the page's text contains s (HTML entities decoded).
func (p *result) has(s string) bool { return strings.Contains(p.text(), s) }

// text is the page with its HTML entities decoded.
func (p *result) text() string { return html.UnescapeString(p.Body) }
