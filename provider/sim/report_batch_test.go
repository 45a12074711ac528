package sim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider/sim"
)

// TestReportBatch: with report batching on, the carrier posts status reports
// as JSON arrays to the gateway's one status URL (the adapter drops the
// message parameter: each report names its message by client_ref); every
// report arrives once, signed, and a message's reports arrive in order.
func TestReportBatch(t *testing.T) {
	e := newCarrierEnv(t)
	if err := e.c.SetReportBatch(50); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		posts  int
		events = map[string][]string{} // client_ref → statuses in arrival order
		bad    []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.URL.String() != "/status" || r.Header.Get(sim.SignatureHeader) != sim.Sign(e.gw.Config[sim.KeySecret], "http://"+r.Host+r.URL.String(), body) {
			bad = append(bad, fmt.Sprintf("%s signed %q", r.URL, r.Header.Get(sim.SignatureHeader)))
		}
		var evs []sim.Event
		if err := json.Unmarshal(body, &evs); err != nil {
			bad = append(bad, "not an array: "+string(body))
		}
		posts++
		for _, ev := range evs {
			events[ev.ClientRef] = append(events[ev.ClientRef], ev.Status)
		}
	}))
	t.Cleanup(hook.Close)

	const n = 40
	for i := range n {
		id := fmt.Sprintf("msg-%d", i)
		_, err := e.p.Send(context.Background(), e.gw, &sb.OutboundMessage{ID: id, From: e.gw.Number, To: "+12025550111", Body: "hello",
			StatusCallback: hook.URL + "/status?m=" + id})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := e.c.Idle(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("refused posts: %v", bad)
	}
	for i := range n {
		id := fmt.Sprintf("msg-%d", i)
		if got := events[id]; len(got) != 2 || got[0] != "sent" || got[1] != "delivered" {
			t.Fatalf("reports of %s: %v, want [sent delivered]", id, got)
		}
	}
	// A message's two reports always travel together, so there are at most
	// as many posts as messages.
	s := e.c.Stats()
	if len(events) != n || posts > n || s.CallbacksSent != 2*n || s.CallbackPosts != int64(posts) {
		t.Fatalf("%d messages reported in %d posts, stats %+v", len(events), posts, s)
	}

	for _, bad := range []int{0, -1, sim.MaxReportBatch + 1} {
		if err := e.c.SetReportBatch(bad); err == nil {
			t.Fatalf("SetReportBatch(%d) was taken", bad)
		}
	}
}
