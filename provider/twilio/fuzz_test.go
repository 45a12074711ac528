package twilio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider"
)

// FuzzHandleWebhook feeds arbitrary bodies, content types and signatures
// through ReadWebhook and HandleWebhook as the HTTP server does. Nothing may
// panic; every failure must carry a domain code, and every success must be
// well formed. With sign set, the body is signed correctly so the fuzzer
// reaches the parsers behind the signature check.
func FuzzHandleWebhook(f *testing.F) {
	f.Add([]byte(incomingSMS().Encode()), true, "", true, false)
	f.Add([]byte(incomingMMS().Encode()), true, "", true, false)
	f.Add([]byte(statusCallback("undelivered", "30003").Encode()), true, "", true, true)
	f.Add([]byte(statusCallback("failed", "21610").Encode()), true, "", true, true)
	f.Add([]byte(incomingSMS().Encode()), true, "GvWf1cFY/Q7PnoempGyD5oXAezc=", false, false)
	f.Add([]byte("MessageSid=SM1&NumMedia=3&MediaUrl0=%zz"), true, "", true, false)
	f.Add([]byte(`{"MessageSid":"SM1"}`), false, "x", false, true)
	f.Add([]byte{}, true, "", true, true)

	p := testProvider(Options{})
	base, _ := url.Parse(publicBase)
	f.Fuzz(func(t *testing.T, body []byte, formCT bool, signature string, sign bool, status bool) {
		action := ActionIncoming
		if status {
			action = ActionStatus
		}
		target := "/webhooks/twilio/gw1/" + action + "?m=msg-1"
		r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		if formCT {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r.Header.Set("Content-Type", "text/plain")
		}
		if sign {
			form := url.Values{}
			if formCT {
				if parsed, err := url.ParseQuery(string(body)); err == nil {
					form = parsed
				}
			}
			signature = Signature(testToken, publicBase+target, form)
		}
		if signature != "" {
			r.Header[SignatureHeader] = []string{signature}
		}
		req, err := provider.ReadWebhook(r, base, action)
		if err != nil {
			if c := sb.ErrorCode(err); c != sb.EInvalid && c != sb.ETooLarge {
				t.Fatalf("ReadWebhook error without a domain code: %v", err)
			}
			return
		}
		ev, err := p.HandleWebhook(context.Background(), testGateway(), req)
		if err != nil {
			switch sb.ErrorCode(err) {
			case sb.EInvalid, sb.EForbidden, sb.ENotFound:
			default:
				t.Fatalf("HandleWebhook error without a domain code: %v", err)
			}
			if ev != nil {
				t.Fatalf("events %+v returned with error %v", ev, err)
			}
			return
		}
		checkEvents(t, action, ev)
	})
}

// checkEvents fails unless ev is a well-formed answer to action.
func checkEvents(t *testing.T, action string, ev *sb.Events) {
	t.Helper()
	if ev == nil {
		t.Fatal("nil events without error")
	}
	switch action {
	case ActionIncoming:
		if len(ev.Incoming) != 1 || len(ev.Statuses) != 0 {
			t.Fatalf("incoming gave %d messages and %d statuses", len(ev.Incoming), len(ev.Statuses))
		}
		in := ev.Incoming[0]
		if in.ProviderMessageID == "" || in.From == "" || in.To == "" || in.ReceivedAt.IsZero() {
			t.Fatalf("incomplete message %+v", in)
		}
		if len(in.MediaURLs) > maxMedia {
			t.Fatalf("%d media URLs", len(in.MediaURLs))
		}
		for _, m := range in.MediaURLs {
			if u, err := url.Parse(m); err != nil || !u.IsAbs() || u.Host == "" {
				t.Fatalf("media URL %q is not absolute", m)
			}
		}
		if ev.Response.StatusCode != http.StatusOK || ev.Response.ContentType != "text/xml" || string(ev.Response.Body) != emptyTwiML {
			t.Fatalf("response %+v is not empty TwiML", ev.Response)
		}
	case ActionStatus:
		if len(ev.Statuses) != 1 || len(ev.Incoming) != 0 {
			t.Fatalf("status gave %d statuses and %d messages", len(ev.Statuses), len(ev.Incoming))
		}
		st := ev.Statuses[0]
		if st.ProviderMessageID == "" || !st.Status.Valid() || st.Status == sb.StatusReceived || st.Status == sb.StatusError {
			t.Fatalf("bad status update %+v", st)
		}
		if (st.ErrorCode == "") != (st.Debug == "") {
			t.Fatalf("ErrorCode %q and Debug %q must come together", st.ErrorCode, st.Debug)
		}
		if st.OptedOut != (st.ErrorCode == "21610") {
			t.Fatalf("OptedOut %v with ErrorCode %q", st.OptedOut, st.ErrorCode)
		}
		if st.MessageID != "msg-1" {
			t.Fatalf("MessageID = %q", st.MessageID)
		}
	}
}

