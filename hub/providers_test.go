package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/provider/twilio"
	"github.com/switchboard/switchboard/provider/whatsapp"
)

// TestWhatsAppSharedCallbackURL: Meta calls one callback URL per app for all
// its phone numbers. A webhook that reaches gateway A's URL with messages
// for A and for gateway B (another number of the same app, same app
// secret) stores each message on its own gateway; the part for a gateway
// whose app secret differs, and the part for a number no gateway has, are
// not stored. A replay stores nothing twice.
func TestWhatsAppSharedCallbackURL(t *testing.T) {
	opts := hubtest.Options{Providers: []sb.Provider{whatsapp.New(whatsapp.Options{})}}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		sandbox := true
		gateway := func(number, phoneID, secret string) *hub.GatewayView {
			t.Helper()
			v, err := e.Hub.CreateGateway(ctx, e.Admin, hub.GatewayRequest{Provider: "whatsapp", Number: number, Sandbox: &sandbox,
				Config: map[string]string{"phone_number_id": phoneID, "access_token": "EAAG-token", "app_secret": secret, "verify_token": "wa-verify-token"}})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		a := gateway("+12025550182", "106540352242922", "shared-app-secret")
		b := gateway("+12025550186", "106540352242933", "shared-app-secret")
		c := gateway("+12025550187", "106540352242944", "another-app-secret")
		change := func(phoneID, from, id, text string) string {
			return `{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1202555","phone_number_id":"` + phoneID + `"},
				"messages":[{"from":"` + from + `","id":"` + id + `","timestamp":"1763900000","type":"text","text":{"body":"` + text + `"}}]}}`
		}
		body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[` +
			change("106540352242933", "12025550185", "wamid.for.b", "Hello B") + `,` +
			change("106540352242922", "12025550184", "wamid.for.a", "Hello A") + `]},{"id":"102290129340398","changes":[` +
			change("106540352242944", "12025550188", "wamid.for.c", "Hello C") + `,` +
			change("199999999999999", "12025550189", "wamid.for.nobody", "Hello nobody") + `]}]}`)
		for range 2 { // the second time is Meta's retry
			r := e.Do("POST", "/webhooks/whatsapp/"+a.ID+"/incoming", "", body, "X-Hub-Signature-256", whatsapp.Sign("shared-app-secret", body))
			if r.Status != http.StatusOK {
				t.Fatalf("shared webhook: %d %s", r.Status, r.Body)
			}
		}
		for _, tc := range []struct {
			gw   *hub.GatewayView
			want []string
		}{{a, []string{"wamid.for.a"}}, {b, []string{"wamid.for.b"}}, {c, nil}} {
			var list struct {
				Messages []sb.Message `json:"messages"`
			}
			e.API("GET", "/v1/messages?gateway_id="+tc.gw.ID, nil).JSON(t, &list)
			var got []string
			for _, m := range list.Messages {
				if m.Direction != sb.Incoming || m.GatewayID != tc.gw.ID {
					t.Fatalf("gateway %s lists %+v", tc.gw.Number, m)
				}
				got = append(got, m.ProviderMessageID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("gateway %s stored %v, want %v", tc.gw.Number, got, tc.want)
			}
		}
		for phone, text := range map[string]string{"+12025550184": "Hello A", "+12025550185": "Hello B"} {
			e.WaitCRMSynced()
			if recs := crmMessages(t, e, phone); len(recs) != 1 || recs[0].Body != text {
				t.Fatalf("%s: %+v", phone, recs)
			}
		}
		for _, phone := range []string{"+12025550188", "+12025550189"} {
			if recs := crmMessages(t, e, phone); len(recs) != 0 {
				t.Fatalf("%s was stored: %+v", phone, recs)
			}
		}
		metrics := string(e.Do("GET", "/metrics", "", nil).Body)
		for _, result := range []string{"ok", "routed", "route_refused", "unrouted"} {
			if line := `switchboard_webhooks_total{provider="whatsapp",result="` + result + `"} 2`; !strings.Contains(metrics, line) {
				t.Errorf("/metrics lacks %s", line)
			}
		}
	}, opts)
}

// TestWhatsAppOneMediaPerMessage: a WhatsApp message with more than one
// media URL is refused when it is accepted (1:1 and bulk), with an error
// that says why, instead of going out with the first attachment only.
func TestWhatsAppOneMediaPerMessage(t *testing.T) {
	opts := hubtest.Options{Providers: []sb.Provider{whatsapp.New(whatsapp.Options{})}}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		sandbox := true
		wa, err := e.Hub.CreateGateway(context.Background(), e.Admin, hub.GatewayRequest{Provider: "whatsapp", Number: "+12025550182", Sandbox: &sandbox,
			Config: map[string]string{"phone_number_id": "106540352242922", "access_token": "EAAG-token", "app_secret": "wa-app-secret-0123", "verify_token": "wa-verify-token"}})
		if err != nil {
			t.Fatal(err)
		}
		two := []string{"https://cdn.college.example/a.jpg", "https://cdn.college.example/b.jpg"}
		for _, req := range []struct {
			path string
			body map[string]any
		}{
			{"/v1/messages", map[string]any{"gateway_id": wa.ID, "to": "+12025550184", "body": "Two pictures", "media_urls": two}},
			{"/v1/bulk-sends", map[string]any{"gateway_id": wa.ID, "body": "Two pictures", "media_urls": two, "recipients": []map[string]string{{"to": "+12025550184"}}}},
			{"/v1/messages", map[string]any{"gateway_id": wa.ID, "to": "+12025550184", "template": "order_update", "media_urls": two[:1]}},
		} {
			r := e.API("POST", req.path, req.body)
			var body struct {
				Error struct {
					Code, Field, Message string
				} `json:"error"`
			}
			r.JSON(t, &body)
			if r.Status != http.StatusBadRequest || body.Error.Field != "media_urls" || !strings.Contains(body.Error.Message, "WhatsApp") {
				t.Fatalf("%s %v: %d %s", req.path, req.body, r.Status, r.Body)
			}
		}
		var list struct {
			Messages []sb.Message `json:"messages"`
		}
		e.API("GET", "/v1/messages?gateway_id="+wa.ID, nil).JSON(t, &list)
		if len(list.Messages) != 0 {
			t.Fatalf("refused sends stored messages: %+v", list.Messages)
		}
		// One attachment is fine; other providers (MMS) take several.
		if r := e.API("POST", "/v1/messages", map[string]any{"gateway_id": wa.ID, "to": "+12025550184", "body": "One picture", "media_urls": two[:1]}); r.Status != http.StatusCreated {
			t.Fatalf("one media: %d %s", r.Status, r.Body)
		}
		if r := e.API("POST", "/v1/messages", map[string]any{"gateway_id": e.Gateway.ID, "to": "+12025550184", "body": "Two pictures", "media_urls": two}); r.Status != http.StatusCreated {
			t.Fatalf("MMS on the simulated carrier: %d %s", r.Status, r.Body)
		}
	}, opts)
}

// twilioNumbers is a small fake of Twilio's IncomingPhoneNumbers resource
// for one account: it lists the numbers it holds and records the updates.
type twilioNumbers struct {
	sid, token string
	numbers    map[string]string // E.164 → PN sid
	// fail, when set, is the status every call is answered with.
	fail int

	mu      sync.Mutex
	calls   []string
	updates map[string]url.Values // PN sid → last update form
}

func (f *twilioNumbers) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		user, pass, _ := r.BasicAuth()
		base := "/2010-04-01/Accounts/" + f.sid + "/IncomingPhoneNumbers"
		switch {
		case f.fail != 0:
			w.WriteHeader(f.fail)
			fmt.Fprintf(w, `{"code":%d,"message":"failure","status":%d}`, 20000+f.fail, f.fail)
		case user != f.sid || pass != f.token:
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"code":20003,"message":"Authenticate","status":401}`)
		case r.Method == http.MethodGet && r.URL.Path == base+".json":
			var items []string
			if sid, ok := f.numbers[r.URL.Query().Get("PhoneNumber")]; ok {
				items = append(items, `{"sid":"`+sid+`","phone_number":"`+r.URL.Query().Get("PhoneNumber")+`"}`)
			}
			io.WriteString(w, `{"incoming_phone_numbers":[`+strings.Join(items, ",")+`],"page":0,"page_size":50}`)
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, base+"/") && strings.HasSuffix(r.URL.Path, ".json"):
			sid := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, base+"/"), ".json")
			form, _ := url.ParseQuery(string(raw))
			if f.updates == nil {
				f.updates = map[string]url.Values{}
			}
			f.updates[sid] = form
			io.WriteString(w, `{"sid":"`+sid+`","sms_url":`+strconv.Quote(form.Get("SmsUrl"))+`}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"code":20404,"message":"The requested resource was not found","status":404}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *twilioNumbers) seen() ([]string, map[string]url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls), maps.Clone(f.updates)
}

// TestTwilioWebhookRegistration: creating a production Twilio gateway
// through the API points the number's SMS URL at the gateway's incoming
// webhook (IncomingPhoneNumbers); a sandbox gateway makes no call and shows
// the URLs to set by hand; a registration Twilio refuses creates no gateway
// and says why.
func TestTwilioWebhookRegistration(t *testing.T) {
	opts := hubtest.Options{Providers: []sb.Provider{twilio.New(twilio.Options{})}}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		const pn = "PN0123456789abcdef0123456789abcdef"
		fake := &twilioNumbers{sid: "AC" + strings.Repeat("a1", 16), token: "twilio-auth-token-0123456789", numbers: map[string]string{"+12025550190": pn}}
		api := fake.serve(t)
		create := func(number string, sandbox bool, token string) *hubtest.Response {
			return e.API("POST", "/v1/gateways", map[string]any{"name": "Admissions", "provider": "twilio", "number": number, "sandbox": sandbox,
				"config": map[string]string{"account_sid": fake.sid, "auth_token": token, "api_base_url": api}})
		}
		type view struct {
			ID            string          `json:"id"`
			Registered    bool            `json:"registered"`
			RegisterError string          `json:"register_error"`
			Webhooks      sb.WebhookURLs  `json:"webhooks"`
			Config        json.RawMessage `json:"config"`
		}
		wantHooks := func(v view) {
			t.Helper()
			base := e.Server.URL + "/webhooks/twilio/" + v.ID
			if v.Webhooks.Incoming != base+"/incoming" || v.Webhooks.Status != base+"/status" {
				t.Fatalf("webhooks %+v, want %s/incoming and /status", v.Webhooks, base)
			}
		}

		// Production: registered at Twilio with the gateway's incoming URL.
		r := create("+12025550190", false, fake.token)
		var prod view
		r.JSON(t, &prod)
		if r.Status != http.StatusCreated || !prod.Registered || prod.RegisterError != "" {
			t.Fatalf("production gateway: %d %s", r.Status, r.Body)
		}
		wantHooks(prod)
		_, updates := fake.seen()
		got := updates[pn]
		if got.Get("SmsUrl") != prod.Webhooks.Incoming || got.Get("SmsMethod") != http.MethodPost || len(got) != 2 {
			t.Fatalf("IncomingPhoneNumbers update %v, want SmsUrl %s and SmsMethod POST only", got, prod.Webhooks.Incoming)
		}

		// Sandbox: no call to Twilio; the URLs to set by hand are shown.
		before, _ := fake.seen()
		r = create("+12025550191", true, fake.token)
		var sbx view
		r.JSON(t, &sbx)
		if r.Status != http.StatusCreated || sbx.Registered {
			t.Fatalf("sandbox gateway: %d %s", r.Status, r.Body)
		}
		wantHooks(sbx)
		if after, _ := fake.seen(); len(after) != len(before) {
			t.Fatalf("a sandbox gateway called Twilio: %v", after[len(before):])
		}

		// Refused registrations leave no gateway behind.
		for _, tc := range []struct {
			name, number, token string
			fail, status        int
			field, says         string
		}{
			{"number not in the account", "+12025550192", fake.token, 0, http.StatusBadRequest, "number", "is not in Twilio account"},
			{"wrong auth token", "+12025550194", "wrong-token-0123456789", 0, http.StatusBadRequest, "config.auth_token", "rejected the account SID and auth token"},
			{"Twilio down", "+12025550193", fake.token, http.StatusServiceUnavailable, http.StatusServiceUnavailable, "", "try again later"},
		} {
			fake.mu.Lock()
			fake.fail = tc.fail
			fake.mu.Unlock()
			r := create(tc.number, false, tc.token)
			var body struct {
				Error struct{ Code, Field, Message string } `json:"error"`
			}
			r.JSON(t, &body)
			if r.Status != tc.status || body.Error.Field != tc.field || !strings.Contains(body.Error.Message, "gateway not created") ||
				!strings.Contains(body.Error.Message, tc.says) || strings.Contains(string(r.Body), tc.token) {
				t.Errorf("%s: %d %s", tc.name, r.Status, r.Body)
			}
		}
		var list struct {
			Gateways []view `json:"gateways"`
		}
		e.API("GET", "/v1/gateways", nil).JSON(t, &list)
		if len(list.Gateways) != 3 { // the simulated one, production, sandbox
			t.Fatalf("gateways after refused registrations: %+v", list.Gateways)
		}
	}, opts)
}

// TestWhatsAppWindowThroughHub: the hub gives the WhatsApp provider the
// time the customer last wrote, so a free-form message fails with the clear
// window error when there is none within 24 hours, goes out after the
// customer writes, fails again once the provider's clock is 24 hours past
// that, while a template goes out at any time.
func TestWhatsAppWindowThroughHub(t *testing.T) {
	var ahead atomic.Int64 // how far the provider's clock is ahead of real time
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	opts := hubtest.Options{Providers: []sb.Provider{whatsapp.New(whatsapp.Options{Now: clock})}}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ahead.Store(0)
		const secret, customer = "wa-app-secret-0123", "+16505551234"
		sends, api := newPartnerSends(t, func(w http.ResponseWriter, pid string) {
			fmt.Fprintf(w, `{"messaging_product":"whatsapp","messages":[{"id":%q}]}`, pid)
		})
		sandbox, unpaced := true, 0.0
		v, err := e.Hub.CreateGateway(context.Background(), e.Admin, hub.GatewayRequest{Provider: "whatsapp", Number: "+12025550182", Sandbox: &sandbox, Rate: &unpaced,
			Config: map[string]string{"phone_number_id": "106540352242922", "access_token": "EAAG-token", "app_secret": secret, "verify_token": "wa-verify-token", "api_base_url": api}})
		if err != nil {
			t.Fatal(err)
		}
		freeForm := map[string]any{"gateway_id": v.ID, "to": customer, "body": "Your order has shipped"}
		refused := func(what string) {
			t.Helper()
			r := e.API("POST", "/v1/messages", freeForm)
			if r.Status != http.StatusCreated {
				t.Fatalf("%s: send: %d %s", what, r.Status, r.Body)
			}
			var m sb.Message
			r.JSON(t, &m)
			got := e.WaitStatus(m.ID, sb.StatusFailed)
			if got.Debug != whatsapp.DebugWindowClosed || got.ProviderMessageID != "" {
				t.Fatalf("%s: %+v, want Failed with %q and no provider id", what, got, whatsapp.DebugWindowClosed)
			}
		}

		refused("no message from the customer yet")
		if m := sends.send(t, e, "wamid.template.1", map[string]any{"gateway_id": v.ID, "to": customer, "template": "order_update"}); m.Status == sb.StatusFailed {
			t.Fatalf("template outside the window: %+v", m)
		}

		body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp",
			"metadata":{"display_phone_number":"12025550182","phone_number_id":"106540352242922"},
			"messages":[{"from":"16505551234","id":"wamid.in.1","timestamp":"` + strconv.FormatInt(time.Now().Unix(), 10) + `","type":"text","text":{"body":"Where is my order?"}}]}}]}]}`)
		if r := e.Do("POST", "/webhooks/whatsapp/"+v.ID+"/incoming", "", body, whatsapp.SignatureHeader, whatsapp.Sign(secret, body)); r.Status != http.StatusOK {
			t.Fatalf("incoming: %d %s", r.Status, r.Body)
		}
		if m := sends.send(t, e, "wamid.free.1", freeForm); m.Status == sb.StatusFailed {
			t.Fatalf("free-form within the window: %+v", m)
		}

		ahead.Store(int64(whatsapp.Window + time.Minute))
		refused("24 hours after the customer's message")
		if m := sends.send(t, e, "wamid.template.2", map[string]any{"gateway_id": v.ID, "to": customer, "template": "order_update"}); m.Status == sb.StatusFailed {
			t.Fatalf("template outside the window: %+v", m)
		}
	}, opts)
}

