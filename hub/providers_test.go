package hub_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/provider/twilio"
	"github.com/switchboard/switchboard/provider/whatsapp"
)

// TestPartnerWebhooksThroughServer sends the partners' documented webhook
// payloads through the real HTTP server: signed requests are stored and
// answered as the partner expects; unsigned ones get 403 and store nothing.
func TestPartnerWebhooksThroughServer(t *testing.T) {
	opts := hubtest.Options{Providers: []sb.Provider{twilio.New(twilio.Options{}), whatsapp.New(whatsapp.Options{})}}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		sandbox := true
		tw, err := e.Hub.CreateGateway(ctx, e.Admin, hub.GatewayRequest{Provider: "twilio", Number: "+12025550181", Sandbox: &sandbox,
			Config: map[string]string{"account_sid": "AC" + strings.Repeat("a1", 16), "auth_token": "twilio-auth-token-0123456789"}})
		if err != nil {
			t.Fatal(err)
		}
		wa, err := e.Hub.CreateGateway(ctx, e.Admin, hub.GatewayRequest{Provider: "whatsapp", Number: "+12025550182", Sandbox: &sandbox,
			Config: map[string]string{"phone_number_id": "106540352242922", "access_token": "EAAG-token", "app_secret": "wa-app-secret-0123", "verify_token": "wa-verify-token"}})
		if err != nil {
			t.Fatal(err)
		}
		if tw.Config["auth_token"] != "********" || tw.Registered || tw.Webhooks.Incoming == "" {
			t.Fatalf("sandbox gateway view: %+v", tw)
		}

		// Twilio incoming SMS, signed over the full URL and sorted params.
		path := "/webhooks/twilio/" + tw.ID + "/incoming"
		form := url.Values{"MessageSid": {"SM" + strings.Repeat("b2", 16)}, "AccountSid": {tw.Config["account_sid"]}, "From": {"+12025550183"},
			"To": {"+12025550181"}, "Body": {"Is the library open?"}, "NumMedia": {"0"}}
		real, _ := e.DB.Gateway(ctx, e.Org.ID, tw.ID)
		sig := twilio.Signature(real.Config["auth_token"], e.Server.URL+path, form)
		r := e.Do("POST", path, "", []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "<Response>") || !strings.Contains(r.Header.Get("Content-Type"), "xml") {
			t.Fatalf("twilio incoming: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
		}
		r = e.Do("POST", path, "", []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", "bm9wZQ==")
		if r.Status != http.StatusForbidden {
			t.Fatalf("twilio bad signature: %d", r.Status)
		}

		// WhatsApp verification handshake and a signed inbound message.
		wpath := "/webhooks/whatsapp/" + wa.ID + "/incoming"
		r = e.Do("GET", wpath+"?hub.mode=subscribe&hub.verify_token=wa-verify-token&hub.challenge=1158201444", "", nil)
		if r.Status != http.StatusOK || string(r.Body) != "1158201444" {
			t.Fatalf("whatsapp handshake: %d %s", r.Status, r.Body)
		}
		if r := e.Do("GET", wpath+"?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", "", nil); r.Status != http.StatusForbidden {
			t.Fatalf("whatsapp bad verify token: %d", r.Status)
		}
		body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp",
			"metadata":{"display_phone_number":"12025550182","phone_number_id":"106540352242922"},
			"contacts":[{"profile":{"name":"Sam"},"wa_id":"12025550184"}],
			"messages":[{"from":"12025550184","id":"wamid.HBgLMTIwMjU1NTAxODQVAgASGBQzQTdCRjY2","timestamp":"1763900000","type":"text","text":{"body":"Hi from WhatsApp"}}]},"field":"messages"}]}]}`)
		r = e.Do("POST", wpath, "", body, "X-Hub-Signature-256", whatsapp.Sign("wa-app-secret-0123", body))
		if r.Status != http.StatusOK {
			t.Fatalf("whatsapp inbound: %d %s", r.Status, r.Body)
		}
		if r := e.Do("POST", wpath, "", body, "X-Hub-Signature-256", "sha256=00"); r.Status != http.StatusForbidden {
			t.Fatalf("whatsapp bad signature: %d", r.Status)
		}
		e.WaitCRMSynced()
		for phone, text := range map[string]string{"+12025550183": "Is the library open?", "+12025550184": "Hi from WhatsApp"} {
			recs := crmMessages(t, e, phone)
			if len(recs) != 1 || recs[0].Body != text || recs[0].Direction != sb.Incoming {
				t.Fatalf("%s: %+v", phone, recs)
			}
		}
	}, opts)
}

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
