// Package web is Switchboard's web interface for the people who use it
// every day: sign-in, the setup assistant (application settings), the
// conversation view with its SMS subscriptions panel, the inbox, bulk sends
// and a dashboard. Pages are rendered on the server with html/template and
// made live with htmx; every asset is embedded, nothing is built.
//
// Every page and action checks the signed-in user's permission sets, and
// every form and htmx request carries the session's CSRF token.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/crm/builtin"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Template is a message template the pickers offer.
type Template struct {
	ID   string
	Name string
	// Body is the template's text with its merge fields, shown as a preview.
	Body string
}

// TemplateSource lists the message templates a user may use. The template
// feature provides it; without one the pickers are hidden.
type TemplateSource interface {
	ListTemplates(ctx context.Context, user *sb.User) ([]Template, error)
}

// Form is an SMS form the bulk send can start.
type Form struct {
	ID   string
	Name string
	// FirstQuestion is sent with the message (after its text, if any).
	FirstQuestion string
}

// FormSource lists the SMS forms a user may start. The forms feature
// provides it; without one the picker is hidden.
type FormSource interface {
	ListForms(ctx context.Context, user *sb.User) ([]Form, error)
}

// Deps is what the UI needs.
type Deps struct {
	Hub *hub.Hub
	DB  *store.DB
	// Builtin is the built-in CRM, asked directly for the records of orgs
	// that use it.
	Builtin *builtin.CRM
	Log     *slog.Logger
	// Templates feeds the template pickers; nil hides them.
	Templates TemplateSource
	// Forms feeds the bulk send's SMS form picker; nil hides it.
	Forms FormSource
	// Chat is the chat export feature (its settings and export log pages);
	// nil hides them.
	Chat *chat.Service
	// PricePerSegment is the default price of one SMS segment in the bulk
	// send's cost estimate (default 0.0079), in Currency (default "USD").
	PricePerSegment float64
	Currency        string
	// SessionIdle ends a session unused this long (default 2 hours);
	// SessionMaxAge ends any session this old (default 12 hours).
	SessionIdle   time.Duration
	SessionMaxAge time.Duration
	// MaxFailuresPerUser and MaxFailuresPerAddr limit failed sign-ins per
	// email address and per client address within LoginWindow (defaults:
	// the constants of the same names).
	MaxFailuresPerUser int
	MaxFailuresPerAddr int
	// SecureCookies marks cookies Secure; it is set automatically when the
	// hub's public URL is https.
	SecureCookies bool
	// Now is the clock (default: the store's).
	Now func() time.Time
}

// Sign-in rate limits: failures allowed per email address and per client
// address within LoginWindow.
const (
	LoginWindow        = 15 * time.Minute
	MaxFailuresPerUser = 5
	MaxFailuresPerAddr = 20
)

// Request body limits.
const (
	maxFormBytes = 1 << 20
	maxBulkBytes = 32 << 20
)

// UI is the web interface, an http.Handler for the /ui/ tree.
type UI struct {
	d       Deps
	mux     *http.ServeMux
	pages   map[string]*template.Template
	static  http.Handler
	version string // of the static assets, for cache busting
	cop     *http.CrossOriginProtection
	// threads and inboxCRM cache threads and inbox message records read
	// from external CRMs.
	threads  *crmCache[[]sb.CRMMessageRecord]
	inboxCRM *crmCache[inboxCRMData]
}

