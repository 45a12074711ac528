package sim

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider"
)

const (
	testSecret = "s3cret"
	publicBase = "https://sms.example.org"
)

func testGateway() *sb.Gateway {
	return &sb.Gateway{ID: "gw1", Provider: sb.ProviderSim, Number: "+12025550100",
		Config: map[string]string{KeyAccount: "acct", KeySecret: testSecret}}
}

// webhook builds the request the HTTP server hands the provider, signed with
// secret over the public URL as the carrier signs it ("" leaves it unsigned).
func webhook(t testing.TB, action, query string, body []byte, secret string) *sb.WebhookRequest {
	t.Helper()
	target := "/webhooks/sim/gw1/" + action + query
	r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if secret != "" {
		r.Header.Set(SignatureHeader, Sign(secret, publicBase+target, body))
	}
	base, _ := url.Parse(publicBase)
	req, err := provider.ReadWebhook(r, base, action)
	if err != nil {
		t.Fatalf("ReadWebhook: %v", err)
	}
	return req
}

// TestHandleWebhookBatch: a callback may carry a JSON array of events (the
// carrier's batched reports); they are taken in order, all or none, and an
// error names the event at fault.
func TestHandleWebhookBatch(t *testing.T) {
	at := "2026-12-01T10:00:00Z"
	p := New("http://carrier.invalid", nil)
	status := func(id, ref, st string) string {
		return `{"type":"status","id":"` + id + `","client_ref":"` + ref + `","status":"` + st + `","at":"` + at + `"}`
	}
	body := " [" + status("SM1", "msg-1", "sent") + "," + status("SM1", "msg-1", "delivered") + "," + status("SM2", "msg-2", "failed") +
		`,{"type":"incoming","id":"SMin1","from":"+12025550123","to":"+12025550100","body":"Yes","at":"` + at + `"}]`
	ev, err := p.HandleWebhook(context.Background(), testGateway(), webhook(t, "status", "", []byte(body), testSecret))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range ev.Statuses {
		got = append(got, s.MessageID+"/"+s.ProviderMessageID+"/"+string(s.Status))
	}
	if want := []string{"msg-1/SM1/Sent", "msg-1/SM1/Delivered", "msg-2/SM2/Failed"}; !slices.Equal(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	if len(ev.Incoming) != 1 || ev.Incoming[0].ProviderMessageID != "SMin1" {
		t.Fatalf("incoming %+v, want SMin1", ev.Incoming)
	}

	big := "[" + strings.Repeat(status("SM1", "msg-1", "sent")+",", MaxReportBatch) + status("SM1", "msg-1", "sent") + "]"
	for _, c := range []struct{ name, body, field, msg string }{
		{"empty batch", "[]", "", "empty array"},
		{"not an array of events", `[{"type":"status"},3]`, "", "not a JSON array of events"},
		{"a bad event", "[" + status("SM1", "msg-1", "sent") + "," + status("SM2", "msg-2", "exploded") + "]", "[1].status", "event 2 of 2: unknown status"},
		{"too many events", big, "", "at most 1000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev, err := p.HandleWebhook(context.Background(), testGateway(), webhook(t, "status", "", []byte(c.body), testSecret))
			var e *sb.Error
			if !errors.As(err, &e) || e.Code != sb.EInvalid || e.Field != c.field || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("got %+v, %v; want invalid, field %q, message with %q", ev, err, c.field, c.msg)
			}
		})
	}
}

