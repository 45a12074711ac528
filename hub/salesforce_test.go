package hub_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/mail"
	"github.com/switchboard/switchboard/mail/mailtest"
	"github.com/switchboard/switchboard/provider/twilio"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

type sfEnv struct {
	*hubtest.Env
	fake *sftest.Server
}

func newSFEnv(t *testing.T, d store.Dialect, providers ...sb.Provider) *sfEnv {
	t.Helper()
	e := hubtest.New(t, d, hubtest.Options{Salesforce: true, Providers: providers})
	e.SF.AddUser("integration@college.example")
	return &sfEnv{Env: e, fake: e.SF}
}

// authorize runs the OAuth web-server flow through the API and the
// callback route, as an admin's browser would.
func (s *sfEnv) authorize(t *testing.T) {
	t.Helper()
	r := s.API("POST", "/v1/crm/salesforce/authorize", map[string]string{"return_to": "/ui/settings"})
	var out struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	r.JSON(t, &out)
	if r.Status != http.StatusOK || !strings.Contains(out.AuthorizeURL, "code_challenge_method=S256") {
		t.Fatalf("authorize: %d %s", r.Status, r.Body)
	}
	u, _ := url.Parse(out.AuthorizeURL)
	if scope := u.Query().Get("scope"); scope != "api refresh_token offline_access id" {
		t.Fatalf("scope %q", scope)
	}
	code, state, err := s.fake.Authorize(out.AuthorizeURL, "integration@college.example")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(s.Server.URL + "/oauth/salesforce/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/settings?salesforce=connected" {
		t.Fatalf("callback: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A state is good once.
	resp, err = client.Get(s.Server.URL + "/oauth/salesforce/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("replayed callback: %d", resp.StatusCode)
	}
}

func (s *sfEnv) messageRecords() []sftest.Record {
	return s.fake.Records("Switchboard_Message__c")
}

// TestSalesforceWriteBackHeldWhileRevoked: messages and statuses are
// written to Salesforce; when the authorization is revoked the write-backs
// are held durably, and flow — none lost, none doubled — once an admin
// authorizes again.
func TestSalesforceWriteBackHeldWhileRevoked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d)
		s.authorize(t)
		ctx := context.Background()
		org, _ := s.DB.Org(ctx, s.Org.ID)
		if org.Settings.CRM != sb.CRMSalesforce {
			t.Fatalf("org CRM is %s after authorizing", org.Settings.CRM)
		}
		sfUser := s.fake.UserID("integration@college.example")
		var ids []string
		for _, to := range []string{"+12025550141", "+12025550142", "+12025550143"} {
			m := s.Send(to, "Orientation starts Monday")
			ids = append(ids, m.ID)
		}
		for _, id := range ids {
			s.WaitStatus(id, sb.StatusDelivered)
		}
		s.Text("+12025550141", s.Gateway.Number, "See you there")
		s.WaitCRMSynced()
		recs := s.messageRecords()
		if len(recs) != 4 {
			t.Fatalf("%d message records in Salesforce, want 4", len(recs))
		}
		delivered := 0
		for _, r := range recs {
			if r["Status__c"] == "Delivered" && r["OwnerId"] == sfUser {
				delivered++
			}
		}
		if delivered != 3 {
			t.Fatalf("records: %+v", recs)
		}

		// The admin revokes access in Salesforce.
		s.fake.RevokeRefreshTokens()
		held := s.Send("+12025550144", "While you were away")
		s.WaitStatus(held.ID, sb.StatusDelivered)
		s.WaitFor("connection offline", func() bool {
			r := s.API("GET", "/v1/crm", nil)
			return strings.Contains(string(r.Body), `"offline":true`)
		})
		if n, _ := s.DB.CRMPendingCount(ctx, s.Org.ID); n == 0 {
			t.Fatal("write-back not held while offline")
		}
		if len(s.messageRecords()) != 4 {
			t.Fatal("a record was written with a revoked authorization")
		}

		// Authorize again: the held write-back flows.
		s.authorize(t)
		s.WaitCRMSynced()
		recs = s.messageRecords()
		if len(recs) != 5 {
			t.Fatalf("%d records after re-authorizing, want 5", len(recs))
		}
		seen := map[string]bool{}
		for _, r := range recs {
			ext, _ := r["Switchboard_Id__c"].(string)
			if seen[ext] {
				t.Fatalf("message %s written twice", ext)
			}
			seen[ext] = true
		}
	})
}

