package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/provider/sim"
)

// carrierEnv is a carrier on a loopback listener and a gateway that sends
// through it.
type carrierEnv struct {
	c   *sim.Carrier
	srv *httptest.Server
	p   *sim.Provider
	gw  *sb.Gateway
}

func newCarrierEnv(t *testing.T) *carrierEnv {
	t.Helper()
	c := sim.NewCarrier(logging.Discard())
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); c.Close() })
	gw := &sb.Gateway{ID: "gw1", Provider: sb.ProviderSim, Number: "+12025550100", Config: map[string]string{}}
	p := sim.New(srv.URL, nil)
	if err := p.ValidateConfig(gw); err != nil {
		t.Fatal(err)
	}
	return &carrierEnv{c: c, srv: srv, p: p, gw: gw}
}

func (e *carrierEnv) send(ctx context.Context, id, to string) (*sb.SendResult, error) {
	return e.p.Send(ctx, e.gw, &sb.OutboundMessage{ID: id, From: e.gw.Number, To: to, Body: "hello"})
}

func (e *carrierEnv) putFaults(t *testing.T, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/v1/faults", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// TestFailNext: failed sends are answered 5xx, are not taken, and are
// retryable for the sender; the next send goes through.
func TestFailNext(t *testing.T) {
	for _, status := range []int{500, 503} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			e := newCarrierEnv(t)
			e.c.FailNext(2, status)
			for i := range 2 {
				_, err := e.send(context.Background(), "m1", "+12025550111")
				var se *sb.SendError
				if !errors.As(err, &se) || se.Kind != sb.SendTransient || !se.Retryable() {
					t.Fatalf("send %d: err = %v, want a transient send error", i, err)
				}
			}
			if _, err := e.send(context.Background(), "m1", "+12025550111"); err != nil {
				t.Fatalf("send after the failures: %v", err)
			}
			s := e.c.Stats()
			if s.Failed != 2 || s.Accepted != 1 || s.Duplicates != 0 || len(e.c.Inbox("+12025550111")) != 1 {
				t.Fatalf("stats %+v, inbox %d", s, len(e.c.Inbox("+12025550111")))
			}
			if f := e.c.Faults(); f.FailNext != 0 {
				t.Fatalf("faults left: %+v", f)
			}
		})
	}
}

