// Package link shortens the long URLs of outgoing messages into tracked
// links served by Switchboard (GET /l/{code} → 302 to the target) and counts
// their clicks. In per-recipient mode every message gets its own links, and
// each click by a person — time, IP address, domain, browser — is written to
// the recipient's CRM record by a durable job batched per org. Clicks by
// link-preview bots are redirected but not counted as people.
//
// Privacy: link targets are the org's own URLs and are stored as they are.
// A click's IP address is personal data: it is sealed (AES-GCM) in the
// link_clicks table only until the click is written to the CRM, then erased.
// Basic links keep no details of a click, only counters.
package link

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// Options tune a Service; zero values take the defaults.
type Options struct {
	// CacheSize is how many codes the redirect keeps in memory (100,000).
	CacheSize int
	// Buffer is how many clicks may wait to be written before redirects
	// wait for the writer (10,000).
	Buffer int
	// MaxBatch is the most clicks one write carries (1,000).
	MaxBatch int
	// TrustForwardedFor takes the client address from X-Forwarded-For (set
	// it only behind a proxy that sets that header).
	TrustForwardedFor bool
	// Now is the clock (default: the store's).
	Now func() time.Time
	// Log receives write failures (default: the hub's logger).
	Log *slog.Logger
}

// Service is tracked links: the outgoing hook that shortens URLs, the
// redirect handler, the click recorder and the CRM write-back.
type Service struct {
	DB  *store.DB
	Hub *hub.Hub

	opts  Options
	cache *lru[string, *store.Link]
	rec   *recorder
}

var _ hub.OutgoingHook = (*Service)(nil)

// New returns the service and starts its click recorder; call Close on
// shutdown (after the HTTP server has stopped) so no click is lost.
func New(db *store.DB, h *hub.Hub, opts Options) *Service {
	if opts.CacheSize <= 0 {
		opts.CacheSize = 100_000
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 10_000
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.Now == nil {
		opts.Now = db.Now
	}
	if opts.Log == nil {
		opts.Log = h.Log
	}
	s := &Service{DB: db, Hub: h, opts: opts, cache: newLRU[string, *store.Link](opts.CacheSize)}
	s.rec = newRecorder(opts.Log, opts.Buffer, opts.MaxBatch, s.writeClicks)
	return s
}

// Close writes the clicks still buffered; clicks arriving later are written
// one by one.
func (s *Service) Close(ctx context.Context) error { return s.rec.Close(ctx) }

// Flush returns once every click recorded before the call is stored.
func (s *Service) Flush(ctx context.Context) error { return s.rec.Flush(ctx) }

func (s *Service) writeClicks(ctx context.Context, batch []store.Click) error {
	return s.DB.Tx(ctx, func(tx *store.Tx) error {
		orgs, err := tx.RecordClicks(ctx, batch)
		if err != nil {
			return err
		}
		for _, org := range orgs {
			tx.AddJob(ClickWritebackArgs{OrgID: org}, writebackOpts())
		}
		return nil
	})
}

// --- settings and listing ---

// Settings returns the org's link settings (any user may read them).
func (s *Service) Settings(ctx context.Context, user *sb.User) (*Settings, error) {
	st, err := s.DB.LinkSettings(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	out := fromStore(st)
	return &out, nil
}

// SaveSettings replaces the org's link settings (System Admin).
func (s *Service) SaveSettings(ctx context.Context, user *sb.User, in Settings) (*Settings, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	st := &store.LinkSettings{OrgID: user.OrgID, Enabled: in.Enabled, Mode: in.Mode, BaseURL: in.BaseURL, MinLength: in.MinLength, UpdatedBy: user.ID}
	if err := s.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveLinkSettings(ctx, st) }); err != nil {
		return nil, err
	}
	out := fromStore(st)
	return &out, nil
}

// View is a link as the API shows it.
type View struct {
	*store.Link
	ShortURL string `json:"short_url"`
}

// List returns the org's links with their click counts, newest first.
func (s *Service) List(ctx context.Context, user *sb.User, f store.LinkFilter) ([]*View, error) {
	set, err := s.Settings(ctx, user)
	if err != nil {
		return nil, err
	}
	ls, err := s.DB.Links(ctx, user.OrgID, f)
	if err != nil {
		return nil, err
	}
	out := make([]*View, len(ls))
	for i, l := range ls {
		out[i] = &View{Link: l, ShortURL: s.shortURL(*set, l.Code)}
	}
	return out, nil
}

// base returns the short domain of the settings.
func (s *Service) base(set Settings) string {
	if set.BaseURL != "" {
		return set.BaseURL
	}
	return strings.TrimRight(s.Hub.PublicURL.String(), "/")
}

func (s *Service) shortURL(set Settings, code string) string { return s.base(set) + "/l/" + code }

// --- outgoing hook ---