// New builds the UI.
func New(deps Deps) *UI {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.PricePerSegment == 0 {
		deps.PricePerSegment = 0.0079
	}
	if deps.Currency == "" {
		deps.Currency = "USD"
	}
	if deps.SessionIdle <= 0 {
		deps.SessionIdle = 2 * time.Hour
	}
	if deps.SessionMaxAge <= 0 {
		deps.SessionMaxAge = 12 * time.Hour
	}
	if deps.Now == nil {
		deps.Now = deps.DB.Now
	}
	if deps.MaxFailuresPerUser <= 0 {
		deps.MaxFailuresPerUser = MaxFailuresPerUser
	}
	if deps.MaxFailuresPerAddr <= 0 {
		deps.MaxFailuresPerAddr = MaxFailuresPerAddr
	}
	if deps.Hub != nil && deps.Hub.PublicURL != nil && deps.Hub.PublicURL.Scheme == "https" {
		deps.SecureCookies = true
	}
	u := &UI{d: deps, cop: http.NewCrossOriginProtection(), threads: newCRMCache[[]sb.CRMMessageRecord](deps.Now, ThreadTTL, maxThreads),
		inboxCRM: newCRMCache[inboxCRMData](deps.Now, ThreadTTL, maxThreads)}
	u.pages = mustParsePages()
	sub, _ := fs.Sub(staticFS, "static")
	u.static = http.StripPrefix("/ui/static/", http.FileServerFS(sub))
	u.version = assetVersion(sub)
	u.routes()
	return u
}

// ServeHTTP implements http.Handler.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// Conversation URLs may carry a phone number: never send them on.
	h.Set("Referrer-Policy", "no-referrer")
	u.mux.ServeHTTP(w, r)
}

// uiRoute is one page or action of the UI.
type uiRoute struct {
	// Pattern is the ServeMux pattern, method and path.
	Pattern string
	// Perm is the permission set it needs ("" for any signed-in user).
	Perm sb.Permission
	// h serves signed-in users; public, when set, serves everyone (the
	// sign-in form).
	h      handler
	public http.HandlerFunc
}

// routeTable lists every page and action of the UI (besides the static
// files and the not-found page). Signed-in routes go through authed: a
// session, the CSRF token on every change, the permission set.
func (u *UI) routeTable() []uiRoute {
	return []uiRoute{
		{Pattern: "GET /ui/login", public: u.loginPage},
		{Pattern: "POST /ui/login", public: u.login},
		{Pattern: "POST /ui/logout", h: u.logout},

		{Pattern: "GET /ui/{$}", h: u.home},
		{Pattern: "POST /ui/segments", h: u.segments},
		{Pattern: "GET /ui/templates/preview", h: u.templatePreview},

		{Pattern: "GET /ui/conversation", h: u.conversation},
		{Pattern: "GET /ui/conversation/thread", h: u.thread},
		{Pattern: "POST /ui/conversation/send", h: u.send},
		{Pattern: "POST /ui/conversation/subscription", Perm: sb.PermManualOptInOut, h: u.setSubscription},

		{Pattern: "GET /ui/inbox", Perm: sb.PermInbox, h: u.inbox},
		{Pattern: "POST /ui/inbox/read", Perm: sb.PermInbox, h: u.markRead},

		{Pattern: "GET /ui/bulk", Perm: sb.PermBulkSMS, h: u.bulkPage},
		{Pattern: "POST /ui/bulk/preview", Perm: sb.PermBulkSMS, h: u.bulkPreview},
		{Pattern: "POST /ui/bulk/send", Perm: sb.PermBulkSMS, h: u.bulkSend},
		{Pattern: "GET /ui/bulk/{id}", Perm: sb.PermBulkSMS, h: u.batchPage},
		{Pattern: "GET /ui/bulk/{id}/progress", Perm: sb.PermBulkSMS, h: u.batchProgress},

		{Pattern: "GET /ui/dashboard", Perm: sb.PermSystemAdmin, h: u.dashboard},

		{Pattern: "GET /ui/chat/exports", Perm: sb.PermSystemAdmin, h: u.chatExports},
		{Pattern: "POST /ui/chat/exports/re-export-skipped", Perm: sb.PermSystemAdmin, h: u.chatReexportSkipped},
		{Pattern: "POST /ui/chat/exports/{id}/re-export", Perm: sb.PermSystemAdmin, h: u.chatReexport},
		{Pattern: "GET /ui/chat/settings", Perm: sb.PermSystemAdmin, h: u.chatSettings},
		{Pattern: "POST /ui/chat/settings", Perm: sb.PermSystemAdmin, h: u.saveChatSettings},

		{Pattern: "GET /ui/settings", Perm: sb.PermSystemAdmin, h: u.settings},
		{Pattern: "POST /ui/settings/api-key", Perm: sb.PermSystemAdmin, h: u.createAPIKey},
		{Pattern: "POST /ui/settings/toggles", Perm: sb.PermSystemAdmin, h: u.toggle},
		{Pattern: "POST /ui/settings/opt-in", Perm: sb.PermSystemAdmin, h: u.saveOptIn},
		{Pattern: "POST /ui/settings/salesforce/authorize", Perm: sb.PermSystemAdmin, h: u.authorizeSalesforce},
		{Pattern: "POST /ui/settings/salesforce/revoke", Perm: sb.PermSystemAdmin, h: u.revokeSalesforce},
		{Pattern: "POST /ui/settings/salesforce/check", Perm: sb.PermSystemAdmin, h: u.checkCRM},
		{Pattern: "GET /ui/settings/gateway-fields", Perm: sb.PermSystemAdmin, h: u.gatewayFields},
		{Pattern: "POST /ui/settings/gateways", Perm: sb.PermSystemAdmin, h: u.addGateway},
		{Pattern: "POST /ui/settings/gateways/test", Perm: sb.PermSystemAdmin, h: u.testSend},
	}
}

