package whatsapp

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{5,14}$`)

// FuzzHandleWebhook feeds arbitrary bodies, signed properly or carrying an
// arbitrary signature header. It must never panic; an unsigned body must be
// refused as forbidden; a signed one must either be refused as invalid or
// yield well-formed events.
func FuzzHandleWebhook(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "", true)
		f.Add(b, Sign(testAppSecret, b), false)
		f.Add(b, "sha256=00", false)
	}
	f.Add([]byte(messagesBody(`{"from":"16505551234","id":"w","timestamp":"1","type":"location","location":{"latitude":1e308}}`)), "", true)
	f.Add([]byte(statusBody(`{"id":"w","status":"failed","timestamp":"1750264000123","errors":[{"code":-1}]}`)), "", true)
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":null}]}]}`), "", true)
	f.Add([]byte(`null`), "", true)
	f.Add([]byte{}, "", false)

	p := New(Options{})
	f.Fuzz(func(t *testing.T, body []byte, signature string, signIt bool) {
		gw := testGateway()
		if signIt {
			signature = Sign(testAppSecret, body)
		}
		req := &sb.WebhookRequest{
			Method: http.MethodPost,
			URL:    &url.URL{Scheme: "https", Host: "sb.example.org", Path: "/webhooks/whatsapp/gw_wa_1/incoming"},
			Action: "incoming",
			Header: http.Header{},
			Body:   body,
			Form:   url.Values{},
		}
		if signature != "" {
			req.Header.Set(SignatureHeader, signature)
		}
		ev, err := p.HandleWebhook(context.Background(), gw, req)

		valid := strings.EqualFold(strings.TrimSpace(signature), Sign(testAppSecret, body))
		if !valid {
			if ev != nil || !sb.IsCode(err, sb.EForbidden) {
				t.Fatalf("badly signed body gave %+v, %v; want a forbidden error", ev, err)
			}
			return
		}
		if err != nil {
			if ev != nil || !sb.IsCode(err, sb.EInvalid) || sb.ErrorMessage(err) == "" {
				t.Fatalf("signed body gave %+v, %v; want events or an invalid error", ev, err)
			}
			return
		}
		checkEvents(t, gw, ev)
	})
}

// checkEvents fails unless every event is one the hub can store.
func checkEvents(t *testing.T, gw *sb.Gateway, ev *sb.Events) {
	t.Helper()
	if ev == nil {
		t.Fatal("nil events without an error")
	}
	if ev.Response.StatusCode != 0 || len(ev.Response.Body) != 0 {
		t.Fatalf("POST response = %+v, want 200 with an empty body", ev.Response)
	}
	for _, m := range ev.Incoming {
		switch {
		case m.ProviderMessageID == "":
			t.Fatalf("incoming without id: %+v", m)
		case !e164.MatchString(m.From):
			t.Fatalf("incoming From %q is not E.164", m.From)
		case m.To != gw.Number:
			t.Fatalf("incoming To = %q, want the gateway number", m.To)
		case m.ReceivedAt.IsZero():
			t.Fatalf("incoming without time: %+v", m)
		}
		for _, u := range m.MediaURLs {
			if !strings.HasPrefix(u, MediaScheme) || len(u) == len(MediaScheme) {
				t.Fatalf("media URL %q is not %s<id>", u, MediaScheme)
			}
		}
	}
	for _, s := range ev.Statuses {
		switch {
		case s.ProviderMessageID == "":
			t.Fatalf("status without id: %+v", s)
		case s.Status != sb.StatusSent && s.Status != sb.StatusDelivered && s.Status != sb.StatusFailed:
			t.Fatalf("status %q is not one WhatsApp reports", s.Status)
		case s.At.IsZero():
			t.Fatalf("status without time: %+v", s)
		case s.Status != sb.StatusFailed && (s.ErrorCode != "" || s.Debug != "" || s.OptedOut):
			t.Fatalf("non-failed status carries failure details: %+v", s)
		case s.Status == sb.StatusFailed && s.Debug == "":
			t.Fatalf("failed status without Debug: %+v", s)
		}
	}
}

// FuzzHandshake feeds arbitrary query strings to the GET verification.
func FuzzHandshake(f *testing.F) {
	f.Add("hub.mode=subscribe&hub.verify_token=" + testVerifyToken + "&hub.challenge=1158201444")
	f.Add("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
	f.Add("hub.mode=subscribe&hub.verify_token=" + testVerifyToken + "&hub.verify_token=x&hub.challenge=%00")
	f.Add("%zz")
	p := New(Options{})
	f.Fuzz(func(t *testing.T, rawQuery string) {
		u := &url.URL{Scheme: "https", Host: "sb.example.org", Path: "/webhooks/whatsapp/gw_wa_1/incoming", RawQuery: rawQuery}
		req := &sb.WebhookRequest{Method: http.MethodGet, URL: u, Action: "incoming", Header: http.Header{}, Form: url.Values{}}
		ev, err := p.HandleWebhook(context.Background(), testGateway(), req)
		q := u.Query()
		if err != nil {
			if ev != nil || !(sb.IsCode(err, sb.EInvalid) || sb.IsCode(err, sb.EForbidden)) {
				t.Fatalf("got %+v, %v; want an invalid or forbidden error", ev, err)
			}
			return
		}
		if q.Get("hub.verify_token") != testVerifyToken || q.Get("hub.mode") != "subscribe" {
			t.Fatalf("handshake accepted without the verify token (query %q)", rawQuery)
		}
		if string(ev.Response.Body) != q.Get("hub.challenge") || ev.Response.StatusCode != http.StatusOK {
			t.Fatalf("response %+v does not echo the challenge", ev.Response)
		}
	})
}
