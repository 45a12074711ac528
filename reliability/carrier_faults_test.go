package reliability

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider/sim"
	"github.com/switchboard/switchboard/store/storetest"
)

// faultMessages is the size of each bulk send of TestCarrierFaults.
const faultMessages = 300

// TestCarrierFaults runs a bulk send through a carrier that fails in each
// way a partner does — 503s and 500s for a while, sends that time out after
// the carrier took them, throttling — and checks that while it fails no
// message is failed (they wait, Queued), /metrics counts every failed
// attempt, and that in the end every message is delivered exactly once
// (repeated attempts are recognised by the carrier and reported) and its
// final status is in the CRM.
func TestCarrierFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault tests run real processes; skipped in -short")
	}
	cases := []struct {
		name   string
		faults sim.Faults
		// result is the send_results label the failed attempts count under.
		result string
		// failed reads the carrier's count of answers given under the fault.
		failed func(sim.Stats) int64
		// hold: the carrier keeps failing until the test lifts it, after
		// the messages were retried; otherwise the fault wears off.
		hold bool
	}{
		{"503 for a while", sim.Faults{FailNext: 1 << 30, FailStatus: 503}, "transient", func(s sim.Stats) int64 { return s.Failed }, true},
		{"500 for a while", sim.Faults{FailNext: 1 << 30, FailStatus: 500}, "transient", func(s sim.Stats) int64 { return s.Failed }, true},
		{"sends time out", sim.Faults{TimeoutNext: 40, TimeoutMillis: 60_000}, "transient", func(s sim.Stats) int64 { return s.TimedOut }, false},
		{"throttled", sim.Faults{ThrottleNext: 60}, "throttled", func(s sim.Stats) int64 { return s.Throttled }, false},
	}
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			url := storetest.URL(t, d)
			c := startCarrier(t)
			s := newService(t, url, c.URL)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					before := c.fullStats(t)
					metricBefore := s.metric(t, "switchboard_send_results_total", "provider", "sim", "result", tc.result)
					c.setFaults(t, tc.faults)
					batch := bulkSend(t, s, s.GW, recipients(5_000_000+i*10_000, faultMessages))
					explain := func() string {
						return fmt.Sprintf("batch %v, carrier %+v, faults %+v\nservice output:\n%s", batchCounts(t, s, batch), c.fullStats(t), c.faults(t), s.p.output())
					}

					// While the carrier fails, the messages wait.
					if tc.hold {
						// Enough failed answers that every send job was
						// retried at least once (a run stops at its first
						// failure with at most 8 sends in flight).
						waitUntil(t, "sends failing and retried", func() bool {
							return tc.failed(c.fullStats(t))-tc.failed(before) >= 40
						}, explain)
						counts := batchCounts(t, s, batch)
						if counts[string(sb.StatusQueued)] != faultMessages {
							t.Fatalf("while the carrier fails: %v, want all %d Queued", counts, faultMessages)
						}
						if code, body := s.readyz(); code != http.StatusOK {
							t.Fatalf("/readyz while the partner fails: %d %s", code, body)
						}
						c.setFaults(t, sim.Faults{})
					} else {
						waitUntil(t, "the fault to wear off", func() bool {
							f := c.faults(t)
							return f.TimeoutNext == 0 && f.ThrottleNext == 0
						}, explain)
					}
					failed := tc.failed(c.fullStats(t)) - tc.failed(before)
					waitUntil(t, "every message delivered and in the CRM", func() bool {
						return batchCounts(t, s, batch)[string(sb.StatusDelivered)] == faultMessages && s.crmPending() == 0
					}, explain)

					counts := batchCounts(t, s, batch)
					if len(counts) != 1 {
						t.Fatalf("final statuses %v, want all %d Delivered", counts, faultMessages)
					}
					after := c.fullStats(t)
					if got := after.Accepted - before.Accepted; got != faultMessages {
						t.Fatalf("carrier took %d distinct messages, want %d", got, faultMessages)
					}
					// Every failed answer shows on /metrics, once. A send
					// held past the client's timeout counts when the client
					// gives up, which can be after the carrier's status
					// callbacks delivered the message: wait for it.
					waitUntil(t, "the failed answers counted on /metrics", func() bool {
						return s.metric(t, "switchboard_send_results_total", "provider", "sim", "result", tc.result)-metricBefore >= float64(failed)
					}, explain)
					if got := s.metric(t, "switchboard_send_results_total", "provider", "sim", "result", tc.result) - metricBefore; got != float64(failed) {
						t.Fatalf("/metrics counts %v %s send results, the carrier gave %d failed answers", got, tc.result, failed)
					}
					t.Logf("%d failed answers (%s); carrier saw %d distinct messages and %d repeated sends (recognised by client_ref)",
						failed, tc.result, after.Accepted-before.Accepted, after.Duplicates-before.Duplicates)
				})
			}
			if t.Failed() {
				return
			}
			db := openStore(t, url)
			ctx := context.Background()
			orgs, err := db.Orgs(ctx)
			if err != nil || len(orgs) != 1 {
				t.Fatalf("orgs: %v %d", err, len(orgs))
			}
			total := faultMessages * len(cases)
			if n, _ := db.CountRows(ctx, "messages"); n != total {
				t.Fatalf("%d messages stored, want %d", n, total)
			}
			if n, err := db.CRMMessagesWithStatus(ctx, orgs[0].ID, sb.StatusDelivered); err != nil || n != total {
				t.Fatalf("%d CRM records Delivered (err %v), want %d", n, err, total)
			}
		})
	}
}
