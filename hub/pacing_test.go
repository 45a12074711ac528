package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// TestPacingSharedAcrossProcesses: two Switchboards on one PostgreSQL
// database (on SQLite, one process: the file belongs to one process) share a
// gateway's rate: the send slots they reserve, together, are never closer
// than 1/rate, and every message goes out once.
func TestPacingSharedAcrossProcesses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		const rate = 20.0
		a := hubtest.New(t, d, hubtest.Options{GatewayRate: rate})
		b := a
		if d == store.Postgres {
			b = hubtest.New(t, d, hubtest.Options{Peer: a})
		}
		var mu sync.Mutex
		var slots []time.Time
		observe := func(gw string, at time.Time) {
			mu.Lock()
			slots = append(slots, at)
			mu.Unlock()
		}
		a.Hub.SlotObserver, b.Hub.SlotObserver = observe, observe
		var recips []map[string]string
		for i := range 30 {
			recips = append(recips, map[string]string{"to": "+120255503" + string(rune('0'+i/10)) + string(rune('0'+i%10))})
		}
		// Two bulk sends, one through each process.
		for i, e := range []*hubtest.Env{a, b} {
			r := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": a.Gateway.ID, "body": "paced", "recipients": recips[i*15 : (i+1)*15]})
			if r.Status != http.StatusAccepted {
				t.Fatalf("bulk %d: %d %s", i, r.Status, r.Body)
			}
		}
		a.WaitFor("all sent", func() bool { return a.Carrier.Stats().Accepted >= 30 })
		if s := a.Carrier.Stats(); s.Accepted != 30 || s.Duplicates != 0 {
			t.Fatalf("carrier: %+v", s)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(slots) < 30 {
			t.Fatalf("%d slots reserved for 30 sends", len(slots))
		}
		slices.SortFunc(slots, func(x, y time.Time) int { return x.Compare(y) })
		min := time.Duration(float64(time.Second) / rate)
		for i := 1; i < len(slots); i++ {
			if gap := slots[i].Sub(slots[i-1]); gap < min {
				t.Fatalf("slots %d and %d are %v apart, under %v", i-1, i, gap, min)
			}
		}
	})
}

// TestThrottledSendsRetried: the partner's 429 pauses the gateway and the
// messages go out later, none lost, none twice.
func TestThrottledSendsRetried(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		e.Carrier.ThrottleNext(3)
		var recips []map[string]string
		for i := range 8 {
			recips = append(recips, map[string]string{"to": "+120255504" + string(rune('0'+i)) + "0"})
		}
		r := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "hello", "recipients": recips})
		var res struct {
			BatchID string `json:"batch_id"`
		}
		r.JSON(t, &res)
		e.WaitFor("throttled bulk delivered", func() bool {
			var st struct {
				Counts map[string]int
			}
			e.API("GET", "/v1/bulk-sends/"+res.BatchID, nil).JSON(t, &st)
			return st.Counts[string(sb.StatusDelivered)] == 8
		})
		if s := e.Carrier.Stats(); s.Accepted != 8 || s.Throttled != 3 || s.Duplicates != 0 {
			t.Fatalf("carrier: %+v", s)
		}
	})
}

// TestPacingBySegments: a gateway limited to 3 segments a second reserves
// a slot per segment, so 3-segment messages go out one a second (a
// message-based limit would allow three); and each goes out once.
func TestPacingBySegments(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		if r := e.API("PATCH", "/v1/gateways/"+e.Gateway.ID, map[string]any{"rate": 3, "rate_unit": sb.RatePerSegment}); r.Status != http.StatusOK {
			t.Fatalf("gateway: %d %s", r.Status, r.Body)
		}
		var mu sync.Mutex
		var slots []time.Time
		e.Hub.SlotObserver = func(gw string, at time.Time) {
			mu.Lock()
			slots = append(slots, at)
			mu.Unlock()
		}
		body := strings.Repeat("Registration for the spring term is open. ", 9) // 378 GSM-7 characters: 3 segments
		if n := sb.CountSegments(body).Segments; n != 3 {
			t.Fatalf("body has %d segments, want 3", n)
		}
		var recips []map[string]string
		for i := range 4 {
			recips = append(recips, map[string]string{"to": "+120255505" + string(rune('0'+i)) + "0"})
		}
		r := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": body, "recipients": recips})
		if r.Status != http.StatusAccepted {
			t.Fatalf("bulk: %d %s", r.Status, r.Body)
		}
		e.WaitFor("all sent", func() bool { return e.Carrier.Stats().Accepted >= 4 })
		if s := e.Carrier.Stats(); s.Accepted != 4 || s.Duplicates != 0 {
			t.Fatalf("carrier: %+v", s)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(slots) < 4 {
			t.Fatalf("%d slots reserved for 4 sends", len(slots))
		}
		slices.SortFunc(slots, func(x, y time.Time) int { return x.Compare(y) })
		for i := 1; i < len(slots); i++ {
			if gap := slots[i].Sub(slots[i-1]); gap < time.Second {
				t.Fatalf("slots %d and %d are %v apart; a 3-segment message on a 3 segments/s gateway needs a whole second", i-1, i, gap)
			}
		}
	})
}

// TestGracefulStopEndsPacedChunk: stopping the job queue in the middle of a
// paced bulk send does not wait for the chunks to finish sending (minutes
// at the gateway's rate): each chunk stops between two messages, every send
// made is recorded, the rest stay Queued, and the chunk jobs are left
// available, their attempt not counted and no error recorded.
func TestGracefulStopEndsPacedChunk(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		var recips []map[string]string
		for i := range 200 { // two chunks, 100 s at 2/s
			recips = append(recips, map[string]string{"to": fmt.Sprintf("+1202555%04d", 2000+i)})
		}
		r := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "paced", "recipients": recips})
		if r.Status != http.StatusAccepted {
			t.Fatalf("bulk: %d %s", r.Status, r.Body)
		}
		var res hub.BulkResult
		r.JSON(t, &res)
		e.WaitFor("sending under way", func() bool { return e.Carrier.Stats().Accepted >= 2 })

		// A bound well under the 100 s the sends would take: the chunks
		// must end by themselves.
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := e.Queue.Stop(sctx); err != nil {
			t.Fatalf("the queue did not stop by itself: %v", err)
		}
		accepted := e.Carrier.Stats().Accepted
		counts, err := e.DB.BatchCounts(ctx, e.Org.ID, res.BatchID)
		if err != nil {
			t.Fatal(err)
		}
		sent := counts[sb.StatusSent] + counts[sb.StatusDelivered]
		if int64(sent) != accepted || counts[sb.StatusQueued] != len(recips)-sent || sent == len(recips) {
			t.Fatalf("after the stop: %v; the carrier took %d", counts, accepted)
		}
		jobs, err := e.DB.Jobs(ctx, hub.SendChunkArgs{}.Kind())
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 2 {
			t.Fatalf("%d chunk jobs, want 2", len(jobs))
		}
		for _, j := range jobs {
			if j.Errors != "" || j.State != "available" && j.State != "completed" || j.Attempt > 1 {
				t.Errorf("chunk job after the stop: %+v, want available again with no error", j)
			}
		}
	}, hubtest.Options{GatewayRate: 2})
}