// PrepareOutgoing implements hub.OutgoingHook: it replaces the long URLs of
// the messages' bodies with short links and stores the codes in the same
// transaction. In basic mode the messages of one call (one send) share one
// code per URL.
func (s *Service) PrepareOutgoing(ctx context.Context, tx *store.Tx, org *sb.Org, gw *sb.Gateway, msgs []hub.Outgoing) error {
	st, err := tx.LinkSettings(ctx, org.ID)
	if err != nil || st == nil || !st.Enabled {
		return err
	}
	set := fromStore(st)
	prefix := s.base(set) + "/l/"
	now := s.opts.Now().UTC()
	shared := map[string]string{}
	var links []store.Link
	for _, o := range msgs {
		if o.Content == nil || o.Content.Template != "" || o.Msg == nil {
			continue
		}
		o.Content.Body = Rewrite(o.Content.Body, func(u string) (string, bool) {
			if !set.shortens(u, prefix) {
				return "", false
			}
			if set.Mode == ModeBasic {
				if code, ok := shared[u]; ok {
					return prefix + code, true
				}
			}
			l := store.Link{Code: NewCode(), OrgID: org.ID, URL: u, Mode: set.Mode, BatchID: o.Msg.BatchID, CreatedAt: now}
			if set.Mode == ModePerRecipient || o.Msg.BatchID == "" {
				l.MessageID = o.Msg.ID
			}
			if set.Mode == ModeBasic {
				shared[u] = l.Code
			}
			links = append(links, l)
			return prefix + l.Code, true
		})
	}
	return tx.InsertLinks(ctx, links)
}

// shortens reports whether a URL of an outgoing message becomes a short
// link (prefix: the links' own start, which is left alone).
func (set Settings) shortens(u, prefix string) bool {
	return utf8.RuneCountInString(u) > set.MinLength && !strings.HasPrefix(u, prefix)
}

// PreviewBody implements hub.BodyPreviewer: the body with its long URLs
// replaced by short links of their real length (codes are placeholders),
// for a compose box's segment counter. Nothing is stored.
func (s *Service) PreviewBody(ctx context.Context, org *sb.Org, body string) (string, error) {
	st, err := s.DB.LinkSettings(ctx, org.ID)
	if err != nil || st == nil || !st.Enabled {
		return body, err
	}
	set := fromStore(st)
	prefix := s.base(set) + "/l/"
	placeholder := strings.Repeat("x", CodeLen)
	return Rewrite(body, func(u string) (string, bool) {
		if !set.shortens(u, prefix) {
			return "", false
		}
		return prefix + placeholder, true
	}), nil
}

// --- redirect ---

// ServeHTTP serves GET /l/{code}: a 302 to the link's target, or a small
// HTML page for codes that do not exist. The code is resolved from memory
// (falling back to the store) and the click recorded in the background.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if code == "" {
		code = strings.TrimPrefix(r.URL.Path, "/l/")
	}
	if !ValidCode(code) {
		notFound(w, r)
		return
	}
	l, err := s.lookup(r.Context(), code)
	if err != nil {
		if sb.IsCode(err, sb.ENotFound) {
			notFound(w, r)
			return
		}
		s.opts.Log.Error("short link lookup failed", "err", err)
		unavailable(w, r)
		return
	}
	c := store.Click{Code: l.Code, OrgID: l.OrgID, MessageID: l.MessageID, At: s.opts.Now().UTC(), Bot: IsBot(r)}
	if l.Mode == ModePerRecipient && !c.Bot && l.MessageID != "" {
		c.ID, c.Track = store.NewID(), true
		c.IP = s.clientIP(r)
		c.Domain = clickDomain(r)
		c.Browser = ParseUserAgent(r.UserAgent()).String()
	}
	if err := s.rec.add(r.Context(), c); err != nil {
		s.opts.Log.Error("link click could not be stored", "err", err)
	}
	h := w.Header()
	h.Set("Location", l.URL)
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusFound)
}

func (s *Service) lookup(ctx context.Context, code string) (*store.Link, error) {
	if l, ok := s.cache.get(code); ok {
		return l, nil
	}
	l, err := s.DB.LinkByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	s.cache.add(code, l)
	return l, nil
}

