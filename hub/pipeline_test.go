package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/provider/sim"
	"github.com/switchboard/switchboard/store"
)

const handset = "+12025550123"

func crmMessages(t *testing.T, e *hubtest.Env, phone string) []store.CRMMessageRecord {
	t.Helper()
	recs, err := e.DB.CRMMessagesFor(context.Background(), e.Org.ID, "", phone, 100)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestSendReplyAndReceipts is the walk-through: text a simulated phone, get
// its delivery receipts and its reply back onto CRM records.
func TestSendReplyAndReceipts(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		contact := &sb.CRMRecord{FirstName: "Grace", LastName: "Hopper", Phone: handset}
		if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveContact(ctx, e.Org.ID, contact) }); err != nil {
			t.Fatal(err)
		}
		r := e.API("POST", "/v1/messages", map[string]any{"gateway_id": e.Gateway.ID, "to": "(202) 555-0123", "body": "Your advising appointment is Tuesday at 10.", "record_id": contact.ID})
		if r.Status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		}
		var out sb.Message
		r.JSON(t, &out)
		if out.Status != sb.StatusQueued || out.OwnerID != e.Admin.ID || out.CreatedByID != e.Admin.ID || out.RecordID != contact.ID {
			t.Fatalf("accepted message: %+v", out)
		}
		m := e.WaitStatus(out.ID, sb.StatusDelivered)
		if m.SentAt == nil || m.DeliveredAt == nil || m.ProviderMessageID == "" {
			t.Fatalf("delivered message lacks receipts: %+v", m)
		}
		if got := e.Carrier.Inbox(handset); len(got) != 1 || got[0].Body != "Your advising appointment is Tuesday at 10." || got[0].From != "+12025550100" {
			t.Fatalf("handset got %+v", got)
		}

		e.Text(handset, e.Gateway.Number, "Thanks, I'll be there")
		e.WaitCRMSynced()
		recs, err := e.DB.CRMMessagesFor(ctx, e.Org.ID, contact.ID, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 {
			t.Fatalf("CRM record has %d messages, want 2: %+v", len(recs), recs)
		}
		outRec, inRec := recs[0], recs[1]
		if outRec.Direction != sb.Outgoing || outRec.Status != sb.StatusDelivered || outRec.Body == "" || outRec.OwnerID != e.Admin.ID || outRec.CreatedByID != e.Admin.ID {
			t.Fatalf("outgoing CRM record: %+v", outRec)
		}
		if inRec.Direction != sb.Incoming || inRec.Status != sb.StatusReceived || inRec.Body != "Thanks, I'll be there" || inRec.Phone != handset || inRec.RecordID != contact.ID {
			t.Fatalf("incoming CRM record: %+v", inRec)
		}
		// Incoming: owned by the owner of the last outgoing message to the
		// number on the gateway, created by the integration user.
		if inRec.OwnerID != e.Admin.ID || inRec.CreatedByID != e.Org.Settings.IntegrationUserID {
			t.Fatalf("incoming ownership: owner %s created by %s", inRec.OwnerID, inRec.CreatedByID)
		}
	})
}

func addUser(t *testing.T, e *hubtest.Env, email string, perms ...sb.Permission) (*sb.User, string) {
	t.Helper()
	ctx := context.Background()
	u := &sb.User{OrgID: e.Org.ID, Email: email, Name: strings.Split(email, "@")[0], Permissions: perms}
	var key string
	err := e.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateUser(ctx, u, ""); err != nil {
			return err
		}
		var err error
		_, key, err = tx.CreateAPIKey(ctx, e.Org.ID, u.ID, "test")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return u, key
}

