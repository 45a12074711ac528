package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/crm/salesforce/sftest"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// TestSalesforceStep walks the setup assistant's CRM step against the
// in-repo Salesforce fake: Authorize sends the browser to Salesforce, the
// callback brings it back connected; Check now runs the health check;
// Revoke takes the connection offline and every page says so.
func TestSalesforceStep(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		e := newTestEnvWith(t, d, hubtest.Options{Salesforce: true})
		fake := e.SF
		fake.AddUser("integration@college.example")

		b := e.signIn(t, "admin")
		p := b.get("/ui/settings")
		if !p.has("built-in CRM</strong> is in use") || !p.has(">Authorize</button>") {
			t.Fatalf("CRM step before authorizing: %s", p.Body)
		}
		// htmx: the answer sends the whole page to Salesforce.
		p = b.post("/ui/settings/salesforce/authorize", nil, "HX-Request", "true")
		to := p.Header.Get("HX-Redirect")
		if p.Status != http.StatusNoContent || to == "" {
			t.Fatalf("authorize: %d %q", p.Status, to)
		}
		// Without htmx: a page with the link (a form may not leave the site).
		if p := b.post("/ui/settings/salesforce/authorize", nil); p.Status != http.StatusOK || !p.has("Continue to Salesforce") {
			t.Fatalf("authorize without htmx: %d", p.Status)
		}
		code, state, err := fake.Authorize(to, "integration@college.example")
		if err != nil {
			t.Fatal(err)
		}
		back := e.browser(t) // Salesforce sends the browser back to the callback
		resp, err := back.c.Get(e.Server.URL + "/oauth/salesforce/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || loc != "/ui/settings?salesforce=connected#crm" {
			t.Fatalf("callback: %d %q", resp.StatusCode, loc)
		}
		p = b.get(loc)
		if !p.has("Salesforce authorized.") || !p.has("integration@college.example") || !p.has(`<span class="state done">Connected</span>`) || p.has("CRM offline") {
			t.Fatalf("CRM step after authorizing: %s", p.Body)
		}
		fake.SetAPIUsage(1200, 15000)
		p = b.post("/ui/settings/salesforce/check", nil)
		if p.Status != http.StatusOK || !p.has("Last health check") {
			t.Fatalf("check now: %d %s", p.Status, p.Body)
		}
		// The dashboard's CRM panel: connected, the API usage Salesforce
		// reported, the health check passed.
		conn, err := e.Hub.CRMConnection(ctx, e.Admin)
		if err != nil || conn.APIMax != 15000 || conn.APIUsed < 1200 {
			t.Fatalf("connection: %+v %v", conn, err)
		}
		p = b.get("/ui/dashboard")
		for _, want := range []string{
			`<dd id="crm-state"><span class="state done">Connected</span></dd>`,
			fmt.Sprintf(`<meter min="0" max="15000" value="%d" aria-label="API calls used">%d</meter> %d of 15000</dd>`, conn.APIUsed, conn.APIUsed, conn.APIUsed),
			`<dd id="crm-health"><span class="state done">OK</span>`,
		} {
			if !strings.Contains(p.Body, want) {
				t.Errorf("dashboard lacks %s", want)
			}
		}
		// A failing check shows as Failing, naming what fails.
		fake.RemoveField("Switchboard_Message__c", "Status__c")
		if p := b.post("/ui/settings/salesforce/check", nil); !p.has("Health check found problems") {
			t.Fatalf("failing check: %s", p.Body)
		}
		p = b.get("/ui/dashboard")
		if !strings.Contains(p.Body, `<dd id="crm-health"><span class="state todo">Failing</span>`) || !regexp.MustCompile(`<li>[^<]*: [^<]*Status__c`).MatchString(p.Body) {
			t.Fatalf("dashboard after a failing check: %s", p.Body)
		}
		p = b.post("/ui/settings/salesforce/revoke", nil)
		if p.Status != http.StatusOK || !p.has("Salesforce authorization revoked") {
			t.Fatalf("revoke: %d %s", p.Status, p.Body)
		}
		if p := b.get("/ui/dashboard"); !strings.Contains(p.Body, `<dd id="crm-state"><span class="state todo">Offline</span>`) {
			t.Fatalf("dashboard after revoking: %s", p.Body)
		}
		limited := e.signIn(t, "limited")
		if p := limited.get("/ui/"); !p.has("CRM offline:") || !p.has("a System Admin authorizes the CRM again") {
			t.Fatalf("no offline banner after revoking: %s", p.Body)
		}
	})
}

