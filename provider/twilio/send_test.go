package twilio

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
)

// recorded is one request the fake Twilio received.
type recorded struct {
	method, path, query string
	user, pass          string
	basicOK             bool
	contentType         string
	form                url.Values
}

// fakeTwilio answers every request with status, headers and body, and
// records what it was sent.
type fakeTwilio struct {
	srv  *httptest.Server
	reqs chan recorded
}

func newFakeTwilio(t *testing.T, status int, header http.Header, body string) *fakeTwilio {
	t.Helper()
	f := &fakeTwilio{reqs: make(chan recorded, 16)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		user, pass, ok := r.BasicAuth()
		f.reqs <- recorded{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, user: user, pass: pass, basicOK: ok,
			contentType: r.Header.Get("Content-Type"), form: form}
		for k, vs := range header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTwilio) next(t *testing.T) recorded {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	default:
		t.Fatal("the fake Twilio received no request")
		return recorded{}
	}
}

func gatewayAt(baseURL string) *sb.Gateway {
	gw := testGateway()
	gw.Config[ConfigAPIBaseURL] = baseURL
	return gw
}

const createdSMS = `{"account_sid":"` + testSID + `","api_version":"2010-04-01","body":"Hi","direction":"outbound-api",` +
	`"error_code":null,"error_message":null,"from":"+14155550100","num_media":"0","num_segments":"1",` +
	`"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","to":"+14155559876"}`

func TestSendForm(t *testing.T) {
	const recipient = "+14155559876"
	callback := "https://sb.example.com/webhooks/twilio/gw1/status?m=msg-1"
	media := []string{"https://cdn.example.com/a.jpg", "https://cdn.example.com/b.png"}
	tests := []struct {
		name    string
		service string
		msg     sb.OutboundMessage
		want    url.Values
	}{
		{
			name: "SMS from the gateway number",
			msg:  sb.OutboundMessage{ID: "msg-1", To: recipient, Body: "Hi there", StatusCallback: callback},
			want: url.Values{"To": {recipient}, "From": {"+14155550100"}, "Body": {"Hi there"}, "StatusCallback": {callback}},
		},
		{
			name: "MMS with two media",
			msg:  sb.OutboundMessage{ID: "msg-1", To: recipient, Body: "Look", MediaURLs: media, StatusCallback: callback},
			want: url.Values{"To": {recipient}, "From": {"+14155550100"}, "Body": {"Look"}, "MediaUrl": media, "StatusCallback": {callback}},
		},
		{
			name: "media only, no body",
			msg:  sb.OutboundMessage{ID: "msg-1", To: recipient, MediaURLs: media[:1]},
			want: url.Values{"To": {recipient}, "From": {"+14155550100"}, "MediaUrl": media[:1]},
		},
		{
			name:    "messaging service instead of From",
			service: "MG0123456789abcdef0123456789abcdef",
			msg:     sb.OutboundMessage{ID: "msg-1", To: recipient, From: "+14155550100", Body: "Hi", StatusCallback: callback},
			want:    url.Values{"To": {recipient}, "MessagingServiceSid": {"MG0123456789abcdef0123456789abcdef"}, "Body": {"Hi"}, "StatusCallback": {callback}},
		},
		{
			name: "message From wins over gateway number",
			msg:  sb.OutboundMessage{ID: "msg-1", To: recipient, From: "+14155550199", Body: "Hi"},
			want: url.Values{"To": {recipient}, "From": {"+14155550199"}, "Body": {"Hi"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeTwilio(t, http.StatusCreated, nil, createdSMS)
			gw := gatewayAt(fake.srv.URL)
			if tt.service != "" {
				gw.Config[ConfigMessagingServiceSID] = tt.service
			}
			res, err := testProvider(Options{}).Send(context.Background(), gw, &tt.msg)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			want := &sb.SendResult{ProviderMessageID: "SM0123456789abcdef0123456789abcdef", Status: sb.StatusQueued}
			if !reflect.DeepEqual(res, want) {
				t.Errorf("result = %+v, want %+v", res, want)
			}
			r := fake.next(t)
			if r.method != http.MethodPost || r.path != "/2010-04-01/Accounts/"+testSID+"/Messages.json" {
				t.Errorf("request = %s %s", r.method, r.path)
			}
			if !r.basicOK || r.user != testSID || r.pass != testToken {
				t.Errorf("basic auth = %v %q %q, want account SID and auth token", r.basicOK, r.user, r.pass)
			}
			if r.contentType != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", r.contentType)
			}
			if !reflect.DeepEqual(r.form, tt.want) {
				t.Errorf("form = %v\nwant %v", r.form, tt.want)
			}
		})
	}
}

