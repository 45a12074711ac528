package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/crm/builtin"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/form"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/http/web"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/link"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/provider"
	"github.com/switchboard/switchboard/provider/sim"
	"github.com/switchboard/switchboard/provider/smpp"
	"github.com/switchboard/switchboard/provider/twilio"
	"github.com/switchboard/switchboard/provider/whatsapp"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/template"
)

// App is a running Switchboard: store, hub, job workers, HTTP server and,
// by default, the simulated carrier.
type App struct {
	Cfg     *Config
	Log     *slog.Logger
	DB      *store.DB
	Hub     *hub.Hub
	Queue   *store.Queue
	Server  *sbhttp.Server
	Carrier *sim.Carrier
	Builtin *builtin.CRM
	SMPP    *smpp.Provider
	// Content features and the chat export.
	Templates *template.Service
	Links     *link.Service
	Forms     *form.Service
	Chat      *chat.Service
	// CRMWrites counts CRM write calls (for the benchmark figure).
	CRMWrites atomic.Int64

	http      *http.Server
	ln        net.Listener
	ready     atomic.Bool
	started   bool
	listeners context.CancelFunc
	listened  chan struct{}
}

// crms picks each org's CRM.
type crms struct {
	builtin    *builtin.CRM
	salesforce *salesforce.Client
}

func (c crms) For(ctx context.Context, org *sb.Org) (sb.CRM, error) {
	switch org.Settings.CRM {
	case sb.CRMBuiltin, "":
		return c.builtin, nil
	case sb.CRMSalesforce:
		return c.salesforce, nil
	}
	return nil, &sb.CRMError{Code: "not_connected", Message: fmt.Sprintf("the org's CRM %q is not known", org.Settings.CRM), Offline: true}
}

// openStore opens and migrates the store. shared opens a SQLite file
// without the exclusive lock of serve and migrate (admin commands, which
// run no job workers, may run beside serve).
func openStore(ctx context.Context, cfg *Config, log *slog.Logger, shared bool) (*store.DB, error) {
	ring, hasher, err := cfg.keys()
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Keyring: ring, Hasher: hasher, Shared: shared})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, log); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return db, nil
}

// newApp wires the service. workers=false builds an insert-only queue on a
// shared store (admin commands: they may run beside serve; the jobs they
// insert are worked by the serving process).
func newApp(ctx context.Context, cfg *Config, log *slog.Logger, workers bool) (*App, error) {
	db, err := openStore(ctx, cfg, log, !workers)
	if err != nil {
		return nil, err
	}
	a := &App{Cfg: cfg, Log: log, DB: db}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := hub.NewMetrics(reg)

	a.Builtin = builtin.New(db)
	a.Builtin.Calls = func() { a.CRMWrites.Add(1) }
	a.SMPP = smpp.New(smpp.Options{Logger: log})
	simProvider := sim.New(cfg.simURL(), nil)
	simProvider.BuiltIn = cfg.SimURL == ""
	providers := provider.NewRegistry(
		simProvider,
		twilio.New(twilio.Options{}),
		whatsapp.New(whatsapp.Options{}),
		a.SMPP,
	)
	sfcfg := salesforce.Config{
		ClientID: cfg.SalesforceClientID, ClientSecret: cfg.SalesforceClientSecret, LoginURL: cfg.SalesforceLoginURL,
		RedirectURL: cfg.public.JoinPath("oauth", "salesforce", "callback").String(), Logger: log, HTTPClient: cfg.sfHTTP,
		OnLimits: func(orgID string, used, max int) {
			if max > 0 {
				metrics.CRMAPIUsage.WithLabelValues(orgID).Set(float64(used) / float64(max))
			}
		},
	}
	if cfg.SalesforceClientID == "" {
		sfcfg.ClientID = "" // no connected app: only the JWT bearer flow (its own client id) is available
	} else if err := sfcfg.Validate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("Salesforce settings: %w", err)
	}
	sf := salesforce.New(sfcfg, hub.SalesforceStore{DB: db})
	a.Hub = hub.New(db, providers, crms{builtin: a.Builtin, salesforce: sf}, cfg.public, log, metrics)
	a.Hub.SetJobTimeout(cfg.JobTimeout)
	if cfg.mailer != nil {
		a.Hub.Mailer = cfg.mailer
	}
	a.Hub.Salesforce, a.Hub.SalesforceOAuth = sf, cfg.SalesforceClientID != "" && cfg.SalesforceClientSecret != ""

	// Content features and the chat export join the pipeline through the
	// hub's hooks and the job queue.
	a.Templates = template.New(db, a.Hub.CRMs)
	a.Links = link.New(db, a.Hub, link.Options{})
	a.Forms = form.New(db, a.Hub)
	a.Hub.Renderer = a.Templates
	a.Hub.OutgoingHooks = append(a.Hub.OutgoingHooks, a.Forms, a.Links) // forms first: URLs in questions get shortened
	a.Hub.IncomingHooks = append(a.Hub.IncomingHooks, a.Forms)
	a.Chat = chat.New(db, a.Hub.CRMs, log)
	a.Chat.PublicURL, a.Chat.Connector = cfg.public, sf

	qcfg := a.Hub.QueueConfig(cfg.SendWorkers, logging.AtLeast(log, slog.LevelWarn), a.Links.AddWorkers, a.Forms.AddWorkers, a.Chat.Workers)
	qcfg.PeriodicJobs = append(qcfg.PeriodicJobs, a.Links.PeriodicJobs()...)
	qcfg.PeriodicJobs = append(qcfg.PeriodicJobs, a.Forms.PeriodicJobs()...)
	qcfg.PeriodicJobs = append(qcfg.PeriodicJobs, a.Chat.PeriodicJobs()...)
	if !workers {
		qcfg.Workers, qcfg.Queues, qcfg.PeriodicJobs = nil, nil, nil
	}
	if a.Queue, err = db.NewQueue(qcfg); err != nil {
		db.Close()
		return nil, fmt.Errorf("job queue: %w", err)
	}
	if cfg.SimURL == "" && workers {
		a.Carrier = sim.NewCarrier(log)
	}
	a.Server = &sbhttp.Server{Hub: a.Hub, DB: db, Builtin: a.Builtin, Log: log, Gatherer: reg, Ready: a.ready.Load,
		Chat: a.Chat, Content: &sbhttp.Content{Templates: a.Templates, Links: a.Links, Forms: a.Forms}}
	a.Server.UI = web.New(web.Deps{Hub: a.Hub, DB: db, Builtin: a.Builtin, Log: log, Templates: web.TemplatesFrom(a.Templates), Forms: web.FormsFrom(a.Forms), Chat: a.Chat,
		PricePerSegment: cfg.PricePerSegment})
	if a.Carrier != nil {
		a.Server.Sim = a.Carrier
	}
	return a, nil
}