// partialProvider fails a message's first attempt after the partner took
// part of it (as SMPP does when a later part fails), and accepts the retry;
// it records the progress each attempt was given.
type partialProvider struct {
	mu   sync.Mutex
	seen []string
}

func (p *partialProvider) Name() string                     { return "partial" }
func (p *partialProvider) ConfigFields() []sb.ConfigField   { return nil }
func (p *partialProvider) ValidateConfig(*sb.Gateway) error { return nil }
func (p *partialProvider) HandleWebhook(context.Context, *sb.Gateway, *sb.WebhookRequest) (*sb.Events, error) {
	return nil, sb.Errorf(sb.ENotFound, "no webhooks")
}

func (p *partialProvider) Send(_ context.Context, _ *sb.Gateway, m *sb.OutboundMessage) (*sb.SendResult, error) {
	p.mu.Lock()
	p.seen = append(p.seen, m.Progress)
	p.mu.Unlock()
	if m.Progress == "" {
		return nil, &sb.SendError{Kind: sb.SendTransient, Debug: "part 2 of 2 not accepted", Progress: `{"ref":9,"parts":[{"ok":true,"id":"p-1"},{}]}`}
	}
	return &sb.SendResult{ProviderMessageID: "p-1", Status: sb.StatusSent}, nil
}