func TestHandleWebhook(t *testing.T) {
	at := "2026-12-01T10:00:00.123Z"
	when, _ := time.Parse(time.RFC3339Nano, at)
	p := New("http://carrier.invalid", nil)
	cases := []struct {
		name, action, query, body, secret string
		code                              string // domain error code, "" for success
		in                                *sb.InboundMessage
		st                                *sb.StatusUpdate
	}{
		{name: "incoming", action: "incoming", secret: testSecret,
			body: `{"type":"incoming","id":"SMin1","from":"+12025550123","to":"+12025550100","body":"Yes!","media_urls":["https://m.example/1.jpg"],"at":"` + at + `"}`,
			in:   &sb.InboundMessage{ProviderMessageID: "SMin1", From: "+12025550123", To: "+12025550100", Body: "Yes!", MediaURLs: []string{"https://m.example/1.jpg"}, ReceivedAt: when}},
		{name: "delivered with message id in the URL", action: "status", query: "?m=msg-9", secret: testSecret,
			body: `{"type":"status","id":"SM1","client_ref":"msg-1","status":"delivered","at":"` + at + `"}`,
			st:   &sb.StatusUpdate{MessageID: "msg-9", ProviderMessageID: "SM1", Status: sb.StatusDelivered, At: when}},
		{name: "undelivered by client ref", action: "status", secret: testSecret,
			body: `{"type":"status","id":"SM2","client_ref":"msg-2","status":"undelivered","error_code":"30003","at":"` + at + `"}`,
			st: &sb.StatusUpdate{MessageID: "msg-2", ProviderMessageID: "SM2", Status: sb.StatusUndelivered, ErrorCode: "30003",
				Debug: "Simulated carrier 30003: Unreachable destination handset", At: when}},
		{name: "unsigned", action: "incoming", code: sb.EForbidden,
			body: `{"type":"incoming","id":"SMin1","from":"+12025550123","at":"` + at + `"}`},
		{name: "wrong secret", action: "incoming", secret: "other", code: sb.EForbidden,
			body: `{"type":"incoming","id":"SMin1","from":"+12025550123","at":"` + at + `"}`},
		{name: "unknown action", action: "voice", secret: testSecret, code: sb.ENotFound, body: `{}`},
		{name: "not JSON", action: "incoming", secret: testSecret, code: sb.EInvalid, body: `type=incoming`},
		{name: "bad time", action: "incoming", secret: testSecret, code: sb.EInvalid,
			body: `{"type":"incoming","id":"SMin1","from":"+12025550123","at":"yesterday"}`},
		{name: "no id", action: "status", secret: testSecret, code: sb.EInvalid,
			body: `{"type":"status","status":"sent","at":"` + at + `"}`},
		{name: "unknown status", action: "status", secret: testSecret, code: sb.EInvalid,
			body: `{"type":"status","id":"SM1","status":"read","at":"` + at + `"}`},
		{name: "incoming without sender", action: "incoming", secret: testSecret, code: sb.EInvalid,
			body: `{"type":"incoming","id":"SMin1","at":"` + at + `"}`},
		{name: "unknown type", action: "incoming", secret: testSecret, code: sb.EInvalid,
			body: `{"type":"call","id":"SMin1","at":"` + at + `"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := p.HandleWebhook(context.Background(), testGateway(), webhook(t, c.action, c.query, []byte(c.body), c.secret))
			if c.code != "" {
				if got := sb.ErrorCode(err); got != c.code {
					t.Fatalf("error %v (code %q), want code %q", err, got, c.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.in != nil:
				if len(ev.Incoming) != 1 || len(ev.Statuses) != 0 {
					t.Fatalf("events %+v, want one incoming message", ev)
				}
				got := ev.Incoming[0]
				if got.ProviderMessageID != c.in.ProviderMessageID || got.From != c.in.From || got.To != c.in.To ||
					got.Body != c.in.Body || !got.ReceivedAt.Equal(c.in.ReceivedAt) || len(got.MediaURLs) != len(c.in.MediaURLs) || got.MediaURLs[0] != c.in.MediaURLs[0] {
					t.Fatalf("incoming %+v, want %+v", got, *c.in)
				}
			case c.st != nil:
				if len(ev.Statuses) != 1 || len(ev.Incoming) != 0 {
					t.Fatalf("events %+v, want one status", ev)
				}
				got := ev.Statuses[0]
				if got.MessageID != c.st.MessageID || got.ProviderMessageID != c.st.ProviderMessageID || got.Status != c.st.Status ||
					got.ErrorCode != c.st.ErrorCode || got.Debug != c.st.Debug || !got.At.Equal(c.st.At) {
					t.Fatalf("status %+v, want %+v", got, *c.st)
				}
			}
		})
	}
}

// FuzzHandleWebhook feeds arbitrary bodies through the carrier's webhook
// parser, signed (to reach the parser behind the signature check) or not.
// Nothing may panic; a failure carries a domain code, a success is well formed.
func FuzzHandleWebhook(f *testing.F) {
	f.Add([]byte(`{"type":"incoming","id":"SMin1","from":"+12025550123","to":"+12025550100","body":"hi","at":"2026-12-01T10:00:00Z"}`), true, false)
	f.Add([]byte(`{"type":"status","id":"SM1","client_ref":"m1","status":"delivered","at":"2026-12-01T10:00:00Z"}`), true, true)
	f.Add([]byte(`{"type":"status","id":"SM1","status":"failed","error_code":"30008","at":"2026-12-01T10:00:00Z"}`), true, true)
	f.Add([]byte(`{"type":"incoming"`), true, false)
	f.Add([]byte(`[{"type":"status","id":"SM1","client_ref":"m1","status":"sent","at":"2026-12-01T10:00:00Z"},{"type":"status","id":"SM1","client_ref":"m1","status":"delivered","at":"2026-12-01T10:00:01Z"}]`), true, true)
	f.Add([]byte(`[]`), true, true)
	f.Add([]byte(` [{"type":"status"}]`), true, true)
	f.Add([]byte{}, false, true)
	p := New("http://carrier.invalid", nil)
	f.Fuzz(func(t *testing.T, body []byte, sign, status bool) {
		action := "incoming"
		if status {
			action = "status"
		}
		secret := ""
		if sign {
			secret = testSecret
		}
		ev, err := p.HandleWebhook(context.Background(), testGateway(), webhook(t, action, "", body, secret))
		if err != nil {
			if sb.ErrorCode(err) == sb.EInternal {
				t.Fatalf("error without a domain code: %v", err)
			}
			if !sign && sb.ErrorCode(err) != sb.EForbidden {
				t.Fatalf("unsigned request: %v, want forbidden", err)
			}
			return
		}
		if !sign {
			t.Fatal("an unsigned request was accepted")
		}
		if n := len(ev.Incoming) + len(ev.Statuses); n < 1 || n > MaxReportBatch {
			t.Fatalf("%d events from one webhook", n)
		}
		for _, m := range ev.Incoming {
			if m.ProviderMessageID == "" || m.From == "" || m.ReceivedAt.IsZero() {
				t.Fatalf("incomplete incoming message %+v", m)
			}
		}
		for _, s := range ev.Statuses {
			if s.ProviderMessageID == "" || !s.Status.Valid() {
				t.Fatalf("incomplete status %+v", s)
			}
		}
	})
}
