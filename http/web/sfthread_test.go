package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

var anyThreadVersion = regexp.MustCompile(`data-version="([^"]+)"`)

// restrictTo limits a seeded user to the gateways and gives them an API key.
func (e *testEnv) restrictTo(role string, gatewayIDs ...string) (key string) {
	e.T.Helper()
	ctx := context.Background()
	u := e.Users[role]
	u.GatewayIDs = gatewayIDs
	err := e.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		var err error
		_, key, err = tx.CreateAPIKey(ctx, e.Org.ID, u.ID, "test")
		return err
	})
	if err != nil {
		e.T.Fatal(err)
	}
	return key
}

// conversationAPI reads GET /v1/conversations with key.
func (e *testEnv) conversationAPI(key, query string) (int, []sb.CRMMessageRecord, string) {
	e.T.Helper()
	r := e.Do(http.MethodGet, "/v1/conversations?"+query, key, nil)
	var out struct {
		Messages []sb.CRMMessageRecord `json:"messages"`
	}
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, &out); err != nil {
			e.T.Fatalf("conversation answer: %v %s", err, r.Body)
		}
	}
	return r.Status, out.Messages, string(r.Body)
}

// twoGatewayThread sends to the record (or number) on the env's gateway
// and on a second one, and has the handset answer on the first; it returns
// the second gateway once all of it is in the CRM.
func (e *testEnv) twoGatewayThread(recordID, phone string) *sb.Gateway {
	e.T.Helper()
	ctx := context.Background()
	rate := 0.0
	v, err := e.Hub.CreateGateway(ctx, e.Admin, hub.GatewayRequest{Name: "Evening", Provider: sb.ProviderSim, Number: "+12025550199", Rate: &rate})
	if err != nil {
		e.T.Fatal(err)
	}
	second, err := e.DB.Gateway(ctx, e.Org.ID, v.ID)
	if err != nil {
		e.T.Fatal(err)
	}
	for _, s := range []struct{ gw, body string }{{e.Gateway.ID, "Orientation starts Monday"}, {second.ID, "Evening class moved"}} {
		r := e.API(http.MethodPost, "/v1/messages", map[string]any{"gateway_id": s.gw, "to": phone, "body": s.body, "record_id": recordID})
		var m sb.Message
		r.JSON(e.T, &m)
		if r.Status != http.StatusCreated {
			e.T.Fatalf("send: %d %s", r.Status, r.Body)
		}
		e.WaitStatus(m.ID, sb.StatusDelivered)
	}
	e.Text(phone, e.Gateway.Number, "See you there")
	e.WaitCRMSynced()
	return second
}