func TestIncomingOwnership(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		staff, key := addUser(t, e, "staff@example.org", sb.PermLimitedAccess)
		// A number never texted: owned by the integration user.
		e.Text("+12025550177", e.Gateway.Number, "Who is this?")
		// Staff texts another number; its reply belongs to staff.
		r := e.Do("POST", "/v1/messages", key, map[string]any{"gateway_id": e.Gateway.ID, "to": handset, "body": "Hi, this is your advisor"})
		if r.Status != http.StatusCreated {
			t.Fatalf("send as staff: %d %s", r.Status, r.Body)
		}
		e.Text(handset, e.Gateway.Number, "Hello advisor")
		e.WaitCRMSynced()
		stranger := crmMessages(t, e, "+12025550177")
		if len(stranger) != 1 || stranger[0].OwnerID != e.Org.Settings.IntegrationUserID {
			t.Fatalf("unknown number's message: %+v", stranger)
		}
		conv := crmMessages(t, e, handset)
		if len(conv) != 2 || conv[0].CreatedByID != staff.ID || conv[0].OwnerID != staff.ID || conv[1].OwnerID != staff.ID {
			t.Fatalf("conversation ownership: %+v", conv)
		}
	})
}

func signedPost(t *testing.T, e *hubtest.Env, action string, ev sim.Event, secret string) *hubtest.Response {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"type":%q,"id":%q,"from":%q,"to":%q,"body":%q,"status":%q,"client_ref":%q,"at":"2026-11-23T10:00:00Z"}`,
		ev.Type, ev.ID, ev.From, ev.To, ev.Body, ev.Status, ev.ClientRef))
	path := "/webhooks/sim/" + e.Gateway.ID + "/" + action
	sig := sim.Sign(secret, e.Server.URL+path, body)
	return e.Do("POST", path, "", body, sim.SignatureHeader, sig)
}

func TestWebhookReplayAndSignature(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		secret := e.Gateway.Config[sim.KeySecret]
		ev := sim.Event{Type: "incoming", ID: "SM-replay-1", From: handset, To: e.Gateway.Number, Body: "hello twice"}
		for i := range 2 {
			if r := signedPost(t, e, "incoming", ev, secret); r.Status != http.StatusOK {
				t.Fatalf("delivery %d: %d %s", i, r.Status, r.Body)
			}
		}
		if n, _ := e.DB.CountRows(ctx, "messages"); n != 1 {
			t.Fatalf("replayed webhook stored %d messages", n)
		}
		bad := sim.Event{Type: "incoming", ID: "SM-forged", From: handset, To: e.Gateway.Number, Body: "forged"}
		if r := signedPost(t, e, "incoming", bad, "wrong-secret-wrong-secret"); r.Status != http.StatusForbidden || r.ErrorCode() != "forbidden" {
			t.Fatalf("wrong signature: %d %s", r.Status, r.Body)
		}
		r := e.Do("POST", "/webhooks/sim/"+e.Gateway.ID+"/incoming", "", `{"type":"incoming","id":"x","from":"+12025550123","at":"2026-11-23T10:00:00Z"}`)
		if r.Status != http.StatusForbidden {
			t.Fatalf("unsigned webhook: %d %s", r.Status, r.Body)
		}
		if r := e.Do("POST", "/webhooks/sim/no-such-gateway/incoming", "", `{}`); r.Status != http.StatusNotFound {
			t.Fatalf("unknown gateway: %d", r.Status)
		}
		if r := e.Do("POST", "/webhooks/twilio/"+e.Gateway.ID+"/incoming", "", `{}`); r.Status != http.StatusNotFound {
			t.Fatalf("gateway under the wrong provider: %d", r.Status)
		}
		big := bytes.Repeat([]byte("a"), 2<<20)
		if r := e.Do("POST", "/webhooks/sim/"+e.Gateway.ID+"/incoming", "", big); r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized webhook: %d", r.Status)
		}
		if n, _ := e.DB.CountRows(ctx, "messages"); n != 1 {
			t.Fatalf("rejected webhooks stored messages: %d", n)
		}
	})
}

func TestStatusOutcomes(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		cases := []struct {
			number, behaviour string
			want              sb.Status
			debug             string
		}{
			{"+12025550131", sim.Undeliver, sb.StatusUndelivered, "30003"},
			{"+12025550132", sim.Fail, sb.StatusFailed, "30008"},
			{"+12025550133", sim.Reject, sb.StatusFailed, "21211"},
			{"+12025550134", sim.Unsubscribed, sb.StatusFailed, "21610"},
		}
		for _, c := range cases {
			if err := e.Carrier.SetHandset(c.number, sim.Handset{Behaviour: c.behaviour}); err != nil {
				t.Fatal(err)
			}
			m := e.Send(c.number, "test "+c.behaviour)
			got := e.WaitStatus(m.ID, c.want)
			if !strings.Contains(got.Debug, c.debug) {
				t.Errorf("%s: debug %q does not name %s", c.behaviour, got.Debug, c.debug)
			}
		}
		// The provider's "unsubscribed" answer opted the number out.
		r := e.API("GET", "/v1/subscriptions?phone=%2B12025550134", nil)
		if !strings.Contains(string(r.Body), `"status":"Opt-Out"`) || !strings.Contains(string(r.Body), `"detail":"Opt-out at provider: Simulated carrier 21610: recipient has unsubscribed"`) {
			t.Fatalf("subscription after 21610: %s", r.Body)
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		body := map[string]any{"gateway_id": e.Gateway.ID, "to": handset, "body": "once only"}
		first := e.Do("POST", "/v1/messages", e.Key, body, "Idempotency-Key", "order-42")
		second := e.Do("POST", "/v1/messages", e.Key, body, "Idempotency-Key", "order-42")
		if first.Status != http.StatusCreated || second.Status != http.StatusOK {
			t.Fatalf("statuses %d then %d", first.Status, second.Status)
		}
		var a, b sb.Message
		first.JSON(t, &a)
		second.JSON(t, &b)
		if a.ID != b.ID {
			t.Fatalf("two messages for one key: %s %s", a.ID, b.ID)
		}
		// The same request in another spelling of the number is the same
		// request.
		same := map[string]any{"gateway_id": e.Gateway.ID, "to": "(202) 555-0123", "body": "once only", "mode": "one_to_one"}
		if handset != "+12025550123" {
			t.Fatalf("handset %s: update the national spelling above", handset)
		}
		if r := e.Do("POST", "/v1/messages", e.Key, same, "Idempotency-Key", "order-42"); r.Status != http.StatusOK || !strings.Contains(string(r.Body), a.ID) {
			t.Fatalf("same request, number spelt differently: %d %s", r.Status, r.Body)
		}
		// The key with a different request is refused, naming the problem.
		for name, other := range map[string]map[string]any{
			"another body":      {"gateway_id": e.Gateway.ID, "to": handset, "body": "twice?"},
			"another recipient": {"gateway_id": e.Gateway.ID, "to": "+12025550124", "body": "once only"},
			"another mode":      {"gateway_id": e.Gateway.ID, "to": handset, "body": "once only", "mode": "automation"},
		} {
			r := e.Do("POST", "/v1/messages", e.Key, other, "Idempotency-Key", "order-42")
			if r.Status != http.StatusConflict || r.ErrorCode() != sb.EConflict ||
				!strings.Contains(string(r.Body), `Idempotency-Key \"order-42\" was used with a different request`) {
				t.Errorf("%s with a used key: %d %s", name, r.Status, r.Body)
			}
		}
		e.WaitStatus(a.ID, sb.StatusDelivered)
		if got := e.Carrier.Inbox(handset); len(got) != 1 || got[0].Body != "once only" {
			t.Fatalf("handset got %+v", got)
		}
		if n, _ := e.DB.CountRows(context.Background(), "messages"); n != 1 {
			t.Fatalf("%d messages stored for one key", n)
		}
	})
}

