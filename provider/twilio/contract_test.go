package twilio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/tools/peers"
)

// The contract test runs Stoplight Prism in mock mode over Twilio's published
// OpenAPI description of the 2010-04-01 API, points a gateway's api_base_url
// at it, and checks that every request the provider makes satisfies the
// description.
//
// Two facts about Prism 5.16 shape it:
//   - Prism rejects a request that breaks the description with a 4xx
//     (422, or 401 without credentials) whatever its flags; --errors only
//     turns *response* violations into 500s. Twilio's own examples for
//     IncomingPhoneNumbers break its own response schema (empty strings
//     where SIDs are required, relative URIs), so with --errors every number
//     lookup would fail for reasons that say nothing about Switchboard's
//     requests. Prism therefore runs without --errors, and the test fails on
//     any request violation Prism reports in its sl-violations header, even
//     one not severe enough for a 4xx.
//   - Prism does not apply OpenAPI's default encoding of form arrays
//     (style form, explode true: one MediaUrl=… per item) unless the
//     description spells it out, and Twilio's does not; it then calls any
//     MediaUrl "not an array". The test serves a copy of the description
//     that states that default for MediaUrl, and nothing else changes.

const (
	specRelPath   = "shared/testdata/twilio-openapi/twilio_api_v2010.json"
	prismRelPath  = "tools/node/node_modules/.bin/prism"
	prismDeadline = 2 * time.Minute

	// Values of the examples in Twilio's description that Prism answers with.
	exampleNumber     = "+18089255327"
	exampleNumberSID  = "PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	exampleMessageSID = "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	contractAccount   = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	contractService   = "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

func TestContractPrism(t *testing.T) {
	base := startPrism(t)
	check := &prismCheck{next: http.DefaultTransport}
	p := testProvider(Options{HTTPClient: &http.Client{Transport: check, Timeout: 30 * time.Second}})
	gateway := func(service string) *sb.Gateway {
		gw := &sb.Gateway{ID: "gw1", Provider: sb.ProviderTwilio, Number: exampleNumber, Config: map[string]string{
			ConfigAccountSID: contractAccount, ConfigAuthToken: "contract-test-token", ConfigAPIBaseURL: base}}
		if service != "" {
			gw.Config[ConfigMessagingServiceSID] = service
		}
		return gw
	}
	callback := "https://sb.example.com/webhooks/twilio/gw1/status?m=msg-1"

	sends := []struct {
		name     string
		service  string
		msg      sb.OutboundMessage
		wantForm url.Values
	}{
		{"plain SMS", "", sb.OutboundMessage{ID: "msg-1", To: "+15558675310", Body: "Your table is ready", StatusCallback: callback},
			url.Values{"To": {"+15558675310"}, "From": {exampleNumber}, "Body": {"Your table is ready"}, "StatusCallback": {callback}}},
		{"MMS with two media", "", sb.OutboundMessage{ID: "msg-2", To: "+15558675310", Body: "Menu",
			MediaURLs: []string{"https://cdn.example.com/menu-1.jpg", "https://cdn.example.com/menu-2.png"}, StatusCallback: callback},
			url.Values{"To": {"+15558675310"}, "From": {exampleNumber}, "Body": {"Menu"}, "StatusCallback": {callback},
				"MediaUrl": {"https://cdn.example.com/menu-1.jpg", "https://cdn.example.com/menu-2.png"}}},
		{"messaging service", contractService, sb.OutboundMessage{ID: "msg-3", To: "+15558675310", Body: "Hi", StatusCallback: callback},
			url.Values{"To": {"+15558675310"}, "MessagingServiceSid": {contractService}, "Body": {"Hi"}, "StatusCallback": {callback}}},
	}
	for _, tt := range sends {
		t.Run("send "+tt.name, func(t *testing.T) {
			check.reset()
			res, err := p.Send(context.Background(), gateway(tt.service), &tt.msg)
			if err != nil {
				t.Fatalf("Send through Prism: %v", err)
			}
			if res.ProviderMessageID != exampleMessageSID || res.Status != sb.StatusQueued {
				t.Errorf("result = %+v", res)
			}
			calls := check.verify(t)
			if len(calls) != 1 || calls[0].method != http.MethodPost || !strings.HasSuffix(calls[0].path, "/Messages.json") {
				t.Fatalf("calls = %+v, want one POST to Messages.json", calls)
			}
			if !equalForms(calls[0].form, tt.wantForm) {
				t.Errorf("form = %v\nwant %v", calls[0].form, tt.wantForm)
			}
		})
	}

	t.Run("register webhooks", func(t *testing.T) {
		check.reset()
		err := p.RegisterWebhooks(context.Background(), gateway(""), sb.WebhookURLs{
			Incoming: "https://sb.example.com/webhooks/twilio/gw1/incoming", Status: "https://sb.example.com/webhooks/twilio/gw1/status"})
		if err != nil {
			t.Fatalf("RegisterWebhooks through Prism: %v", err)
		}
		calls := check.verify(t)
		if len(calls) != 2 {
			t.Fatalf("calls = %+v, want lookup and update", calls)
		}
		if calls[0].method != http.MethodGet || !strings.HasSuffix(calls[0].path, "/IncomingPhoneNumbers.json") {
			t.Errorf("first call = %s %s, want the number lookup", calls[0].method, calls[0].path)
		}
		if calls[1].method != http.MethodPost || !strings.HasSuffix(calls[1].path, "/IncomingPhoneNumbers/"+exampleNumberSID+".json") {
			t.Errorf("second call = %s %s, want the number update", calls[1].method, calls[1].path)
		}
	})

	t.Run("provider request breaking the description is caught", func(t *testing.T) {
		check.reset()
		_, err := p.Send(context.Background(), gateway(""), &sb.OutboundMessage{To: "+15558675310", Body: "x", StatusCallback: "not a url"})
		var se *sb.SendError
		if !errors.As(err, &se) || se.Kind != sb.SendPermanent {
			t.Fatalf("got %v, want a permanent *SendError from Prism's refusal", err)
		}
		check.mu.Lock()
		calls := slices.Clone(check.calls)
		check.mu.Unlock()
		if len(calls) != 1 || calls[0].status != http.StatusUnprocessableEntity {
			t.Errorf("calls = %+v, want one answered 422", calls)
		}
	})

	// The check itself: requests that break the description are refused,
	// and the same request made right is accepted.
	messages := base + "/2010-04-01/Accounts/" + contractAccount + "/Messages.json"
	number := base + "/2010-04-01/Accounts/" + contractAccount + "/IncomingPhoneNumbers/" + exampleNumberSID + ".json"
	good := url.Values{"To": {"+15558675310"}, "From": {exampleNumber}, "Body": {"hi"}}
	edit := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range good {
			f[key] = slices.Clone(vals)
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	raw := []struct {
		name     string
		url      string
		form     url.Values
		noAuth   bool
		wantFail bool
	}{
		{"valid message (control)", messages, good, false, false},
		{"message without To", messages, edit("To", ""), false, true},
		{"MessagingServiceSid not MG+32 hex", messages, edit("MessagingServiceSid", "MG123"), false, true},
		{"StatusCallback not a URI", messages, edit("StatusCallback", "not a url"), false, true},
		{"MediaUrl not a URI", messages, edit("MediaUrl", "not a url"), false, true},
		{"account SID not AC+32 hex", base + "/2010-04-01/Accounts/AC123/Messages.json", good, false, true},
		{"no basic auth", messages, good, true, true},
		{"valid number update (control)", number, url.Values{"SmsUrl": {"https://sb.example.com/in"}, "SmsMethod": {"POST"}}, false, false},
		{"number update with SmsMethod PUT", number, url.Values{"SmsUrl": {"https://sb.example.com/in"}, "SmsMethod": {"PUT"}}, false, true},
	}
	for _, tt := range raw {
		t.Run("raw "+tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tt.url, strings.NewReader(tt.form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if !tt.noAuth {
				req.SetBasicAuth(contractAccount, "contract-test-token")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			failed := resp.StatusCode >= 400 && resp.StatusCode < 500
			if failed != tt.wantFail {
				t.Errorf("HTTP %d (want 4xx: %v): %s", resp.StatusCode, tt.wantFail, body)
			}
		})
	}
}

// call is one request the provider made to Prism.
type call struct {
	method, path string
	form         url.Values
	status       int
	violations   []string
}

// prismCheck records every request and the request violations Prism
// reported for it.
type prismCheck struct {
	next  http.RoundTripper
	mu    sync.Mutex
	calls []call
}

func (c *prismCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := call{method: req.Method, path: req.URL.Path}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		rec.form, _ = url.ParseQuery(string(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rec.status = resp.StatusCode
	rec.violations = requestViolations(resp.Header.Get("sl-violations"))
	c.mu.Lock()
	c.calls = append(c.calls, rec)
	c.mu.Unlock()
	return resp, nil
}

func (c *prismCheck) reset() {
	c.mu.Lock()
	c.calls = nil
	c.mu.Unlock()
}

// verify fails the test for any call Prism found at fault and returns the
// calls.
func (c *prismCheck) verify(t *testing.T) []call {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.calls {
		if cl.status < 200 || cl.status > 299 || len(cl.violations) > 0 {
			t.Errorf("%s %s: HTTP %d, request violations: %v", cl.method, cl.path, cl.status, cl.violations)
		}
	}
	return slices.Clone(c.calls)
}

// requestViolations picks the request violations out of Prism's
// sl-violations header.
func requestViolations(header string) []string {
	if header == "" {
		return nil
	}
	var vs []struct {
		Location []string `json:"location"`
		Severity string   `json:"severity"`
		Message  string   `json:"message"`
	}
	if err := json.Unmarshal([]byte(header), &vs); err != nil {
		return []string{"unreadable sl-violations header: " + header}
	}
	var out []string
	for _, v := range vs {
		if len(v.Location) > 0 && v.Location[0] == "request" {
			out = append(out, v.Severity+": "+strings.Join(v.Location, ".")+": "+v.Message)
		}
	}
	return out
}

func equalForms(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// startPrism starts Prism over the Twilio description on a free loopback
// port, waits until it answers, and returns its base URL.
func startPrism(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	prism := filepath.Join(root, filepath.FromSlash(prismRelPath))
	if _, err := os.Stat(prism); err != nil {
		missingPeer(t, "Prism is not installed at %s: run npm ci --prefix tools/node", prismRelPath)
	}
	spec := filepath.Join(filepath.Dir(root), filepath.FromSlash(specRelPath))
	if _, err := os.Stat(spec); err != nil {
		missingPeer(t, "Twilio's OpenAPI description is not at %s (shared/ beside the repository)", spec)
	}
	served := withFormArrayEncoding(t, spec)

	port := freePort(t)
	var out syncBuffer
	cmd := exec.Command(prism, "mock", "-p", port, "-h", "127.0.0.1", served)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Prism: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("Prism output:\n%s", out.String())
		}
	})

	base := "http://127.0.0.1:" + port
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.NewTimer(prismDeadline)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := probe.Get(base + "/"); err == nil {
			resp.Body.Close()
			return base
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("Prism exited before answering (%v):\n%s", err, out.String())
		case <-deadline.C:
			t.Fatalf("Prism did not answer within %v:\n%s", prismDeadline, out.String())
		case <-tick.C:
		}
	}
}

// withFormArrayEncoding writes a copy of the description that states
// OpenAPI's default form encoding for the Messages MediaUrl array, which
// Prism does not apply by itself. The copy is made by inserting text, not by
// re-encoding, so the order of examples (Prism answers with the first)
// stays as Twilio published it; decoding the copy proves the insertion
// landed where it must.
func withFormArrayEncoding(t *testing.T, spec string) string {
	t.Helper()
	raw, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	const (
		operation = `"operationId": "CreateMessage"`
		formBody  = `"application/x-www-form-urlencoded": {`
		encoding  = `"encoding": {"MediaUrl": {"style": "form", "explode": true}},`
	)
	op := bytes.Index(raw, []byte(operation))
	if op < 0 {
		t.Fatalf("%s has no CreateMessage operation", spec)
	}
	at := bytes.Index(raw[op:], []byte(formBody))
	if at < 0 {
		t.Fatalf("%s has no form body after CreateMessage", spec)
	}
	at += op + len(formBody)
	patched := slices.Concat(raw[:at], []byte(encoding), raw[at:])

	var doc map[string]any
	if err := json.Unmarshal(patched, &doc); err != nil {
		t.Fatalf("patched description is not JSON: %v", err)
	}
	content := dig(doc, "paths", "/2010-04-01/Accounts/{AccountSid}/Messages.json", "post", "requestBody", "content",
		"application/x-www-form-urlencoded")
	if dig(content, "encoding", "MediaUrl", "style") != "form" || dig(content, "schema", "properties", "MediaUrl", "type") != "array" {
		t.Fatalf("the MediaUrl encoding did not land on the CreateMessage form body of %s", spec)
	}
	path := filepath.Join(t.TempDir(), "twilio_api_v2010.json")
	if err := os.WriteFile(path, patched, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func repoRoot(t *testing.T) string { return peers.RepoRoot(t) }

// missingPeer skips the test, or fails it when SWITCHBOARD_REQUIRE_PEERS=1.
func missingPeer(t *testing.T, format string, args ...any) {
	t.Helper()
	peers.Missing(t, fmt.Sprintf(format, args...))
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