// FuzzSendAnswer feeds arbitrary Twilio answers (status, Retry-After, body)
// to Send. It must never panic; it returns either a result or a *SendError of
// a known kind with a Debug text that holds neither the auth token nor the
// recipient number.
func FuzzSendAnswer(f *testing.F) {
	f.Add(201, "", []byte(createdSMS))
	f.Add(400, "", []byte(twilioError(21211, "The 'To' number +14155559876 is not a valid phone number.", 400)))
	f.Add(429, "12", []byte(twilioError(20429, "Too Many Requests", 429)))
	f.Add(429, "Wed, 21 Oct 2015 07:28:00 GMT", []byte{})
	f.Add(503, "-1", []byte("<html>"))
	f.Add(200, "", []byte(`{"sid":7}`))
	const recipient = "+14155559876"
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 100 || status > 999 {
			status = 500
		}
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			h.Set("Retry-After", retryAfter)
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})}
		res, err := testProvider(Options{HTTPClient: client}).Send(context.Background(), gatewayAt("https://api.twilio.invalid"),
			&sb.OutboundMessage{To: recipient, Body: "hello"})
		if err == nil {
			if res == nil || (res.Status != sb.StatusQueued && res.Status != sb.StatusSent) {
				t.Fatalf("result %+v", res)
			}
			if status < 200 || status > 299 {
				t.Fatalf("HTTP %d treated as success", status)
			}
			return
		}
		var se *sb.SendError
		if !errors.As(err, &se) {
			t.Fatalf("error %v is not a *SendError", err)
		}
		switch se.Kind {
		case sb.SendTransient, sb.SendThrottled, sb.SendAuth, sb.SendPermanent, sb.SendInvalidNumber, sb.SendOptedOut:
		default:
			t.Fatalf("unknown kind %q", se.Kind)
		}
		if se.Debug == "" || se.RetryAfter < 0 || (se.RetryAfter > 0 && se.Kind != sb.SendThrottled) {
			t.Fatalf("bad error %+v", se)
		}
		if msg := err.Error(); strings.Contains(msg, testToken) || strings.Contains(msg, "4155559876") {
			t.Fatalf("error leaks a secret or the number: %s", msg)
		}
	})
}

// FuzzFindNumber feeds arbitrary number-list answers to RegisterWebhooks:
// no panic, and an update is only ever made for a well-formed PN sid of
// exactly the gateway's number.
func FuzzFindNumber(f *testing.F) {
	f.Add([]byte(numberList([2]string{testPN, "+14155550100"})))
	f.Add([]byte(numberList([2]string{"PN../x", "+14155550100"})))
	f.Add([]byte(`{"incoming_phone_numbers":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var updated []string
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			answer := body
			if r.Method == http.MethodPost {
				updated = append(updated, r.URL.Path)
				answer = []byte(`{}`)
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(answer)), Request: r}, nil
		})}
		err := testProvider(Options{HTTPClient: client}).RegisterWebhooks(context.Background(), gatewayAt("https://api.twilio.invalid"), hooks)
		if err != nil {
			switch sb.ErrorCode(err) {
			case sb.ENotFound, sb.EUnavailable:
			default:
				t.Fatalf("unexpected error %v", err)
			}
			if len(updated) != 0 {
				t.Fatalf("updated %v although registration failed", updated)
			}
			return
		}
		if len(updated) != 1 || !numberSIDPattern.MatchString(strings.TrimSuffix(path.Base(updated[0]), ".json")) {
			t.Fatalf("updates = %v", updated)
		}
	})
}