// TestNoReadableDataAtRest reads the raw database after sends and replies
// have been processed: operational tables hold no readable number or body.
func TestNoReadableDataAtRest(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		m := e.Send(handset, "Secret exam results: PASS")
		e.WaitStatus(m.ID, sb.StatusDelivered)
		e.Text(handset, e.Gateway.Number, "Private reply text")
		e.WaitCRMSynced()
		tables, err := e.DB.SchemaColumns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for table := range tables {
			if strings.HasPrefix(table, "crm_") {
				continue // the built-in CRM is client data, kept apart
			}
			raw, err := e.DB.RawScan(ctx, table)
			if err != nil {
				t.Fatal(err)
			}
			for _, needle := range []string{"2025550123", "Secret exam", "Private reply"} {
				if bytes.Contains(raw, []byte(needle)) {
					t.Errorf("table %s holds %q in readable form", table, needle)
				}
			}
			checked++
		}
		if checked < 10 {
			t.Fatalf("only %d tables checked", checked)
		}
		// The built-in CRM does hold them: that is where client data lives.
		if recs := crmMessages(t, e, handset); len(recs) != 2 {
			t.Fatalf("CRM has %d records", len(recs))
		}
	})
}

func TestBulkSend(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		optedOut := &sb.CRMRecord{FirstName: "No", LastName: "Texts", Phone: "+12025550160", OptOut: true}
		normal := &sb.CRMRecord{FirstName: "Yes", LastName: "Texts", Phone: "+12025550161"}
		if err := e.DB.Tx(ctx, func(tx *store.Tx) error {
			if err := tx.SaveContact(ctx, e.Org.ID, optedOut); err != nil {
				return err
			}
			return tx.SaveContact(ctx, e.Org.ID, normal)
		}); err != nil {
			t.Fatal(err)
		}
		var recips []map[string]string
		for i := range 250 {
			recips = append(recips, map[string]string{"to": fmt.Sprintf("+1202555%04d", 2000+i)})
		}
		recips = append(recips,
			map[string]string{"to": "+12025552000"},     // duplicate
			map[string]string{"to": "not a number"},     // invalid
			map[string]string{"record_id": optedOut.ID}, // global opt-out
			map[string]string{"record_id": normal.ID},
			map[string]string{"record_id": "003missing"},
		)
		r := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "Registration closes Friday", "recipients": recips})
		if r.Status != http.StatusAccepted {
			t.Fatalf("bulk: %d %s", r.Status, r.Body)
		}
		var res struct {
			BatchID  string `json:"batch_id"`
			Accepted int    `json:"accepted"`
			Queued   int    `json:"queued"`
			Excluded []struct {
				Reason string `json:"reason"`
			} `json:"excluded"`
		}
		r.JSON(t, &res)
		if res.Accepted != 251 || res.Queued != 251 || len(res.Excluded) != 4 {
			t.Fatalf("bulk result: %+v", res)
		}
		reasons := ""
		for _, x := range res.Excluded {
			reasons += x.Reason + ";"
		}
		for _, want := range []string{"duplicate", "invalid phone", "Global opt-out", "not found"} {
			if !strings.Contains(reasons, want) {
				t.Errorf("exclusions %q lack %q", reasons, want)
			}
		}
		waitBulkDone(t, e, res.BatchID, map[string]int{"Delivered": 251})
		if s := e.Carrier.Stats(); s.Accepted != 251 || s.Duplicates != 0 {
			t.Fatalf("carrier stats: %+v", s)
		}
		e.WaitCRMSynced()
	})
}

