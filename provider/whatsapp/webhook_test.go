package whatsapp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider"
)

const (
	testPhoneID     = "106540352242922"
	testToken       = "EAAGtestTOKENsecret0123456789"
	testAppSecret   = "app-secret-for-tests"
	testVerifyToken = "verify-me-42"
	testNumber      = "+15550783881"
	customerDigits  = "16505551234"
)

func testGateway() *sb.Gateway {
	return &sb.Gateway{
		ID:       "gw_wa_1",
		Provider: sb.ProviderWhatsApp,
		Number:   testNumber,
		Config: map[string]string{
			KeyPhoneNumberID: testPhoneID,
			KeyAccessToken:   testToken,
			KeyAppSecret:     testAppSecret,
			KeyVerifyToken:   testVerifyToken,
		},
	}
}

var publicBase = &url.URL{Scheme: "https", Host: "sb.example.org"}

// sigMode says how a test request is signed.
type sigMode int

const (
	sigValid     sigMode = iota // signed with the gateway's app secret
	sigMissing                  // no X-Hub-Signature-256
	sigWrong                    // signed with another secret
	sigNoPrefix                 // the right hex without "sha256="
	sigNotHex                   // "sha256=" and garbage
	sigOtherBody                // a valid signature of another body
)

func sign(mode sigMode, body []byte) string {
	switch mode {
	case sigValid:
		return Sign(testAppSecret, body)
	case sigWrong:
		return Sign("some-other-secret", body)
	case sigNoPrefix:
		return strings.TrimPrefix(Sign(testAppSecret, body), "sha256=")
	case sigNotHex:
		return "sha256=not-hex-at-all"
	case sigOtherBody:
		return Sign(testAppSecret, append([]byte("x"), body...))
	}
	return ""
}

// webhook builds the request the HTTP server would hand the provider.
func webhook(t testing.TB, method, target string, body []byte, signature, action string) *sb.WebhookRequest {
	t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
	}
	if signature != "" {
		r.Header.Set(SignatureHeader, signature)
	}
	req, err := provider.ReadWebhook(r, publicBase, action)
	if err != nil {
		t.Fatalf("ReadWebhook: %v", err)
	}
	return req
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unix(s int64) time.Time { return time.Unix(s, 0).UTC() }

