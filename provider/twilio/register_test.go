package twilio

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	sb "github.com/switchboard/switchboard"
)

const testPN = "PN0123456789abcdef0123456789abcdef"

// answers are what the fake account replies to a lookup and an update.
type answers struct {
	listStatus, updateStatus int
	listBody, updateBody     string
}

// numberAccount is a fake Twilio account holding one number. Each handler
// answer can be overridden per test.
type numberAccount struct {
	answers

	mu   sync.Mutex
	reqs []recorded
}

// requests returns what the account was sent so far.
func (a *numberAccount) requests() []recorded {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

func (a *numberAccount) serve(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		user, pass, ok := r.BasicAuth()
		a.mu.Lock()
		a.reqs = append(a.reqs, recorded{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, user: user, pass: pass, basicOK: ok, form: form})
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		listPath := "/2010-04-01/Accounts/" + testSID + "/IncomingPhoneNumbers.json"
		switch {
		case r.Method == http.MethodGet && r.URL.Path == listPath:
			w.WriteHeader(a.listStatus)
			io.WriteString(w, a.listBody)
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/2010-04-01/Accounts/"+testSID+"/IncomingPhoneNumbers/"):
			w.WriteHeader(a.updateStatus)
			io.WriteString(w, a.updateBody)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, twilioError(20404, "The requested resource was not found", 404))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func numberList(numbers ...[2]string) string {
	var items []string
	for _, n := range numbers {
		items = append(items, `{"sid":"`+n[0]+`","phone_number":"`+n[1]+`","sms_url":"","sms_method":"POST"}`)
	}
	return `{"incoming_phone_numbers":[` + strings.Join(items, ",") + `],"page":0,"page_size":50,"next_page_uri":null}`
}

var hooks = sb.WebhookURLs{Incoming: "https://sb.example.com/webhooks/twilio/gw1/incoming", Status: "https://sb.example.com/webhooks/twilio/gw1/status"}

func TestRegisterWebhooks(t *testing.T) {
	a := &numberAccount{answers: answers{listStatus: 200, listBody: numberList([2]string{testPN, "+14155550100"}),
		updateStatus: 200, updateBody: `{"sid":"` + testPN + `"}`}}
	srv := a.serve(t)
	if err := testProvider(Options{}).RegisterWebhooks(context.Background(), gatewayAt(srv.URL), hooks); err != nil {
		t.Fatalf("RegisterWebhooks: %v", err)
	}
	reqs := a.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want lookup and update", len(reqs))
	}
	look, upd := reqs[0], reqs[1]
	if look.method != http.MethodGet || look.query != "PhoneNumber=%2B14155550100" {
		t.Errorf("lookup = %s ?%s", look.method, look.query)
	}
	if upd.path != "/2010-04-01/Accounts/"+testSID+"/IncomingPhoneNumbers/"+testPN+".json" {
		t.Errorf("update path = %s", upd.path)
	}
	wantForm := url.Values{"SmsUrl": {hooks.Incoming}, "SmsMethod": {"POST"}}
	if !reflect.DeepEqual(upd.form, wantForm) {
		t.Errorf("update form = %v, want %v", upd.form, wantForm)
	}
	for _, r := range reqs {
		if !r.basicOK || r.user != testSID || r.pass != testToken {
			t.Errorf("%s %s: basic auth missing or wrong", r.method, r.path)
		}
	}
}

func TestRegisterWebhooksErrors(t *testing.T) {
	okList := numberList([2]string{testPN, "+14155550100"})
	tests := []struct {
		name          string
		account       answers
		gw            func(base string) *sb.Gateway
		urls          sb.WebhookURLs
		wantCode      string
		wantField     string
		wantInMessage string
		wantRequests  int
	}{
		{name: "number not in the account", account: answers{listStatus: 200, listBody: numberList()},
			wantCode: sb.ENotFound, wantInMessage: "+1********00 is not in Twilio account", wantRequests: 1},
		{name: "only a partial match", account: answers{listStatus: 200, listBody: numberList([2]string{testPN, "+141555501000"})},
			wantCode: sb.ENotFound, wantRequests: 1},
		{name: "listed with a malformed sid", account: answers{listStatus: 200, listBody: numberList([2]string{"PN../../x", "+14155550100"})},
			wantCode: sb.EUnavailable, wantRequests: 1},
		{name: "bad credentials", account: answers{listStatus: 401, listBody: twilioError(20003, "Authenticate", 401)},
			wantCode: sb.EInvalid, wantField: "config.auth_token", wantRequests: 1},
		{name: "lookup 5xx", account: answers{listStatus: 503, listBody: `oops`},
			wantCode: sb.EUnavailable, wantRequests: 1},
		{name: "lookup answer unreadable", account: answers{listStatus: 200, listBody: `[`},
			wantCode: sb.EUnavailable, wantRequests: 1},
		{name: "update refused", account: answers{listStatus: 200, listBody: okList, updateStatus: 400,
			updateBody: twilioError(21402, "Invalid Url", 400)},
			wantCode: sb.EInvalid, wantInMessage: "21402", wantRequests: 2},
		{name: "update throttled", account: answers{listStatus: 200, listBody: okList, updateStatus: 429, updateBody: ``},
			wantCode: sb.EUnavailable, wantRequests: 2},
		{name: "gateway number not E.164", account: answers{}, gw: func(base string) *sb.Gateway {
			gw := gatewayAt(base)
			gw.Number = "4155550100"
			return gw
		}, wantCode: sb.EInvalid, wantField: "number"},
		{name: "gateway config invalid", account: answers{}, gw: func(base string) *sb.Gateway {
			gw := gatewayAt(base)
			gw.Config[ConfigAccountSID] = "nope"
			return gw
		}, wantCode: sb.EInvalid, wantField: "config.account_sid"},
		{name: "incoming URL relative", account: answers{}, urls: sb.WebhookURLs{Incoming: "/webhooks/twilio/gw1/incoming"},
			wantCode: sb.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &numberAccount{answers: tt.account}
			srv := a.serve(t)
			gw := gatewayAt(srv.URL)
			if tt.gw != nil {
				gw = tt.gw(srv.URL)
			}
			urls := hooks
			if tt.urls.Incoming != "" {
				urls = tt.urls
			}
			err := testProvider(Options{}).RegisterWebhooks(context.Background(), gw, urls)
			if sb.ErrorCode(err) != tt.wantCode {
				t.Fatalf("got %v, want code %s", err, tt.wantCode)
			}
			if tt.wantField != "" {
				if e, ok := err.(*sb.Error); !ok || e.Field != tt.wantField {
					t.Errorf("field = %#v, want %s", err, tt.wantField)
				}
			}
			if !strings.Contains(sb.ErrorMessage(err), tt.wantInMessage) {
				t.Errorf("message %q does not contain %q", sb.ErrorMessage(err), tt.wantInMessage)
			}
			if n := len(a.requests()); n != tt.wantRequests {
				t.Errorf("made %d requests, want %d", n, tt.wantRequests)
			}
			if msg := err.Error(); strings.Contains(msg, testToken) || strings.Contains(msg, "4155550100") {
				t.Errorf("error leaks a secret or the number: %s", msg)
			}
		})
	}
}

func TestRegisterWebhooksUnreachable(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	err := testProvider(Options{}).RegisterWebhooks(context.Background(), gatewayAt(closed.URL), hooks)
	if !sb.IsCode(err, sb.EUnavailable) {
		t.Fatalf("got %v, want unavailable", err)
	}
}

func TestIsE164(t *testing.T) {
	for s, want := range map[string]bool{
		"+14155550100": true, "+442079460958": true, "+1234567": true, "+123456789012345": true,
		"14155550100": false, "+0123456789": false, "+1234567890123456": false, "+123456": false,
		"+1415555010a": false, "": false, "+": false,
	} {
		if got := isE164(s); got != want {
			t.Errorf("isE164(%q) = %v, want %v", s, got, want)
		}
	}
}