// Start listens, starts the job workers and registers gateways' webhooks.
func (a *App) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.Cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.Cfg.Addr, err)
	}
	a.ln = ln
	a.http = &http.Server{Handler: a.Server.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error("http server stopped", "err", err)
		}
	}()
	if n, err := a.DB.RecoverOrphanedJobs(ctx); err != nil {
		return fmt.Errorf("recover jobs: %w", err)
	} else if n > 0 {
		a.Log.Warn("jobs left running by a stopped process are run again", "jobs", n)
	}
	// Not ctx: cancelling the context River was started with would cancel
	// the running jobs; Stop ends them gracefully instead.
	if err := a.Queue.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start job workers: %w", err)
	}
	a.started = true
	a.ready.Store(true)
	a.Hub.RegisterAll(ctx)
	// Connection-oriented gateways (SMPP binds), one process per gateway.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.listeners, a.listened = cancel, make(chan struct{})
	go func() {
		defer close(a.listened)
		a.Hub.RunListeners(lctx, "proc-"+store.NewID())
	}()
	return nil
}

// Addr returns the address the server listens on.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Grace periods of a shutdown: running jobs get JobGrace to finish before
// they are cancelled (and run again later by any process); HTTP requests in
// flight then get HTTPGrace.
const (
	JobGrace  = 30 * time.Second
	HTTPGrace = 10 * time.Second
)

// Stop shuts down gracefully. /readyz answers 503 at once. The job queue
// stops first: no new jobs start, running ones finish (a send chunk stops
// between two messages and leaves the rest for the next start) — for up to
// jobGrace, after which they are cancelled and retried later by any
// process. Meanwhile the HTTP server keeps serving, so provider callbacks
// and the built-in simulated carrier stay reachable while sends drain, and
// API requests are still accepted (durably queued for the next start).
// Then the HTTP server shuts down (requests in flight get HTTPGrace),
// buffered link clicks are written and connections close.
func (a *App) Stop(jobGrace time.Duration) {
	a.ready.Store(false)
	if a.started {
		ctx, cancel := context.WithTimeout(context.Background(), jobGrace)
		err := a.Queue.Stop(ctx)
		cancel()
		if err != nil {
			a.Log.Warn("job workers did not stop in time; cancelling them (they are retried by any process)", "err", err, "grace", jobGrace)
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = a.Queue.StopAndCancel(cctx)
			cancel()
		}
	}
	if a.listeners != nil {
		a.listeners()
		<-a.listened
	}
	ctx, cancel := context.WithTimeout(context.Background(), HTTPGrace)
	defer cancel()
	if a.Carrier != nil && a.http != nil {
		// The built-in carrier's callbacks for the messages just sent come
		// back through this server: let them arrive before it closes.
		_ = a.Carrier.Idle(ctx)
	}
	if a.http != nil {
		_ = a.http.Shutdown(ctx)
	}
	if err := a.Links.Close(ctx); err != nil { // buffered clicks are written
		a.Log.Warn("link clicks not flushed", "err", err)
	}
	_ = a.SMPP.Close()
	if a.Carrier != nil {
		a.Carrier.Close()
	}
	a.DB.Close()
}