func TestHandleWebhookPost(t *testing.T) {
	const path = "/webhooks/whatsapp/gw_wa_1/incoming"
	tests := []struct {
		name    string
		file    string // fixture, or
		body    string // inline body
		sig     sigMode
		gateway func(*sb.Gateway)
		want    *sb.Events
		wantErr string // error code
		errHas  string // part of the error message
	}{
		{
			name: "text message",
			file: "text.json",
			want: &sb.Events{Incoming: []sb.InboundMessage{{
				ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
				From:              "+16505551234", To: testNumber,
				Body: "Does it come in another color?", ReceivedAt: unix(1749416383),
			}}},
		},
		{
			name: "image with caption",
			file: "image.json",
			want: &sb.Events{Incoming: []sb.InboundMessage{{
				ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUM0NjZDRjQ5QjY0RDZCNjk5OQA=",
				From:              "+16505551234", To: testNumber, Body: "New TV!",
				MediaURLs: []string{"whatsapp-media:1003383421387256"}, ReceivedAt: unix(1750090702),
			}}},
		},
		{
			name: "document without caption",
			file: "document.json",
			want: &sb.Events{Incoming: []sb.InboundMessage{{
				ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQkI0RDY2QjNBQjNBOTNEN0MA",
				From:              "+16505551234", To: testNumber,
				MediaURLs: []string{"whatsapp-media:1137395501409185"}, ReceivedAt: unix(1750090900),
			}}},
		},
		{
			name: "template quick-reply button",
			file: "button.json",
			want: &sb.Events{Incoming: []sb.InboundMessage{{
				ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
				From:              "+16505551234", To: testNumber, Body: "Stop promotions", ReceivedAt: unix(1750091045),
			}}},
		},
		{
			name: "interactive button and list replies",
			file: "interactive.json",
			want: &sb.Events{Incoming: []sb.InboundMessage{
				{
					ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTI3NDE2NkE3RDJFOUJFRUFBMgA=",
					From:              "+16505551234", To: testNumber, Body: "Cancel", ReceivedAt: unix(1750091211),
				},
				{
					ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQjZEQjg4NjU0QzBFMDE3OTk0NgA=",
					From:              "+16505551234", To: testNumber, Body: "Express Shipping", ReceivedAt: unix(1750091300),
				},
			}},
		},
		{
			name: "status sent",
			file: "status_sent.json",
			want: &sb.Events{Statuses: []sb.StatusUpdate{{
				MessageID: "msg_01J9ZQ4K7V", ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDNzVCNkIzMzMxNzcwRUE5ODYA",
				Status: sb.StatusSent, At: unix(1750263773),
			}}},
		},
		{
			name: "status delivered",
			file: "status_delivered.json",
			want: &sb.Events{Statuses: []sb.StatusUpdate{{
				MessageID: "msg_01J9ZQ4K7V", ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDNzVCNkIzMzMxNzcwRUE5ODYA",
				Status: sb.StatusDelivered, At: unix(1750263780),
			}}},
		},
		{
			name: "status read counts as delivered",
			file: "status_read.json",
			want: &sb.Events{Statuses: []sb.StatusUpdate{{
				MessageID: "msg_01J9ZQ4K7V", ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDNzVCNkIzMzMxNzcwRUE5ODYA",
				Status: sb.StatusDelivered, At: unix(1750263800),
			}}},
		},
		{
			name: "status failed with errors",
			file: "status_failed.json",
			want: &sb.Events{Statuses: []sb.StatusUpdate{{
				ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCRUVBNzk4RDYxNkI0NzcyMjAA",
				Status:            sb.StatusFailed, ErrorCode: "131026",
				Debug: "WhatsApp 131026: Message undeliverable: Message Undeliverable.", At: unix(1750263900),
			}}},
		},
		{
			name: "status failed because the user stopped marketing messages",
			file: "status_failed_optout.json",
			want: &sb.Events{Statuses: []sb.StatusUpdate{{
				ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RjhFMjY3MzY1NzQ5QjQwNzQA",
				Status:            sb.StatusFailed, ErrorCode: "131050", OptedOut: true,
				Debug: "WhatsApp 131050: Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business",
				At:    unix(1750264000),
			}}},
		},
		{
			name: "multiple entries: other numbers are named for routing, other fields and untracked statuses are skipped",
			file: "multi_entry.json",
			want: &sb.Events{
				OtherGateways: []string{"999999999999999"},
				Incoming: []sb.InboundMessage{{
					ProviderMessageID: "wamid.multi.in.1", From: "+16505551234", To: testNumber, Body: "STOP", ReceivedAt: unix(1750300000),
				}},
				Statuses: []sb.StatusUpdate{
					{ProviderMessageID: "wamid.multi.out.1", Status: sb.StatusDelivered, At: unix(1750300001)},
					{ProviderMessageID: "wamid.multi.out.2", Status: sb.StatusDelivered, At: unix(1750300003)},
				},
			},
		},
		{
			name:    "payload for another phone number of the app is named for routing, not parsed",
			file:    "text.json",
			gateway: func(g *sb.Gateway) { g.Config[KeyPhoneNumberID] = "111111111111111" },
			want:    &sb.Events{OtherGateways: []string{testPhoneID}},
		},
		{
			name: "failed status with the recipient number in Meta's text is masked",
			body: statusBody(`{"id":"wamid.x","status":"failed","timestamp":"1750264000","recipient_id":"16505551234",
				"errors":[{"code":131049,"title":"Not delivered","error_data":{"details":"No delivery to +16505551234 now"}}]}`),
			want: &sb.Events{Statuses: []sb.StatusUpdate{{
				ProviderMessageID: "wamid.x", Status: sb.StatusFailed, ErrorCode: "131049",
				Debug: "WhatsApp 131049: Not delivered: No delivery to +1********34 now", At: unix(1750264000),
			}}},
		},
		{
			name: "failed status without errors",
			body: statusBody(`{"id":"wamid.y","status":"failed","timestamp":1750264000}`),
			want: &sb.Events{Statuses: []sb.StatusUpdate{{
				ProviderMessageID: "wamid.y", Status: sb.StatusFailed,
				Debug: "WhatsApp reported the message as failed", At: unix(1750264000),
			}}},
		},
		{
			name: "millisecond timestamps are read",
			body: statusBody(`{"id":"wamid.z","status":"sent","timestamp":"1750264000123"}`),
			want: &sb.Events{Statuses: []sb.StatusUpdate{{
				ProviderMessageID: "wamid.z", Status: sb.StatusSent, At: time.UnixMilli(1750264000123).UTC(),
			}}},
		},
		{
			name: "location, reaction and system notice",
			body: messagesBody(`{"from":"16505551234","id":"wamid.loc","timestamp":"1750300000","type":"location",
				"location":{"latitude":37.4833,"longitude":-122.148,"name":"Main office","address":"1 Hacker Way"}},
				{"from":"16505551234","id":"wamid.react","timestamp":"1750300001","type":"reaction","reaction":{"message_id":"wamid.out","emoji":"👍"}},
				{"from":"16505551234","id":"wamid.unreact","timestamp":"1750300002","type":"reaction","reaction":{"message_id":"wamid.out"}},
				{"from":"16505551234","id":"wamid.sys","timestamp":"1750300003","type":"system","system":{"body":"User changed number"}}`),
			want: &sb.Events{Incoming: []sb.InboundMessage{
				{ProviderMessageID: "wamid.loc", From: "+16505551234", To: testNumber, Body: "37.4833,-122.148 Main office 1 Hacker Way", ReceivedAt: unix(1750300000)},
				{ProviderMessageID: "wamid.react", From: "+16505551234", To: testNumber, Body: "👍", ReceivedAt: unix(1750300001)},
			}},
		},
		{
			name: "audio, video and sticker media ids",
			body: messagesBody(`{"from":"16505551234","id":"wamid.au","timestamp":"1750300000","type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","id":"1234567890","voice":true}},
				{"from":"16505551234","id":"wamid.vi","timestamp":"1750300001","type":"video","video":{"caption":"Look","mime_type":"video/mp4","id":"2345678901"}},
				{"from":"16505551234","id":"wamid.st","timestamp":"1750300002","type":"sticker","sticker":{"mime_type":"image/webp","id":"3456789012","animated":false}}`),
			want: &sb.Events{Incoming: []sb.InboundMessage{
				{ProviderMessageID: "wamid.au", From: "+16505551234", To: testNumber, MediaURLs: []string{"whatsapp-media:1234567890"}, ReceivedAt: unix(1750300000)},
				{ProviderMessageID: "wamid.vi", From: "+16505551234", To: testNumber, Body: "Look", MediaURLs: []string{"whatsapp-media:2345678901"}, ReceivedAt: unix(1750300001)},
				{ProviderMessageID: "wamid.st", From: "+16505551234", To: testNumber, MediaURLs: []string{"whatsapp-media:3456789012"}, ReceivedAt: unix(1750300002)},
			}},
		},
		{name: "signature missing", file: "text.json", sig: sigMissing, wantErr: sb.EForbidden, errHas: "missing"},
		{name: "signature from another secret", file: "text.json", sig: sigWrong, wantErr: sb.EForbidden, errHas: "does not match"},
		{name: "signature without sha256= prefix", file: "text.json", sig: sigNoPrefix, wantErr: sb.EForbidden, errHas: "sha256="},
		{name: "signature not hex", file: "text.json", sig: sigNotHex, wantErr: sb.EForbidden, errHas: "hex"},
		{name: "signature of another body", file: "text.json", sig: sigOtherBody, wantErr: sb.EForbidden, errHas: "does not match"},
		{
			name: "gateway without app secret refuses everything", file: "text.json",
			gateway: func(g *sb.Gateway) { delete(g.Config, KeyAppSecret) }, wantErr: sb.EForbidden, errHas: "app_secret",
		},
		{name: "malformed JSON", body: `{"object":"whatsapp_business_account","entry":[`, wantErr: sb.EInvalid, errHas: "not valid JSON"},
		{name: "empty body", body: ``, wantErr: sb.EInvalid, errHas: "not valid JSON"},
		{name: "JSON array", body: `[]`, wantErr: sb.EInvalid, errHas: "must not be a JSON array"},
		{name: "object missing", body: `{"entry":[]}`, wantErr: sb.EInvalid, errHas: "object is missing"},
		{name: "other object", body: `{"object":"page","entry":[]}`, wantErr: sb.EInvalid, errHas: `"page"`},
		{name: "entry missing", body: `{"object":"whatsapp_business_account"}`, wantErr: sb.EInvalid, errHas: "entry is missing"},
		{name: "entry not a list", body: `{"object":"whatsapp_business_account","entry":{}}`, wantErr: sb.EInvalid, errHas: "entry"},
		{name: "field missing", body: `{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{}}]}]}`, wantErr: sb.EInvalid, errHas: "entry[0].changes[0].field is missing"},
		{name: "value missing", body: `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages"}]}]}`, wantErr: sb.EInvalid, errHas: "value is missing"},
		{name: "metadata missing", body: `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[]}}]}]}`, wantErr: sb.EInvalid, errHas: "metadata.phone_number_id is missing"},
		{name: "from missing", body: messagesBody(`{"id":"wamid.a","timestamp":"1750300000","type":"text","text":{"body":"hi"}}`), wantErr: sb.EInvalid, errHas: "messages[0]: from is missing"},
		{name: "from not a number", body: messagesBody(`{"from":"+16505551234","id":"wamid.a","timestamp":"1750300000","type":"text","text":{"body":"hi"}}`), wantErr: sb.EInvalid, errHas: "from is not a phone number"},
		{name: "from of the wrong JSON type", body: messagesBody(`{"from":16505551234,"id":"wamid.a","timestamp":"1750300000","type":"text"}`), wantErr: sb.EInvalid, errHas: "messages.from must not be a JSON number"},
		{name: "message id missing", body: messagesBody(`{"from":"16505551234","timestamp":"1750300000","type":"text","text":{"body":"hi"}}`), wantErr: sb.EInvalid, errHas: "messages[0]: id is missing"},
		{name: "message timestamp missing", body: messagesBody(`{"from":"16505551234","id":"wamid.a","type":"text","text":{"body":"hi"}}`), wantErr: sb.EInvalid, errHas: "timestamp is missing"},
		{name: "message timestamp not a number", body: messagesBody(`{"from":"16505551234","id":"wamid.a","timestamp":"yesterday","type":"text"}`), wantErr: sb.EInvalid, errHas: "timestamp is not a Unix time"},
		{name: "status id missing", body: statusBody(`{"status":"sent","timestamp":"1750264000"}`), wantErr: sb.EInvalid, errHas: "statuses[0]: id is missing"},
		{name: "status missing", body: statusBody(`{"id":"wamid.a","timestamp":"1750264000"}`), wantErr: sb.EInvalid, errHas: "statuses[0]: status is missing"},
		{name: "status error code not a number", body: statusBody(`{"id":"wamid.a","status":"failed","timestamp":"1750264000","errors":[{"code":"x"}]}`), wantErr: sb.EInvalid, errHas: "statuses.errors.code must not be a JSON string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = fixture(t, tt.file)
			}
			gw := testGateway()
			if tt.gateway != nil {
				tt.gateway(gw)
			}
			req := webhook(t, http.MethodPost, path, body, sign(tt.sig, body), "incoming")
			got, err := New(Options{}).HandleWebhook(context.Background(), gw, req)
			if tt.wantErr != "" {
				if got != nil || !sb.IsCode(err, tt.wantErr) {
					t.Fatalf("got events %+v, error %v; want a %s error", got, err, tt.wantErr)
				}
				if msg := sb.ErrorMessage(err); !strings.Contains(msg, tt.errHas) {
					t.Errorf("error message %q does not name the problem (want %q in it)", msg, tt.errHas)
				}
				assertNoSecrets(t, err.Error())
				return
			}
			if err != nil {
				t.Fatalf("HandleWebhook: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events differ\n got: %s\nwant: %s", dump(got), dump(tt.want))
			}
			if got.Response.StatusCode != 0 || len(got.Response.Body) != 0 {
				t.Errorf("POST response = %+v, want the zero value (200, empty body)", got.Response)
			}
		})
	}
}