func (u *UI) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/static/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no folder listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		u.static.ServeHTTP(w, r)
	})
	for _, rt := range u.routeTable() {
		if rt.public != nil {
			m.HandleFunc(rt.Pattern, rt.public)
		} else {
			m.HandleFunc(rt.Pattern, u.authed(rt.Perm, rt.h))
		}
	}
	m.HandleFunc("/ui/", u.authed("", func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		u.fail(w, r, rc, sb.Errorf(sb.ENotFound, "there is no page at %s", r.URL.Path))
	}))
	u.mux = m
}

// reqCtx is what a signed-in request carries.
type reqCtx struct {
	User    *sb.User
	Org     *sb.Org
	Session *store.Session
}

// page is the data every full page renders with.
type page struct {
	Title     string
	Nav       string
	User      *sb.User
	Org       *sb.Org
	CSRF      string
	HXHeaders string
	Asset     string // static asset version
	// Offline is the CRM offline banner's text ("" when online).
	Offline string
	// HealthFailing is the failing CRM health check banner's text, shown
	// to admins ("" when the last check passed).
	HealthFailing string
	Notice        string
	Error         string
	Can           struct{ Inbox, Bulk, Admin, Chat bool }
	Data          any
}

func (u *UI) newPage(r *http.Request, rc *reqCtx, nav, title string, data any) *page {
	p := &page{Title: title, Nav: nav, Asset: u.version, Data: data}
	if rc != nil {
		p.User, p.Org = rc.User, rc.Org
		p.CSRF = rc.Session.CSRFToken
		hdr, _ := json.Marshal(map[string]string{"X-CSRF-Token": rc.Session.CSRFToken})
		p.HXHeaders = string(hdr)
		p.Can.Inbox = rc.User.Can(sb.PermInbox)
		p.Can.Bulk = rc.User.Can(sb.PermBulkSMS)
		p.Can.Admin = rc.User.IsAdmin()
		p.Can.Chat = p.Can.Admin && u.d.Chat != nil
		p.Offline, p.HealthFailing = u.crmBanners(r.Context(), rc)
	}
	return p
}

