package sim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider/sim"
)

// TestSendBatch: the batch API answers every message on its own, in order,
// as if each were sent alone: taken, refused by its handset, malformed, or
// already taken under the same client_ref.
func TestSendBatch(t *testing.T) {
	e := newCarrierEnv(t)
	ctx := context.Background()
	if err := e.c.SetHandset("+12025550112", sim.Handset{Behaviour: sim.Reject}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.SetHandset("+12025550113", sim.Handset{Behaviour: sim.Unsubscribed}); err != nil {
		t.Fatal(err)
	}
	first, err := e.send(ctx, "m0", "+12025550110")
	if err != nil {
		t.Fatal(err)
	}
	ms := []*sb.OutboundMessage{
		{ID: "m1", To: "+12025550111", Body: "one"},
		{ID: "m2", To: "+12025550112", Body: "two"},
		{ID: "m0", To: "+12025550110", Body: "again"},
		{ID: "m3", To: "+12025550113", Body: "three"},
		{ID: "m4", To: "2025550114", Body: "four"},
		{ID: "m5", To: "+12025550115", Body: "five"},
	}
	res, err := e.p.SendBatch(ctx, e.gw, ms)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(ms) {
		t.Fatalf("%d results for %d messages", len(res), len(ms))
	}
	kind := func(i int) sb.SendErrorKind {
		var se *sb.SendError
		if !errors.As(res[i].Err, &se) || res[i].Result != nil {
			t.Fatalf("result %d: %+v, want an error", i, res[i])
		}
		return se.Kind
	}
	for _, i := range []int{0, 5} {
		if res[i].Err != nil || !strings.HasPrefix(res[i].Result.ProviderMessageID, "SM") {
			t.Fatalf("result %d: %+v, want taken", i, res[i])
		}
	}
	if res[0].Result.ProviderMessageID == res[5].Result.ProviderMessageID {
		t.Fatal("two messages got the same id")
	}
	if res[2].Err != nil || res[2].Result.ProviderMessageID != first.ProviderMessageID {
		t.Fatalf("result 2 (a client_ref taken before): %+v, want id %s", res[2], first.ProviderMessageID)
	}
	if k := kind(1); k != sb.SendInvalidNumber {
		t.Fatalf("rejected handset: %s", k)
	}
	if k := kind(3); k != sb.SendOptedOut {
		t.Fatalf("unsubscribed handset: %s", k)
	}
	if k := kind(4); k != sb.SendInvalidNumber {
		t.Fatalf("number without +: %s", k)
	}
	s := e.c.Stats()
	if s.SendRequests != 2 || s.Accepted != 3 || s.Duplicates != 1 || s.Rejected != 2 {
		t.Fatalf("stats: %+v", s)
	}
	if got := len(e.c.Arrivals(e.gw.Number)); got != 7 {
		t.Fatalf("arrivals: %d, want 7 (one per message)", got)
	}
}

// TestSendBatchRefusedWhole: a throttled or failed batch request is an
// error for the batch as a whole, with nothing taken; the next goes through.
func TestSendBatchRefusedWhole(t *testing.T) {
	e := newCarrierEnv(t)
	ctx := context.Background()
	ms := []*sb.OutboundMessage{{ID: "m1", To: "+12025550111"}, {ID: "m2", To: "+12025550112"}}
	e.c.ThrottleNext(1)
	res, err := e.p.SendBatch(ctx, e.gw, ms)
	var se *sb.SendError
	if !errors.As(err, &se) || se.Kind != sb.SendThrottled || se.RetryAfter != time.Second || res != nil {
		t.Fatalf("throttled: %v %+v", err, res)
	}
	e.c.FailNext(1, http.StatusServiceUnavailable)
	res, err = e.p.SendBatch(ctx, e.gw, ms)
	if !errors.As(err, &se) || se.Kind != sb.SendTransient || res != nil {
		t.Fatalf("failed: %v %+v", err, res)
	}
	if s := e.c.Stats(); s.Accepted != 0 || s.SendRequests != 0 {
		t.Fatalf("stats after refusals: %+v", s)
	}
	res, err = e.p.SendBatch(ctx, e.gw, ms)
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("after refusals: %v %+v", err, res)
	}
}

// TestSendBatchBadRequests: a batch the carrier cannot read is refused with
// a 400 that names the problem (401 without credentials), and nothing of it
// is taken.
func TestSendBatchBadRequests(t *testing.T) {
	e := newCarrierEnv(t)
	url := e.srv.URL + "/v1/accounts/" + e.gw.Config[sim.KeyAccount] + "/messages/batch"
	many := `{"messages":[` + strings.Repeat(`{"from":"+12025550100","to":"+12025550111"},`, sim.MaxSendBatch) + `{"from":"+12025550100","to":"+12025550111"}]}`
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `{"messages":`, "malformed JSON body"},
		{"empty", `{"messages":[]}`, "1 to 1000 messages, not 0"},
		{"too many", many, fmt.Sprintf("not %d", sim.MaxSendBatch+1)},
		{"no credentials", `{"messages":[{"from":"+12025550100","to":"+12025550111"}]}`, "authentication required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(tc.body))
			want := http.StatusBadRequest
			if tc.name == "no credentials" {
				want = http.StatusUnauthorized
			} else {
				req.SetBasicAuth(e.gw.Config[sim.KeyAccount], e.gw.Config[sim.KeySecret])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %s, want %d naming %q", resp.StatusCode, b, want, tc.want)
			}
		})
	}
	if s := e.c.Stats(); s.SendRequests != 0 || s.Accepted != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// TestSendBatchConfig: send_batch is a whole number from 1 to MaxSendBatch;
// unset, a gateway sends one message per request.
func TestSendBatchConfig(t *testing.T) {
	p := sim.New("http://127.0.0.1:1", nil)
	for _, tc := range []struct {
		value string
		max   int
		ok    bool
	}{{"", 1, true}, {"1", 1, true}, {"250", 250, true}, {"1000", 1000, true}, {"0", 0, false}, {"1001", 0, false}, {"ten", 0, false}, {"-5", 0, false}} {
		gw := &sb.Gateway{Provider: sb.ProviderSim, Number: "+12025550100", Config: map[string]string{sim.KeySendBatch: tc.value}}
		err := p.ValidateConfig(gw)
		var se *sb.Error
		switch {
		case tc.ok && err != nil:
			t.Fatalf("send_batch %q: %v", tc.value, err)
		case !tc.ok && (!errors.As(err, &se) || se.Field != "config.send_batch"):
			t.Fatalf("send_batch %q: err = %v, want one naming config.send_batch", tc.value, err)
		case tc.ok && p.MaxBatch(gw) != tc.max:
			t.Fatalf("send_batch %q: MaxBatch %d, want %d", tc.value, p.MaxBatch(gw), tc.max)
		}
	}
}