// TestHealthCheckBanner: while the CRM is online but its last health check
// failed (a field is missing), every page shows admins a banner naming the
// failing check; other users see none; it goes once a check passes again.
func TestHealthCheckBanner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		e := newTestEnvWith(t, d, hubtest.Options{Salesforce: true})
		e.SF.AddUser("integration@college.example")
		admin := e.signIn(t, "admin")
		p := admin.post("/ui/settings/salesforce/authorize", nil, "HX-Request", "true")
		code, state, err := e.SF.Authorize(p.Header.Get("HX-Redirect"), "integration@college.example")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.browser(t).c.Get(e.Server.URL + "/oauth/salesforce/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if p := admin.post("/ui/settings/salesforce/check", nil); p.Status != http.StatusOK || p.has("CRM health check failing") {
			t.Fatalf("passing check: %d %s", p.Status, p.Body)
		}

		e.SF.RemoveField("Switchboard_Message__c", "Status__c")
		admin.post("/ui/settings/salesforce/check", nil)
		for _, path := range []string{"/ui/", "/ui/dashboard", "/ui/bulk", "/ui/conversation?phone=%2B12025550142", "/ui/nowhere"} {
			p := admin.get(path)
			if !strings.Contains(p.Body, `class="banner health" role="alert"`) || !p.has("CRM health check failing:") || !p.has("message_object") || !p.has("Status__c") {
				t.Errorf("%s: no health banner naming the failing check", path)
			}
			if p.has("CRM offline") {
				t.Errorf("%s: offline banner while online", path)
			}
		}
		limited := e.signIn(t, "limited")
		if p := limited.get("/ui/"); p.has("CRM health check failing") {
			t.Fatal("health banner shown to a user who is not an admin")
		}

		e.SF.AddField("Switchboard_Message__c", sftest.Field{Name: "Status__c", Type: "picklist", Createable: true, Updateable: true})
		admin.post("/ui/settings/salesforce/check", nil)
		if p := admin.get("/ui/"); p.has("CRM health check failing") {
			t.Fatalf("banner after the check passes again: %s", p.Body)
		}
	})
}

// TestConnectedAppToggleRegistersGateways: on an org connected to
// Salesforce, switching "Connected app for incoming messages" on in the
// setup assistant registers the production gateways' webhook URLs and says
// so.
func TestConnectedAppToggleRegistersGateways(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		e := newTestEnvWith(t, d, hubtest.Options{Salesforce: true})
		e.SF.AddUser("integration@college.example")
		admin := e.signIn(t, "admin")
		p := admin.post("/ui/settings/salesforce/authorize", nil, "HX-Request", "true")
		code, state, err := e.SF.Authorize(p.Header.Get("HX-Redirect"), "integration@college.example")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.browser(t).c.Get(e.Server.URL + "/oauth/salesforce/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if p := admin.post("/ui/settings/toggles", url.Values{"name": {"messaging_api_for_bulk"}, "value": {"on"}}); p.Status != http.StatusOK || p.has("Webhook URLs registered") {
			t.Fatalf("bulk API toggle: %d", p.Status)
		}
		p = admin.post("/ui/settings/toggles", url.Values{"name": {"connected_app_for_incoming"}, "value": {"on"}})
		if p.Status != http.StatusOK || !p.has("Setting enabled. Webhook URLs registered at the partner for 1 of 1 production gateways.") {
			t.Fatalf("connected app toggle: %d %s", p.Status, p.Body)
		}
	})
}
