package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
)

const customerE164 = "+" + customerDigits

// clockNow is the fixed time of the send tests.
var clockNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return clockNow }

// recorded is one request the fake Graph API received.
type recorded struct {
	Method, Path, Auth, ContentType string
	Body                            []byte
}

// fakeGraph is an httptest server that records requests and answers with
// respond (by default an accepted send).
type fakeGraph struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFakeGraph(t *testing.T, respond http.HandlerFunc) *fakeGraph {
	t.Helper()
	if respond == nil {
		respond = accepted("wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA")
	}
	f := &fakeGraph{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body})
		f.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeGraph) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// accepted answers as the Cloud API does for an accepted message.
func accepted(id string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"messaging_product":"whatsapp","contacts":[{"input":"`+customerDigits+`","wa_id":"`+customerDigits+`"}],"messages":[{"id":"`+id+`"}]}`)
	}
}

// answer replies with a status, a body and optional headers.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if strings.HasPrefix(body, "{") {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// graphErr is a Graph API error body.
func graphErr(code int, message, details string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": message, "type": "OAuthException", "code": code,
		"error_data": map[string]any{"messaging_product": "whatsapp", "details": details},
		"fbtrace_id": "AbCdEfGh123",
	}})
	return string(b)
}

func newTestProvider(f *fakeGraph) *Provider {
	return New(Options{HTTPClient: f.Client(), BaseURL: f.URL, Now: fixedClock})
}

// inWindow is a customer message an hour ago.
var inWindow = clockNow.Add(-time.Hour)

func TestSendRequestShapes(t *testing.T) {
	tests := []struct {
		name string
		msg  sb.OutboundMessage
		want string // JSON the API must receive
	}{
		{
			name: "text",
			msg:  sb.OutboundMessage{To: customerE164, Body: "Your order has shipped", LastInboundAt: inWindow},
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text",
				"text":{"body":"Your order has shipped","preview_url":false}}`,
		},
		{
			name: "text carries Switchboard's id for status webhooks",
			msg:  sb.OutboundMessage{ID: "msg_01J9ZQ4K7V", To: customerE164, Body: "Hi", LastInboundAt: inWindow},
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text",
				"biz_opaque_callback_data":"msg_01J9ZQ4K7V","text":{"body":"Hi","preview_url":false}}`,
		},
		{
			name: "image by link with the body as caption",
			msg: sb.OutboundMessage{To: customerE164, Body: "New TV!", LastInboundAt: inWindow,
				MediaURLs: []string{"https://cdn.example.com/img/tv.JPG?v=2"}},
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"image",
				"image":{"link":"https://cdn.example.com/img/tv.JPG?v=2","caption":"New TV!"}}`,
		},
		{
			name: "png without caption",
			msg:  sb.OutboundMessage{To: customerE164, LastInboundAt: inWindow, MediaURLs: []string{"https://cdn.example.com/a.png"}},
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"image",
				"image":{"link":"https://cdn.example.com/a.png"}}`,
		},
		{
			name: "document by link with file name",
			msg: sb.OutboundMessage{To: customerE164, Body: "Your invoice", LastInboundAt: inWindow,
				MediaURLs: []string{"https://cdn.example.com/files/invoice-42.pdf"}},
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"document",
				"document":{"link":"https://cdn.example.com/files/invoice-42.pdf","caption":"Your invoice","filename":"invoice-42.pdf"}}`,
		},
		{
			name: "document without a file name",
			msg:  sb.OutboundMessage{To: customerE164, LastInboundAt: inWindow, MediaURLs: []string{"https://cdn.example.com/download"}},
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"document",
				"document":{"link":"https://cdn.example.com/download"}}`,
		},
		{
			name: "template with language and body parameters",
			msg: sb.OutboundMessage{To: customerE164, Body: "ignored", Template: "order_update", TemplateLang: "es_MX",
				TemplateParams: []string{"Ana", "#4521"}},
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"template",
				"template":{"name":"order_update","language":{"code":"es_MX"},"components":[{"type":"body","parameters":[
				{"type":"text","text":"Ana"},{"type":"text","text":"#4521"}]}]}}`,
		},
		{
			name: "template without parameters defaults to en_US",
			msg:  sb.OutboundMessage{To: customerE164, Template: "hello_world"},
			want: `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"template",
				"template":{"name":"hello_world","language":{"code":"en_US"}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, accepted("wamid.OK1"))
			res, err := newTestProvider(f).Send(context.Background(), testGateway(), &tt.msg)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if want := (&sb.SendResult{ProviderMessageID: "wamid.OK1", Status: sb.StatusQueued}); !reflect.DeepEqual(res, want) {
				t.Errorf("result = %+v, want %+v", res, want)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("the API got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != "/v21.0/"+testPhoneID+"/messages" {
				t.Errorf("request = %s %s, want POST /v21.0/%s/messages", r.Method, r.Path, testPhoneID)
			}
			if r.Auth != "Bearer "+testToken {
				t.Errorf("Authorization = %q, want the gateway's bearer token", r.Auth)
			}
			if r.ContentType != "application/json" {
				t.Errorf("Content-Type = %q", r.ContentType)
			}
			var got, want any
			if err := json.Unmarshal(r.Body, &got); err != nil {
				t.Fatalf("request body is not JSON: %v", err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatalf("bad test JSON: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("request body\n got: %s\nwant: %s", r.Body, tt.want)
			}
		})
	}
}

func TestSendBaseURL(t *testing.T) {
	f := newFakeGraph(t, nil)
	gw := testGateway()
	gw.Config[KeyAPIBaseURL] = f.URL + "/graph/"
	// The provider-wide base points nowhere: the gateway's setting must win.
	p := New(Options{HTTPClient: f.Client(), BaseURL: "http://127.0.0.1:1", Now: fixedClock})
	if _, err := p.Send(context.Background(), gw, &sb.OutboundMessage{To: customerE164, Body: "hi", LastInboundAt: inWindow}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Path != "/graph/v21.0/"+testPhoneID+"/messages" {
		t.Fatalf("requests = %+v, want one to /graph/v21.0/%s/messages", reqs, testPhoneID)
	}

	if New(Options{}).baseURL != DefaultBaseURL {
		t.Errorf("default base URL = %q, want %q", New(Options{}).baseURL, DefaultBaseURL)
	}
}

func TestSendAPIErrors(t *testing.T) {
	tests := []struct {
		name       string
		respond    http.HandlerFunc
		kind       sb.SendErrorKind
		code       string
		debugHas   string
		retryAfter time.Duration
	}{
		{"130429 throughput limit", answer(400, graphErr(130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached."), "Retry-After", "30"),
			sb.SendThrottled, "130429", "WhatsApp 130429: throughput rate limit reached", 30 * time.Second},
		{"131056 pair rate limit", answer(400, graphErr(131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit", "")),
			sb.SendThrottled, "131056", "WhatsApp 131056:", 0},
		{"80007 account rate limit", answer(400, graphErr(80007, "(#80007) Rate limit issues", "")),
			sb.SendThrottled, "80007", "WhatsApp 80007:", 0},
		{"4 app call limit", answer(400, graphErr(4, "(#4) Application request limit reached", "")),
			sb.SendThrottled, "4", "WhatsApp 4:", 0},
		{"HTTP 429 without a Graph error, Retry-After as a date", answer(429, "Too Many Requests", "Retry-After", clockNow.Add(90*time.Second).Format(http.TimeFormat)),
			sb.SendThrottled, "", "HTTP 429", 90 * time.Second},
		{"190 expired token", answer(401, graphErr(190, "Error validating access token: Session has expired", "")),
			sb.SendAuth, "190", "WhatsApp 190: access token expired or invalid", 0},
		{"HTTP 401 with another code", answer(401, graphErr(102, "Session key invalid", "")),
			sb.SendAuth, "102", "WhatsApp 102:", 0},
		{"HTTP 401 without a Graph error", answer(401, "unauthorized"),
			sb.SendAuth, "", "HTTP 401", 0},
		{"10 permission denied", answer(403, graphErr(10, "(#10) Application does not have permission for this action", "")),
			sb.SendAuth, "10", "WhatsApp 10: permission denied", 0},
		{"200 API permission", answer(403, graphErr(200, "(#200) Permissions error", "")),
			sb.SendAuth, "200", "WhatsApp 200: API permission missing", 0},
		{"131026 undeliverable", answer(400, graphErr(131026, "Message Undeliverable.", "")),
			sb.SendInvalidNumber, "131026", "WhatsApp 131026: message undeliverable", 0},
		{"131021 recipient is the sender", answer(400, graphErr(131021, "Recipient cannot be sender.", "")),
			sb.SendInvalidNumber, "131021", "WhatsApp 131021: recipient cannot be the sender", 0},
		{"100 invalid 'to'", answer(400, graphErr(100, "(#100) Invalid parameter", "Invalid parameter 'to': "+customerDigits+" is not a valid phone number")),
			sb.SendInvalidNumber, "100", "WhatsApp 100: invalid recipient phone number: Invalid parameter 'to': +1********34 is not a valid phone number", 0},
		{"100 another parameter", answer(400, graphErr(100, "(#100) Invalid parameter", "Param text['body'] must be at most 4096 characters long.")),
			sb.SendPermanent, "100", "WhatsApp 100: invalid parameter: Param text['body']", 0},
		{"131047 re-engagement", answer(400, graphErr(131047, "Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number.")),
			sb.SendWindowClosed, "131047", "WhatsApp 131047: more than 24 hours since the customer's last message; send an approved template instead", 0},
		{"131050 stopped marketing messages", answer(400, graphErr(131050, "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business", "")),
			sb.SendOptedOut, "131050", "WhatsApp 131050: the recipient stopped marketing messages", 0},
		{"132001 missing template", answer(404, graphErr(132001, "(#132001) Template name does not exist in the translation", "template name (order_update) does not exist in es_MX")),
			sb.SendPermanent, "132001", "WhatsApp 132001: template does not exist in this language: template name (order_update) does not exist in es_MX", 0},
		{"unknown code on HTTP 400", answer(400, graphErr(135000, "(#135000) Generic user error", "")),
			sb.SendPermanent, "135000", "WhatsApp 135000: (#135000) Generic user error", 0},
		{"unknown code on HTTP 500", answer(500, graphErr(1, "An unknown error occurred", "")),
			sb.SendTransient, "1", "WhatsApp 1:", 0},
		{"131000 something went wrong", answer(500, graphErr(131000, "Something went wrong", "")),
			sb.SendTransient, "131000", "WhatsApp 131000:", 0},
		{"2 service unavailable", answer(503, graphErr(2, "Service temporarily unavailable", "")),
			sb.SendTransient, "2", "WhatsApp 2: API service temporarily unavailable", 0},
		{"HTML 502 from a proxy", answer(502, "<html>Bad Gateway</html>"),
			sb.SendTransient, "", "WhatsApp API answered HTTP 502", 0},
		{"accepted without a message id", answer(200, `{"messaging_product":"whatsapp","messages":[]}`),
			sb.SendPermanent, "", "returned no message id", 0},
		{"accepted with a body that is not JSON", answer(200, `ok`),
			sb.SendPermanent, "", "returned no message id", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, tt.respond)
			res, err := newTestProvider(f).Send(context.Background(), testGateway(),
				&sb.OutboundMessage{To: customerE164, Body: "hello", LastInboundAt: inWindow})
			var se *sb.SendError
			if res != nil || !errors.As(err, &se) {
				t.Fatalf("got %+v, %v; want a *SendError", res, err)
			}
			if se.Kind != tt.kind || se.Code != tt.code {
				t.Errorf("kind, code = %s, %q; want %s, %q", se.Kind, se.Code, tt.kind, tt.code)
			}
			if !strings.HasPrefix(se.Debug, tt.debugHas) && !strings.Contains(se.Debug, tt.debugHas) {
				t.Errorf("Debug = %q, want it to contain %q", se.Debug, tt.debugHas)
			}
			if se.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", se.RetryAfter, tt.retryAfter)
			}
			assertNoSecrets(t, se.Debug)
			assertNoSecrets(t, se.Error())
			if n := len(f.requests()); n != 1 {
				t.Errorf("the API got %d requests, want 1", n)
			}
		})
	}
}

// Meta's texts can be long; Debug stays readable and bounded.
func TestSendDebugIsBounded(t *testing.T) {
	long := strings.Repeat("très long détail ", 100)
	f := newFakeGraph(t, answer(400, graphErr(135000, "(#135000) Generic user error", long)))
	_, err := newTestProvider(f).Send(context.Background(), testGateway(), &sb.OutboundMessage{To: customerE164, Body: "hi", LastInboundAt: inWindow})
	var se *sb.SendError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	if n := utf8.RuneCountInString(se.Debug); n != maxDebugChars || !strings.HasSuffix(se.Debug, "…") || !utf8.ValidString(se.Debug) {
		t.Errorf("Debug has %d characters (%q…), want %d ending in …", n, se.Debug[:40], maxDebugChars)
	}
}

func TestSendTransportErrors(t *testing.T) {
	msg := sb.OutboundMessage{To: customerE164, Body: "hello", LastInboundAt: inWindow}
	tests := []struct {
		name string
		run  func(t *testing.T) error
	}{
		{"connection refused", func(t *testing.T) error {
			f := newFakeGraph(t, nil)
			p := newTestProvider(f)
			f.Close()
			_, err := p.Send(context.Background(), testGateway(), &msg)
			return err
		}},
		{"connection dropped mid-answer", func(t *testing.T) error {
			f := newFakeGraph(t, func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			})
			_, err := newTestProvider(f).Send(context.Background(), testGateway(), &msg)
			return err
		}},
		{"caller gives up while the API hangs", func(t *testing.T) error {
			arrived := make(chan struct{})
			f := newFakeGraph(t, func(w http.ResponseWriter, r *http.Request) {
				close(arrived)
				<-r.Context().Done()
			})
			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-arrived; cancel() }()
			_, err := newTestProvider(f).Send(ctx, testGateway(), &msg)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v does not keep context.Canceled as cause", err)
			}
			return err
		}},
		{"deadline already passed", func(t *testing.T) error {
			f := newFakeGraph(t, nil)
			ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
			defer cancel()
			_, err := newTestProvider(f).Send(ctx, testGateway(), &msg)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(t)
			var se *sb.SendError
			if !errors.As(err, &se) || se.Kind != sb.SendTransient || !se.Retryable() {
				t.Fatalf("error = %v, want a retryable transient *SendError", err)
			}
			assertNoSecrets(t, se.Error())
		})
	}
}

func TestSendWindow(t *testing.T) {
	tests := []struct {
		name     string
		last     time.Time
		template string
		open     bool
	}{
		{name: "never wrote", last: time.Time{}},
		{name: "25 hours ago", last: clockNow.Add(-25 * time.Hour)},
		{name: "24 hours and a second ago", last: clockNow.Add(-24*time.Hour - time.Second)},
		{name: "exactly 24 hours ago", last: clockNow.Add(-24 * time.Hour), open: true},
		{name: "23 hours 59 minutes ago", last: clockNow.Add(-23*time.Hour - 59*time.Minute), open: true},
		{name: "a minute ago", last: clockNow.Add(-time.Minute), open: true},
		{name: "slightly in the future (clock skew)", last: clockNow.Add(time.Second), open: true},
		{name: "template to someone who never wrote", template: "hello_world", open: true},
		{name: "template 30 days after the last message", last: clockNow.Add(-30 * 24 * time.Hour), template: "hello_world", open: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, nil)
			_, err := newTestProvider(f).Send(context.Background(), testGateway(),
				&sb.OutboundMessage{To: customerE164, Body: "Are you still interested?", Template: tt.template, LastInboundAt: tt.last})
			n := len(f.requests())
			if tt.open {
				if err != nil || n != 1 {
					t.Fatalf("err = %v, requests = %d; want the message sent", err, n)
				}
				return
			}
			want := &sb.SendError{Kind: sb.SendWindowClosed, Debug: DebugWindowClosed}
			var se *sb.SendError
			if !errors.As(err, &se) || !reflect.DeepEqual(se, want) {
				t.Fatalf("err = %#v, want %#v", err, want)
			}
			if se.Retryable() {
				t.Error("a closed window must not be retried")
			}
			if n != 0 {
				t.Errorf("the API got %d requests; a closed window must fail before calling it", n)
			}
		})
	}
}

// Sends that cannot succeed fail before any request.
func TestSendRejectsBeforeCalling(t *testing.T) {
	tests := []struct {
		name     string
		gateway  func(*sb.Gateway)
		msg      sb.OutboundMessage
		kind     sb.SendErrorKind
		debugHas string
	}{
		{name: "recipient not E.164", msg: sb.OutboundMessage{To: "call me maybe", Body: "x", LastInboundAt: inWindow},
			kind: sb.SendInvalidNumber, debugHas: "not an E.164"},
		{name: "recipient too short", msg: sb.OutboundMessage{To: "+12345", Body: "x", LastInboundAt: inWindow},
			kind: sb.SendInvalidNumber, debugHas: "not an E.164"},
		{name: "empty body", msg: sb.OutboundMessage{To: customerE164, Body: "  ", LastInboundAt: inWindow},
			kind: sb.SendPermanent, debugHas: "body is empty"},
		{name: "body too long", msg: sb.OutboundMessage{To: customerE164, Body: strings.Repeat("é", 4097), LastInboundAt: inWindow},
			kind: sb.SendPermanent, debugHas: "limited to 4096 characters, this one has 4097"},
		{name: "caption too long", msg: sb.OutboundMessage{To: customerE164, Body: strings.Repeat("a", 1025), MediaURLs: []string{"https://x.example/a.jpg"}, LastInboundAt: inWindow},
			kind: sb.SendPermanent, debugHas: "captions are limited to 1024"},
		{name: "media not http", msg: sb.OutboundMessage{To: customerE164, MediaURLs: []string{"ftp://x.example/a.jpg"}, LastInboundAt: inWindow},
			kind: sb.SendPermanent, debugHas: "absolute http or https URL"},
		{name: "two media attachments", msg: sb.OutboundMessage{To: customerE164, MediaURLs: []string{"https://x.example/a.jpg", "https://x.example/b.jpg"}, LastInboundAt: inWindow},
			kind: sb.SendPermanent, debugHas: "WhatsApp sends one media attachment per message; this message has 2 media URLs"},
		{name: "template with media", msg: sb.OutboundMessage{To: customerE164, Template: "order_update", MediaURLs: []string{"https://x.example/a.jpg"}},
			kind: sb.SendPermanent, debugHas: "template messages are sent without media_urls"},
		{name: "no access token", gateway: func(g *sb.Gateway) { delete(g.Config, KeyAccessToken) },
			msg: sb.OutboundMessage{To: customerE164, Body: "x", LastInboundAt: inWindow}, kind: sb.SendAuth, debugHas: "no access_token"},
		{name: "no phone number id", gateway: func(g *sb.Gateway) { g.Config[KeyPhoneNumberID] = "" },
			msg: sb.OutboundMessage{To: customerE164, Body: "x", LastInboundAt: inWindow}, kind: sb.SendAuth, debugHas: "phone_number_id"},
		{name: "bad api_base_url", gateway: func(g *sb.Gateway) { g.Config[KeyAPIBaseURL] = "graph.facebook.com" },
			msg: sb.OutboundMessage{To: customerE164, Body: "x", LastInboundAt: inWindow}, kind: sb.SendAuth, debugHas: "api_base_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, nil)
			gw := testGateway()
			if tt.gateway != nil {
				tt.gateway(gw)
			}
			_, err := newTestProvider(f).Send(context.Background(), gw, &tt.msg)
			var se *sb.SendError
			if !errors.As(err, &se) || se.Kind != tt.kind || !strings.Contains(se.Debug, tt.debugHas) {
				t.Fatalf("err = %v; want %s with %q", err, tt.kind, tt.debugHas)
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("the API got %d requests, want none", n)
			}
			assertNoSecrets(t, se.Error())
		})
	}
}

func TestCheckContent(t *testing.T) {
	p := New(Options{})
	var _ sb.ContentChecker = p
	tests := []struct {
		name   string
		msg    sb.OutboundMessage
		errHas string
	}{
		{"text", sb.OutboundMessage{Body: "hi"}, ""},
		{"one media with caption", sb.OutboundMessage{Body: "flyer", MediaURLs: []string{"https://x.example/a.jpg"}}, ""},
		{"template", sb.OutboundMessage{Template: "order_update", TemplateParams: []string{"42"}}, ""},
		{"two media", sb.OutboundMessage{MediaURLs: []string{"https://x.example/a.jpg", "https://x.example/b.pdf"}}, "WhatsApp sends one media attachment per message; this message has 2 media URLs"},
		{"template with media", sb.OutboundMessage{Template: "order_update", MediaURLs: []string{"https://x.example/a.jpg"}}, "template messages are sent without media_urls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckContent(testGateway(), &tt.msg)
			if tt.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *sb.Error
			if !errors.As(err, &e) || e.Code != sb.EInvalid || e.Field != "media_urls" || !strings.Contains(e.Message, tt.errHas) {
				t.Fatalf("err = %#v, want EInvalid on media_urls with %q", err, tt.errHas)
			}
		})
	}
}

func TestProviderIdentity(t *testing.T) {
	var _ sb.Provider = (*Provider)(nil)
	p := New(Options{})
	if p.Name() != sb.ProviderWhatsApp {
		t.Errorf("Name() = %q", p.Name())
	}
	type flags struct{ secret, required bool }
	want := map[string]flags{
		KeyPhoneNumberID: {false, true},
		KeyAccessToken:   {true, true},
		KeyAppSecret:     {true, true},
		KeyVerifyToken:   {true, true},
		KeyAPIBaseURL:    {false, false},
	}
	got := map[string]flags{}
	for _, f := range p.ConfigFields() {
		if f.Label == "" || f.Help == "" {
			t.Errorf("field %s lacks a label or help", f.Key)
		}
		got[f.Key] = flags{f.Secret, f.Required}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ConfigFields = %+v, want %+v", got, want)
	}
}

func TestValidateConfig(t *testing.T) {
	tests := []struct {
		name   string
		change func(map[string]string)
		field  string // "" means valid
	}{
		{name: "complete", change: func(map[string]string) {}},
		{name: "with api_base_url", change: func(c map[string]string) { c[KeyAPIBaseURL] = "https://graph.example.org/prefix" }},
		{name: "phone_number_id missing", change: func(c map[string]string) { delete(c, KeyPhoneNumberID) }, field: KeyPhoneNumberID},
		{name: "phone_number_id not digits", change: func(c map[string]string) { c[KeyPhoneNumberID] = "+15550783881" }, field: KeyPhoneNumberID},
		{name: "access_token missing", change: func(c map[string]string) { c[KeyAccessToken] = " " }, field: KeyAccessToken},
		{name: "access_token with a newline", change: func(c map[string]string) { c[KeyAccessToken] = "abc\nX-Evil: 1" }, field: KeyAccessToken},
		{name: "app_secret missing", change: func(c map[string]string) { delete(c, KeyAppSecret) }, field: KeyAppSecret},
		{name: "verify_token missing", change: func(c map[string]string) { delete(c, KeyVerifyToken) }, field: KeyVerifyToken},
		{name: "api_base_url relative", change: func(c map[string]string) { c[KeyAPIBaseURL] = "graph.facebook.com" }, field: KeyAPIBaseURL},
		{name: "api_base_url with a query", change: func(c map[string]string) { c[KeyAPIBaseURL] = "https://graph.facebook.com/?x=1" }, field: KeyAPIBaseURL},
		{name: "api_base_url not http", change: func(c map[string]string) { c[KeyAPIBaseURL] = "ftp://graph.facebook.com" }, field: KeyAPIBaseURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := testGateway()
			tt.change(gw.Config)
			err := New(Options{}).ValidateConfig(gw)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("ValidateConfig: %v", err)
				}
				return
			}
			var e *sb.Error
			if !errors.As(err, &e) || e.Code != sb.EInvalid || e.Field != tt.field || !strings.Contains(e.Message, tt.field) {
				t.Fatalf("err = %#v; want an invalid error naming %s", err, tt.field)
			}
			assertNoSecrets(t, err.Error())
		})
	}
	if err := New(Options{}).ValidateConfig(nil); !sb.IsCode(err, sb.EInvalid) {
		t.Errorf("nil gateway: %v", err)
	}
}
