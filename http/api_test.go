package http_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	sb "github.com/switchboard/switchboard"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// TestReadyz answers 503 naming the cause while the job workers are
// stopped or the database cannot be reached, and 200 otherwise.
func TestReadyz(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		db := storetest.Open(t, d)
		var workers atomic.Bool
		srv := httptest.NewServer((&sbhttp.Server{DB: db, Log: logging.Discard(), Ready: workers.Load}).Handler())
		defer srv.Close()
		get := func() (int, string) {
			resp, err := http.Get(srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			return resp.StatusCode, b.String()
		}
		if st, body := get(); st != http.StatusServiceUnavailable || !strings.Contains(body, "job workers are not running") {
			t.Fatalf("workers stopped: %d %s", st, body)
		}
		workers.Store(true)
		if st, body := get(); st != http.StatusOK || !strings.Contains(body, string(d)) {
			t.Fatalf("ready: %d %s", st, body)
		}
		db.Close()
		if st, body := get(); st != http.StatusServiceUnavailable || !strings.Contains(body, "database is not reachable") {
			t.Fatalf("database closed: %d %s", st, body)
		}
		// Liveness does not depend on the database.
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz with the database closed: %v %v", err, resp)
		}
		resp.Body.Close()
	})
}

// metric returns the value of one sample of the /metrics page (0 when it
// is not there).
func metric(t *testing.T, e *hubtest.Env, sample string) float64 {
	t.Helper()
	r := e.Do("GET", "/metrics", "", nil)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	return 0
}