func TestSendResultStatus(t *testing.T) {
	tests := []struct {
		twilio string
		want   sb.Status
	}{
		{"queued", sb.StatusQueued},
		{"accepted", sb.StatusQueued},
		{"scheduled", sb.StatusQueued},
		{"sending", sb.StatusQueued},
		{"sent", sb.StatusSent},
	}
	for _, tt := range tests {
		t.Run(tt.twilio, func(t *testing.T) {
			body := strings.Replace(createdSMS, `"status":"queued"`, `"status":"`+tt.twilio+`"`, 1)
			fake := newFakeTwilio(t, http.StatusCreated, nil, body)
			res, err := testProvider(Options{}).Send(context.Background(), gatewayAt(fake.srv.URL), &sb.OutboundMessage{To: "+14155559876", Body: "x"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.want {
				t.Errorf("status = %s, want %s", res.Status, tt.want)
			}
		})
	}
}

func TestSendAcceptedWithoutSid(t *testing.T) {
	fake := newFakeTwilio(t, http.StatusCreated, nil, `not json`)
	res, err := testProvider(Options{}).Send(context.Background(), gatewayAt(fake.srv.URL), &sb.OutboundMessage{To: "+14155559876", Body: "x"})
	if err != nil {
		t.Fatalf("an accepted message must not fail: %v", err)
	}
	if res.ProviderMessageID != "" || res.Status != sb.StatusQueued {
		t.Errorf("result = %+v", res)
	}
}

func twilioError(code int, message string, status int) string {
	return `{"code": ` + strconv.Itoa(code) + `, "message": "` + message + `", "more_info": "https://www.twilio.com/docs/errors/` +
		strconv.Itoa(code) + `", "status": ` + strconv.Itoa(status) + `}`
}

func TestSendErrors(t *testing.T) {
	const recipient = "+14155559876"
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		wantKind  sb.SendErrorKind
		wantCode  string
		wantDebug string
		wantRetry time.Duration
		retryable bool
	}{
		{"invalid To", 400, nil, twilioError(21211, "The 'To' number "+recipient+" is not a valid phone number.", 400),
			sb.SendInvalidNumber, "21211", "Twilio 21211: invalid 'To' phone number", 0, false},
		{"not a mobile number", 400, nil, twilioError(21614, "'To' number is not a valid mobile number", 400),
			sb.SendInvalidNumber, "21614", "Twilio 21614: the 'To' number is not a valid mobile number", 0, false},
		{"not reachable", 400, nil, twilioError(21612, "The 'To' phone number: "+recipient+", is not currently reachable", 400),
			sb.SendInvalidNumber, "21612", "Twilio 21612: the 'To' number is not reachable via SMS", 0, false},
		{"unsubscribed recipient", 400, nil, twilioError(21610, "Attempt to send to unsubscribed recipient", 400),
			sb.SendOptedOut, "21610", "Twilio 21610: recipient has unsubscribed (replied STOP)", 0, false},
		{"bad credentials", 401, nil, twilioError(20003, "Authenticate", 401),
			sb.SendAuth, "20003", "Twilio 20003: authentication failed: check the gateway's account SID and auth token", 0, true},
		{"account not active", 403, nil, twilioError(20005, "Account not active", 403),
			sb.SendAuth, "20005", "Twilio 20005: the Twilio account is not active", 0, true},
		{"401 without body", 401, nil, ``, sb.SendAuth, "", "Twilio answered HTTP 401", 0, true},
		{"429 with Retry-After seconds", 429, http.Header{"Retry-After": {"7"}}, twilioError(20429, "Too Many Requests", 429),
			sb.SendThrottled, "20429", "Twilio 20429: too many requests", 7 * time.Second, true},
		{"429 with Retry-After date", 429, http.Header{"Retry-After": {fixedNow.Add(90 * time.Second).Format(http.TimeFormat)}}, ``,
			sb.SendThrottled, "", "Twilio answered HTTP 429", 90 * time.Second, true},
		{"429 with Retry-After in the past", 429, http.Header{"Retry-After": {fixedNow.Add(-time.Hour).Format(http.TimeFormat)}}, ``,
			sb.SendThrottled, "", "Twilio answered HTTP 429", 0, true},
		{"429 with garbage Retry-After", 429, http.Header{"Retry-After": {"soon"}}, ``,
			sb.SendThrottled, "", "Twilio answered HTTP 429", 0, true},
		{"code 20429 on a 400", 400, http.Header{"Retry-After": {"3"}}, twilioError(20429, "Too Many Requests", 400),
			sb.SendThrottled, "20429", "Twilio 20429: too many requests", 3 * time.Second, true},
		{"rate limit 14107", 400, nil, twilioError(14107, "SMS send rate limit exceeded", 400),
			sb.SendThrottled, "14107", "Twilio 14107: SMS send rate limit exceeded", 0, true},
		{"500 with JSON", 500, nil, twilioError(20500, "Internal Server Error", 500),
			sb.SendTransient, "20500", "Twilio 20500: Internal Server Error", 0, true},
		{"408 request timeout", 408, nil, ``, sb.SendTransient, "", "Twilio answered HTTP 408", 0, true},
		{"429 with negative Retry-After", 429, http.Header{"Retry-After": {"-5"}}, ``,
			sb.SendThrottled, "", "Twilio answered HTTP 429", 0, true},
		{"429 with huge Retry-After is capped at a day", 429, http.Header{"Retry-After": {"999999999"}}, ``,
			sb.SendThrottled, "", "Twilio answered HTTP 429", 24 * time.Hour, true},
		{"503 HTML from a proxy", 503, nil, `<html>Service Unavailable</html>`,
			sb.SendTransient, "", "Twilio answered HTTP 503", 0, true},
		{"other 4xx known", 400, nil, twilioError(21602, "Message body is required.", 400),
			sb.SendPermanent, "21602", "Twilio 21602: message body is required", 0, false},
		{"other 4xx unknown code echoes number", 400, nil, twilioError(21999, "Number "+recipient+" cannot receive this", 400),
			sb.SendPermanent, "21999", "Twilio 21999: Number +1********76 cannot receive this", 0, false},
		{"404", 404, nil, twilioError(20404, "The requested resource was not found", 404),
			sb.SendPermanent, "20404", "Twilio 20404: resource not found in the Twilio account", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeTwilio(t, tt.status, tt.header, tt.body)
			_, err := testProvider(Options{}).Send(context.Background(), gatewayAt(fake.srv.URL),
				&sb.OutboundMessage{ID: "m1", To: recipient, Body: "hello"})
			var se *sb.SendError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SendError", err)
			}
			if se.Kind != tt.wantKind || se.Code != tt.wantCode || se.Debug != tt.wantDebug || se.RetryAfter != tt.wantRetry {
				t.Errorf("got kind=%s code=%q debug=%q retry=%v\nwant kind=%s code=%q debug=%q retry=%v",
					se.Kind, se.Code, se.Debug, se.RetryAfter, tt.wantKind, tt.wantCode, tt.wantDebug, tt.wantRetry)
			}
			if se.Retryable() != tt.retryable {
				t.Errorf("Retryable = %v, want %v", se.Retryable(), tt.retryable)
			}
			assertNoSecrets(t, err, recipient)
		})
	}
}

