// Package hubtest runs a whole Switchboard in a test: a fresh store (SQLite
// or PostgreSQL), the hub with its job workers, the HTTP server on a real
// loopback listener, the built-in CRM and the simulated carrier (over HTTP,
// as in production).
package hubtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/builtin"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/provider"
	"github.com/switchboard/switchboard/provider/sim"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// Env is a running Switchboard for one test.
type Env struct {
	T       testing.TB
	DB      *store.DB
	Hub     *hub.Hub
	Queue   *store.Queue
	Server  *httptest.Server
	HTTP    *sbhttp.Server
	Carrier *sim.Carrier
	Builtin *builtin.CRM
	// CRMCalls counts built-in CRM write calls.
	CRMCalls atomic.Int64
	// SF is the fake Salesforce (Options.Salesforce).
	SF *sftest.Server

	// URL is the database's URL.
	URL string

	Org     *sb.Org
	Admin   *sb.User
	Key     string
	Gateway *sb.Gateway

	events <-chan *river.Event
}

// Options tune an Env.
type Options struct {
	// Providers are added beside the simulated carrier's.
	Providers []sb.Provider
	// CRMs overrides the CRM resolver (default: the built-in CRM).
	CRMs hub.CRMs
	// Setup runs on the queue config before the queue starts.
	Setup func(e *Env, cfg *river.Config)
	// GatewayRate is the demo gateway's rate (default unlimited).
	GatewayRate float64
	// Peer, when set, makes this Env a second process of the same
	// Switchboard: same database, org, gateway and carrier, its own hub,
	// job workers and HTTP server.
	Peer *Env
	// Salesforce connects the hub to an in-repo fake Salesforce (Env.SF)
	// with a connected app whose callback is this server's; orgs whose CRM
	// is Salesforce use it, the others the built-in CRM.
	Salesforce bool
}

// crms resolves an org to the built-in CRM, or to Salesforce when that is
// its CRM and the Env has one.
type crms struct {
	builtin *builtin.CRM
	sf      *salesforce.Client
}

func (c crms) For(_ context.Context, org *sb.Org) (sb.CRM, error) {
	if org.Settings.CRM == sb.CRMSalesforce && c.sf != nil {
		return c.sf, nil
	}
	return c.builtin, nil
}

// New starts an Env on dialect d with one org, its admin and API key, and a
// simulated gateway (+12025550100).
func New(t testing.TB, d store.Dialect, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	e := &Env{T: t}
	if o.Peer != nil {
		e.URL = o.Peer.URL
		e.Carrier = o.Peer.Carrier
	} else {
		e.URL = storetest.URL(t, d)
		e.Carrier = sim.NewCarrier(logging.Discard())
		t.Cleanup(e.Carrier.Close)
	}
	e.DB = storetest.OpenURL(t, e.URL)

	// The server's URL must be known before the hub is built (webhook
	// URLs), so the handler is swapped in after.
	var handler atomic.Value
	handler.Store(http.NotFoundHandler())
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(e.Server.Close)
	public, _ := url.Parse(e.Server.URL)

	e.Builtin = builtin.New(e.DB)
	e.Builtin.Calls = func() { e.CRMCalls.Add(1) }
	providers := append([]sb.Provider{sim.New(e.Server.URL+"/sim", nil)}, o.Providers...)
	resolver := crms{builtin: e.Builtin}
	if o.Salesforce {
		redirect := e.Server.URL + "/oauth/salesforce/callback"
		e.SF = sftest.NewServer(t, sftest.WithRedirectURL(redirect))
		resolver.sf = salesforce.New(salesforce.Config{
			ClientID: e.SF.ClientID(), ClientSecret: e.SF.ClientSecret(), RedirectURL: redirect,
			HTTPClient: e.SF.HTTPClient(), Logger: slog.New(slog.DiscardHandler),
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		}, hub.SalesforceStore{DB: e.DB})
	}
	var crms hub.CRMs = resolver
	if o.CRMs != nil {
		crms = o.CRMs
	}
	log := logging.Discard()
	if os.Getenv("SWITCHBOARD_TEST_LOG") != "" {
		log = logging.New(os.Stderr, slog.LevelDebug, "text")
	}
	reg := prometheus.NewRegistry()
	e.Hub = hub.New(e.DB, provider.NewRegistry(providers...), crms, public, log, hub.NewMetrics(reg))
	if resolver.sf != nil {
		e.Hub.Salesforce, e.Hub.SalesforceOAuth = resolver.sf, true
	}
	cfg := e.Hub.QueueConfig(10, logging.AtLeast(log, slog.LevelWarn))
	if o.Setup != nil {
		o.Setup(e, cfg)
	}
	q, err := e.DB.NewQueue(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Queue = q
	var unsub func()
	e.events, unsub = q.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobSnoozed, river.EventKindJobCancelled)
	e.HTTP = &sbhttp.Server{Hub: e.Hub, DB: e.DB, Builtin: e.Builtin, Log: logging.Discard(), Gatherer: reg, Sim: e.Carrier, Ready: func() bool { return true }}
	handler.Store(e.HTTP.Handler())
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unsub()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(sctx)
	})

	if o.Peer != nil {
		e.Org, e.Admin, e.Key, e.Gateway = o.Peer.Org, o.Peer.Admin, o.Peer.Key, o.Peer.Gateway
		return e
	}
	org, admin, key, err := e.Hub.CreateOrg(ctx, "Test College", "admin@example.org", "Ada Admin")
	if err != nil {
		t.Fatal(err)
	}
	e.Org, e.Admin, e.Key = org, admin, key
	rate := o.GatewayRate
	v, err := e.Hub.CreateGateway(ctx, admin, hub.GatewayRequest{Name: "Main", Provider: sb.ProviderSim, Number: "+12025550100", Rate: &rate})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Registered {
		t.Fatalf("simulated gateway not registered with the carrier: %s", v.RegisterErr)
	}
	e.Gateway, err = e.DB.Gateway(ctx, org.ID, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Each runs f once per dialect with a fresh Env.
func Each(t *testing.T, f func(t *testing.T, e *Env), opts ...Options) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) { f(t, New(t, d, opts...)) })
}