// TestSalesforceMediaURLs: the media URLs of an incoming MMS (Twilio) and of
// an outgoing message end up on their Salesforce records, one per line, and
// stay there after Switchboard has dropped the message content.
func TestSalesforceMediaURLs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d, twilio.New(twilio.Options{}))
		s.authorize(t)
		ctx := context.Background()
		sandbox := true
		tw, err := s.Hub.CreateGateway(ctx, s.Admin, hub.GatewayRequest{Provider: "twilio", Number: "+12025550181", Sandbox: &sandbox,
			Config: map[string]string{"account_sid": "AC" + strings.Repeat("a1", 16), "auth_token": "twilio-auth-token-0123456789"}})
		if err != nil {
			t.Fatal(err)
		}
		media := []string{
			"https://api.twilio.com/2010-04-01/Accounts/AC" + strings.Repeat("a1", 16) + "/Messages/MM" + strings.Repeat("c3", 16) + "/Media/ME" + strings.Repeat("d4", 16),
			"https://api.twilio.com/2010-04-01/Accounts/AC" + strings.Repeat("a1", 16) + "/Messages/MM" + strings.Repeat("c3", 16) + "/Media/ME" + strings.Repeat("e5", 16),
		}
		path := "/webhooks/twilio/" + tw.ID + "/incoming"
		form := url.Values{"MessageSid": {"MM" + strings.Repeat("c3", 16)}, "AccountSid": {"AC" + strings.Repeat("a1", 16)}, "From": {"+12025550183"},
			"To": {"+12025550181"}, "Body": {"Photos of the form"}, "NumMedia": {"2"}, "MediaUrl0": {media[0]}, "MediaContentType0": {"image/jpeg"},
			"MediaUrl1": {media[1]}, "MediaContentType1": {"image/png"}}
		sig := twilio.Signature("twilio-auth-token-0123456789", s.Server.URL+path, form)
		if r := s.Do("POST", path, "", []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig); r.Status != http.StatusOK {
			t.Fatalf("twilio MMS: %d %s", r.Status, r.Body)
		}
		flyer := "https://cdn.college.example/open-day.png"
		r := s.API("POST", "/v1/messages", map[string]any{"gateway_id": s.Gateway.ID, "to": "+12025550184", "body": "Open day", "media_urls": []string{flyer}})
		if r.Status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		}
		var out sb.Message
		r.JSON(t, &out)
		s.WaitStatus(out.ID, sb.StatusDelivered)
		s.WaitCRMSynced()
		byDir := map[string]sftest.Record{}
		for _, rec := range s.messageRecords() {
			byDir[fmt.Sprint(rec["Direction__c"])] = rec
		}
		if got := byDir["incoming"]["Media_Urls__c"]; got != media[0]+"\n"+media[1] {
			t.Fatalf("incoming record Media_Urls__c = %q, want both URLs one per line; records %+v", got, s.messageRecords())
		}
		if got := byDir["outgoing"]["Media_Urls__c"]; got != flyer {
			t.Fatalf("outgoing record Media_Urls__c = %q, want %q", got, flyer)
		}
	})
}

// TestHealthCheckAlertsAdmins: a check that starts failing is stored,
// shown, posted to the org's alert webhook and emailed to its alert
// address — once, not again while it keeps failing the same way — and its
// recovery is announced the same way.
func TestHealthCheckAlertsAdmins(t *testing.T) {
	smtp := mailtest.NewServer(t)
	sender, err := mail.Parse(smtp.URL("alerts", "s3cret", "switchboard@example.org"))
	if err != nil {
		t.Fatal(err)
	}
	e := hubtest.New(t, store.SQLite, hubtest.Options{Salesforce: true, Setup: func(e *hubtest.Env, _ *river.Config) { e.Hub.Mailer = sender }})
	e.SF.AddUser("integration@college.example")
	s := &sfEnv{Env: e, fake: e.SF}
	alerts := make(chan string, 16)
	hook := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		alerts <- string(b)
	})
	if r := s.API("PATCH", "/v1/org/settings", map[string]any{"alert_webhook_url": hook, "alert_email": "it-team@college.example"}); r.Status != http.StatusOK {
		t.Fatalf("settings: %d %s", r.Status, r.Body)
	}
	s.authorize(t)
	// Alerts are sent before the check answers, so after each check the
	// test knows everything it caused.
	check := func(wantOK bool) {
		t.Helper()
		r := s.API("POST", "/v1/crm/check", nil)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), fmt.Sprintf(`"health":{"ok":%t`, wantOK)) {
			t.Fatalf("check: %d %s", r.Status, r.Body)
		}
	}
	expect := func(event string) {
		t.Helper()
		var got []string
		for len(alerts) > 0 {
			got = append(got, <-alerts)
		}
		mails := smtp.Messages()
		smtp.Reset()
		if event == "" {
			if len(got) > 0 || len(mails) > 0 {
				t.Fatalf("unexpected alerts: %v, %d emails", got, len(mails))
			}
			return
		}
		if len(got) != 1 || !strings.Contains(got[0], `"event":"`+event+`"`) {
			t.Fatalf("webhook alerts %v, want one %s", got, event)
		}
		if len(mails) != 1 || mails[0].To[0] != "it-team@college.example" {
			t.Fatalf("emails %+v, want one to it-team@college.example", mails)
		}
		m := mails[0].Data
		switch event {
		case hub.EventHealthFailed:
			if !strings.Contains(got[0], "Status__c") || !strings.Contains(m, "Subject: Switchboard: CRM health check of Test College is failing") ||
				!strings.Contains(m, "- message_object: Switchboard_Message__c is missing the field(s)") || !strings.Contains(m, "Status__c") {
				t.Fatalf("failure alert:\n%s\n%s", got[0], m)
			}
		case hub.EventHealthRecovered:
			if !strings.Contains(m, "passes again") || !strings.Contains(m, "It was failing on:\n- message_object") {
				t.Fatalf("recovery email:\n%s", m)
			}
		}
	}

	check(true)
	expect("") // first check, passing: nothing to say
	s.fake.RemoveField("Switchboard_Message__c", "Status__c")
	check(false)
	expect(hub.EventHealthFailed)
	check(false)
	expect("") // still failing the same way: no second alert
	s.fake.RemoveField("Switchboard_Message__c", "Direction__c")
	check(false)
	expect("") // the same check fails, on one more field
	s.fake.RemoveField("Contact", "MobilePhone")
	check(false)
	expect(hub.EventHealthFailed) // another check fails too
	s.fake.AddField("Contact", sftest.Field{Name: "MobilePhone", Type: "phone", Createable: true, Updateable: true})
	s.fake.AddField("Switchboard_Message__c", sftest.Field{Name: "Status__c", Type: "picklist", Createable: true, Updateable: true})
	s.fake.AddField("Switchboard_Message__c", sftest.Field{Name: "Direction__c", Type: "picklist", Createable: true, Updateable: true})
	check(true)
	expect(hub.EventHealthRecovered)
	check(true)
	expect("")

	h := s.API("GET", "/v1/crm/health", nil)
	if !strings.Contains(string(h.Body), `"ok":false`) || !strings.Contains(string(h.Body), `"ok":true`) {
		t.Fatalf("history: %s", h.Body)
	}
	if strings.Contains(string(h.Body), "access_token") {
		t.Fatal("health history leaks tokens")
	}
}