// TestSalesforceThread: for an org on Salesforce the conversation view
// and GET /v1/conversations show the message records Switchboard wrote
// there — bodies and statuses of sent and received messages — without
// those of gateways the user may not use; polls within ThreadTTL ask
// Salesforce nothing; while Salesforce is down the thread says so, the
// rest of the page works, and the API answers 503.
func TestSalesforceThread(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		e := newTestEnvWith(t, d, hubtest.Options{Salesforce: true})
		e.AuthorizeSalesforce("integration@college.example")
		const phone = "+12025550111"
		ana := e.SF.AddRecord("Contact", map[string]any{"FirstName": "Ana", "LastName": "Lopez", "MobilePhone": phone})
		second := e.twoGatewayThread(ana, phone)
		limitedKey := e.restrictTo("limited", e.Gateway.ID)

		admin := e.signIn(t, "admin")
		for _, conv := range []string{"/ui/conversation?record=" + ana, "/ui/conversation?phone=" + url.QueryEscape(phone)} {
			p := admin.get(conv)
			if p.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", conv, p.Status, p.Body)
			}
			for _, want := range []string{"Orientation starts Monday", "Evening class moved", "See you there", `data-status="Delivered"`, `data-status="Received"`, "· Main ·", "· Evening ·"} {
				if !strings.Contains(p.text(), want) {
					t.Errorf("%s lacks %q", conv, want)
				}
			}
			if strings.Count(p.Body, `class="msg `) != 3 || p.has("kept in its CRM") {
				t.Errorf("%s: thread of %d messages, want 3", conv, strings.Count(p.Body, `class="msg `))
			}
		}
		limited := e.signIn(t, "limited")
		p := limited.get("/ui/conversation?record=" + ana)
		if !p.has("Orientation starts Monday") || !p.has("See you there") || p.has("Evening class moved") {
			t.Fatalf("restricted user's thread: %s", p.Body)
		}

		// The API: the same thread, by record and by number.
		for _, q := range []string{"record_id=" + ana, "phone=" + url.QueryEscape(phone)} {
			status, msgs, body := e.conversationAPI(e.Key, q)
			if status != http.StatusOK || len(msgs) != 3 {
				t.Fatalf("API %s: %d %s", q, status, body)
			}
			if m := msgs[0]; m.Body != "Orientation starts Monday" || m.Status != sb.StatusDelivered || m.Direction != sb.Outgoing || m.GatewayID != e.Gateway.ID ||
				m.Phone != phone || m.RecordID != ana || m.ID == "" || m.MessageID == "" {
				t.Errorf("API %s first message %+v", q, m)
			}
			if m := msgs[1]; m.GatewayID != second.ID || m.GatewayNumber != second.Number {
				t.Errorf("API %s second message %+v", q, m)
			}
			if m := msgs[2]; m.Body != "See you there" || m.Status != sb.StatusReceived || m.Direction != sb.Incoming {
				t.Errorf("API %s last message %+v", q, m)
			}
		}
		status, msgs, body := e.conversationAPI(limitedKey, "record_id="+ana)
		if status != http.StatusOK || len(msgs) != 2 {
			t.Fatalf("restricted API: %d %s", status, body)
		}
		for _, m := range msgs {
			if m.GatewayID != e.Gateway.ID {
				t.Errorf("restricted API shows a message of gateway %s", m.GatewayID)
			}
		}

		// The cache: polls within ThreadTTL ask Salesforce nothing; the
		// first poll after it asks once.
		conv := "/ui/conversation?phone=" + url.QueryEscape(phone)
		p = admin.get(conv)
		v := anyThreadVersion.FindStringSubmatch(p.Body)[1]
		poll := "/ui/conversation/thread?phone=" + url.QueryEscape(phone) + "&v=" + v
		e.SF.ResetCounters()
		for range 3 {
			if p := admin.get(poll); p.Status != http.StatusNoContent {
				t.Fatalf("poll: %d, want 204", p.Status)
			}
		}
		if n := e.SF.Calls("GET /query"); n != 0 {
			t.Fatalf("%d queries for polls within the TTL, want 0", n)
		}
		e.Clock.Advance(ThreadTTL)
		for range 3 {
			if p := admin.get(poll); p.Status != http.StatusNoContent {
				t.Fatalf("poll after the TTL: %d, want 204", p.Status)
			}
		}
		if n := e.SF.Calls("GET /query"); n != 1 {
			t.Fatalf("%d queries for polls after the TTL, want 1", n)
		}

		// Salesforce down: a notice in the thread, the rest of the page
		// works; the API answers 503.
		e.SF.FailNext(1000, http.StatusServiceUnavailable)
		e.Clock.Advance(ThreadTTL)
		p = admin.get(poll)
		if p.Status != http.StatusOK || !p.has("Salesforce could not be reached:") || p.has("Orientation starts Monday") {
			t.Fatalf("poll while Salesforce is down: %d %s", p.Status, p.Body)
		}
		p = admin.get(conv)
		if p.Status != http.StatusOK || !p.has("Salesforce could not be reached:") || !strings.Contains(p.Body, `id="compose"`) || !strings.Contains(p.Body, `id="subscriptions"`) {
			t.Fatalf("page while Salesforce is down: %d %s", p.Status, p.Body)
		}
		p = admin.get("/ui/conversation?record=" + ana)
		if p.Status != http.StatusOK || !p.has("Salesforce could not be reached:") || !p.has("No message can be sent until the record can be read") {
			t.Fatalf("record page while Salesforce is down: %d %s", p.Status, p.Body)
		}
		status, _, body = e.conversationAPI(e.Key, "record_id="+ana)
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "Salesforce could not be reached") || !strings.Contains(body, `"unavailable"`) {
			t.Fatalf("API while Salesforce is down: %d %s", status, body)
		}

		// Back: the thread returns once the cached failure is stale (the
		// view polls with the version of the notice).
		down := anyThreadVersion.FindStringSubmatch(p.Body)[1]
		if down == v {
			t.Fatal("the notice has the thread's version")
		}
		e.SF.FailNext(0, 0)
		e.Clock.Advance(ThreadTTL)
		if p := admin.get(strings.Replace(poll, "v="+v, "v="+down, 1)); p.Status != http.StatusOK || !p.has("Orientation starts Monday") || p.has("could not be reached") {
			t.Fatalf("poll after Salesforce is back: %d %s", p.Status, p.Body)
		}
	})
}