// Meta sends messages and statuses to one callback URL, so the action
// must not change the outcome.
func TestHandleWebhookActionsAreEquivalent(t *testing.T) {
	p := New(Options{})
	for _, file := range []string{"text.json", "status_failed.json", "multi_entry.json"} {
		body := fixture(t, file)
		var results []*sb.Events
		for _, action := range []string{"incoming", "status"} {
			req := webhook(t, http.MethodPost, "/webhooks/whatsapp/gw_wa_1/"+action, body, Sign(testAppSecret, body), action)
			ev, err := p.HandleWebhook(context.Background(), testGateway(), req)
			if err != nil {
				t.Fatalf("%s via %s: %v", file, action, err)
			}
			results = append(results, ev)
		}
		if !reflect.DeepEqual(results[0], results[1]) {
			t.Errorf("%s: incoming gave %s, status gave %s", file, dump(results[0]), dump(results[1]))
		}
		if len(results[0].Incoming)+len(results[0].Statuses) == 0 {
			t.Errorf("%s gave no events", file)
		}
	}
}

func TestHandleWebhookUnknownAction(t *testing.T) {
	body := fixture(t, "text.json")
	for _, action := range []string{"voice", "", strings.Repeat("x", 100)} {
		req := webhook(t, http.MethodPost, "/webhooks/whatsapp/gw_wa_1/"+action, body, Sign(testAppSecret, body), action)
		if _, err := New(Options{}).HandleWebhook(context.Background(), testGateway(), req); !sb.IsCode(err, sb.ENotFound) {
			t.Errorf("action %q: %v, want not_found", action, err)
		}
	}
}