func TestSendValidation(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		cases := []struct {
			name   string
			body   any
			status int
			field  string
		}{
			{"bad number", map[string]any{"gateway_id": e.Gateway.ID, "to": "12", "body": "x"}, 400, "to"},
			{"no body", map[string]any{"gateway_id": e.Gateway.ID, "to": handset}, 400, "body"},
			{"too long", map[string]any{"gateway_id": e.Gateway.ID, "to": handset, "body": strings.Repeat("a", 1601)}, 400, "body"},
			{"unknown gateway", map[string]any{"gateway_id": "nope", "to": handset, "body": "x"}, 404, ""},
			{"unknown field", map[string]any{"gateway_id": e.Gateway.ID, "to": handset, "body": "x", "bdy": "typo"}, 400, ""},
			{"bad mode", map[string]any{"gateway_id": e.Gateway.ID, "to": handset, "body": "x", "mode": "bulk"}, 400, "mode"},
			{"not json", []byte("{"), 400, ""},
		}
		for _, c := range cases {
			r := e.API("POST", "/v1/messages", c.body)
			var eb struct {
				Error struct{ Code, Message, Field string }
			}
			r.JSON(t, &eb)
			if r.Status != c.status || eb.Error.Message == "" || (c.field != "" && eb.Error.Field != c.field) {
				t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
			}
		}
		if n, _ := e.DB.CountRows(context.Background(), "messages"); n != 0 {
			t.Fatalf("invalid sends stored %d messages", n)
		}
	})
}

