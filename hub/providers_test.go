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
