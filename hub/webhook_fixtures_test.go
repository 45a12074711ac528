package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/provider/sim"
	"github.com/switchboard/switchboard/provider/twilio"
	"github.com/switchboard/switchboard/provider/twilio/twiliotest"
	"github.com/switchboard/switchboard/provider/whatsapp"
)

// The fixture tables below send the partners' documented webhook payloads
// through the real HTTP server (routing, body reading, signature check,
// parsing, storage) and check what ends up stored: incoming messages with
// their text and media, the status every status callback leads to, and
// nothing at all for a bad signature (403), a malformed request (400) or an
// unknown gateway (404).

// partnerSends is a partner's send endpoint that accepts every message and
// never calls back. The message a test sends gets the provider message id
// the test names; others (keyword replies) get ids of their own.
type partnerSends struct {
	answer func(w http.ResponseWriter, pid string)

	mu   sync.Mutex
	pid  string
	auto int
}

func newPartnerSends(t *testing.T, answer func(w http.ResponseWriter, pid string)) (*partnerSends, string) {
	f := &partnerSends{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		pid := f.pid
		if pid == "" {
			f.auto++
			pid = fmt.Sprintf("auto%028d", f.auto)
		}
		f.pid = ""
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		f.answer(w, pid)
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// send sends a message through the API and waits until the partner has
// taken it with provider message id pid. Tests send their messages before
// any webhook that could start a keyword reply.
func (f *partnerSends) send(t *testing.T, e *hubtest.Env, pid string, req map[string]any) *sb.Message {
	t.Helper()
	f.mu.Lock()
	f.pid = pid
	f.mu.Unlock()
	r := e.API("POST", "/v1/messages", req)
	if r.Status != http.StatusCreated {
		t.Fatalf("send: %d %s", r.Status, r.Body)
	}
	var m sb.Message
	r.JSON(t, &m)
	e.WaitFor("message "+m.ID+" taken by the partner", func() bool { return e.Message(m.ID).ProviderMessageID == pid })
	return e.Message(m.ID)
}

// hookCase is one request a partner makes.
type hookCase struct {
	name   string
	method string // default POST
	path   string
	body   []byte
	header []string
	// status is the HTTP answer wanted. Anything but 200 must leave every
	// message and subscription as it was.
	status int
	// reply, when set, must be in the answer's body (TwiML, a challenge).
	reply string
	// check, when set, looks at what was stored.
	check func(t *testing.T)
}

// runHooks sends the cases in order through the HTTP server.
func runHooks(t *testing.T, e *hubtest.Env, cases []hookCase) {
	t.Helper()
	for _, c := range cases {
		method := c.method
		if method == "" {
			method = http.MethodPost
		}
		if c.status != http.StatusOK {
			// Keyword replies of earlier cases are handed to the partner
			// first, so that the store changes only by this request.
			e.WaitFor("replies handed to the partner", func() bool {
				for _, m := range storedMessages(t, e) {
					if m.Direction == sb.Outgoing && m.Status == sb.StatusQueued && m.ProviderMessageID == "" {
						return false
					}
				}
				return true
			})
		}
		before := storedState(t, e)
		r := e.Do(method, c.path, "", c.body, c.header...)
		if r.Status != c.status {
			t.Errorf("%s: %s %s answered %d %s, want %d", c.name, method, c.path, r.Status, r.Body, c.status)
			continue
		}
		if !strings.Contains(string(r.Body), c.reply) {
			t.Errorf("%s: answer %q lacks %q", c.name, r.Body, c.reply)
		}
		if c.status != http.StatusOK {
			if after := storedState(t, e); after != before {
				t.Errorf("%s: answered %d but the store changed:\nbefore %s\nafter  %s", c.name, c.status, before, after)
			}
			var eb struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(r.Body, &eb); err != nil || eb.Error.Message == "" {
				t.Errorf("%s: error answer %q does not say what is wrong", c.name, r.Body)
			}
		}
		if c.check != nil {
			c.check(t)
		}
	}
}

// storedState lists every message of the org (id, direction, status,
// error code, provider id), to tell whether a request stored anything.
func storedState(t *testing.T, e *hubtest.Env) string {
	t.Helper()
	var rows []string
	for _, m := range storedMessages(t, e) {
		rows = append(rows, fmt.Sprintf("%s/%s/%s/%s/%s", m.ID, m.Direction, m.Status, m.ErrorCode, m.ProviderMessageID))
	}
	slices.Sort(rows)
	return strings.Join(rows, " ")
}

func storedMessages(t *testing.T, e *hubtest.Env) []sb.Message {
	t.Helper()
	var list struct {
		Messages []sb.Message `json:"messages"`
	}
	e.API("GET", "/v1/messages?limit=500", nil).JSON(t, &list)
	return list.Messages
}

// wantStatus checks an outgoing message's status, error code and Debug.
func wantStatus(e *hubtest.Env, id string, st sb.Status, code, debugHas string) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		m := e.Message(id)
		if m.Status != st || m.ErrorCode != code || !strings.Contains(m.Debug, debugHas) {
			t.Errorf("message %s: status %s, error code %q, debug %q; want %s, %q, with %q", id, m.Status, m.ErrorCode, m.Debug, st, code, debugHas)
		}
	}
}