// TestAlertEmailNeedsSMTP: an alert address is refused, naming the
// setting, when the service has no SMTP server to send with.
func TestAlertEmailNeedsSMTP(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	r := e.API("PATCH", "/v1/org/settings", map[string]any{"alert_email": "it-team@college.example"})
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "alert_email") || !strings.Contains(string(r.Body), "SWITCHBOARD_SMTP_URL") {
		t.Fatalf("alert_email without SMTP: %d %s", r.Status, r.Body)
	}
	r = e.API("PATCH", "/v1/org/settings", map[string]any{"alert_email": "IT team <it@college.example>"})
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "alert_email must be one email address") {
		t.Fatalf("bad alert_email: %d %s", r.Status, r.Body)
	}
}

// TestOneWayToggles: an admin can enable the toggles but not disable them;
// the service operator can (hub.OperatorSetToggle, which "switchboard admin
// org settings" runs).
func TestOneWayToggles(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		// The setup assistant's order holds through the API too.
		if r := e.API("PATCH", "/v1/org/settings", map[string]any{"connected_app_for_incoming": true}); r.Status != http.StatusConflict ||
			!strings.Contains(string(r.Body), `"field":"connected_app_for_incoming"`) || !strings.Contains(string(r.Body), "(messaging_api_for_bulk) first") {
			t.Fatalf("connected app before the Messaging API: %d %s", r.Status, r.Body)
		}
		on := map[string]any{"messaging_api_for_bulk": true, "connected_app_for_incoming": true}
		if r := e.API("PATCH", "/v1/org/settings", on); r.Status != http.StatusOK {
			t.Fatalf("enable: %d %s", r.Status, r.Body)
		}
		for _, k := range []string{"messaging_api_for_bulk", "connected_app_for_incoming"} {
			r := e.API("PATCH", "/v1/org/settings", map[string]any{k: false})
			if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "service operator") || !strings.Contains(string(r.Body), "--disable "+k) {
				t.Fatalf("admin disabled %s: %d %s", k, r.Status, r.Body)
			}
		}
		ctx := context.Background()
		res, err := e.Hub.OperatorSetToggle(ctx, e.Org.ID, hub.ToggleMessagingAPIForBulk, false)
		if err != nil || res.Settings.MessagingAPIForBulk || !res.Settings.ConnectedAppForIncoming {
			t.Fatalf("operator disable: %+v %v", res, err)
		}
		if _, err := e.Hub.OperatorSetToggle(ctx, e.Org.ID, "crm", false); !sb.IsCode(err, sb.EInvalid) {
			t.Fatalf("unknown toggle: %v", err)
		}
	})
}

// TestBulkOnSalesforceNeedsMessagingAPI: an org connected to Salesforce
// sends in bulk only once "Messaging API for bulk sends" is enabled; the
// refusal names the setting.
func TestBulkOnSalesforceNeedsMessagingAPI(t *testing.T) {
	s := newSFEnv(t, store.SQLite)
	bulk := map[string]any{"gateway_id": s.Gateway.ID, "body": "Registration closes Friday", "recipients": []map[string]string{{"to": "+12025550171"}}}
	if r := s.API("POST", "/v1/bulk-sends", bulk); r.Status != http.StatusAccepted {
		t.Fatalf("bulk on the built-in CRM: %d %s", r.Status, r.Body)
	}
	s.authorize(t)
	r := s.API("POST", "/v1/bulk-sends", bulk)
	if r.Status != http.StatusConflict || r.ErrorCode() != sb.EConflict || !strings.Contains(string(r.Body), `"field":"messaging_api_for_bulk"`) ||
		!strings.Contains(string(r.Body), "Messaging API for bulk sends") {
		t.Fatalf("bulk on Salesforce without the Messaging API: %d %s", r.Status, r.Body)
	}
	// 1:1 sends are not bulk sends.
	s.Send("+12025550172", "One to one")
	if r := s.API("PATCH", "/v1/org/settings", map[string]any{"messaging_api_for_bulk": true}); r.Status != http.StatusOK {
		t.Fatalf("enable: %d %s", r.Status, r.Body)
	}
	if r := s.API("POST", "/v1/bulk-sends", bulk); r.Status != http.StatusAccepted {
		t.Fatalf("bulk with the Messaging API enabled: %d %s", r.Status, r.Body)
	}
}

