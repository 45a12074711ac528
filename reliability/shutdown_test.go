package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store/storetest"
)

// TestGracefulShutdown sends SIGTERM to `switchboard serve` in the middle of
// a paced bulk send: the process finishes what is in flight and exits 0
// well within its grace period (a send chunk stops between two messages
// rather than sending on for minutes), no job records a cancellation,
// every message the carrier took is recorded as sent, and after a restart
// every message reaches the carrier exactly once.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("shutdown tests run real processes; skipped in -short")
	}
	const (
		total = 300
		rate  = 5.0 // 60 s of sending: longer than the grace period
	)
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			url := storetest.URL(t, d)
			c := startCarrier(t)
			s := newService(t, url, c.URL)
			ctx := context.Background()
			status, body, err := patchJSON(ctx, s.base+"/v1/gateways/"+s.GW, s.Key, map[string]any{"rate": rate})
			if err != nil || status != http.StatusOK {
				t.Fatalf("set the gateway's rate: %d %s %v", status, body, err)
			}
			recips := make([]map[string]string, total)
			for i := range recips {
				recips[i] = map[string]string{"to": fmt.Sprintf("+1202%07d", 6000000+i)}
			}
			status, body, err = postJSON(ctx, s.base+"/v1/bulk-sends", s.Key,
				map[string]any{"gateway_id": s.GW, "body": "Orientation starts Monday at 9.", "recipients": recips})
			if err != nil || status != http.StatusAccepted {
				t.Fatalf("bulk send: %d %s %v", status, body, err)
			}
			var batch struct {
				BatchID string `json:"batch_id"`
			}
			if err := json.Unmarshal(body, &batch); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "sending under way", func() bool { return c.stats(t).Accepted >= 15 }, s.p.output)

			if err := s.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-s.p.exited:
			case <-time.After(2 * time.Minute): // a guard against a hang
				t.Fatalf("serve did not exit after SIGTERM:\n%s", s.p.output())
			}
			if code := s.p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("serve exited with %d after SIGTERM:\n%s", code, s.p.output())
			}
			if out := s.p.output(); strings.Contains(out, "did not stop in time") {
				t.Fatalf("jobs were still running at the end of the grace period and were cancelled:\n%s", out)
			}
			atStop := c.stats(t)
			if atStop.Accepted >= total {
				t.Fatalf("all %d messages were sent before the shutdown; the test needs a slower gateway", total)
			}

			db := openStore(t, url)
			orgs, err := db.Orgs(ctx)
			if err != nil || len(orgs) != 1 {
				t.Fatalf("orgs: %v %d", err, len(orgs))
			}
			org := orgs[0].ID
			jobs, err := db.RawScan(ctx, "river_job")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(jobs), "context canceled") || strings.Contains(string(jobs), "stop initiated") {
				t.Fatalf("a job recorded a cancellation at shutdown")
			}
			counts, err := db.BatchCounts(ctx, org, batch.BatchID)
			if err != nil {
				t.Fatal(err)
			}
			sent := counts[sb.StatusSent] + counts[sb.StatusDelivered]
			if int64(sent) != atStop.Accepted || counts[sb.StatusQueued] != total-sent || atStop.Duplicates != 0 {
				t.Fatalf("after the shutdown: %v in the database; the carrier took %d (%d repeated): every message the carrier took must be recorded as sent, the rest Queued",
					counts, atStop.Accepted, atStop.Duplicates)
			}
			t.Logf("%s: SIGTERM after %d of %d sent; the rest waited for the restart", d, atStop.Accepted, total)

			s.start(false)
			waitUntil(t, "every message delivered after the restart", func() bool {
				counts, err = db.BatchCounts(ctx, org, batch.BatchID)
				return err == nil && counts[sb.StatusDelivered] == total
			}, func() string { return fmt.Sprintf("%v, carrier %+v\n%s", counts, c.stats(t), s.p.output()) })
			if st := c.stats(t); st.Accepted != total || st.Duplicates != 0 {
				t.Fatalf("carrier took %d distinct messages (%d repeated), want %d exactly once", st.Accepted, st.Duplicates, total)
			}
		})
	}
}
