package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/provider/sim"
)

// LoadStep is what one rate step of a load run measured.
type LoadStep struct {
	// TargetRate is the rate the generator offered (requests per second).
	TargetRate float64 `json:"target_per_second"`
	Seconds    float64 `json:"seconds"`
	Sent       int     `json:"sent"`
	OK         int     `json:"ok"`
	Errors     int     `json:"errors"`
	// AchievedRate is answered-OK requests per second, from the step's
	// start until its last answer (a backlog lowers it).
	AchievedRate float64 `json:"achieved_per_second"`
	// Latencies run from when a request was due (not when it went out), so
	// a generator or server falling behind shows in them.
	P50Millis float64 `json:"p50_ms"`
	P99Millis float64 `json:"p99_ms"`
	MaxMillis float64 `json:"max_ms"`
	// Held is true when every request was answered OK, at 95 % or more of
	// the target rate, with p99 under the target latency.
	Held       bool   `json:"held"`
	FirstError string `json:"first_error,omitempty"`
}

// LoadResult is what one load run measured on one database.
type LoadResult struct {
	Database string     `json:"database"`
	CPUs     int        `json:"cpus"`
	P99Limit float64    `json:"p99_limit_ms"`
	Steps    []LoadStep `json:"steps"`
	// MaxHeld is the highest target rate held (0: none).
	MaxHeld float64 `json:"max_rate_held_per_second"`
}

const loadUsage = `Usage: switchboard load [flags]

Starts a Switchboard in this process (a fresh SQLite file, or a schema of its
own on PostgreSQL), then posts signed incoming-message webhooks of the
simulated carrier at a fixed rate (open loop: requests go out when due,
whatever the answers), rate after rate, and reports per step the achieved
rate, p50/p99/max latency and errors, and the highest rate held with p99
under the limit. The generator shares the machine's CPUs with the server.

`

// load runs the load command.
func load(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, loadUsage); fs.PrintDefaults() }
	db := fs.String("db", "sqlite", "sqlite, postgres or both")
	pg := fs.String("postgres", env("SWITCHBOARD_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable"), "PostgreSQL server URL (a schema of its own is created and dropped)")
	step := fs.Duration("step", 10*time.Second, "how long each rate is held")
	ratesFlag := fs.String("rates", "250,500,1000,2000,4000,8000", "the rates to offer, per second, in order")
	p99 := fs.Duration("p99", 50*time.Millisecond, "the p99 latency a rate must stay under to count as held")
	clients := fs.Int("clients", 512, "requests in flight at most (the generator's connections)")
	all := fs.Bool("all", false, "run every rate even after one was not held")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rates, err := parseRates(*ratesFlag)
	if err != nil {
		return fmt.Errorf("load: -rates: %w", err)
	}
	dbs, err := loadDatabases(*db)
	if err != nil {
		return err
	}
	switch {
	case *step < 100*time.Millisecond || *step > 10*time.Minute:
		return fmt.Errorf("load: -step must be between 100ms and 10m, not %v", *step)
	case *p99 <= 0:
		return fmt.Errorf("load: -p99 must be positive, not %v", *p99)
	case *clients < 1 || *clients > 20_000:
		return fmt.Errorf("load: -clients must be between 1 and 20000, not %d", *clients)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, d := range dbs {
		res, err := loadOne(ctx, d, *pg, rates, *step, *p99, *clients, *all, stderr)
		if err != nil {
			return fmt.Errorf("load %s: %w", d, err)
		}
		if *asJSON {
			printJSON(stdout, res)
		} else {
			printLoadTable(stdout, res)
		}
	}
	return nil
}

func loadDatabases(s string) ([]string, error) {
	switch s {
	case "sqlite", "postgres":
		return []string{s}, nil
	case "both":
		return []string{"sqlite", "postgres"}, nil
	}
	return nil, fmt.Errorf("load: -db must be sqlite, postgres or both, not %q", s)
}

// maxLoadRate bounds one rate of -rates.
const maxLoadRate = 1_000_000

// parseRates reads a comma-separated list of rates per second.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, errors.New("a rate is missing (write them as 250,500,1000)")
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(r) || r <= 0 || r > maxLoadRate {
			return nil, fmt.Errorf("%q is not a rate between 0 and %d per second", f, maxLoadRate)
		}
		out = append(out, r)
	}
	if len(out) > 100 {
		return nil, fmt.Errorf("at most 100 rates, got %d", len(out))
	}
	return out, nil
}

// loadTarget is what the generator posts to: one simulated gateway's
// incoming-message webhook.
type loadTarget struct {
	client *http.Client
	url    string
	secret string
	number string
	run    string
	seq    atomic.Int64
}