// TestConnectedAppRegistersGateways: for an org on Salesforce, enabling
// "Connected app for incoming messages" is what registers its production
// gateways' webhook URLs at the partner; before, a new gateway is left for
// the admin to set by hand, and so is every gateway of a sandbox instance.
func TestConnectedAppRegistersGateways(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d)
		s.authorize(t)
		inbound := func(to string) int {
			return s.Do("POST", "/sim/v1/inbound", "", map[string]string{"from": "+12025550173", "to": to, "body": "Hello"}).Status
		}
		rate := 0.0
		r := s.API("POST", "/v1/gateways", hub.GatewayRequest{Name: "Admissions", Provider: sb.ProviderSim, Number: "+12025550190", Rate: &rate})
		var v hub.GatewayView
		r.JSON(t, &v)
		if r.Status != http.StatusCreated || v.Registered || !strings.Contains(v.RegisterNote, "Connected app for incoming messages") {
			t.Fatalf("gateway before the toggle: %d %s", r.Status, r.Body)
		}
		if st := inbound("+12025550190"); st != http.StatusNotFound {
			t.Fatalf("the carrier knows the gateway before the toggle: %d", st)
		}

		r = s.API("PATCH", "/v1/org/settings", map[string]any{"messaging_api_for_bulk": true, "connected_app_for_incoming": true})
		var res hub.SettingsResult
		r.JSON(t, &res)
		if r.Status != http.StatusOK || len(res.GatewayRegistrations) != 2 {
			t.Fatalf("enable: %d %s", r.Status, r.Body)
		}
		for _, g := range res.GatewayRegistrations {
			if !g.Registered {
				t.Fatalf("gateway %s not registered: %s", g.GatewayID, r.Body)
			}
		}
		if st := inbound("+12025550190"); st != http.StatusOK {
			t.Fatalf("incoming to the registered gateway: %d", st)
		}
		// Saving the settings again registers nothing again.
		r = s.API("PATCH", "/v1/org/settings", map[string]any{"opt_in_mode": "default"})
		if r.Status != http.StatusOK || strings.Contains(string(r.Body), "gateway_registrations") {
			t.Fatalf("settings saved again: %d %s", r.Status, r.Body)
		}

		// A sandbox instance (the org moves there; the next token refresh
		// brings the new instance URL): gateways are set up by hand.
		s.fake.MoveInstance("acme--uat.sandbox.my.salesforce.com")
		if r := s.API("POST", "/v1/crm/check", nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"instance_url":"https://acme--uat.sandbox.my.salesforce.com"`) {
			t.Fatalf("check after the move: %d %s", r.Status, r.Body)
		}
		r = s.API("POST", "/v1/gateways", hub.GatewayRequest{Name: "Sandbox org", Provider: sb.ProviderSim, Number: "+12025550191", Rate: &rate})
		r.JSON(t, &v)
		if r.Status != http.StatusCreated || v.Registered || !strings.Contains(v.RegisterNote, "sandbox") {
			t.Fatalf("gateway of a sandbox instance: %d %s", r.Status, r.Body)
		}
	})
}

func httptestServer(t *testing.T, f http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSalesforceCallsPer1000Messages measures the Salesforce API calls the
// pipeline makes for exactly 1,000 messages sent, sent-reported and
// delivered (creates and status updates), against the fake.
//
// The figure does not depend on timing: with the gather window out of the
// way (an hour), the write-back writes only a full batch (1,000 records)
// or when nothing is in flight any more. Each message is written at most
// three times (created, Sent, Delivered), so there are at most three full
// flushes, or two and a last one; a flush of 1,000 records is one
// /composite call, two when creates and updates share it unevenly — at most
// 6 calls, however the statuses arrive. Usually it is one call: every
// message created with its final status.
func TestSalesforceCallsPer1000Messages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d)
		s.authorize(t)
		if r := s.API("PATCH", "/v1/org/settings", map[string]any{"messaging_api_for_bulk": true}); r.Status != http.StatusOK {
			t.Fatalf("enable the Messaging API: %d %s", r.Status, r.Body)
		}
		s.Hub.SetCRMGather(time.Hour, time.Hour, 0)
		s.fake.ResetCounters()
		var recips []map[string]string
		for i := range 1000 {
			recips = append(recips, map[string]string{"to": fmt.Sprintf("+1202555%04d", 3000+i)})
		}
		r := s.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": s.Gateway.ID, "body": "Registration closes Friday", "recipients": recips})
		if r.Status != http.StatusAccepted {
			t.Fatalf("bulk: %d %s", r.Status, r.Body)
		}
		// Accepting the bulk send looked the numbers up (their records'
		// global opt-out flags) in batched queries; write-backs have not
		// started (nothing settled within the gather window).
		lookups := s.fake.DataCalls()
		t.Logf("Salesforce calls to look up the records of 1,000 numbers: %d (%v)", lookups, s.fake.CallCounts())
		if lookups < 1 || lookups > 4 {
			t.Fatalf("%d Salesforce calls to look up 1,000 numbers, want 1 to 4", lookups)
		}
		s.WaitFor("all delivered", func() bool { return s.Carrier.Stats().CallbacksSent >= 2000 })
		s.WaitCRMSynced()
		calls := s.fake.DataCalls() - lookups
		recs := s.messageRecords()
		delivered := 0
		for _, rec := range recs {
			if rec["Status__c"] == "Delivered" {
				delivered++
			}
		}
		if len(recs) != 1000 || delivered != 1000 {
			t.Fatalf("%d records, %d delivered", len(recs), delivered)
		}
		t.Logf("Salesforce API calls for 1,000 messages (create + sent + delivered write-back): %d (%v)", calls, s.fake.CallCounts())
		// A naive client makes 3,000.
		if calls < 1 || calls > 10 {
			t.Fatalf("%d Salesforce calls for 1,000 messages, want 1 to 10", calls)
		}
	})
}

// TestSalesforceTokensSealedAtRest: after an admin authorizes Salesforce
// through the callback, the raw database — every table, the connection's
// included — holds neither the access token nor the refresh token, in any
// readable form.
func TestSalesforceTokensSealedAtRest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d)
		s.authorize(t)
		ctx := context.Background()
		// A call with the connection, so that anything it stores is there.
		if r := s.API("POST", "/v1/crm/check", nil); r.Status != http.StatusOK {
			t.Fatalf("check: %d %s", r.Status, r.Body)
		}
		conn, err := hub.SalesforceStore{DB: s.DB}.LoadConnection(ctx, s.Org.ID)
		if err != nil {
			t.Fatal(err)
		}
		if conn.AccessToken == "" || conn.RefreshToken == "" || !s.fake.RefreshTokenValid(conn.RefreshToken) {
			t.Fatalf("connection lacks the tokens the fake issued: access %t, refresh %t", conn.AccessToken != "", conn.RefreshToken != "")
		}
		var needles [][]byte
		for _, tok := range []string{conn.AccessToken, conn.RefreshToken} {
			needles = append(needles, []byte(tok), []byte(hex.EncodeToString([]byte(tok))), []byte(base64.StdEncoding.EncodeToString([]byte(tok))))
		}
		tables, err := s.DB.SchemaColumns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tables["crm_connections"]; !ok {
			t.Fatal("no crm_connections table")
		}
		for table := range tables {
			raw, err := s.DB.RawScan(ctx, table)
			if err != nil {
				t.Fatal(err)
			}
			if table == "crm_connections" && !bytes.Contains(raw, []byte(s.Org.ID)) {
				t.Fatalf("the org's connection row is not in crm_connections: %q", raw)
			}
			for _, n := range needles {
				if bytes.Contains(raw, n) {
					t.Errorf("table %s holds a Salesforce token in readable form", table)
				}
			}
		}
	})
}

// healthHistory returns the org's stored health checks, newest first.
func (s *sfEnv) healthHistory(t *testing.T) []bool {
	t.Helper()
	r := s.API("GET", "/v1/crm/health?limit=500", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("health: %d %s", r.Status, r.Body)
	}
	var out struct {
		Checks []struct {
			OK bool `json:"ok"`
		} `json:"checks"`
	}
	r.JSON(t, &out)
	oks := make([]bool, len(out.Checks))
	for i, c := range out.Checks {
		oks[i] = c.OK
	}
	return oks
}

// TestPeriodicHealthCheck: the health check registered as a periodic job
// runs by itself, stores each result, and keeps the history — a check that
// starts failing shows after the passing ones.
func TestPeriodicHealthCheck(t *testing.T) {
	prev := hub.HealthCheckInterval
	hub.HealthCheckInterval = 100 * time.Millisecond
	t.Cleanup(func() { hub.HealthCheckInterval = prev })
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d)
		s.authorize(t)
		s.WaitFor("two passing periodic checks", func() bool {
			h := s.healthHistory(t)
			return len(h) >= 2 && h[0] && h[1]
		})
		s.fake.RemoveField("Switchboard_Message__c", "Status__c")
		s.WaitFor("a failing periodic check", func() bool {
			h := s.healthHistory(t)
			return len(h) > 0 && !h[0]
		})
		h := s.healthHistory(t)
		if !h[len(h)-1] {
			t.Fatalf("history %v does not start with the passing checks", h)
		}
		r := s.API("GET", "/v1/crm", nil)
		if !strings.Contains(string(r.Body), "Status__c") {
			t.Fatalf("connection state does not show the failing check: %s", r.Body)
		}
	})
}

// recordOf returns the Salesforce record of a Switchboard message, if any.
func (s *sfEnv) recordOf(messageID string) sftest.Record {
	for _, r := range s.messageRecords() {
		if r["Switchboard_Id__c"] == messageID {
			return r
		}
	}
	return nil
}

// TestThrottledWriteBack: above 80 % of the org's daily API limit, an
// incoming message is still written at once, while outgoing messages and
// their statuses wait the longer throttled window — then are written, none
// lost. The usage reading is refreshed with the limits resource while
// writes wait, so they resume normally once usage falls.
func TestThrottledWriteBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d)
		s.authorize(t)
		ctx := context.Background()
		s.fake.SetAPIUsage(85000, 100000)
		// Any answer tells the client the usage.
		if r := s.API("POST", "/v1/crm/check", nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"api_used":85`) {
			t.Fatalf("check: %d %s", r.Status, r.Body)
		}
		s.Hub.SetCRMGather(0, time.Hour, time.Hour)

		out := s.Send("+12025550181", "Your interview is at 10am")
		s.WaitStatus(out.ID, sb.StatusDelivered)
		s.Text("+12025550182", s.Gateway.Number, "Can I bring a friend?")
		s.WaitFor("the incoming message written to Salesforce", func() bool {
			in := false
			for _, r := range s.messageRecords() {
				in = in || r["Direction__c"] == "incoming"
			}
			n, err := s.DB.CRMPendingCount(ctx, s.Org.ID)
			return in && err == nil && n == 1
		})
		if rec := s.recordOf(out.ID); rec != nil {
			t.Fatalf("outgoing message written while throttled: %v", rec)
		}
		if m := s.Message(out.ID); m.CRMMessageID != "" {
			t.Fatalf("outgoing message has a CRM record while throttled: %+v", m)
		}

		// The throttled window passes: the outgoing message is written,
		// with its final status, still above the threshold.
		s.Hub.SetCRMGather(0, 100*time.Millisecond, 0)
		s.WaitCRMSynced()
		if rec := s.recordOf(out.ID); rec == nil || rec["Status__c"] != "Delivered" {
			t.Fatalf("outgoing record after the window: %v", rec)
		}

		// Deferred again; usage falls; nothing is written meanwhile, so the
		// limits resource tells the client, and the write-back resumes.
		s.Hub.SetCRMGather(0, time.Hour, 50*time.Millisecond)
		out2 := s.Send("+12025550183", "Reminder: bring your ID")
		s.WaitStatus(out2.ID, sb.StatusDelivered)
		if used, _ := s.Hub.Salesforce.Usage(s.Org.ID); used < 80000 {
			t.Fatalf("usage reading %d before it fell", used)
		}
		s.fake.SetAPIUsage(1000, 100000)
		s.WaitCRMSynced()
		if rec := s.recordOf(out2.ID); rec == nil || rec["Status__c"] != "Delivered" {
			t.Fatalf("outgoing record after usage fell: %v", rec)
		}
		if s.fake.Calls("GET /limits") == 0 {
			t.Fatal("the usage was not refreshed through the limits resource")
		}
		if used, _ := s.Hub.Salesforce.Usage(s.Org.ID); used > 2000 {
			t.Fatalf("usage reading %d after it fell", used)
		}
	})
}