// Response is an HTTP answer read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it cannot.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.Status, err, r.Body)
	}
}

// ErrorCode returns the error code of a JSON error body.
func (r *Response) ErrorCode() string {
	var b sbhttp.ErrorBody
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

// Do makes an API request with key (empty: none) and a JSON body (nil:
// none; []byte: sent as is).
func (e *Env) Do(method, path, key string, body any, headers ...string) *Response {
	e.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.Server.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.T.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// API makes an API request as the org's admin.
func (e *Env) API(method, path string, body any) *Response {
	e.T.Helper()
	return e.Do(method, path, e.Key, body)
}

// Text makes the simulated handset from text the gateway number to.
func (e *Env) Text(from, to, body string) {
	e.T.Helper()
	r := e.Do(http.MethodPost, "/sim/v1/inbound", "", sim.InboundRequest{From: from, To: to, Body: body})
	if r.Status != http.StatusOK {
		e.T.Fatalf("handset text: %d %s", r.Status, r.Body)
	}
}

// WaitFor waits until cond holds, re-checking after every finished job and
// at least every 20 ms; it fails the test after 2 minutes. The deadline only
// guards against a hang: no assertion depends on timing.
func (e *Env) WaitFor(what string, cond func() bool) {
	e.T.Helper()
	deadline := time.After(2 * time.Minute) // a loaded machine under -race is slow
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-e.events:
		case <-tick.C:
		case <-deadline:
			e.T.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Message returns a message of the org.
func (e *Env) Message(id string) *sb.Message {
	e.T.Helper()
	m, err := e.DB.Message(context.Background(), e.Org.ID, id)
	if err != nil {
		e.T.Fatal(err)
	}
	return m
}

// WaitStatus waits until message id has status st.
func (e *Env) WaitStatus(id string, st sb.Status) *sb.Message {
	e.T.Helper()
	var m *sb.Message
	e.WaitFor(fmt.Sprintf("message %s to be %s", id, st), func() bool {
		m = e.Message(id)
		return m.Status == st
	})
	return m
}

// WaitCRMSynced waits until every message change of the org is in the CRM.
func (e *Env) WaitCRMSynced() {
	e.T.Helper()
	e.WaitFor("CRM write-back", func() bool {
		n, err := e.DB.CRMPendingCount(context.Background(), e.Org.ID)
		return err == nil && n == 0
	})
}

// AuthorizeSalesforce connects the org to the fake Salesforce
// (Options.Salesforce) as username, through the API and the OAuth callback
// as an admin's browser would; the org's CRM is Salesforce afterwards.
func (e *Env) AuthorizeSalesforce(username string) {
	e.T.Helper()
	if e.SF == nil {
		e.T.Fatal("AuthorizeSalesforce needs Options.Salesforce")
	}
	if e.SF.UserID(username) == "" {
		e.SF.AddUser(username)
	}
	r := e.API(http.MethodPost, "/v1/crm/salesforce/authorize", map[string]string{"return_to": "/ui/settings"})
	var out struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	r.JSON(e.T, &out)
	if r.Status != http.StatusOK {
		e.T.Fatalf("authorize: %d %s", r.Status, r.Body)
	}
	code, state, err := e.SF.Authorize(out.AuthorizeURL, username)
	if err != nil {
		e.T.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.Server.URL + "/oauth/salesforce/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state))
	if err != nil {
		e.T.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		e.T.Fatalf("OAuth callback: %d", resp.StatusCode)
	}
	org, err := e.DB.Org(context.Background(), e.Org.ID)
	if err != nil || org.Settings.CRM != sb.CRMSalesforce {
		e.T.Fatalf("org CRM after authorizing: %v %v", org, err)
	}
	e.Org = org
}

// Send sends a message as the admin through the API and returns it.
func (e *Env) Send(to, body string) *sb.Message {
	e.T.Helper()
	r := e.API(http.MethodPost, "/v1/messages", map[string]any{"gateway_id": e.Gateway.ID, "to": to, "body": body})
	if r.Status != http.StatusCreated {
		e.T.Fatalf("send: %d %s", r.Status, r.Body)
	}
	var m sb.Message
	r.JSON(e.T, &m)
	return &m
}
