package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// benchScaleOut runs the whole-pipeline benchmark with `procs` separate
// `switchboard serve` processes sharing one PostgreSQL (and one simulated
// carrier process): bulk sends go to the processes in turn, and any process
// may send, receive callbacks and write back. It reports the same figures
// as bench, peak RSS being the largest process's.
func benchScaleOut(ctx context.Context, pgURL string, procs, n, batch, clients, workers int, carrierOpts benchCarrier, stderr io.Writer) (*BenchResult, error) {
	url, cleanup, err := benchSchema(ctx, pgURL)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	carrier, stopCarrier, err := startBenchCarrier(ctx, carrierOpts)
	if err != nil {
		return nil, err
	}
	defer stopCarrier()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	keys := sb.NewKeySpec("bench")
	hash := strings.SplitN(sb.NewKeySpec("h"), ":", 2)[1]
	type server struct {
		cmd  *exec.Cmd
		base string
	}
	var servers []server
	defer func() {
		for _, s := range servers {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	}()
	var key, gw string
	keyLine := regexp.MustCompile(`^\s+(sb_[a-z0-9]+_[a-z0-9]+)\s*$`)
	for i := range procs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addr := ln.Addr().String()
		ln.Close()
		dir, err := os.MkdirTemp("", "switchboard-bench-proc-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cmd := exec.CommandContext(ctx, self, "serve", "--addr", addr, "--database-url", url, "--sim-url", carrier, "--data", dir,
			"--send-workers", strconv.Itoa(workers), "--log-level", "error", "--log-format", "text")
		cmd.Env = append(os.Environ(), "SWITCHBOARD_SECRET_KEYS="+keys, "SWITCHBOARD_HASH_KEY="+hash, "SWITCHBOARD_DEMO_GATEWAY=false")
		cmd.Stderr = stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		servers = append(servers, server{cmd: cmd, base: "http://" + addr})
		lines := bufio.NewScanner(out)
		if i == 0 {
			for key == "" && lines.Scan() {
				if m := keyLine.FindStringSubmatch(lines.Text()); m != nil {
					key = m[1]
				}
			}
			if key == "" {
				return nil, fmt.Errorf("the first process printed no API key")
			}
		}
		go func() { _, _ = io.Copy(io.Discard, out) }()
		if err := waitReady(ctx, "http://"+addr+"/readyz"); err != nil {
			return nil, err
		}
		if i == 0 {
			// An unlimited-rate gateway on the carrier process.
			status, body, err := postJSON(ctx, "http://"+addr+"/v1/gateways", key, hub.GatewayRequest{Provider: sb.ProviderSim, Number: "+12025550100",
				Rate: new(float64), Config: carrierOpts.gatewayConfig(carrier)})
			if err != nil || status != http.StatusCreated {
				return nil, fmt.Errorf("create gateway: %d %s %v", status, body, err)
			}
			var g struct{ ID string }
			_ = json.Unmarshal(body, &g)
			gw = g.ID
		}
	}

	start := time.Now()
	chunks := make(chan int)
	errc := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range chunks {
				recips := make([]hub.Recipient, 0, batch)
				for i := first; i < min(first+batch, n); i++ {
					recips = append(recips, hub.Recipient{To: fmt.Sprintf("+1202%07d", 5550000+i%4_000_000)})
				}
				s := servers[(first/batch+c)%len(servers)]
				status, body, err := postJSON(ctx, s.base+"/v1/bulk-sends", key, hub.BulkRequest{GatewayID: gw, Body: "Benchmark message: your appointment is confirmed.", Recipients: recips})
				if err != nil || status != http.StatusAccepted {
					errc <- fmt.Errorf("bulk send: %d %s %v", status, body, err)
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

	ring, _ := sb.ParseKeyring(keys)
	hasher, _ := sb.NewHasher([]byte("unused-for-counting-0123456789abcdef"))
	db, err := store.Open(ctx, url, store.Options{Keyring: ring, Hasher: hasher, MaxConns: 2})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	orgs, err := db.Orgs(ctx)
	if err != nil || len(orgs) != 1 {
		return nil, fmt.Errorf("orgs: %v", err)
	}
	org := orgs[0].ID
	deadline := time.Now().Add(30 * time.Minute)
	for {
		st, err := carrierStats(ctx, carrier)
		if err != nil {
			return nil, err
		}
		if st.CallbacksSent >= int64(2*n) && st.CallbacksQueued == 0 {
			delivered, _ := db.CountDelivered(ctx, org)
			pending, _ := db.CRMPendingCount(ctx, org)
			if delivered >= n && pending == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("timed out: carrier %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	res := &BenchResult{Database: fmt.Sprintf("postgres×%d", procs), Messages: n, Seconds: elapsed.Seconds(),
		MessagesPerSec: float64(n) / elapsed.Seconds(), AcceptPerSec: float64(n) / accepted.Seconds()}
	if lat, err := db.DeliveryLatencies(ctx, org); err == nil && len(lat) > 0 {
		sortInt64(lat)
		res.P50Millis = float64(lat[len(lat)/2]) / 1000
		res.P99Millis = float64(lat[len(lat)*99/100]) / 1000
	}
	for _, s := range servers {
		res.PeakRSSMB = max(res.PeakRSSMB, processPeakRSSMB(s.cmd.Process.Pid))
	}
	res.CRMCallsPer1k = -1 // counted inside each process; see bench -db postgres
	return res, nil
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become ready", url)
}

func postJSON(ctx context.Context, url, key string, v any) (int, []byte, error) {
	b, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, nil
}

// processPeakRSSMB reads a process's peak resident set size (Linux).
func processPeakRSSMB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