func TestBulkIdempotencyKey(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		body := map[string]any{"gateway_id": e.Gateway.ID, "body": "once", "recipients": []map[string]string{{"to": "+12025550191"}, {"to": "+12025550192"}}}
		first := e.Do("POST", "/v1/bulk-sends", e.Key, body, "Idempotency-Key", "chunk-1")
		again := e.Do("POST", "/v1/bulk-sends", e.Key, body, "Idempotency-Key", "chunk-1")
		if first.Status != http.StatusAccepted || again.Status != http.StatusOK || !strings.Contains(string(again.Body), `"replayed":true`) {
			t.Fatalf("statuses %d %d: %s", first.Status, again.Status, again.Body)
		}
		var a, b struct {
			BatchID string `json:"batch_id"`
		}
		first.JSON(t, &a)
		again.JSON(t, &b)
		if a.BatchID != b.BatchID {
			t.Fatal("a retried bulk send made a second batch")
		}
		changed := map[string]any{"gateway_id": e.Gateway.ID, "body": "once", "recipients": []map[string]string{{"to": "+12025550191"}, {"to": "+12025550193"}}}
		r := e.Do("POST", "/v1/bulk-sends", e.Key, changed, "Idempotency-Key", "chunk-1")
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), `Idempotency-Key \"chunk-1\" was used with a different request`) ||
			!strings.Contains(string(r.Body), a.BatchID) {
			t.Fatalf("bulk send with a used key and other recipients: %d %s", r.Status, r.Body)
		}
		e.WaitFor("delivered", func() bool { return e.Carrier.Stats().Accepted == 2 })
		if n, _ := e.DB.CountRows(context.Background(), "messages"); n != 2 {
			t.Fatalf("%d messages for one bulk send retried", n)
		}
	})
}

// TestBatchedReports: a carrier that posts its status reports in batches (a
// JSON array per callback) moves every message to its final status, with its
// sent time, and the CRM gets the outcome.
func TestBatchedReports(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		if err := e.Carrier.SetReportBatch(100); err != nil {
			t.Fatal(err)
		}
		const undelivered = "+12025552999"
		if err := e.Carrier.SetHandset(undelivered, sim.Handset{Behaviour: sim.Undeliver}); err != nil {
			t.Fatal(err)
		}
		recips := []map[string]string{{"to": undelivered}}
		for i := range 120 {
			recips = append(recips, map[string]string{"to": fmt.Sprintf("+1202555%04d", 3000+i)})
		}
		batchID := postBulk(t, e, e.Gateway.ID, "Orientation starts at 9", recips)
		waitBulkDone(t, e, batchID, map[string]int{"Delivered": 120, "Undelivered": 1})
		// Each message's reports travel in one post at least. The carrier
		// counts a post once it is answered, which can be just after the
		// statuses are stored: wait for it to finish first.
		if err := e.Carrier.Idle(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s := e.Carrier.Stats(); s.CallbacksSent != 242 || s.CallbackPosts > 121 {
			t.Fatalf("carrier stats: %+v", s)
		}
		msgs, err := e.DB.Messages(context.Background(), e.Org.ID, store.MessageFilter{BatchID: batchID, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.SentAt == nil {
				t.Fatalf("message %s (%s) has no sent time", m.ID, m.Status)
			}
		}
		e.WaitCRMSynced()
	})
}