// TestIncomingLookupsBatched: the CRM lookups of the incoming messages of
// one write-back — the record that has the number, the owner of the last
// outgoing message — are batched: 200 messages from 200 unknown numbers
// cost one query call of each kind, not one per message and object.
func TestIncomingLookupsBatched(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d)
		s.authorize(t)
		ctx := context.Background()
		wantRecord := map[string]string{} // phone → record id
		var phones []string
		for i := range 200 {
			p := fmt.Sprintf("+1202555%04d", 5000+i)
			phones = append(phones, p)
			switch i % 4 {
			case 0:
				wantRecord[p] = s.fake.AddRecord("Contact", map[string]any{"LastName": "C" + p, "MobilePhone": p})
			case 1:
				wantRecord[p] = s.fake.AddRecord("Lead", map[string]any{"LastName": "L" + p, "Company": "Acme", "Phone": "(202) 555-" + p[8:]})
			}
		}
		// Hold the write-back (as while the authorization is revoked) so that
		// the 200 messages are written in one go.
		if err := (hub.SalesforceStore{DB: s.DB}).SetOffline(ctx, s.Org.ID, "held by the test"); err != nil {
			t.Fatal(err)
		}
		for _, p := range phones {
			s.Text(p, s.Gateway.Number, "Is the campus open on Saturday?")
		}
		s.WaitFor("200 settled changes", func() bool {
			g, err := s.DB.CRMGatherState(ctx, s.Org.ID, s.DB.Now().Add(-store.CRMWritebackDelay), s.DB.Now(), 1000)
			return err == nil && g.Ready == 200 && !g.Unsettled
		})
		s.fake.ResetCounters()
		s.authorize(t)
		s.WaitCRMSynced()
		counts := s.fake.CallCounts()
		t.Logf("Salesforce calls for 200 incoming messages: %v", counts)
		// FindByPhones: Contact and Lead in one composite call;
		// LastOutgoingOwners: one; the creates: one collection.
		if counts["POST /composite"] != 2 || counts["GET /query"] != 0 || s.fake.DataCalls() != 3 {
			t.Fatalf("calls %v, want 2 composite lookups and 1 write", counts)
		}
		sfUser := s.fake.UserID("integration@college.example")
		n := 0
		for _, r := range s.messageRecords() {
			if r["Direction__c"] != "incoming" {
				continue
			}
			n++
			p, _ := r["Phone__c"].(string)
			got, _ := r["Contact__c"].(string)
			if got == "" {
				got, _ = r["Lead__c"].(string)
			}
			if got != wantRecord[p] {
				t.Errorf("%s: record %q, want %q", p, got, wantRecord[p])
			}
			if r["OwnerId"] != sfUser {
				t.Errorf("%s: owner %v, want the integration user", p, r["OwnerId"])
			}
		}
		if n != 200 {
			t.Fatalf("%d incoming records", n)
		}
	})
}