// post sends one signed incoming message, as the simulated carrier does,
// and returns an error unless it is answered 200.
func (lt *loadTarget) post(ctx context.Context) error {
	n := lt.seq.Add(1)
	ev := sim.Event{Type: "incoming", ID: fmt.Sprintf("SMload%s%d", lt.run, n), From: fmt.Sprintf("+1202%07d", 7_000_000+n%10_000),
		To: lt.number, Body: "Load test message " + strconv.FormatInt(n, 10), At: time.Now().UTC().Format(time.RFC3339Nano)}
	body, _ := json.Marshal(ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, lt.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(sim.SignatureHeader, sim.Sign(lt.secret, lt.url, body))
	resp, err := lt.client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// loadOne starts a Switchboard on dialect and runs the rate steps on it.
func loadOne(ctx context.Context, dialect, pgURL string, rates []float64, step, p99 time.Duration, clients int, all bool, stderr io.Writer) (*LoadResult, error) {
	dir, err := os.MkdirTemp("", "switchboard-load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg := &Config{Addr: "127.0.0.1:0", DataDir: dir, LogLevel: "error", LogFormat: "text", SendWorkers: 20, OrgName: "Load", AdminEmail: "load@example.org", JobTimeout: time.Minute}
	if dialect == "postgres" {
		u, cleanup, err := benchSchema(ctx, pgURL)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		cfg.DatabaseURL = u
	} else {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "load.db")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	app, err := newApp(ctx, cfg, logging.New(stderr, 8, "text"), true) // errors only
	if err != nil {
		return nil, err
	}
	defer app.Stop(10 * time.Second)
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	// The real address is known only now.
	base := "http://" + app.Addr()
	public, _ := url.Parse(base)
	app.Hub.PublicURL, cfg.public = public, public
	org, admin, _, err := app.Hub.CreateOrg(ctx, "Load", "load@example.org", "Load")
	if err != nil {
		return nil, err
	}
	rate := 0.0
	gv, err := app.Hub.CreateGateway(ctx, admin, hub.GatewayRequest{Provider: sb.ProviderSim, Number: "+12025550100", Rate: &rate,
		Config: map[string]string{sim.KeyBaseURL: base + "/sim"}})
	if err != nil {
		return nil, err
	}
	gw, err := app.DB.Gateway(ctx, org.ID, gv.ID)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	lt := &loadTarget{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: app.Hub.WebhookURLs(gw).Incoming,
		secret: gw.Config[sim.KeySecret], number: gw.Number, run: strconv.FormatInt(time.Now().UnixNano(), 36)}

	res := &LoadResult{Database: dialect, CPUs: runtime.GOMAXPROCS(0), P99Limit: float64(p99) / 1e6}
	for _, r := range rates {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Each step starts with the CRM write-backs of the last one done,
		// as far as they go within a minute.
		settle(ctx, app, org.ID, time.Minute)
		s := runStep(ctx, r, step, clients, lt.post)
		s.Held = s.Errors == 0 && s.OK == s.Sent && s.AchievedRate >= 0.95*r && s.P99Millis < res.P99Limit
		res.Steps = append(res.Steps, s)
		if s.Held {
			res.MaxHeld = max(res.MaxHeld, r)
		} else if !all {
			break
		}
	}
	return res, nil
}

// settle waits until the org has no CRM write-back pending, ctx ends or
// limit passes.
func settle(ctx context.Context, app *App, orgID string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if n, err := app.DB.CRMPendingCount(ctx, orgID); err != nil || n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runStep offers rate requests per second for d, open loop: request i is
// due at start + i/rate and goes out then (or as soon as one of clients
// is free); its latency runs from when it was due to its answer.
func runStep(ctx context.Context, rate float64, d time.Duration, clients int, fire func(context.Context) error) LoadStep {
	n := max(1, int(math.Round(rate*d.Seconds())))
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan time.Time, n)
	lat := make([]time.Duration, 0, n)
	var (
		mu       sync.Mutex
		errs     int
		firstErr string
		last     time.Time
		wg       sync.WaitGroup
	)
	for range min(clients, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range due {
				err := fire(ctx)
				done := time.Now()
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					lat = append(lat, done.Sub(at))
				}
				if done.After(last) {
					last = done
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; {
		// Everything due by now goes out now; then wait for the next.
		for ; i < n && start.Add(time.Duration(i)*interval).Compare(time.Now()) <= 0; i++ {
			due <- start.Add(time.Duration(i) * interval)
		}
		if i < n {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		}
	}
	close(due)
	wg.Wait()
	s := summarize(rate, lat, errs, last.Sub(start))
	s.Seconds = d.Seconds()
	s.FirstError = firstErr
	return s
}

// summarize computes a step's figures from the latencies of the requests
// answered OK, the number of errors and the time from the step's start to
// its last answer.
func summarize(rate float64, lat []time.Duration, errs int, elapsed time.Duration) LoadStep {
	s := LoadStep{TargetRate: rate, Sent: len(lat) + errs, OK: len(lat), Errors: errs}
	if elapsed > 0 {
		s.AchievedRate = float64(len(lat)) / elapsed.Seconds()
	}
	if len(lat) == 0 {
		return s
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	s.P50Millis, s.P99Millis, s.MaxMillis = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1])
	return s
}

// percentile returns the p-th quantile (0 < p ≤ 1) of sorted: the smallest
// value that at least p of the values do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func printLoadTable(w io.Writer, r *LoadResult) {
	fmt.Fprintf(w, "%s (%d CPUs): signed incoming webhooks, open loop\n", r.Database, r.CPUs)
	fmt.Fprintf(w, "  %9s %11s %8s %7s %8s %8s %8s  %s\n", "target/s", "achieved/s", "sent", "errors", "p50 ms", "p99 ms", "max ms", "held")
	for _, s := range r.Steps {
		held := "no"
		if s.Held {
			held = "yes"
		}
		fmt.Fprintf(w, "  %9.0f %11.1f %8d %7d %8.1f %8.1f %8.1f  %s\n", s.TargetRate, s.AchievedRate, s.Sent, s.Errors, s.P50Millis, s.P99Millis, s.MaxMillis, held)
		if s.FirstError != "" {
			fmt.Fprintf(w, "            first error: %s\n", s.FirstError)
		}
	}
	if r.MaxHeld > 0 {
		fmt.Fprintf(w, "  highest rate held with p99 under %.0f ms: %.0f/s\n\n", r.P99Limit, r.MaxHeld)
	} else {
		fmt.Fprintf(w, "  no rate was held with p99 under %.0f ms\n\n", r.P99Limit)
	}
}
