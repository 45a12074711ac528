// Package hub holds Switchboard's use cases: sending (1:1, automation,
// bulk), receiving, status tracking, keyword and subscription rules, and
// writing everything back to the CRM. It ties the store, the job queue, the
// providers and the CRMs together and holds no state of its own that other
// processes would need: several hubs on one PostgreSQL share the work.
package hub

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/provider"
	"github.com/switchboard/switchboard/store"
)

// CRMs picks the CRM of an org.
type CRMs interface {
	For(ctx context.Context, org *sb.Org) (sb.CRM, error)
}

// Mailer sends plain-text email (mail.Sender).
type Mailer interface {
	Send(ctx context.Context, to []string, subject, body string) error
}

// Hub is the application core.
type Hub struct {
	// checkMu holds one *sync.Mutex per org: its CRM health checks run one
	// at a time (checkOrg).
	checkMu sync.Map

	DB        *store.DB
	Providers *provider.Registry
	CRMs      CRMs
	// PublicURL is the service's public origin, used to build webhook URLs.
	PublicURL *url.URL
	Log       *slog.Logger
	Metrics   *Metrics
	// ChunkSize is how many messages of a bulk send one send job carries.
	ChunkSize int
	// MaxPacingWait is the longest a send job waits for a gateway slot
	// before it snoozes and frees its worker.
	MaxPacingWait time.Duration
	// SendTimeout bounds one provider call.
	SendTimeout time.Duration
	// JobTimeout bounds one run of any job. It also sets how soon work left
	// by a process that died is taken over: 1.5 × JobTimeout (plus a
	// moment), so keep it short. SetJobTimeout adjusts SendTimeout with it.
	JobTimeout time.Duration
	// Renderer renders message templates (nil: templates unavailable).
	Renderer Renderer
	// OutgoingHooks and IncomingHooks let content features join the
	// pipeline (see hooks.go).
	OutgoingHooks []OutgoingHook
	IncomingHooks []IncomingHook
	// Salesforce is the Salesforce client (nil when the service has no
	// connected app configured).
	Salesforce *salesforce.Client
	// SalesforceOAuth is true when a connected app (client id and secret)
	// is configured for the web-server flow.
	SalesforceOAuth bool
	// HTTPClient makes outbound calls of the hub's own (alert webhooks).
	HTTPClient *http.Client
	// Mailer sends alert emails (nil: the service has no SMTP server).
	Mailer Mailer
	// SlotObserver, when set, is told every send slot reserved on a paced
	// gateway (tests and diagnostics).
	SlotObserver func(gatewayID string, at time.Time)

	gwMu      sync.Mutex
	gwCache   map[string]cachedGateway
	orgCache  map[string]cachedOrg
	throttled map[string]time.Time // unlimited gateways lately throttled
	// reserveRTT is the recent round trip of a send-slot reservation
	// (microseconds; see paceLead).
	reserveRTT atomic.Int64
	// CRM write-back gathering (SetCRMGather), under gwMu.
	crmWindow, crmThrottledWindow, crmUsageMaxAge time.Duration
}

type cachedOrg struct {
	org *sb.Org
	at  time.Time
}

type cachedGateway struct {
	gw *sb.Gateway
	at time.Time
}

// gatewayCacheTTL bounds how stale a cached gateway may be in this process
// (other processes' edits show up within it).
const gatewayCacheTTL = 5 * time.Second

// New returns a hub with defaults filled.
func New(db *store.DB, providers *provider.Registry, crms CRMs, publicURL *url.URL, log *slog.Logger, metrics *Metrics) *Hub {
	if log == nil {
		log = slog.Default()
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	h := &Hub{DB: db, Providers: providers, CRMs: crms, PublicURL: publicURL, Log: log, Metrics: metrics,
		ChunkSize: 100, MaxPacingWait: 5 * time.Second, SendTimeout: 15 * time.Second, JobTimeout: time.Minute, gwCache: map[string]cachedGateway{}, orgCache: map[string]cachedOrg{},
		HTTPClient: &http.Client{Timeout: 15 * time.Second},
		crmWindow:  DefaultCRMWindow, crmThrottledWindow: DefaultCRMThrottledWindow, crmUsageMaxAge: DefaultCRMUsageMaxAge}
	db.SetOptOutHook(h.optedOut)
	return h
}

// SetJobTimeout sets the job timeout, and the provider-call timeout to a
// quarter of it (at most 15 s) so that a run with calls in flight ends in
// time.
func (h *Hub) SetJobTimeout(d time.Duration) {
	h.JobTimeout = d
	h.SendTimeout = min(15*time.Second, d/4)
}

// Gateway returns a gateway by id from a short-lived cache. orgID "" finds
// it in any org.
func (h *Hub) Gateway(ctx context.Context, orgID, id string) (*sb.Gateway, error) {
	h.gwMu.Lock()
	c, ok := h.gwCache[id]
	h.gwMu.Unlock()
	if ok && h.DB.Now().Sub(c.at) < gatewayCacheTTL && (orgID == "" || c.gw.OrgID == orgID) {
		return c.gw, nil
	}
	gw, err := h.DB.Gateway(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	h.gwMu.Lock()
	h.gwCache[id] = cachedGateway{gw: gw, at: h.DB.Now()}
	h.gwMu.Unlock()
	return gw, nil
}

// org returns an org from a short-lived cache (hot paths: webhooks, send
// workers). Settings changes show up within the cache period.
func (h *Hub) org(ctx context.Context, id string) (*sb.Org, error) {
	h.gwMu.Lock()
	c, ok := h.orgCache[id]
	h.gwMu.Unlock()
	if ok && h.DB.Now().Sub(c.at) < gatewayCacheTTL {
		return c.org, nil
	}
	org, err := h.DB.Org(ctx, id)
	if err != nil {
		return nil, err
	}
	h.gwMu.Lock()
	h.orgCache[id] = cachedOrg{org: org, at: h.DB.Now()}
	h.gwMu.Unlock()
	return org, nil
}

func (h *Hub) forgetOrg(id string) {
	h.gwMu.Lock()
	delete(h.orgCache, id)
	h.gwMu.Unlock()
}

func (h *Hub) forgetGateway(id string) {
	h.gwMu.Lock()
	delete(h.gwCache, id)
	h.gwMu.Unlock()
}

// WebhookURLs returns the URLs a partner calls for a gateway.
func (h *Hub) WebhookURLs(gw *sb.Gateway) sb.WebhookURLs {
	base := h.PublicURL.JoinPath("webhooks", gw.Provider, gw.ID)
	return sb.WebhookURLs{Incoming: base.JoinPath("incoming").String(), Status: base.JoinPath("status").String()}
}

// statusCallback returns the status URL for one message.
func (h *Hub) statusCallback(gw *sb.Gateway, messageID string) string {
	u := h.PublicURL.JoinPath("webhooks", gw.Provider, gw.ID, "status")
	u.RawQuery = url.Values{"m": {messageID}}.Encode()
	return u.String()
}

func (h *Hub) hash(phone string) []byte { return h.DB.Hasher().Phone(phone) }