// TestIncomingOwnerFromCRMHistory: an incoming message from a number
// Switchboard never texted on that gateway takes the owner of the last
// outgoing message record the CRM has (history from before Switchboard);
// Switchboard's own history comes first; with neither, the integration
// user owns it.
func TestIncomingOwnerFromCRMHistory(t *testing.T) {
	t.Run("salesforce", func(t *testing.T) {
		storetest.Each(t, func(t *testing.T, d store.Dialect) {
			s := newSFEnv(t, d)
			s.authorize(t)
			sfUser := s.fake.UserID("integration@college.example")
			advisor := s.fake.AddUser("advisor@college.example")
			legacy := func(phone string) {
				s.fake.AddRecord("Switchboard_Message__c", map[string]any{"Switchboard_Id__c": "legacy-" + phone, "Direction__c": "outgoing",
					"OwnerId": advisor, "Gateway_Number__c": s.Gateway.Number, "Phone__c": phone, "Status__c": "Delivered"})
			}
			m := s.Send("+12025550193", "Welcome back")
			s.WaitStatus(m.ID, sb.StatusDelivered)
			s.WaitCRMSynced()
			legacy("+12025550191") // history only in Salesforce
			// Switchboard has an outgoing message to this one, though
			// Salesforce's newest record says otherwise: Switchboard's own
			// history comes first.
			legacy("+12025550193")
			for _, p := range []string{"+12025550191", "+12025550192", "+12025550193"} {
				s.Text(p, s.Gateway.Number, "Thanks")
			}
			s.WaitCRMSynced()
			want := map[string]string{"+12025550191": advisor, "+12025550192": sfUser, "+12025550193": sfUser}
			for _, r := range s.messageRecords() {
				if r["Direction__c"] != "incoming" {
					continue
				}
				p, _ := r["Phone__c"].(string)
				if r["OwnerId"] != want[p] {
					t.Errorf("incoming from %s owned by %v, want %s", p, r["OwnerId"], want[p])
				}
				delete(want, p)
			}
			if len(want) != 0 {
				t.Fatalf("no incoming record for %v", want)
			}
		})
	})
	t.Run("builtin", func(t *testing.T) {
		hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
			ctx := context.Background()
			advisor := &sb.User{OrgID: e.Org.ID, Email: "advisor@example.org", Name: "Advisor", Permissions: []sb.Permission{sb.PermInbox}}
			if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.CreateUser(ctx, advisor, "") }); err != nil {
				t.Fatal(err)
			}
			// A message record imported into the built-in CRM, without a
			// message in Switchboard's own tables.
			at := e.DB.Now().Add(-30 * 24 * time.Hour)
			if _, err := e.Builtin.WriteMessages(ctx, e.Org, []sb.CRMMessage{{MessageID: "legacy-1", Direction: sb.Outgoing, Status: sb.StatusDelivered,
				GatewayID: e.Gateway.ID, GatewayNumber: e.Gateway.Number, Phone: "+12025550191", OwnerID: advisor.ID, CreatedAt: at, StatusAt: at}}); err != nil {
				t.Fatal(err)
			}
			e.Text("+12025550191", e.Gateway.Number, "Thanks")
			e.Text("+12025550192", e.Gateway.Number, "Thanks")
			e.WaitCRMSynced()
			for phone, want := range map[string]string{"+12025550191": advisor.ID, "+12025550192": e.Admin.ID} {
				recs, err := e.DB.CRMMessagesFor(ctx, e.Org.ID, "", phone, 10)
				if err != nil {
					t.Fatal(err)
				}
				var owner string
				for _, r := range recs {
					if r.Direction == sb.Incoming {
						owner = r.OwnerID
					}
				}
				if owner != want {
					t.Errorf("incoming from %s owned by %q, want %q", phone, owner, want)
				}
			}
		})
	})
}