// assertNoSecrets fails when err's text holds the auth token or the
// recipient's digits.
func assertNoSecrets(t *testing.T, err error, recipient string) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, testToken) {
		t.Errorf("error leaks the auth token: %s", msg)
	}
	if strings.Contains(msg, strings.TrimPrefix(recipient, "+")) {
		t.Errorf("error leaks the recipient number: %s", msg)
	}
}

// roundTripFunc lets a test stand in for the network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

var _ net.Error = timeoutError{}

func TestSendNetworkErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name      string
		ctx       context.Context
		client    *http.Client
		baseURL   string
		wantDebug string
	}{
		{"connection refused", context.Background(), nil, closedURL, "could not reach Twilio"},
		{"timeout", context.Background(), &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, timeoutError{}
		})}, "https://api.twilio.invalid", "request to Twilio timed out"},
		{"deadline exceeded", context.Background(), &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, context.DeadlineExceeded
		})}, "https://api.twilio.invalid", "request to Twilio timed out"},
		{"canceled", canceled, &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return nil, r.Context().Err()
		})}, "https://api.twilio.invalid", "request to Twilio was canceled"},
		{"body cut short", context.Background(), &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 201, Header: http.Header{}, Body: io.NopCloser(&failingReader{})}, nil
		})}, "https://api.twilio.invalid", "could not reach Twilio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testProvider(Options{HTTPClient: tt.client})
			_, err := p.Send(tt.ctx, gatewayAt(tt.baseURL), &sb.OutboundMessage{To: "+14155559876", Body: "hi"})
			var se *sb.SendError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SendError", err)
			}
			if se.Kind != sb.SendTransient || !se.Retryable() {
				t.Errorf("kind = %s, want transient", se.Kind)
			}
			if se.Debug != tt.wantDebug {
				t.Errorf("Debug = %q, want %q", se.Debug, tt.wantDebug)
			}
			assertNoSecrets(t, err, "+14155559876")
		})
	}
}