// TestTimeoutNext: a timed-out send is taken (the handset has it) but the
// sender hears nothing; sending it again is recognised as a duplicate.
func TestTimeoutNext(t *testing.T) {
	e := newCarrierEnv(t)
	e.c.TimeoutNext(1, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.send(ctx, "m1", "+12025550112")
		errc <- err
	}()
	// The carrier takes the message, then holds the answer: the sender
	// gives up (here: cancels) without an answer.
	deadline := time.After(30 * time.Second)
	for e.c.Stats().Accepted == 0 {
		select {
		case err := <-errc:
			t.Fatalf("send answered before the carrier took it: %v", err)
		case <-deadline:
			t.Fatal("the carrier never took the send")
		case <-time.After(5 * time.Millisecond):
		}
	}
	select {
	case err := <-errc:
		t.Fatalf("send answered while the carrier holds it: %v", err)
	default:
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a held send returned without error")
	}
	if got := len(e.c.Inbox("+12025550112")); got != 1 {
		t.Fatalf("handset has %d messages, want 1", got)
	}
	res, err := e.send(context.Background(), "m1", "+12025550112")
	if err != nil {
		t.Fatal(err)
	}
	if res.ProviderMessageID != e.c.Inbox("+12025550112")[0].ID {
		t.Fatalf("repeated send got id %s, want the first one's", res.ProviderMessageID)
	}
	if s := e.c.Stats(); s.Accepted != 1 || s.Duplicates != 1 || s.TimedOut != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestFaultsAPI: faults are set and read over HTTP; bad settings are
// refused with a message naming the problem.
func TestFaultsAPI(t *testing.T) {
	tests := []struct {
		body    string
		status  int
		want    sim.Faults
		wantErr string
	}{
		{body: `{"fail_next": 3}`, status: 200, want: sim.Faults{FailNext: 3, FailStatus: 503, TimeoutMillis: 60000}},
		{body: `{"fail_next": 1, "fail_status": 500, "timeout_next": 2, "timeout_ms": 1500, "throttle_next": 4}`, status: 200,
			want: sim.Faults{ThrottleNext: 4, FailNext: 1, FailStatus: 500, TimeoutNext: 2, TimeoutMillis: 1500}},
		{body: `{}`, status: 200, want: sim.Faults{FailStatus: 503, TimeoutMillis: 60000}},
		{body: `{"fail_next": 1, "fail_status": 404}`, status: 400, wantErr: "fail_status must be a 5xx"},
		{body: `{"fail_next": -1}`, status: 400, wantErr: "must not be negative"},
		{body: `{"timeout_next": 1, "timeout_ms": 999999999}`, status: 400, wantErr: "timeout_ms must be between"},
		{body: `{"fail": 1}`, status: 400, wantErr: "want a JSON object"},
		{body: `not json`, status: 400, wantErr: "want a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			e := newCarrierEnv(t)
			status, body := e.putFaults(t, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if tt.wantErr != "" {
				if !strings.Contains(string(body), tt.wantErr) {
					t.Fatalf("body %s, want %q", body, tt.wantErr)
				}
				if f := e.c.Faults(); f.FailNext != 0 || f.TimeoutNext != 0 || f.ThrottleNext != 0 {
					t.Fatalf("refused settings applied: %+v", f)
				}
				return
			}
			var got sim.Faults
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want || e.c.Faults() != tt.want {
				t.Fatalf("faults %+v (carrier %+v), want %+v", got, e.c.Faults(), tt.want)
			}
		})
	}
}

// TestArrivals: every send request from a gateway number is timed, whatever
// its answer, and listed per number.
func TestArrivals(t *testing.T) {
	e := newCarrierEnv(t)
	e.c.ThrottleNext(1)
	e.c.FailNext(1, 503)
	for i, id := range []string{"m1", "m2", "m3", "m3"} {
		_, err := e.send(context.Background(), id, "+12025550113")
		if (i < 2) != (err != nil) {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	resp, err := http.Get(e.srv.URL + "/v1/numbers/" + e.gw.Number + "/arrivals")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var at []time.Time
	if err := json.NewDecoder(resp.Body).Decode(&at); err != nil {
		t.Fatal(err)
	}
	if len(at) != 4 {
		t.Fatalf("%d arrivals, want 4", len(at))
	}
	for i := 1; i < len(at); i++ {
		if at[i].Before(at[i-1]) {
			t.Fatalf("arrivals out of order: %v", at)
		}
	}
	if other := e.c.Arrivals("+12025550999"); len(other) != 0 {
		t.Fatalf("arrivals of another number: %v", other)
	}
}

// FuzzFaultsAPI: any body either sets valid faults or is refused with 400;
// the handler never panics.
func FuzzFaultsAPI(f *testing.F) {
	for _, s := range []string{`{"fail_next": 3}`, `{"timeout_next": 1, "timeout_ms": 10}`, `{"fail_status": 0}`, `{`, `[]`, `{"fail_next": 1e99}`} {
		f.Add(s)
	}
	c := sim.NewCarrier(logging.Discard())
	defer c.Close()
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		c.ServeHTTP(w, httptest.NewRequest(http.MethodPut, "/v1/faults", strings.NewReader(body)))
		switch w.Code {
		case http.StatusOK:
			got := c.Faults()
			if got.FailNext < 0 || got.TimeoutNext < 0 || got.ThrottleNext < 0 || got.FailStatus < 500 || got.FailStatus > 599 ||
				got.TimeoutMillis <= 0 || got.TimeoutMillis > sim.MaxTimeoutMillis {
				t.Fatalf("accepted invalid faults %+v from %q", got, body)
			}
		case http.StatusBadRequest:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
