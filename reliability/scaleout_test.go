package reliability

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// peer starts another `switchboard serve` on s's database with the same
// keys and carrier: a second process of the same Switchboard.
func (s *service) peer(t *testing.T) *service {
	t.Helper()
	port := freePort(t)
	p := &service{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), env: s.env, Key: s.Key, GW: s.GW}
	p.args = slices.Clone(s.args)
	for i := 0; i+1 < len(p.args); i++ {
		switch p.args[i] {
		case "--addr":
			p.args[i+1] = fmt.Sprintf("127.0.0.1:%d", port)
		case "--data":
			p.args[i+1] = t.TempDir()
		}
	}
	p.start(false)
	return p
}

const (
	scaleMessages = 2500
	scaleRate     = 50.0
)

// TestScaleOut runs three `switchboard serve` processes on one PostgreSQL
// with one carrier, and sends one bulk send of 2,500 messages through a
// gateway limited to 50 messages a second, accepted by one process. The
// processes share the work; no message is sent twice; every message is
// delivered and in the CRM; and the carrier, which times every send it
// receives, never sees the gateway's rate exceeded in total: at most
// rate + 1 sends in any one-second window (one slot of network jitter).
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("scale-out tests run real processes; skipped in -short")
	}
	url := storetest.URL(t, store.Postgres)
	c := startCarrier(t)
	a := newService(t, url, c.URL)
	procs := []*service{a, a.peer(t), a.peer(t)}
	const number = "+12025550170"
	gw := createGateway(t, a, number, scaleRate)
	batch := bulkSend(t, a, gw, recipients(5_000_000, scaleMessages))

	db := openStore(t, url)
	ctx := context.Background()
	orgs, err := db.Orgs(ctx)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("orgs: %v %d", err, len(orgs))
	}
	org := orgs[0].ID
	waitUntil(t, "every message delivered and in the CRM", func() bool {
		n, _ := db.CountDelivered(ctx, org)
		p, err := db.CRMPendingCount(ctx, org)
		return n == scaleMessages && err == nil && p == 0
	}, func() string {
		return fmt.Sprintf("batch %v, carrier %+v\nfirst process output:\n%s", batchCounts(t, a, batch), c.fullStats(t), a.p.output())
	})

	st := c.fullStats(t)
	if st.Accepted != scaleMessages {
		t.Fatalf("carrier took %d distinct messages, want %d", st.Accepted, scaleMessages)
	}
	// A repeated send happens only after a send whose outcome was unknown
	// (a transient error such as a timeout): none is unexplained.
	unknown, busy := 0.0, 0
	var sentBy []float64
	for _, p := range procs {
		unknown += p.metric(t, "switchboard_send_results_total", "provider", "sim", "result", "transient")
		ok := p.metric(t, "switchboard_send_results_total", "provider", "sim", "result", "ok")
		sentBy = append(sentBy, ok)
		if ok > 0 {
			busy++
		}
	}
	if float64(st.Duplicates) > unknown {
		t.Fatalf("carrier saw %d repeated sends but only %v sends had an unknown outcome", st.Duplicates, unknown)
	}
	if busy < 2 {
		t.Fatalf("the work was not shared: sends per process %v", sentBy)
	}
	if n, _ := db.CountRows(ctx, "messages"); n != scaleMessages {
		t.Fatalf("%d messages stored, want %d", n, scaleMessages)
	}
	if n, err := db.CRMMessagesWithStatus(ctx, org, sb.StatusDelivered); err != nil || n != scaleMessages {
		t.Fatalf("%d CRM records Delivered (err %v), want %d", n, err, scaleMessages)
	}

	// The gateway's rate, as the carrier saw it.
	at := c.arrivals(t, number)
	if len(at) < scaleMessages {
		t.Fatalf("carrier timed %d sends from %s, want at least %d", len(at), number, scaleMessages)
	}
	slices.SortFunc(at, func(x, y time.Time) int { return x.Compare(y) })
	peak, first := peakWindow(at, time.Second)
	if limit := int(scaleRate) + 1; peak > limit {
		gaps := make([]string, 0, peak)
		for i := max(first-10, 1); i < first+peak; i++ {
			if i == first {
				gaps = append(gaps, "|")
			}
			gaps = append(gaps, at[i].Sub(at[i-1]).Round(100*time.Microsecond).String())
		}
		t.Fatalf("%d sends reached the carrier within one second; the gateway's rate is %v/s (at most %d allowed); gaps between arrivals (| marks the window's start): %v",
			peak, scaleRate, limit, gaps)
	}
	span := at[len(at)-1].Sub(at[0])
	t.Logf("sends per process %v; carrier: %d distinct, %d repeated (%v sends with unknown outcome); peak %d sends in a 1 s window, overall %.1f/s over %v",
		sentBy, st.Accepted, st.Duplicates, unknown, peak, float64(len(at)-1)/span.Seconds(), span.Round(time.Millisecond))
}