// TestBuiltinThreadGateways: on the built-in CRM the thread and the API
// read the store as before, and leave out the messages of gateways the
// user may not use.
func TestBuiltinThreadGateways(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		const phone = "+12025550111"
		ana := e.contact("Ana", "Lopez", phone, false)
		e.twoGatewayThread(ana.ID, phone)
		limitedKey := e.restrictTo("limited", e.Gateway.ID)

		p := e.signIn(t, "admin").get("/ui/conversation?record=" + ana.ID)
		if !p.has("Orientation starts Monday") || !p.has("Evening class moved") || !p.has("See you there") {
			t.Fatalf("admin's thread: %s", p.Body)
		}
		p = e.signIn(t, "limited").get("/ui/conversation?record=" + ana.ID)
		if !p.has("Orientation starts Monday") || !p.has("See you there") || p.has("Evening class moved") {
			t.Fatalf("restricted user's thread: %s", p.Body)
		}
		if status, msgs, body := e.conversationAPI(e.Key, "phone="+url.QueryEscape(phone)); status != http.StatusOK || len(msgs) != 3 || msgs[0].Body != "Orientation starts Monday" {
			t.Fatalf("API: %d %s", status, body)
		}
		status, msgs, body := e.conversationAPI(limitedKey, "record_id="+ana.ID)
		if status != http.StatusOK || len(msgs) != 2 || msgs[0].GatewayID != e.Gateway.ID || msgs[1].GatewayID != e.Gateway.ID {
			t.Fatalf("restricted API: %d %s", status, body)
		}
		if status, _, body := e.conversationAPI(e.Key, ""); status != http.StatusBadRequest {
			t.Fatalf("API without record or phone: %d %s", status, body)
		}
	})
}

// TestSalesforceInbox: for an org on Salesforce the inbox shows each
// unread message's text and sender from the message records in Salesforce
// (one query for the page, one for the senders' names), at most once per
// ThreadTTL; while Salesforce is down it says so and still lists the
// messages.
func TestSalesforceInbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		e := newTestEnvWith(t, d, hubtest.Options{Salesforce: true})
		e.AuthorizeSalesforce("integration@college.example")
		ana := e.SF.AddRecord("Contact", map[string]any{"FirstName": "Ana", "LastName": "Lopez", "MobilePhone": "+12025550111"})
		e.Text("+12025550111", e.Gateway.Number, "Is the office open?")
		e.Text("+12025550188", e.Gateway.Number, "Who is this?")
		e.WaitCRMSynced()

		b := e.signIn(t, "inbox")
		e.SF.ResetCounters()
		p := b.get("/ui/inbox")
		if !p.has("2 unread") || !p.has("Is the office open?") || !p.has("Who is this?") || !p.has("Ana Lopez") || !p.has("+12025550188") {
			t.Fatalf("inbox: %s", p.Body)
		}
		if !p.has("/ui/conversation?gateway=" + e.Gateway.ID + "&record=" + ana) {
			t.Fatal("no link to the contact's conversation")
		}
		if n := e.SF.Calls("GET /query"); n != 2 {
			t.Fatalf("%d queries for the inbox, want 2 (messages, names)", n)
		}
		b.get("/ui/inbox")
		if n := e.SF.Calls("GET /query"); n != 2 {
			t.Fatalf("%d queries after a second look within the TTL, want 2", n)
		}

		e.SF.FailNext(1000, http.StatusServiceUnavailable)
		e.Clock.Advance(ThreadTTL)
		p = b.get("/ui/inbox")
		if p.Status != http.StatusOK || !p.has("Salesforce could not be reached:") || !p.has("2 unread") || p.has("Is the office open?") {
			t.Fatalf("inbox while Salesforce is down: %d %s", p.Status, p.Body)
		}
	})
}