// crmContent collects the text and media incoming messages must have in
// the CRM; verify checks them all after one wait for the write-back.
type crmContent struct {
	want []crmWant
}

type crmWant struct {
	id, phone, body string
	media           []string
}

func (c *crmContent) verify(t *testing.T, e *hubtest.Env) {
	t.Helper()
	e.WaitCRMSynced()
	for _, w := range c.want {
		found := false
		for _, rec := range crmMessages(t, e, w.phone) {
			if rec.MessageID != w.id {
				continue
			}
			found = true
			if rec.Body != w.body || !slices.Equal(rec.MediaURLs, w.media) || rec.Direction != sb.Incoming {
				t.Errorf("incoming %s in the CRM: body %q media %v, want %q %v", w.id, rec.Body, rec.MediaURLs, w.body, w.media)
			}
		}
		if !found {
			t.Errorf("incoming %s not in the CRM", w.id)
		}
	}
}

// wantIncoming checks that one incoming message with provider id pid is
// stored on the gateway, and notes the text and media it must have in the
// CRM.
func (c *crmContent) wantIncoming(e *hubtest.Env, gatewayID, pid, phone, body string, media ...string) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		var list struct {
			Messages []sb.Message `json:"messages"`
		}
		e.API("GET", "/v1/messages?direction=incoming&limit=500&gateway_id="+gatewayID, nil).JSON(t, &list)
		var found *sb.Message
		for i, m := range list.Messages {
			if m.ProviderMessageID == pid {
				if found != nil {
					t.Fatalf("incoming %s stored twice", pid)
				}
				found = &list.Messages[i]
			}
		}
		if found == nil || found.Status != sb.StatusReceived {
			t.Fatalf("incoming %s not stored on gateway %s: %+v", pid, gatewayID, list.Messages)
		}
		if !slices.ContainsFunc(c.want, func(w crmWant) bool { return w.id == found.ID }) {
			c.want = append(c.want, crmWant{id: found.ID, phone: phone, body: body, media: media})
		}
	}
}

// wantOptedOut checks that a number is opted out of a gateway.
func wantOptedOut(e *hubtest.Env, gatewayID, phone string) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		sub, err := e.DB.Subscription(context.Background(), gatewayID, e.DB.Hasher().Phone(phone))
		if err != nil || sub == nil || sub.Status != sb.OptedOut {
			t.Errorf("%s on gateway %s: %+v %v, want opted out", sb.MaskPhone(phone), gatewayID, sub, err)
		}
	}
}

func both(fs ...func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		for _, f := range fs {
			f(t)
		}
	}
}

