package twilio

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider"
	"github.com/switchboard/switchboard/provider/twilio/twiliotest"
)

const (
	testSID    = "AC0123456789abcdef0123456789abcdef"
	testToken  = "f3c1d2e4a5b6978877665544332211aa"
	publicBase = "https://sb.example.com"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testGateway() *sb.Gateway {
	return &sb.Gateway{ID: "gw1", Provider: sb.ProviderTwilio, Number: "+14155550100",
		Config: map[string]string{ConfigAccountSID: testSID, ConfigAuthToken: testToken}}
}

func testProvider(opts Options) *Provider {
	p := New(opts)
	p.now = func() time.Time { return fixedNow }
	return p
}

// TestSignatureVectors checks Signature against worked examples published by
// Twilio: the example of the webhook security documentation and a signed SMS
// request from Twilio's own library tests.
func TestSignatureVectors(t *testing.T) {
	tests := []struct {
		name, token, url string
		form             url.Values
		want             string
	}{
		{
			name:  "security documentation example",
			token: "12345",
			url:   "https://mycompany.com/myapp.php?foo=1&bar=2",
			form: url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675310"}, "Digits": {"1234"},
				"From": {"+14158675310"}, "To": {"+18005551212"}},
			want: "GvWf1cFY/Q7PnoempGyD5oXAezc=",
		},
		{
			name:  "signed SMS request",
			token: "2bd9e9638872de601313dc77410d3b23",
			url:   "http://twiliotests.heroku.com/validate/sms",
			form: url.Values{"ToState": {"CA"}, "FromState": {"CA"}, "AccountSid": {"ACba8bc05eacf94afdae398e642c9cc32d"},
				"SmsMessageSid": {"SM2003cbd5e6a3701999aa3e5f20ff2787"}, "Body": {"Orly"}, "From": {"+14159354345"},
				"FromCity": {"SAN FRANCISCO"}, "SmsStatus": {"received"}, "FromZip": {"94107"}, "FromCountry": {"US"},
				"To": {"+14158141819"}, "ToCity": {"SAN FRANCISCO"}, "ToZip": {"94105"}, "ToCountry": {"US"},
				"ApiVersion": {"2010-04-01"}, "SmsSid": {"SM2003cbd5e6a3701999aa3e5f20ff2787"}},
			want: "mxeiv65lEe0b8L6LdVw2jgJi8yw=",
		},
		{
			name:  "no POST parameters signs the URL alone",
			token: "12345",
			url:   "https://mycompany.com/myapp.php?foo=1&bar=2",
			form:  url.Values{},
			// HMAC-SHA1 of the URL alone, computed with a separate implementation.
			want: "zYQTYrRWXE7LtzbG4PfP7/bkkGo=",
		},
		{
			name:  "repeated parameter values are sorted",
			token: "12345",
			url:   "https://mycompany.com/myapp.php",
			form:  url.Values{"b": {"2", "1"}, "a": {"x"}},
			want:  Signature("12345", "https://mycompany.com/myapp.php", url.Values{"a": {"x"}, "b": {"1", "2"}}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Signature(tt.token, tt.url, tt.form); got != tt.want {
				t.Errorf("Signature = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSignatureDocExampleThroughHTTP feeds the documentation example through
// ReadWebhook and the signature check, exactly as the HTTP server will.
func TestSignatureDocExampleThroughHTTP(t *testing.T) {
	form := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675310"}, "Digits": {"1234"},
		"From": {"+14158675310"}, "To": {"+18005551212"}}
	r := httptest.NewRequest(http.MethodPost, "/myapp.php?foo=1&bar=2", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(SignatureHeader, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
	base, _ := url.Parse("https://mycompany.com")
	req, err := provider.ReadWebhook(r, base, ActionIncoming)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyRequest("12345", req); err != nil {
		t.Errorf("documented signature rejected: %v", err)
	}
	if err := verifyRequest("54321", req); !sb.IsCode(err, sb.EForbidden) {
		t.Errorf("wrong token: got %v, want forbidden", err)
	}
}

// incomingSMS, incomingMMS and statusCallback are Twilio's documented
// payloads (twiliotest) for the test account.
func incomingSMS() url.Values { return twiliotest.IncomingSMS(testSID) }

func incomingMMS() url.Values { return twiliotest.IncomingMMS(testSID) }

func statusCallback(status, errorCode string) url.Values {
	return twiliotest.StatusCallback(testSID, "SM1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c", status, errorCode)
}

func without(f url.Values, keys ...string) url.Values {
	for _, k := range keys {
		f.Del(k)
	}
	return f
}

func with(f url.Values, k, v string) url.Values {
	f.Set(k, v)
	return f
}

type sigMode int

const (
	sigValid sigMode = iota
	sigMissing
	sigWrongToken
	sigTampered
	sigWithPort
)

type webhookCase struct {
	name        string
	method      string // default POST
	action      string
	query       string // path suffix, e.g. "?m=msg1"
	form        url.Values
	contentType string // default form
	rawBody     string // replaces the encoded form when set
	sig         sigMode
	wantCode    string
	wantIn      []sb.InboundMessage
	wantStatus  []sb.StatusUpdate
	wantResp    sb.Response
}

// buildWebhook makes the HTTP request Twilio would make and turns it into a
// WebhookRequest the way the HTTP server does.
func buildWebhook(t testing.TB, c webhookCase) *sb.WebhookRequest {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	body := c.rawBody
	if body == "" && c.form != nil {
		body = c.form.Encode()
	}
	path := "/webhooks/twilio/gw1/" + c.action + c.query
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	ct := c.contentType
	if ct == "" {
		ct = "application/x-www-form-urlencoded"
	}
	r.Header.Set("Content-Type", ct)
	signed := publicBase + path
	form := c.form
	if ct != "application/x-www-form-urlencoded" {
		form = nil
	}
	switch c.sig {
	case sigValid:
		r.Header.Set(SignatureHeader, Signature(testToken, signed, form))
	case sigWrongToken:
		r.Header.Set(SignatureHeader, Signature("another-token", signed, form))
	case sigTampered:
		tampered := url.Values{}
		for k, v := range form {
			tampered[k] = v
		}
		tampered.Set("Body", "tampered")
		r.Header.Set(SignatureHeader, Signature(testToken, signed, tampered))
	case sigWithPort:
		r.Header.Set(SignatureHeader, Signature(testToken, "https://sb.example.com:443"+path, form))
	}
	base, _ := url.Parse(publicBase)
	req, err := provider.ReadWebhook(r, base, c.action)
	if err != nil {
		t.Fatalf("ReadWebhook: %v", err)
	}
	return req
}

var twimlResponse = sb.Response{StatusCode: 200, ContentType: "text/xml", Body: []byte(emptyTwiML)}

func TestHandleWebhook(t *testing.T) {
	smsIn := sb.InboundMessage{ProviderMessageID: "SM5f6e0a3c2b1d4e8f9a7b6c5d4e3f2a1b", From: "+14155559876", To: "+14155550100",
		Body: "Is the 7pm table still free?", ReceivedAt: fixedNow}
	mmsSID := "MM9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
	mmsIn := sb.InboundMessage{ProviderMessageID: mmsSID, From: "+14155559876", To: "+14155550100", ReceivedAt: fixedNow,
		MediaURLs: []string{
			"https://api.twilio.com/2010-04-01/Accounts/" + testSID + "/Messages/" + mmsSID + "/Media/ME0000000000000000000000000000000a",
			"https://api.twilio.com/2010-04-01/Accounts/" + testSID + "/Messages/" + mmsSID + "/Media/ME0000000000000000000000000000000b",
		}}
	statusUp := func(st sb.Status, code, debug string, optedOut bool) []sb.StatusUpdate {
		return []sb.StatusUpdate{{MessageID: "msg-42", ProviderMessageID: "SM1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c",
			Status: st, ErrorCode: code, Debug: debug, OptedOut: optedOut, At: fixedNow}}
	}

	cases := []webhookCase{
		{name: "incoming SMS", action: "incoming", form: incomingSMS(), wantIn: []sb.InboundMessage{smsIn}, wantResp: twimlResponse},
		{name: "incoming MMS with two media", action: "incoming", form: incomingMMS(), wantIn: []sb.InboundMessage{mmsIn}, wantResp: twimlResponse},
		{name: "incoming without NumMedia", action: "incoming", form: without(incomingSMS(), "NumMedia"), wantIn: []sb.InboundMessage{smsIn}, wantResp: twimlResponse},
		{name: "signature over URL with default port", action: "incoming", form: incomingSMS(), sig: sigWithPort, wantIn: []sb.InboundMessage{smsIn}, wantResp: twimlResponse},
		{name: "missing signature", action: "incoming", form: incomingSMS(), sig: sigMissing, wantCode: sb.EForbidden},
		{name: "signature with another token", action: "incoming", form: incomingSMS(), sig: sigWrongToken, wantCode: sb.EForbidden},
		{name: "signature over other parameters", action: "incoming", form: incomingSMS(), sig: sigTampered, wantCode: sb.EForbidden},
		{name: "status missing signature", action: "status", query: "?m=msg-42", form: statusCallback("delivered", ""), sig: sigMissing, wantCode: sb.EForbidden},
		{name: "incoming missing MessageSid", action: "incoming", form: without(incomingSMS(), "MessageSid"), wantCode: sb.EInvalid},
		{name: "incoming MessageSid with symbols", action: "incoming", form: with(incomingSMS(), "MessageSid", "SM<script>"), wantCode: sb.EInvalid},
		{name: "incoming missing From", action: "incoming", form: without(incomingSMS(), "From"), wantCode: sb.EInvalid},
		{name: "incoming missing To", action: "incoming", form: without(incomingSMS(), "To"), wantCode: sb.EInvalid},
		{name: "NumMedia not a number", action: "incoming", form: with(incomingSMS(), "NumMedia", "two"), wantCode: sb.EInvalid},
		{name: "NumMedia too large", action: "incoming", form: with(incomingSMS(), "NumMedia", "11"), wantCode: sb.EInvalid},
		{name: "NumMedia without MediaUrl", action: "incoming", form: without(incomingMMS(), "MediaUrl1"), wantCode: sb.EInvalid},
		{name: "MediaUrl not absolute", action: "incoming", form: with(incomingMMS(), "MediaUrl0", "/relative"), wantCode: sb.EInvalid},
		{name: "GET instead of POST", method: http.MethodGet, action: "incoming", wantCode: sb.EInvalid},
		{name: "unknown action", action: "voice", form: incomingSMS(), wantCode: sb.ENotFound},
		{name: "long unknown action", action: strings.Repeat("x", 100), form: incomingSMS(), wantCode: sb.ENotFound},
		{name: "JSON body", action: "incoming", contentType: "application/json", rawBody: `{"MessageSid":"SM1"}`, wantCode: sb.EInvalid},
		{name: "empty body", action: "status", form: url.Values{}, wantCode: sb.EInvalid},
		{name: "status missing MessageSid", action: "status", form: without(statusCallback("sent", ""), "MessageSid"), wantCode: sb.EInvalid},
		{name: "status missing MessageStatus", action: "status", form: without(statusCallback("sent", ""), "MessageStatus"), wantCode: sb.EInvalid},
		{name: "status unknown MessageStatus", action: "status", form: statusCallback("exploded", ""), wantCode: sb.EInvalid},
		{name: "status ErrorCode not a number", action: "status", form: statusCallback("failed", "30x"), wantCode: sb.EInvalid},
		{name: "status without m parameter", action: "status", form: statusCallback("sent", ""),
			wantStatus: []sb.StatusUpdate{{ProviderMessageID: "SM1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c", Status: sb.StatusSent, At: fixedNow}}},
	}
	// Every MessageStatus Twilio documents.
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
		cases = append(cases, webhookCase{name: "status " + s.twilio, action: "status", query: "?m=msg-42",
			form: statusCallback(s.twilio, ""), wantStatus: statusUp(s.want, "", "", false)})
	}
	// Error codes of undelivered and failed messages.
	for _, e := range []struct {
		status, code, debug string
		optedOut            bool
	}{
		{"failed", "30001", "Twilio 30001: Queue overflow", false},
		{"failed", "30002", "Twilio 30002: Account suspended", false},
		{"undelivered", "30003", "Twilio 30003: Unreachable destination handset", false},
		{"undelivered", "30004", "Twilio 30004: Message blocked", false},
		{"undelivered", "30005", "Twilio 30005: Unknown destination handset", false},
		{"undelivered", "30006", "Twilio 30006: Landline or unreachable carrier", false},
		{"undelivered", "30007", "Twilio 30007: Message filtered (carrier violation)", false},
		{"undelivered", "30008", "Twilio 30008: Unknown error", false},
		{"undelivered", "30009", "Twilio 30009: Missing segment", false},
		{"failed", "30010", "Twilio 30010: Message price exceeds max price", false},
		{"failed", "21610", "Twilio 21610: recipient has unsubscribed (replied STOP)", true},
		{"undelivered", "39999", "Twilio error 39999", false},
	} {
		want := sb.StatusUndelivered
		if e.status == "failed" {
			want = sb.StatusFailed
		}
		cases = append(cases, webhookCase{name: "status " + e.status + " " + e.code, action: "status", query: "?m=msg-42",
			form: statusCallback(e.status, e.code), wantStatus: statusUp(want, e.code, e.debug, e.optedOut)})
	}
	cases = append(cases, webhookCase{name: "status ErrorCode 0 means none", action: "status", query: "?m=msg-42",
		form: statusCallback("delivered", "0"), wantStatus: statusUp(sb.StatusDelivered, "", "", false)})

	p := testProvider(Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := buildWebhook(t, c)
			ev, err := p.HandleWebhook(context.Background(), testGateway(), req)
			if c.wantCode != "" {
				if got := sb.ErrorCode(err); got != c.wantCode {
					t.Fatalf("error code = %q (%v), want %q", got, err, c.wantCode)
				}
				if ev != nil {
					t.Errorf("events = %+v, want nil on error", ev)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error leaks the auth token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("HandleWebhook: %v", err)
			}
			if !reflect.DeepEqual(ev.Incoming, c.wantIn) {
				t.Errorf("Incoming = %+v\nwant %+v", ev.Incoming, c.wantIn)
			}
			if !reflect.DeepEqual(ev.Statuses, c.wantStatus) {
				t.Errorf("Statuses = %+v\nwant %+v", ev.Statuses, c.wantStatus)
			}
			if !reflect.DeepEqual(ev.Response, c.wantResp) {
				t.Errorf("Response = %+v (%s), want %+v", ev.Response, ev.Response.Body, c.wantResp)
			}
		})
	}
}

func TestHandleWebhookNilRequest(t *testing.T) {
	if _, err := testProvider(Options{}).HandleWebhook(context.Background(), testGateway(), nil); !sb.IsCode(err, sb.EInvalid) {
		t.Fatalf("got %v, want invalid", err)
	}
}

func TestHandleWebhookGatewayWithoutToken(t *testing.T) {
	gw := testGateway()
	delete(gw.Config, ConfigAuthToken)
	req := buildWebhook(t, webhookCase{action: "incoming", form: incomingSMS()})
	_, err := testProvider(Options{}).HandleWebhook(context.Background(), gw, req)
	if !sb.IsCode(err, sb.EForbidden) {
		t.Fatalf("got %v, want forbidden", err)
	}
}

func TestSignedURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://a.example.com/x?m=1", "https://a.example.com/x?m=1|https://a.example.com:443/x?m=1"},
		{"https://a.example.com:443/x", "https://a.example.com:443/x|https://a.example.com/x"},
		{"http://a.example.com/x", "http://a.example.com/x|http://a.example.com:80/x"},
		{"https://a.example.com:8443/x", "https://a.example.com:8443/x"},
		{"https://[::1]:443/x", "https://[::1]:443/x|https://[::1]/x"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(signedURLs(u), "|"); got != tt.want {
			t.Errorf("signedURLs(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