func TestHandleWebhookHandshake(t *testing.T) {
	q := func(mode, token, challenge string) string {
		v := url.Values{}
		if mode != "" {
			v.Set("hub.mode", mode)
		}
		if token != "" {
			v.Set("hub.verify_token", token)
		}
		if challenge != "" {
			v.Set("hub.challenge", challenge)
		}
		return "?" + v.Encode()
	}
	tests := []struct {
		name     string
		action   string
		query    string
		method   string
		gateway  func(*sb.Gateway)
		wantBody string
		wantErr  string
		errHas   string
	}{
		{name: "good token", action: "incoming", query: q("subscribe", testVerifyToken, "1158201444"), wantBody: "1158201444"},
		{name: "good token on the status URL", action: "status", query: q("subscribe", testVerifyToken, "987654321"), wantBody: "987654321"},
		{name: "wrong token", action: "incoming", query: q("subscribe", "guess", "1158201444"), wantErr: sb.EForbidden, errHas: "verify_token"},
		{name: "token differing only in case", action: "incoming", query: q("subscribe", strings.ToUpper(testVerifyToken), "1"), wantErr: sb.EForbidden, errHas: "verify_token"},
		{name: "missing token", action: "incoming", query: q("subscribe", "", "1158201444"), wantErr: sb.EForbidden, errHas: "verify_token"},
		{
			name: "gateway without verify token", action: "incoming", query: q("subscribe", "", "1"),
			gateway: func(g *sb.Gateway) { delete(g.Config, KeyVerifyToken) }, wantErr: sb.EForbidden, errHas: "verify_token",
		},
		{name: "wrong mode", action: "incoming", query: q("unsubscribe", testVerifyToken, "1"), wantErr: sb.EInvalid, errHas: "hub.mode"},
		{name: "no mode", action: "incoming", query: q("", testVerifyToken, "1"), wantErr: sb.EInvalid, errHas: "hub.mode"},
		{name: "missing challenge", action: "incoming", query: q("subscribe", testVerifyToken, ""), wantErr: sb.EInvalid, errHas: "hub.challenge"},
		{name: "oversized challenge", action: "incoming", query: q("subscribe", testVerifyToken, strings.Repeat("9", 300)), wantErr: sb.EInvalid, errHas: "hub.challenge"},
		{name: "unsupported method", method: http.MethodPut, action: "incoming", query: q("subscribe", testVerifyToken, "1"), wantErr: sb.EInvalid, errHas: "PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := testGateway()
			if tt.gateway != nil {
				tt.gateway(gw)
			}
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := webhook(t, method, "/webhooks/whatsapp/gw_wa_1/"+tt.action+tt.query, nil, "", tt.action)
			got, err := New(Options{}).HandleWebhook(context.Background(), gw, req)
			if tt.wantErr != "" {
				if got != nil || !sb.IsCode(err, tt.wantErr) {
					t.Fatalf("got %+v, %v; want a %s error", got, err, tt.wantErr)
				}
				if msg := sb.ErrorMessage(err); !strings.Contains(msg, tt.errHas) {
					t.Errorf("error %q does not mention %q", msg, tt.errHas)
				}
				assertNoSecrets(t, err.Error())
				return
			}
			if err != nil {
				t.Fatalf("HandleWebhook: %v", err)
			}
			want := sb.Response{StatusCode: http.StatusOK, ContentType: "text/plain", Body: []byte(tt.wantBody)}
			if !reflect.DeepEqual(got.Response, want) || len(got.Incoming)+len(got.Statuses) != 0 {
				t.Errorf("got %s, want only the response %+v", dump(got), want)
			}
		})
	}
}