// TestBatchedSends sends a bulk send through the carrier's batch API (the
// gateway's send_batch setting): every message is sent once, a recipient
// the carrier refuses fails alone, and a batch refused whole (throttled)
// is sent again after the pause without anything sent twice.
func TestBatchedSends(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		r := e.API("PATCH", "/v1/gateways/"+e.Gateway.ID, map[string]any{"config": map[string]string{"send_batch": "25"}})
		if r.Status != http.StatusOK {
			t.Fatalf("patch gateway: %d %s", r.Status, r.Body)
		}
		r = e.API("PATCH", "/v1/gateways/"+e.Gateway.ID, map[string]any{"config": map[string]string{"send_batch": "2000"}})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "config.send_batch") {
			t.Fatalf("send_batch 2000: %d %s", r.Status, r.Body)
		}
		const rejected = "+12025552998"
		if err := e.Carrier.SetHandset(rejected, sim.Handset{Behaviour: sim.Reject}); err != nil {
			t.Fatal(err)
		}
		e.Carrier.ThrottleNext(1)
		recips := []map[string]string{{"to": rejected}}
		for i := range 99 {
			recips = append(recips, map[string]string{"to": fmt.Sprintf("+1202555%04d", 4000+i)})
		}
		batchID := postBulk(t, e, e.Gateway.ID, "Registration closes Friday", recips)
		waitBulkDone(t, e, batchID, map[string]int{"Delivered": 99, "Failed": 1})
		s := e.Carrier.Stats()
		// 100 messages in batches of at most 25: four requests at least,
		// and the throttled one again; never one request per message.
		if s.Accepted != 99 || s.Duplicates != 0 || s.Rejected != 1 || s.Throttled != 1 || s.SendRequests < 4 || s.SendRequests > 20 {
			t.Fatalf("carrier stats: %+v", s)
		}
		msgs, err := e.DB.Messages(context.Background(), e.Org.ID, store.MessageFilter{BatchID: batchID, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		pids := map[string]bool{}
		for _, m := range msgs {
			switch {
			case m.Status == sb.StatusFailed:
				if !strings.Contains(m.Debug, "21211") {
					t.Fatalf("refused message %s: debug %q", m.ID, m.Debug)
				}
			case m.ProviderMessageID == "" || pids[m.ProviderMessageID]:
				t.Fatalf("message %s: provider id %q missing or repeated", m.ID, m.ProviderMessageID)
			}
			pids[m.ProviderMessageID] = true
		}
		e.WaitCRMSynced()
	})
}

// postBulk starts a bulk send on a gateway through the API and returns its
// batch id.
func postBulk(t *testing.T, e *hubtest.Env, gatewayID, body string, recips []map[string]string) string {
	t.Helper()
	r := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": gatewayID, "body": body, "recipients": recips})
	if r.Status != http.StatusAccepted {
		t.Fatalf("bulk: %d %s", r.Status, r.Body)
	}
	var res struct {
		BatchID string `json:"batch_id"`
	}
	r.JSON(t, &res)
	return res.BatchID
}

// waitBulkDone waits until a bulk send is done with the message counts
// want (by status), as its progress endpoint reports them.
func waitBulkDone(t *testing.T, e *hubtest.Env, batchID string, want map[string]int) {
	t.Helper()
	e.WaitFor("bulk send done", func() bool {
		var st struct {
			Done   bool           `json:"done"`
			Counts map[string]int `json:"counts"`
		}
		e.API("GET", "/v1/bulk-sends/"+batchID, nil).JSON(t, &st)
		if !st.Done {
			return false
		}
		for status, n := range want {
			if st.Counts[status] != n {
				return false
			}
		}
		return true
	})
}