type failingReader struct{}

func (*failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestSendRefusedBeforeCallingTwilio(t *testing.T) {
	noNetwork := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("Twilio must not be called")
		return nil, errors.New("unexpected call")
	})}
	noNumber := testGateway()
	noNumber.Number = ""
	noToken := testGateway()
	delete(noToken.Config, ConfigAuthToken)
	tests := []struct {
		name string
		gw   *sb.Gateway
		msg  *sb.OutboundMessage
		want sb.SendErrorKind
	}{
		{"no auth token", noToken, &sb.OutboundMessage{To: "+14155559876", Body: "x"}, sb.SendAuth},
		{"no sender", noNumber, &sb.OutboundMessage{To: "+14155559876", Body: "x"}, sb.SendAuth},
		{"no recipient", testGateway(), &sb.OutboundMessage{Body: "x"}, sb.SendInvalidNumber},
		{"nothing to send", testGateway(), &sb.OutboundMessage{To: "+14155559876"}, sb.SendPermanent},
		{"template", testGateway(), &sb.OutboundMessage{To: "+14155559876", Template: "welcome"}, sb.SendPermanent},
		{"nil message", testGateway(), nil, sb.SendPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testProvider(Options{HTTPClient: noNetwork}).Send(context.Background(), tt.gw, tt.msg)
			var se *sb.SendError
			if !errors.As(err, &se) || se.Kind != tt.want {
				t.Fatalf("got %v, want a %s *SendError", err, tt.want)
			}
			if se.Debug == "" {
				t.Error("Debug is empty")
			}
		})
	}
}

func TestSendUsesBaseURLOption(t *testing.T) {
	fake := newFakeTwilio(t, http.StatusCreated, nil, createdSMS)
	p := testProvider(Options{BaseURL: fake.srv.URL + "/"})
	if _, err := p.Send(context.Background(), testGateway(), &sb.OutboundMessage{To: "+14155559876", Body: "x"}); err != nil {
		t.Fatal(err)
	}
	if r := fake.next(t); r.path != "/2010-04-01/Accounts/"+testSID+"/Messages.json" {
		t.Errorf("path = %s", r.path)
	}
}