// messagesBody wraps message objects in a notification for the test number.
func messagesBody(messages string) string {
	return `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{
		"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"` + testPhoneID + `"},
		"messages":[` + messages + `]}}]}]}`
}

// statusBody wraps status objects in a notification for the test number.
func statusBody(statuses string) string {
	return `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{
		"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"` + testPhoneID + `"},
		"statuses":[` + statuses + `]}}]}]}`
}

// assertNoSecrets fails when s carries a gateway secret or the customer's
// readable number.
func assertNoSecrets(t testing.TB, s string) {
	t.Helper()
	for _, secret := range []string{testToken, testAppSecret, testVerifyToken, customerDigits} {
		if strings.Contains(s, secret) {
			t.Errorf("text leaks a secret or phone number: %q", s)
		}
	}
}

func dump(ev *sb.Events) string {
	if ev == nil {
		return "<nil>"
	}
	var b strings.Builder
	for _, m := range ev.Incoming {
		fmt.Fprintf(&b, "\n  in  %+v", m)
	}
	for _, s := range ev.Statuses {
		fmt.Fprintf(&b, "\n  st  %+v", s)
	}
	fmt.Fprintf(&b, "\n  resp %d %q %q", ev.Response.StatusCode, ev.Response.ContentType, ev.Response.Body)
	return b.String()
}
