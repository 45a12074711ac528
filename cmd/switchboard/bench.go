package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/provider/sim"
)

// BenchResult is what one benchmark run measured.
type BenchResult struct {
	Database       string  `json:"database"`
	Messages       int     `json:"messages"`
	Seconds        float64 `json:"seconds"`
	MessagesPerSec float64 `json:"messages_per_second"`
	AcceptPerSec   float64 `json:"accept_per_second"`
	P50Millis      float64 `json:"p50_accept_to_delivered_ms"`
	P99Millis      float64 `json:"p99_accept_to_delivered_ms"`
	CRMCalls       int64   `json:"crm_write_calls"`
	CRMCallsPer1k  float64 `json:"crm_write_calls_per_1000_messages"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
}

// bench pushes N messages through the whole pipeline — API accept (bulk
// sends over HTTP) → simulated carrier over HTTP → sent and delivered
// callbacks → CRM records written — and reports messages per second,
// accept-to-delivered latency, CRM write calls per 1,000 messages and peak
// memory. Each run uses a fresh database: a temp SQLite file, or a schema of
// its own on the PostgreSQL server named by --postgres.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 100_000, "messages to push through")
	batch := fs.Int("batch", 1000, "recipients per bulk-send request")
	clients := fs.Int("clients", 4, "concurrent API clients")
	db := fs.String("db", "sqlite", "sqlite, postgres or both")
	pg := fs.String("postgres", env("SWITCHBOARD_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable"), "PostgreSQL server URL (a schema of its own is created and dropped)")
	workers := fs.Int("send-workers", 20, "send workers")
	asJSON := fs.Bool("json", false, "print JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	progress := fs.Bool("progress", false, "print progress every second (to stderr)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file when the run ends")
	procs := fs.Int("processes", 0, "run this many separate serve processes on one PostgreSQL (scale-out); 0 runs in this process")
	latency := fs.Duration("carrier-latency", 0, "the simulated carrier holds each send's answer this long (a partner API's latency, such as 150ms; the status callbacks are not held)")
	reportBatch := fs.Int("report-batch", 1, fmt.Sprintf("the simulated carrier posts up to this many status reports per callback, 1 to %d (1: each report alone, as Twilio does)", sim.MaxReportBatch))
	sendBatch := fs.Int("send-batch", 1, fmt.Sprintf("messages per send request to the simulated carrier, 1 to %d (1: one request per message, as Twilio; above 1 the carrier's batch API, as Infobip's or Sinch's)", sim.MaxSendBatch))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *batch < 1 || *clients < 1 {
		return errors.New("bench: -n, -batch and -clients must be positive")
	}
	if *latency < 0 || *latency > time.Duration(sim.MaxTimeoutMillis)*time.Millisecond {
		return fmt.Errorf("bench: -carrier-latency must be between 0 and %v", time.Duration(sim.MaxTimeoutMillis)*time.Millisecond)
	}
	if *reportBatch < 1 || *reportBatch > sim.MaxReportBatch {
		return fmt.Errorf("bench: -report-batch must be between 1 and %d", sim.MaxReportBatch)
	}
	if *sendBatch < 1 || *sendBatch > sim.MaxSendBatch {
		return fmt.Errorf("bench: -send-batch must be between 1 and %d", sim.MaxSendBatch)
	}
	carrier := benchCarrier{latency: *latency, reportBatch: *reportBatch, sendBatch: *sendBatch}
	var dbs []string
	switch *db {
	case "sqlite", "postgres":
		dbs = []string{*db}
	case "both":
		dbs = []string{"sqlite", "postgres"}
	default:
		return fmt.Errorf("bench: -db must be sqlite, postgres or both, not %q", *db)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *procs > 0 {
		dbs = []string{"postgres-processes"}
	}
	for _, d := range dbs {
		var res *BenchResult
		var err error
		if *procs > 0 {
			res, err = benchScaleOut(ctx, *pg, *procs, *n, *batch, *clients, *workers, carrier, stderr)
		} else {
			res, err = benchOne(ctx, d, *pg, *n, *batch, *clients, *workers, carrier, *progress, *memProfile, stderr)
		}
		if err != nil {
			return fmt.Errorf("bench %s: %w", d, err)
		}
		if *asJSON {
			printJSON(stdout, res)
			continue
		}
		calls := "n/a (counted per process)"
		if res.CRMCallsPer1k >= 0 {
			calls = fmt.Sprintf("%.1f", res.CRMCallsPer1k)
		}
		fmt.Fprintf(stdout, "%-8s %7d msgs  %6.1f s  %7.0f msg/s end to end  (accept %.0f/s)  p50 %.0f ms  p99 %.0f ms  CRM calls/1k %s  peak RSS %.0f MB\n",
			res.Database, res.Messages, res.Seconds, res.MessagesPerSec, res.AcceptPerSec, res.P50Millis, res.P99Millis, calls, res.PeakRSSMB)
	}
	return nil
}

func benchOne(ctx context.Context, dialect, pgURL string, n, batch, clients, workers int, carrierOpts benchCarrier, progress bool, memProfile string, stderr io.Writer) (*BenchResult, error) {
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The simulated carrier runs in a process of its own, as a partner
	// would: its memory is not Switchboard's, and it outlives nothing here.
	carrier, stopCarrier, err := startBenchCarrier(ctx, carrierOpts)
	if err != nil {
		return nil, err
	}
	defer stopCarrier()
	cfg := &Config{Addr: "127.0.0.1:0", DataDir: dir, LogLevel: "error", LogFormat: "text", SendWorkers: workers, OrgName: "Bench",
		AdminEmail: "bench@example.org", JobTimeout: time.Minute, SimURL: carrier}
	if dialect == "postgres" {
		u, cleanup, err := benchSchema(ctx, pgURL)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		cfg.DatabaseURL = u
	} else {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := logging.New(stderr, slog.LevelWarn, "text")
	app, err := newApp(ctx, cfg, log, true)
	if err != nil {
		return nil, err
	}
	defer app.Stop(10 * time.Second)
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	// The real address is known only now: point callbacks and the carrier at it.
	base := "http://" + app.Addr()
	public, _ := url.Parse(base)
	app.Hub.PublicURL = public
	cfg.public = public
	org, admin, key, err := app.Hub.CreateOrg(ctx, "Bench", "bench@example.org", "Bench")
	if err != nil {
		return nil, err
	}
	rate := 0.0
	gv, err := app.Hub.CreateGateway(ctx, admin, hub.GatewayRequest{Provider: sb.ProviderSim, Number: "+12025550100", Rate: &rate,
		Config: carrierOpts.gatewayConfig(carrier)})
	if err != nil {
		return nil, err
	}

	client := &http.Client{Timeout: 5 * time.Minute}
	start := time.Now()
	chunks := make(chan int)
	errc := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range chunks {
				recips := make([]hub.Recipient, 0, batch)
				for i := first; i < min(first+batch, n); i++ {
					recips = append(recips, hub.Recipient{To: fmt.Sprintf("+1202%07d", 5550000+i%4_000_000)})
				}
				body, _ := json.Marshal(hub.BulkRequest{GatewayID: gv.ID, Body: "Benchmark message: your appointment is confirmed.", Recipients: recips})
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/bulk-sends", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errc <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errc <- fmt.Errorf("bulk send: %s: %s", resp.Status, b)
					return
				}
			}
		}()
	}
	for first := 0; first < n; first += batch {
		chunks <- first
	}
	close(chunks)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	accepted := time.Since(start)

	// Wait until every message is delivered and written to the CRM. The
	// carrier's counters are in memory and cost nothing to read; the
	// database is asked only once the carrier has posted every callback, so
	// the waiting does not load the system being measured.
	deadline := time.Now().Add(30 * time.Minute)
	lastReport := time.Now()
	for {
		st, err := carrierStats(ctx, carrier)
		if err != nil {
			return nil, err
		}
		if progress && time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			fmt.Fprintf(stderr, "%6.1fs carrier accepted %6d  callbacks sent %6d (in %6d posts)  queued %5d\n",
				time.Since(start).Seconds(), st.Accepted, st.CallbacksSent, st.CallbackPosts, st.CallbacksQueued)
		}
		if st.CallbacksSent >= int64(2*n) && st.CallbacksQueued == 0 {
			// Index probes only: counting the delivered messages here would
			// read every row of the run on each poll.
			inFlight, err := app.DB.InFlight(ctx, org.ID)
			if err != nil {
				return nil, err
			}
			pending, err := app.DB.CRMClaimable(ctx, org.ID)
			if err != nil {
				return nil, err
			}
			if !inFlight && !pending {
				if leased, err := app.DB.CRMPendingCount(ctx, org.ID); err != nil || leased == 0 {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("timed out: carrier %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return nil, err
		}
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	lat, err := app.DB.DeliveryLatencies(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	if len(lat) < n {
		return nil, fmt.Errorf("only %d of %d messages were delivered", len(lat), n)
	}
	sortInt64(lat)
	res := &BenchResult{
		Database: dialect, Messages: n, Seconds: elapsed.Seconds(), MessagesPerSec: float64(n) / elapsed.Seconds(),
		AcceptPerSec: float64(n) / accepted.Seconds(), CRMCalls: app.CRMWrites.Load(), PeakRSSMB: peakRSSMB(),
	}
	if len(lat) > 0 {
		res.P50Millis = float64(lat[len(lat)/2]) / 1000
		res.P99Millis = float64(lat[len(lat)*99/100]) / 1000
	}
	res.CRMCallsPer1k = float64(res.CRMCalls) * 1000 / float64(n)
	return res, nil
}

// benchSchema creates a schema of its own on the server and returns a URL
// that uses it, and a cleanup that drops it.
func benchSchema(ctx context.Context, server string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s: %w", redactURL(server), err)
	}
	schema := "bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	conn.Close(ctx)
	u, _ := url.Parse(server)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	cleanup := func() {
		c, err := pgx.Connect(context.Background(), server)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}
	return u.String(), cleanup, nil
}

// peakRSSMB reads the process's peak resident set size (Linux), else the
// Go runtime's view of memory obtained from the OS.
func peakRSSMB() float64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					kb, _ := strconv.ParseFloat(f[1], 64)
					return kb / 1024
				}
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.Sys) / (1 << 20)
}

// benchCarrier is how the benchmark's simulated carrier behaves.
type benchCarrier struct {
	latency     time.Duration // each send's answer is held this long
	reportBatch int           // most status reports per callback
	sendBatch   int           // most messages per send request
}

// gatewayConfig is the bench gateway's provider settings.
func (c benchCarrier) gatewayConfig(url string) map[string]string {
	return map[string]string{sim.KeyBaseURL: url, sim.KeySendBatch: strconv.Itoa(max(1, c.sendBatch))}
}

// startBenchCarrier runs `switchboard sim serve` (this same binary) on a
// free loopback port and returns its URL.
func startBenchCarrier(ctx context.Context, opts benchCarrier) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, self, "sim", "serve", "--listen", "127.0.0.1:0", "--log-level", "error", "--report-batch", strconv.Itoa(max(1, opts.reportBatch)))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	_, url, ok := strings.Cut(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		stop()
		return "", nil, fmt.Errorf("simulated carrier did not start: %q %v", line, err)
	}
	if opts.latency > 0 {
		// Every send's answer is held (the carrier's "timeout" fault with
		// a short hold): a partner API's latency.
		f := sim.Faults{TimeoutNext: math.MaxInt32, TimeoutMillis: max(1, opts.latency.Milliseconds())}
		body, _ := json.Marshal(f)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, url+"/v1/faults", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("carrier answered %s", resp.Status)
			}
		}
		if err != nil {
			stop()
			return "", nil, fmt.Errorf("simulated carrier latency: %w", err)
		}
	}
	return url, stop, nil
}

// carrierStats reads the carrier's counters.
func carrierStats(ctx context.Context, url string) (sim.Stats, error) {
	var st sim.Stats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func sortInt64(v []int64) { slices.Sort(v) }