// TestSendProgressKeptForRetry: what a partner accepted of a message in a
// failed attempt is stored with the message and handed to the next
// attempt, so that the partner can send only the rest.
func TestSendProgressKeptForRetry(t *testing.T) {
	pp := &partialProvider{}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		pp.mu.Lock()
		pp.seen = nil
		pp.mu.Unlock()
		unpaced := 0.0
		v, err := e.Hub.CreateGateway(context.Background(), e.Admin, hub.GatewayRequest{Provider: "partial", Number: "+12025550175", Rate: &unpaced})
		if err != nil {
			t.Fatal(err)
		}
		r := e.API("POST", "/v1/messages", map[string]any{"gateway_id": v.ID, "to": "+12025550176", "body": "Two parts"})
		if r.Status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		}
		var m sb.Message
		r.JSON(t, &m)
		if got := e.WaitStatus(m.ID, sb.StatusSent); got.ProviderMessageID != "p-1" {
			t.Fatalf("message %+v", got)
		}
		pp.mu.Lock()
		defer pp.mu.Unlock()
		if len(pp.seen) != 2 || pp.seen[0] != "" || pp.seen[1] != `{"ref":9,"parts":[{"ok":true,"id":"p-1"},{}]}` {
			t.Fatalf("attempts were given progress %q, want none and then the first attempt's", pp.seen)
		}
	}, hubtest.Options{Providers: []sb.Provider{pp}})
}
