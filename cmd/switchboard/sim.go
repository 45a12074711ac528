package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/provider/sim"
)

const simUsage = `Usage: switchboard sim <command> [flags]

  text    --from +1… --to +1… "message"      a simulated handset texts a gateway
  handset --number +1… [--behaviour deliver|undelivered|fail|reject|unsubscribed] [--auto-reply TEXT]
  inbox   --number +1…                       messages a simulated handset received
  stats                                      what the carrier counted
  serve   [--listen 127.0.0.1:8026] [--report-batch N]
                                             run a standalone simulated carrier; with
                                             --report-batch above 1 it posts up to N
                                             status reports per callback (a JSON array)

The carrier is the one built into "switchboard serve" (<public-url>/sim) unless
--sim-url or SWITCHBOARD_SIM_URL names another.
`

func simCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		fmt.Fprint(stderr, simUsage)
		return errors.New("a sim command is required")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("sim "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var from, to, number, behaviour, reply, addr *string
	var reportBatch *int
	switch cmd {
	case "text":
		from = fs.String("from", "", "the handset's number")
		to = fs.String("to", "", "the gateway's number")
	case "handset":
		number = fs.String("number", "", "the handset's number")
		behaviour = fs.String("behaviour", "deliver", "deliver, undelivered, fail, reject or unsubscribed")
		reply = fs.String("auto-reply", "", "text the handset sends back after each message")
	case "inbox":
		number = fs.String("number", "", "the handset's number")
	case "stats":
	case "serve":
		addr = fs.String("listen", "127.0.0.1:8026", "address the standalone carrier listens on")
		reportBatch = fs.Int("report-batch", 1, fmt.Sprintf("most status reports per callback, 1 to %d (1: each report alone)", sim.MaxReportBatch))
	default:
		fmt.Fprint(stderr, simUsage)
		return fmt.Errorf("unknown sim command %q", cmd)
	}
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if cmd == "serve" {
		return serveCarrier(ctx, *addr, *reportBatch, cfg, stdout, stderr)
	}
	base := strings.TrimSuffix(cfg.simURL(), "/")
	switch cmd {
	case "text":
		if *from == "" || *to == "" || fs.NArg() == 0 {
			return errors.New(`usage: switchboard sim text --from +1… --to +1… "message"`)
		}
		return simCall(ctx, stdout, http.MethodPost, base+"/v1/inbound", sim.InboundRequest{From: *from, To: *to, Body: strings.Join(fs.Args(), " ")})
	case "handset":
		if *number == "" {
			return errors.New("--number is required")
		}
		return simCall(ctx, stdout, http.MethodPut, base+"/v1/handsets/"+url.PathEscape(*number), sim.Handset{Behaviour: *behaviour, AutoReply: *reply})
	case "inbox":
		if *number == "" {
			return errors.New("--number is required")
		}
		return simCall(ctx, stdout, http.MethodGet, base+"/v1/handsets/"+url.PathEscape(*number)+"/messages", nil)
	default:
		return simCall(ctx, stdout, http.MethodGet, base+"/v1/stats", nil)
	}
}

func simCall(ctx context.Context, stdout io.Writer, method, u string, body any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("simulated carrier at %s: %w (is switchboard serve running?)", u, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(out)))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("simulated carrier answered %s", resp.Status)
	}
	return nil
}

// serveCarrier runs a standalone simulated carrier (used when several
// switchboard processes share one, and by the crash tests: the carrier
// outlives the processes it serves).
func serveCarrier(ctx context.Context, addr string, reportBatch int, cfg *Config, stdout, stderr io.Writer) error {
	level, _ := cfg.logLevel()
	log := logging.New(stderr, level, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := sim.NewCarrier(log)
	defer c.Close()
	if err := c.SetReportBatch(reportBatch); err != nil {
		return fmt.Errorf("--report-batch: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stdout, "simulated carrier listening on http://%s\n", ln.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