func TestTwilioFixturesThroughServer(t *testing.T) {
	opts := hubtest.Options{Providers: []sb.Provider{twilio.New(twilio.Options{})}}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		const account, token = "AC0123456789abcdef0123456789abcdef", "f3c1d2e4a5b6978877665544332211aa"
		sends, api := newPartnerSends(t, func(w http.ResponseWriter, pid string) {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"sid":%q,"status":"queued","account_sid":%q}`, pid, account)
		})
		sandbox, unpaced := true, 0.0
		v, err := e.Hub.CreateGateway(context.Background(), e.Admin, hub.GatewayRequest{Provider: "twilio", Number: twiliotest.Number, Sandbox: &sandbox, Rate: &unpaced,
			Config: map[string]string{"account_sid": account, "auth_token": token, "api_base_url": api}})
		if err != nil {
			t.Fatal(err)
		}
		gw := v.ID
		signed := func(path string, form url.Values) []string {
			return []string{"Content-Type", "application/x-www-form-urlencoded", twilio.SignatureHeader, twilio.Signature(token, e.Server.URL+path, form)}
		}
		hook := func(name, action string, form url.Values, status int, check func(t *testing.T)) hookCase {
			path := "/webhooks/twilio/" + gw + "/" + action
			return hookCase{name: name, path: path, body: []byte(form.Encode()), header: signed(path, form), status: status, check: check}
		}
		// status posts a status callback to the URL Switchboard gave with
		// the message (…/status?m=<id>).
		status := func(name string, m *sb.Message, st, code string, want sb.Status, debugHas string, more ...func(t *testing.T)) hookCase {
			path := "/webhooks/twilio/" + gw + "/status?m=" + m.ID
			form := twiliotest.StatusCallback(account, m.ProviderMessageID, st, code)
			return hookCase{name: name, path: path, body: []byte(form.Encode()), header: signed(path, form), status: http.StatusOK,
				check: both(append([]func(*testing.T){wantStatus(e, m.ID, want, code, debugHas)}, more...)...)}
		}
		n := 0
		out := func() *sb.Message {
			n++
			return sends.send(t, e, fmt.Sprintf("SM%032x", n), map[string]any{"gateway_id": gw, "to": twiliotest.Handset, "body": "Your table is booked"})
		}

		mms := twiliotest.IncomingMMS(account)
		crm := &crmContent{}
		sms := hook("incoming SMS", "incoming", twiliotest.IncomingSMS(account), http.StatusOK,
			crm.wantIncoming(e, gw, twiliotest.SMSSID, twiliotest.Handset, twiliotest.SMSBody))
		sms.reply = "<Response></Response>" // no reply message from Twilio
		cases := []hookCase{
			sms,
			hook("incoming MMS with two media", "incoming", mms, http.StatusOK,
				crm.wantIncoming(e, gw, twiliotest.MMSSID, twiliotest.Handset, "", mms.Get("MediaUrl0"), mms.Get("MediaUrl1"))),
			hook("replayed incoming SMS", "incoming", twiliotest.IncomingSMS(account), http.StatusOK,
				crm.wantIncoming(e, gw, twiliotest.SMSSID, twiliotest.Handset, twiliotest.SMSBody)),
		}
		// Every MessageStatus Twilio documents, each on a message of its own.
		for _, s := range []struct {
			twilio string
			want   sb.Status
		}{
			{"accepted", sb.StatusQueued}, {"scheduled", sb.StatusQueued}, {"queued", sb.StatusQueued},
			{"sending", sb.StatusQueued}, {"sent", sb.StatusSent}, {"receiving", sb.StatusQueued},
			{"received", sb.StatusQueued}, {"delivered", sb.StatusDelivered}, {"undelivered", sb.StatusUndelivered},
			{"failed", sb.StatusFailed}, {"read", sb.StatusDelivered}, {"canceled", sb.StatusFailed},
			{"partially_delivered", sb.StatusQueued},
		} {
			cases = append(cases, status("status "+s.twilio, out(), s.twilio, "", s.want, ""))
		}
		// A message's life: sent, delivered, then late and repeated callbacks
		// that must not move it back.
		life := out()
		cases = append(cases,
			status("sent", life, "sent", "", sb.StatusSent, ""),
			status("delivered", life, "delivered", "", sb.StatusDelivered, ""),
			status("late sent after delivered", life, "sent", "", sb.StatusDelivered, ""),
			status("repeated delivered", life, "delivered", "", sb.StatusDelivered, ""),
		)
		// Error codes.
		cases = append(cases,
			status("undelivered 30003", out(), "undelivered", "30003", sb.StatusUndelivered, "Twilio 30003: Unreachable destination handset"),
			status("undelivered 30007", out(), "undelivered", "30007", sb.StatusUndelivered, "Twilio 30007: Message filtered"),
			status("failed 30008", out(), "failed", "30008", sb.StatusFailed, "Twilio 30008: Unknown error"),
			status("failed 21610 unsubscribed", out(), "failed", "21610", sb.StatusFailed, "Twilio 21610", wantOptedOut(e, gw, twiliotest.Handset)),
		)

		// Refused requests store nothing.
		victim := out()
		statusPath := "/webhooks/twilio/" + gw + "/status?m=" + victim.ID
		delivered := twiliotest.StatusCallback(account, victim.ProviderMessageID, "delivered", "")
		stranger := twiliotest.IncomingSMS(account)
		for _, k := range []string{"MessageSid", "SmsMessageSid", "SmsSid"} {
			stranger.Set(k, "SM"+strings.Repeat("e", 32))
		}
		form := func(f url.Values, kv ...string) url.Values {
			for i := 0; i+1 < len(kv); i += 2 {
				f.Set(kv[i], kv[i+1])
			}
			return f
		}
		incomingPath := "/webhooks/twilio/" + gw + "/incoming"
		cases = append(cases,
			hookCase{name: "incoming without signature", path: incomingPath, body: []byte(stranger.Encode()),
				header: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: http.StatusForbidden},
			hookCase{name: "incoming signed with another token", path: incomingPath, body: []byte(stranger.Encode()),
				header: []string{"Content-Type", "application/x-www-form-urlencoded", twilio.SignatureHeader, twilio.Signature("another-token", e.Server.URL+incomingPath, stranger)},
				status: http.StatusForbidden},
			hookCase{name: "incoming body changed after signing", path: incomingPath, body: []byte(form(url.Values{}, "Body", "tampered").Encode() + "&" + stranger.Encode()),
				header: signed(incomingPath, stranger), status: http.StatusForbidden},
			hookCase{name: "status signed for another message", path: statusPath, body: []byte(delivered.Encode()),
				header: signed("/webhooks/twilio/"+gw+"/status?m="+life.ID, delivered), status: http.StatusForbidden,
				check: wantStatus(e, victim.ID, sb.StatusQueued, "", "")},
			hook("incoming NumMedia not a number", "incoming", form(twiliotest.IncomingSMS(account), "NumMedia", "two"), http.StatusBadRequest, nil),
			hook("incoming without From", "incoming", form(twiliotest.IncomingSMS(account), "From", ""), http.StatusBadRequest, nil),
			hook("incoming MediaUrl not absolute", "incoming", form(twiliotest.IncomingMMS(account), "MediaUrl1", "/media/1"), http.StatusBadRequest, nil),
			hookCase{name: "status with unknown MessageStatus", path: statusPath, body: []byte(form(twiliotest.StatusCallback(account, victim.ProviderMessageID, "exploded", "")).Encode()),
				header: signed(statusPath, twiliotest.StatusCallback(account, victim.ProviderMessageID, "exploded", "")), status: http.StatusBadRequest,
				check: wantStatus(e, victim.ID, sb.StatusQueued, "", "")},
			hookCase{name: "JSON body", path: incomingPath, body: []byte(`{"MessageSid":"SM1"}`),
				header: []string{"Content-Type", "application/json", twilio.SignatureHeader, twilio.Signature(token, e.Server.URL+incomingPath, nil)}, status: http.StatusBadRequest},
			hook("unknown action", "voice", twiliotest.IncomingSMS(account), http.StatusNotFound, nil),
			hookCase{name: "unknown gateway", path: "/webhooks/twilio/gw-nonexistent/incoming", body: []byte(stranger.Encode()),
				header: signed("/webhooks/twilio/gw-nonexistent/incoming", stranger), status: http.StatusNotFound},
			hookCase{name: "gateway of another provider", path: "/webhooks/twilio/" + e.Gateway.ID + "/incoming", body: []byte(stranger.Encode()),
				header: signed("/webhooks/twilio/"+e.Gateway.ID+"/incoming", stranger), status: http.StatusNotFound},
			status("delivered after the refused requests", victim, "delivered", "", sb.StatusDelivered, ""),
		)
		runHooks(t, e, cases)
		crm.verify(t, e)
	}, opts)
}

// whatsappFixture reads a documented webhook body of the WhatsApp provider's
// tests.
func whatsappFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../provider/whatsapp/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWhatsAppFixturesThroughServer(t *testing.T) {
	opts := hubtest.Options{Providers: []sb.Provider{whatsapp.New(whatsapp.Options{})}}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		const secret, phoneID, customer = "wa-app-secret-0123", "106540352242922", "+16505551234"
		sends, api := newPartnerSends(t, func(w http.ResponseWriter, pid string) {
			fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":%q}]}`, pid)
		})
		sandbox, unpaced := true, 0.0
		v, err := e.Hub.CreateGateway(context.Background(), e.Admin, hub.GatewayRequest{Provider: "whatsapp", Number: "+12025550182", Sandbox: &sandbox, Rate: &unpaced,
			Config: map[string]string{"phone_number_id": phoneID, "access_token": "EAAG-token", "app_secret": secret, "verify_token": "wa-verify-token", "api_base_url": api}})
		if err != nil {
			t.Fatal(err)
		}
		gw := v.ID
		path := "/webhooks/whatsapp/" + gw + "/incoming"
		hook := func(name, body string, status int, check func(t *testing.T)) hookCase {
			return hookCase{name: name, path: path, body: []byte(body), header: []string{whatsapp.SignatureHeader, whatsapp.Sign(secret, []byte(body))}, status: status, check: check}
		}
		// Template messages may go out at any time (the 24-hour window).
		out := func(pid string) *sb.Message {
			return sends.send(t, e, pid, map[string]any{"gateway_id": gw, "to": customer, "template": "order_update"})
		}
		// The status fixtures name the message by Meta's id (wamid) and, for
		// the ones sent with it, by Switchboard's id in
		// biz_opaque_callback_data: the partner gives the fixture's wamid,
		// and the callback data is this message's id.
		const lifeID, failedID, optOutID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDNzVCNkIzMzMxNzcwRUE5ODYA",
			"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCRUVBNzk4RDYxNkI0NzcyMjAA", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RjhFMjY3MzY1NzQ5QjQwNzQA"
		life, failed, optOut := out(lifeID), out(failedID), out(optOutID)
		statusFixture := func(name string) string {
			return strings.ReplaceAll(whatsappFixture(t, name), "msg_01J9ZQ4K7V", life.ID)
		}
		for _, f := range []string{"status_sent.json", "status_failed.json", "status_failed_optout.json"} {
			if !strings.Contains(whatsappFixture(t, f), map[string]string{"status_sent.json": lifeID, "status_failed.json": failedID, "status_failed_optout.json": optOutID}[f]) {
				t.Fatalf("fixture %s does not carry the wamid this test sends with", f)
			}
		}

		crm := &crmContent{}
		cases := []hookCase{
			{name: "verification handshake", method: http.MethodGet, path: path + "?hub.mode=subscribe&hub.verify_token=wa-verify-token&hub.challenge=1158201444",
				status: http.StatusOK, reply: "1158201444"},
			{name: "handshake with a wrong verify token", method: http.MethodGet, path: path + "?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", status: http.StatusForbidden},
			{name: "handshake without hub.mode", method: http.MethodGet, path: path + "?hub.verify_token=wa-verify-token&hub.challenge=1", status: http.StatusBadRequest},
			hook("incoming text", whatsappFixture(t, "text.json"), http.StatusOK,
				crm.wantIncoming(e, gw, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", customer, "Does it come in another color?")),
			hook("incoming image with caption", whatsappFixture(t, "image.json"), http.StatusOK,
				crm.wantIncoming(e, gw, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUM0NjZDRjQ5QjY0RDZCNjk5OQA=", customer, "New TV!", "whatsapp-media:1003383421387256")),
			hook("incoming document", whatsappFixture(t, "document.json"), http.StatusOK,
				crm.wantIncoming(e, gw, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQkI0RDY2QjNBQjNBOTNEN0MA", customer, "", "whatsapp-media:1137395501409185")),
			hook("incoming button and list replies", whatsappFixture(t, "interactive.json"), http.StatusOK, both(
				crm.wantIncoming(e, gw, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTI3NDE2NkE3RDJFOUJFRUFBMgA=", customer, "Cancel"),
				crm.wantIncoming(e, gw, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQjZEQjg4NjU0QzBFMDE3OTk0NgA=", customer, "Express Shipping"))),
			hook("replayed incoming text", whatsappFixture(t, "text.json"), http.StatusOK,
				crm.wantIncoming(e, gw, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", customer, "Does it come in another color?")),
			hook("status sent", statusFixture("status_sent.json"), http.StatusOK, wantStatus(e, life.ID, sb.StatusSent, "", "")),
			hook("status delivered", statusFixture("status_delivered.json"), http.StatusOK, wantStatus(e, life.ID, sb.StatusDelivered, "", "")),
			hook("status read", statusFixture("status_read.json"), http.StatusOK, wantStatus(e, life.ID, sb.StatusDelivered, "", "")),
			hook("late status sent", statusFixture("status_sent.json"), http.StatusOK, wantStatus(e, life.ID, sb.StatusDelivered, "", "")),
			hook("status failed", whatsappFixture(t, "status_failed.json"), http.StatusOK,
				wantStatus(e, failed.ID, sb.StatusFailed, "131026", "WhatsApp 131026: Message undeliverable")),
			hook("status failed: recipient stopped marketing messages", whatsappFixture(t, "status_failed_optout.json"), http.StatusOK,
				both(wantStatus(e, optOut.ID, sb.StatusFailed, "131050", "WhatsApp 131050"), wantOptedOut(e, gw, customer))),
			hook("several entries", whatsappFixture(t, "multi_entry.json"), http.StatusOK,
				crm.wantIncoming(e, gw, "wamid.multi.in.1", customer, "STOP")),
		}

		// Refused requests store nothing.
		stranger := strings.ReplaceAll(whatsappFixture(t, "button.json"), "16505551234", "16505550199")
		cases = append(cases,
			hookCase{name: "no signature", path: path, body: []byte(stranger), status: http.StatusForbidden},
			hookCase{name: "signed with another app secret", path: path, body: []byte(stranger),
				header: []string{whatsapp.SignatureHeader, whatsapp.Sign("another-secret", []byte(stranger))}, status: http.StatusForbidden},
			hookCase{name: "body changed after signing", path: path, body: []byte(strings.Replace(stranger, "Stop", "Stay", 1)),
				header: []string{whatsapp.SignatureHeader, whatsapp.Sign(secret, []byte(stranger))}, status: http.StatusForbidden},
			hook("not JSON", `{"object":"whatsapp_business_account","entry":[`, http.StatusBadRequest, nil),
			hook("another object", `{"object":"instagram","entry":[]}`, http.StatusBadRequest, nil),
			hook("metadata missing", `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[]}}]}]}`, http.StatusBadRequest, nil),
			hook("message without a sender", strings.Replace(stranger, `"from": "16505550199",`, "", 1), http.StatusBadRequest, nil),
			hookCase{name: "unknown action", path: "/webhooks/whatsapp/" + gw + "/voice", body: []byte(stranger),
				header: []string{whatsapp.SignatureHeader, whatsapp.Sign(secret, []byte(stranger))}, status: http.StatusNotFound},
			hookCase{name: "unknown gateway", path: "/webhooks/whatsapp/gw-nonexistent/incoming", body: []byte(stranger),
				header: []string{whatsapp.SignatureHeader, whatsapp.Sign(secret, []byte(stranger))}, status: http.StatusNotFound},
			hookCase{name: "gateway of another provider", path: "/webhooks/whatsapp/" + e.Gateway.ID + "/incoming", body: []byte(stranger),
				header: []string{whatsapp.SignatureHeader, whatsapp.Sign(secret, []byte(stranger))}, status: http.StatusNotFound},
			hook("button reply", stranger, http.StatusOK,
				crm.wantIncoming(e, gw, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", "+16505550199", "Stop promotions")),
		)
		runHooks(t, e, cases)
		crm.verify(t, e)
	}, opts)
}

func TestSimulatedCarrierFixturesThroughServer(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		// A second simulated gateway whose carrier takes messages and never
		// calls back, so that every callback below is the test's.
		sends, api := newPartnerSends(t, func(w http.ResponseWriter, pid string) {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":%q,"status":"queued"}`, pid)
		})
		sandbox, unpaced := true, 0.0
		v, err := e.Hub.CreateGateway(context.Background(), e.Admin, hub.GatewayRequest{Provider: "sim", Number: "+12025550170", Sandbox: &sandbox, Rate: &unpaced,
			Config: map[string]string{"base_url": api}})
		if err != nil {
			t.Fatal(err)
		}
		gw := v.ID
		real, err := e.DB.Gateway(context.Background(), e.Org.ID, gw)
		if err != nil {
			t.Fatal(err)
		}
		secret := real.Config[sim.KeySecret]
		const handset = "+12025550171"
		at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC).Format(time.RFC3339Nano)
		event := func(ev sim.Event) string {
			b, _ := json.Marshal(ev)
			return string(b)
		}
		hook := func(name, path, body string, status int, check func(t *testing.T)) hookCase {
			return hookCase{name: name, path: path, body: []byte(body), header: []string{sim.SignatureHeader, sim.Sign(secret, e.Server.URL+path, []byte(body))}, status: status, check: check}
		}
		incoming := "/webhooks/sim/" + gw + "/incoming"
		n := 0
		out := func() *sb.Message {
			n++
			return sends.send(t, e, fmt.Sprintf("sim-%d", n), map[string]any{"gateway_id": gw, "to": handset, "body": "Class is moved to room 4"})
		}
		status := func(name string, m *sb.Message, st, code string, want sb.Status, debugHas string) hookCase {
			path := "/webhooks/sim/" + gw + "/status?m=" + m.ID
			return hook(name, path, event(sim.Event{Type: "status", ID: m.ProviderMessageID, ClientRef: m.ID, Status: st, ErrorCode: code, At: at}), http.StatusOK,
				wantStatus(e, m.ID, want, code, debugHas))
		}
		crm := &crmContent{}
		cases := []hookCase{
			hook("incoming", incoming, event(sim.Event{Type: "incoming", ID: "in-1", From: handset, To: "+12025550170", Body: "Which room?", At: at}), http.StatusOK,
				crm.wantIncoming(e, gw, "in-1", handset, "Which room?")),
			hook("incoming MMS", incoming, event(sim.Event{Type: "incoming", ID: "in-2", From: handset, To: "+12025550170", Body: "Map",
				MediaURLs: []string{"https://media.example.org/a.png", "https://media.example.org/b.png"}, At: at}), http.StatusOK,
				crm.wantIncoming(e, gw, "in-2", handset, "Map", "https://media.example.org/a.png", "https://media.example.org/b.png")),
		}
		life := out()
		cases = append(cases,
			status("queued", life, "queued", "", sb.StatusQueued, ""),
			status("sent", life, "sent", "", sb.StatusSent, ""),
			status("delivered", life, "delivered", "", sb.StatusDelivered, ""),
			status("late sent", life, "sent", "", sb.StatusDelivered, ""),
			status("undelivered 30003", out(), "undelivered", "30003", sb.StatusUndelivered, "Simulated carrier 30003: Unreachable destination handset"),
			status("failed 30008", out(), "failed", "30008", sb.StatusFailed, "Simulated carrier 30008: Unknown error"),
		)
		// A batch of reports (a JSON array) to the gateway's status URL:
		// each report names its message by client_ref.
		batchPath := "/webhooks/sim/" + gw + "/status"
		a, b, c := out(), out(), out()
		report := func(m *sb.Message, st, code string) string {
			return event(sim.Event{Type: "status", ID: m.ProviderMessageID, ClientRef: m.ID, Status: st, ErrorCode: code, At: at})
		}
		cases = append(cases,
			hook("batch with a bad report", batchPath, "["+report(c, "sent", "")+","+report(c, "exploded", "")+"]", http.StatusBadRequest,
				wantStatus(e, c.ID, sb.StatusQueued, "", "")),
			hook("batch of reports", batchPath, "["+report(a, "sent", "")+","+report(a, "delivered", "")+","+report(b, "undelivered", "30003")+","+report(c, "sent", "")+"]", http.StatusOK,
				both(wantStatus(e, a.ID, sb.StatusDelivered, "", ""), wantStatus(e, b.ID, sb.StatusUndelivered, "30003", "Unreachable destination handset"),
					wantStatus(e, c.ID, sb.StatusSent, "", ""))),
			hook("the same batch again", batchPath, "["+report(a, "sent", "")+","+report(a, "delivered", "")+"]", http.StatusOK,
				wantStatus(e, a.ID, sb.StatusDelivered, "", "")),
		)
		victim := out()
		vpath := "/webhooks/sim/" + gw + "/status?m=" + victim.ID
		delivered := event(sim.Event{Type: "status", ID: victim.ProviderMessageID, ClientRef: victim.ID, Status: "delivered", At: at})
		stranger := event(sim.Event{Type: "incoming", ID: "in-3", From: "+12025550172", Body: "hi", At: at})
		cases = append(cases,
			hookCase{name: "no signature", path: vpath, body: []byte(delivered), status: http.StatusForbidden, check: wantStatus(e, victim.ID, sb.StatusQueued, "", "")},
			hookCase{name: "signed with another secret", path: incoming, body: []byte(stranger),
				header: []string{sim.SignatureHeader, sim.Sign("another-secret-0123456789", e.Server.URL+incoming, []byte(stranger))}, status: http.StatusForbidden},
			hookCase{name: "signed for another URL", path: vpath, body: []byte(delivered),
				header: []string{sim.SignatureHeader, sim.Sign(secret, e.Server.URL+"/webhooks/sim/"+gw+"/status?m="+life.ID, []byte(delivered))}, status: http.StatusForbidden},
			hook("not JSON", incoming, "type=incoming", http.StatusBadRequest, nil),
			hook("unknown event type", incoming, event(sim.Event{Type: "typing", ID: "x", At: at}), http.StatusBadRequest, nil),
			hook("unknown status", vpath, event(sim.Event{Type: "status", ID: victim.ProviderMessageID, Status: "exploded", At: at}), http.StatusBadRequest, nil),
			hook("no event time", incoming, event(sim.Event{Type: "incoming", ID: "in-4", From: handset, Body: "hi"}), http.StatusBadRequest, nil),
			hook("incoming without sender", incoming, event(sim.Event{Type: "incoming", ID: "in-5", Body: "hi", At: at}), http.StatusBadRequest, nil),
			hook("unknown action", "/webhooks/sim/"+gw+"/voice", stranger, http.StatusNotFound, nil),
			hook("unknown gateway", "/webhooks/sim/gw-nonexistent/incoming", stranger, http.StatusNotFound, nil),
			hook("unknown provider", "/webhooks/carrier-x/"+gw+"/incoming", stranger, http.StatusNotFound, nil),
			status("delivered after the refused requests", victim, "delivered", "", sb.StatusDelivered, ""),
		)
		runHooks(t, e, cases)
		crm.verify(t, e)
	})
}