// crmBanners returns why the org's CRM connection is offline, and — for
// admins, while it is online — which items of its last health check fail;
// "" when there is nothing to say.
func (u *UI) crmBanners(ctx context.Context, rc *reqCtx) (offline, health string) {
	if rc.Org.Settings.CRM == sb.CRMBuiltin || u.d.Hub == nil {
		return "", ""
	}
	c, err := u.d.Hub.CRMConnection(ctx, rc.User)
	if err != nil {
		u.d.Log.Warn("CRM connection state", "org", rc.Org.ID, "err", err)
		return "", ""
	}
	if c.Offline {
		if c.OfflineReason != "" {
			return c.OfflineReason, ""
		}
		return "the CRM connection is offline", ""
	}
	if !rc.User.IsAdmin() || c.Health == nil || c.Health.OK {
		return "", ""
	}
	var failing []string
	for _, it := range c.Health.Items {
		if !it.OK {
			failing = append(failing, it.Name+" — "+it.Message)
		}
	}
	if len(failing) == 0 {
		failing = []string{"the check could not be completed"}
	}
	return "", strings.Join(failing, "; ")
}

// render writes a full page with the status. htmx requests get the whole
// page too and swap the part they name (hx-select).
func (u *UI) render(w http.ResponseWriter, status int, name string, p *page) {
	u.execute(w, status, name, "layout", p)
}

// renderFragment writes one named template of a page.
func (u *UI) renderFragment(w http.ResponseWriter, status int, name, fragment string, data any) {
	u.execute(w, status, name, fragment, data)
}

func (u *UI) execute(w http.ResponseWriter, status int, name, tmpl string, data any) {
	t, ok := u.pages[name]
	if !ok {
		u.d.Log.Error("unknown page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, data); err != nil {
		u.d.Log.Error("render page", "page", name, "template", tmpl, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders an error page for err with the HTTP status of its code.
// Internal errors are logged and shown without their cause.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error) {
	status := sbhttp.StatusOf(sb.ErrorCode(err))
	if status >= 500 {
		u.d.Log.Error("ui request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	title := http.StatusText(status)
	p := u.newPage(r, rc, "", title, map[string]any{"Status": status})
	p.Error = sb.ErrorMessage(err)
	if status == http.StatusForbidden {
		p.Title = "No access"
	}
	u.render(w, status, "error", p)
}

// isHTMX reports whether htmx made the request.
func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// redirect sends the browser to a URL: a plain redirect, or for htmx the
// HX-Redirect header so the whole page changes.
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// localPath returns p when it is a path inside the UI, else "/ui/".
func localPath(p string) string {
	if p == "" || !strings.HasPrefix(p, "/ui/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/ui/"
	}
	if u, err := url.Parse(p); err != nil || u.IsAbs() || u.Host != "" {
		return "/ui/"
	}
	return p
}

// Template functions.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2 Jan 2006 15:04 UTC")
	},
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"statusKey": func(s any) string { return strings.ToLower(strings.ReplaceAll(toString(s), " ", "-")) },
	"join":      strings.Join,
	"percent":   func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"list":      func(xs ...string) []string { return xs },
	"inc":       func(i int) int { return i + 1 },
	"deref":     func(t *time.Time) time.Time { return *t },
	// dict2 carries a settings step's notices and errors to its template.
	"dict2": func(notice, errs map[string]string, step string) map[string]any {
		return map[string]any{"Notice": notice, "Error": errs, "Step": step}
	},
	"toggleData": func(name, label string, on, operator, blocked bool, csrf string) map[string]any {
		return map[string]any{"Name": name, "Label": label, "On": on, "Operator": operator, "Blocked": blocked, "CSRF": csrf}
	},
	"fieldsData": func(fields []sb.ConfigField, config map[string]string) map[string]any {
		return map[string]any{"Fields": fields, "Config": config}
	},
}

func toString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case sb.Status:
		return string(s)
	case sb.SubscriptionStatus:
		return string(s)
	}
	return ""
}

func mustParsePages() map[string]*template.Template {
	base := template.Must(template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html"))
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+e.Name()))
	}
	return pages
}

// assetVersion fingerprints the static files so their URLs change when
// they do.
func assetVersion(fsys fs.FS) string {
	h := sha256.New()
	_ = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}