// clientIP is the address the click came from.
func (s *Service) clientIP(r *http.Request) string {
	if s.opts.TrustForwardedFor {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return a.Unmap().String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return ""
}

// clickDomain is the referring page's host, or the host the short link was
// opened on.
func clickDomain(r *http.Request) string {
	if ref := r.Referer(); ref != "" {
		if u, err := url.Parse(ref); err == nil && u.Hostname() != "" {
			return strings.ToLower(u.Hostname())
		}
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if len(host) > 255 {
		host = host[:255]
	}
	return strings.ToLower(host)
}

const notFoundPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Link not found</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222">
<h1 style="font-size:1.4rem">Link not found</h1>
<p>This short link does not exist. Check that it was copied in full, or ask the sender for a new one.</p>
</body></html>
`

const unavailablePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Try again</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222">
<h1 style="font-size:1.4rem">Try again in a moment</h1>
<p>This link cannot be opened right now.</p>
</body></html>
`

func page(w http.ResponseWriter, r *http.Request, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}

func notFound(w http.ResponseWriter, r *http.Request) { page(w, r, http.StatusNotFound, notFoundPage) }

func unavailable(w http.ResponseWriter, r *http.Request) {
	page(w, r, http.StatusServiceUnavailable, unavailablePage)
}

// --- CRM write-back ---

// ClickWritebackArgs asks for an org's tracked clicks to be written to its
// CRM. One is pending per org at a time; it drains every pending click.
type ClickWritebackArgs struct {
	OrgID string `json:"org_id"`
}

// Kind implements river.JobArgs.
func (ClickWritebackArgs) Kind() string { return "link_click_writeback" }

func writebackOpts() *river.InsertOpts { return store.WritebackOpts() }

// SweepArgs is the periodic job that restarts click write-backs left for
// later (CRM offline, retries, a click that landed as a write-back ended).
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "link_sweep" }

// SweepInterval is how often the sweep runs.
const SweepInterval = 5 * time.Second

// AddWorkers registers the service's job workers (pass it to
// hub.QueueConfig).
func (s *Service) AddWorkers(w *river.Workers) {
	river.AddWorker(w, &writebackWorker{s: s})
	river.AddWorker(w, &sweepWorker{s: s})
}

// PeriodicJobs returns the service's periodic jobs.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(SweepInterval), func() (river.JobArgs, *river.InsertOpts) {
			return SweepArgs{}, nil
		}, nil),
	}
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	s *Service
}

func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	orgs, err := w.s.DB.OrgsWithPendingClicks(ctx)
	if err != nil || len(orgs) == 0 {
		return err
	}
	return w.s.DB.Tx(ctx, func(tx *store.Tx) error {
		for _, org := range orgs {
			tx.AddJob(ClickWritebackArgs{OrgID: org}, writebackOpts())
		}
		return nil
	})
}

type writebackWorker struct {
	river.WorkerDefaults[ClickWritebackArgs]
	s *Service
}

// ClickBatch is how many clicks one CRM write carries.
const ClickBatch = 200

func (w *writebackWorker) Work(ctx context.Context, job *river.Job[ClickWritebackArgs]) error {
	return w.s.WriteBack(ctx, job.Args.OrgID)
}

// WriteBack writes an org's pending tracked clicks to its CRM. A CRM that
// cannot record clicks (no sb.ClickWriter) keeps them pending.
func (s *Service) WriteBack(ctx context.Context, orgID string) error {
	org, err := s.DB.Org(ctx, orgID)
	if err != nil {
		if sb.IsCode(err, sb.ENotFound) {
			return river.JobCancel(err)
		}
		return err
	}
	crm, err := s.Hub.CRMs.For(ctx, org)
	if err != nil {
		if sb.CRMOffline(err) {
			return nil // held until the CRM is back; the sweep retries
		}
		return err
	}
	cw, _ := crm.(sb.ClickWriter)
	if cw == nil {
		s.opts.Log.Warn("the org's CRM cannot record link clicks; they are kept until it can", "org", org.ID, "crm", org.Settings.CRM)
		return nil
	}
	st, err := s.DB.LinkSettings(ctx, org.ID)
	if err != nil {
		return err
	}
	set := fromStore(st)
	for {
		claimed, err := s.DB.ClaimClicks(ctx, org.ID, ClickBatch, 2*time.Minute)
		if err != nil || len(claimed) == 0 {
			return err
		}
		clicks := make([]sb.LinkClick, len(claimed))
		for i, c := range claimed {
			clicks[i] = c.LinkClick
			clicks[i].ShortURL = s.shortURL(set, c.Code)
		}
		results, werr := cw.WriteClicks(ctx, org, clicks)
		outs, retry := outcomes(s.DB.Now(), clicks, results, werr)
		if err := s.DB.Tx(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.FinishClicks(ctx, outs) }); err != nil {
			return err
		}
		if werr != nil {
			if sb.CRMOffline(werr) {
				return nil
			}
			return werr
		}
		if retry {
			return nil // the rest waits for the sweep
		}
	}
}

func outcomes(now time.Time, clicks []sb.LinkClick, results []sb.CRMResult, werr error) ([]store.ClickOutcome, bool) {
	res, retry := sb.CRMOutcomes(now, len(clicks), results, werr)
	outs := make([]store.ClickOutcome, len(clicks))
	for i, c := range clicks {
		outs[i] = store.ClickOutcome{ID: c.ID, CRMID: res[i].CRMID, Retry: res[i].Retry, RetryAt: res[i].RetryAt, Err: res[i].Err}
	}
	return outs, retry
}