// TestMetricsCount: a send moves the counters on /metrics.
func TestMetricsCount(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	const accepted = `switchboard_messages_accepted_total{source="api"}`
	const sent = `switchboard_send_results_total{provider="sim",result="ok"}`
	const statuses = `switchboard_status_updates_total{provider="sim",status="Delivered"}`
	before := [3]float64{metric(t, e, accepted), metric(t, e, sent), metric(t, e, statuses)}
	m := e.Send("+12025550123", "counted")
	e.WaitStatus(m.ID, sb.StatusDelivered)
	// Counters move once their change is committed, just after the status
	// can be read: wait for each to move, then check it moved by one.
	var after [3]float64
	e.WaitFor("the counters to move", func() bool {
		after = [3]float64{metric(t, e, accepted), metric(t, e, sent), metric(t, e, statuses)}
		return after[0] > before[0] && after[1] > before[1] && after[2] > before[2]
	})
	for i, name := range []string{accepted, sent, statuses} {
		if after[i] != before[i]+1 {
			t.Errorf("%s went from %v to %v after one send, want +1", name, before[i], after[i])
		}
	}
	r := e.Do("GET", "/metrics", "", nil)
	for _, want := range []string{"# TYPE switchboard_messages_accepted_total counter", "switchboard_provider_send_seconds_bucket"} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestGetAndListMessages reads messages back through the API: one by id,
// and lists by CRM record and by phone number (any spelling).
func TestGetAndListMessages(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		grace := &sb.CRMRecord{FirstName: "Grace", Phone: "+12025550123"}
		alan := &sb.CRMRecord{FirstName: "Alan", Phone: "+12025550124"}
		if err := e.DB.Tx(ctx, func(tx *store.Tx) error {
			if err := tx.SaveContact(ctx, e.Org.ID, grace); err != nil {
				return err
			}
			return tx.SaveContact(ctx, e.Org.ID, alan)
		}); err != nil {
			t.Fatal(err)
		}
		send := func(rec *sb.CRMRecord, body string) sb.Message {
			t.Helper()
			r := e.API("POST", "/v1/messages", map[string]any{"gateway_id": e.Gateway.ID, "to": rec.Phone, "body": body, "record_id": rec.ID})
			if r.Status != http.StatusCreated {
				t.Fatalf("send: %d %s", r.Status, r.Body)
			}
			var m sb.Message
			r.JSON(t, &m)
			return m
		}
		g1, g2, a1 := send(grace, "first"), send(grace, "second"), send(alan, "other")
		e.WaitStatus(g2.ID, sb.StatusDelivered)
		e.WaitStatus(a1.ID, sb.StatusDelivered)

		r := e.API("GET", "/v1/messages/"+g1.ID, nil)
		var got sb.Message
		r.JSON(t, &got)
		if r.Status != http.StatusOK || got.ID != g1.ID || got.RecordID != grace.ID || got.GatewayID != e.Gateway.ID ||
			got.Direction != sb.Outgoing || got.OwnerID != e.Admin.ID || got.Segments != 1 {
			t.Fatalf("GET /v1/messages/{id}: %d %+v", r.Status, got)
		}
		if strings.Contains(string(r.Body), "first") || strings.Contains(string(r.Body), "2025550123") {
			t.Errorf("the operational message carries its body or number: %s", r.Body)
		}

		ids := func(query string) []string {
			t.Helper()
			r := e.API("GET", "/v1/messages?"+query, nil)
			var list sbhttp.MessageList
			r.JSON(t, &list)
			if r.Status != http.StatusOK {
				t.Fatalf("list %s: %d %s", query, r.Status, r.Body)
			}
			var out []string
			for _, m := range list.Messages {
				out = append(out, m.ID)
			}
			return out
		}
		want := strings.Join([]string{g2.ID, g1.ID}, ",") // newest first
		for _, q := range []string{"record_id=" + grace.ID, "phone=" + url.QueryEscape("+12025550123"), "phone=" + url.QueryEscape("(202) 555-0123")} {
			if got := strings.Join(ids(q), ","); got != want {
				t.Errorf("list by %s: %s, want %s", q, got, want)
			}
		}
		if got := ids("record_id=" + alan.ID); len(got) != 1 || got[0] != a1.ID {
			t.Errorf("list by Alan's record: %v", got)
		}
		if got := ids("record_id=no-such-record"); len(got) != 0 {
			t.Errorf("list by an unknown record: %v", got)
		}
		// Paging: limit 1, then before the first page's last.
		r = e.API("GET", "/v1/messages?limit=1&record_id="+grace.ID, nil)
		var page sbhttp.MessageList
		r.JSON(t, &page)
		if len(page.Messages) != 1 || page.Messages[0].ID != g2.ID || page.Next == "" {
			t.Fatalf("first page: %s", r.Body)
		}
		if got := ids("limit=1&record_id=" + grace.ID + "&before=" + url.QueryEscape(page.Next)); len(got) != 1 || got[0] != g1.ID {
			t.Errorf("second page: %v", got)
		}
	})
}

// TestBulkSendNeedsPermission: a Limited Access user may not start a bulk
// send; a user with "Feature: Bulk SMS" may.
func TestBulkSendNeedsPermission(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	_, limited := newUserKey(t, e, "limited@example.org", sb.PermLimitedAccess)
	_, bulk := newUserKey(t, e, "bulk@example.org", sb.PermLimitedAccess, sb.PermBulkSMS)
	body := map[string]any{"gateway_id": e.Gateway.ID, "body": "Open day on Saturday", "recipients": []map[string]string{{"to": "+12025550191"}}}
	r := e.Do("POST", "/v1/bulk-sends", limited, body)
	if r.Status != http.StatusForbidden || r.ErrorCode() != sb.EForbidden || !strings.Contains(string(r.Body), "Feature: Bulk SMS") {
		t.Fatalf("bulk send by a Limited Access user: %d %s", r.Status, r.Body)
	}
	if n, _ := e.DB.CountRows(context.Background(), "messages"); n != 0 {
		t.Fatalf("a refused bulk send stored %d messages", n)
	}
	if r := e.Do("POST", "/v1/bulk-sends", bulk, body); r.Status != http.StatusAccepted {
		t.Fatalf("bulk send with Feature: Bulk SMS: %d %s", r.Status, r.Body)
	}
}