// TestFindRecords: GET /v1/crm/records finds contacts and leads by email
// or phone through Salesforce.
func TestFindRecords(t *testing.T) {
	s := newSFEnv(t, store.SQLite)
	s.authorize(t)
	c := s.fake.AddRecord("Contact", map[string]any{"LastName": "Ng", "Email": "ada@college.example", "MobilePhone": "+12025550171"})
	l := s.fake.AddRecord("Lead", map[string]any{"LastName": "Ng", "Company": "Acme", "Email": "ada@college.example", "Phone": "(202) 555-0171"})
	s.fake.AddRecord("Lead", map[string]any{"LastName": "Li", "Company": "Acme", "Email": "bo@college.example"})
	for _, q := range []string{"email=ADA%40college.example", "phone=%2B12025550171", "phone=202-555-0171"} {
		r := s.API("GET", "/v1/crm/records?"+q, nil)
		var out struct {
			Records []sb.CRMRecord `json:"records"`
		}
		r.JSON(t, &out)
		if r.Status != http.StatusOK || len(out.Records) != 2 || out.Records[0].ID != c || out.Records[0].Type != "Contact" || out.Records[1].ID != l || out.Records[1].Type != "Lead" {
			t.Fatalf("%s: %d %s", q, r.Status, r.Body)
		}
	}
	for _, q := range []string{"", "email=a%40b.example&phone=%2B12025550171", "email=nope", "phone=12"} {
		if r := s.API("GET", "/v1/crm/records?"+q, nil); r.Status != http.StatusBadRequest {
			t.Errorf("%q: %d %s", q, r.Status, r.Body)
		}
	}
	if r := s.API("GET", "/v1/crm/records?email=zoe%40college.example", nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"records":[]`) {
		t.Fatalf("nobody: %d %s", r.Status, r.Body)
	}
}

// TestSalesforceGlobalOptOutByNumber: a recipient given by number only is
// looked up in Salesforce (phone fields in the formats people type) and the
// global opt-out flag of any record with it applies; a bulk send asks about
// all its numbers in batched queries, not one per number.
func TestSalesforceGlobalOptOutByNumber(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d)
		s.authorize(t)
		opted := s.fake.AddRecord("Contact", map[string]any{"LastName": "Opted", "MobilePhone": "(202) 555-0191", "Switchboard_Opt_Out__c": true})
		lead := s.fake.AddRecord("Lead", map[string]any{"LastName": "Lead", "Company": "Evening classes", "Phone": "202-555-0192"})

		// Salesforce cannot answer: nothing is sent (try again later).
		s.fake.FailNext(100, http.StatusServiceUnavailable)
		if r := s.API("POST", "/v1/messages", map[string]any{"gateway_id": s.Gateway.ID, "to": "+12025550193", "body": "hi", "mode": "automation"}); r.Status != http.StatusServiceUnavailable ||
			!strings.Contains(string(r.Body), "global opt-out flags") {
			t.Fatalf("send while Salesforce fails: %d %s", r.Status, r.Body)
		}
		s.fake.FailNext(0, 0)

		if r := s.API("POST", "/v1/messages", map[string]any{"gateway_id": s.Gateway.ID, "to": "+12025550191", "body": "hi"}); r.Status != http.StatusConflict ||
			!strings.Contains(string(r.Body), "CRM record "+opted+" with this number has the global opt-out flag set") {
			t.Fatalf("1:1 by number: %d %s", r.Status, r.Body)
		}
		r := s.API("POST", "/v1/messages", map[string]any{"gateway_id": s.Gateway.ID, "to": "+12025550191", "body": "hi", "mode": "automation"})
		var m sb.Message
		r.JSON(t, &m)
		if m.Status != sb.StatusError || m.Debug != "Global Opt-out" || m.RecordID != opted {
			t.Fatalf("automation by number: %d %s", r.Status, r.Body)
		}

		recips := []map[string]string{{"to": "+12025550191"}, {"to": "+12025550192"}}
		for i := range 98 {
			recips = append(recips, map[string]string{"to": fmt.Sprintf("+1202555%04d", 4000+i)})
		}
		if r := s.API("PATCH", "/v1/org/settings", map[string]any{"messaging_api_for_bulk": true}); r.Status != http.StatusOK {
			t.Fatalf("enable the Messaging API for bulk sends: %d %s", r.Status, r.Body)
		}
		s.fake.ResetCounters()
		r = s.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": s.Gateway.ID, "body": "Bulk by number", "recipients": recips})
		var res struct {
			BatchID  string `json:"batch_id"`
			Accepted int
		}
		r.JSON(t, &res)
		if r.Status != http.StatusAccepted || res.Accepted != 99 || !strings.Contains(string(r.Body), `"record_id":"`+opted+`"`) || !strings.Contains(string(r.Body), `"reason":"Global opt-out"`) {
			t.Fatalf("bulk by number: %d %s", r.Status, r.Body)
		}
		// 100 numbers, two objects with phone fields: a few batched
		// queries (composite requests of up to 5 queries), not 200.
		queries := s.fake.Calls("GET /query") + s.fake.Calls("POST /composite")
		t.Logf("Salesforce queries for 100 numbers: %d", queries)
		if queries < 1 || queries > 10 {
			t.Fatalf("%d Salesforce queries for a bulk send to 100 numbers", queries)
		}
		ms, err := s.DB.Messages(context.Background(), s.Org.ID, store.MessageFilter{BatchID: res.BatchID, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		linked := 0
		for _, m := range ms {
			switch m.RecordID {
			case "":
			case lead:
				linked++
			default:
				t.Fatalf("bulk message linked to %s", m.RecordID)
			}
		}
		if len(ms) != 99 || linked != 1 {
			t.Fatalf("%d messages, %d linked to the lead", len(ms), linked)
		}
		if n := len(s.Carrier.Inbox("+12025550191")); n != 0 {
			t.Fatalf("the opted-out number was texted %d times", n)
		}
	})
}
