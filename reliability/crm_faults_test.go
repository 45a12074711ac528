package reliability

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// crmFaultMessages is the size of each bulk send of TestCRMFaults.
const crmFaultMessages = 200

// sfTimeout is the Salesforce client's HTTP timeout in TestCRMFaults: a
// "slow" org answers within it, a "stalled" one after it.
const sfTimeout = 3 * time.Second

// orgCRMs gives the org that chose Salesforce the Salesforce client and
// every other org the built-in CRM.
type orgCRMs struct {
	e  **hubtest.Env
	sf **salesforce.Client
}

func (c orgCRMs) For(ctx context.Context, org *sb.Org) (sb.CRM, error) {
	if org.Settings.CRM == sb.CRMSalesforce {
		return *c.sf, nil
	}
	return (*c.e).Builtin, nil
}

// crmEnv is one Switchboard with two orgs: the hubtest org connected to a
// fake Salesforce, and a second org on the built-in CRM with a gateway of
// its own.
type crmEnv struct {
	*hubtest.Env
	fake *sftest.Server
	// other is the built-in CRM org: its id, API key and gateway.
	otherOrg, otherKey, otherGW string
}

const sfUsername = "integration@college.example"

func newCRMEnv(t *testing.T, e **hubtest.Env, d store.Dialect) *crmEnv {
	t.Helper()
	var client *salesforce.Client
	*e = hubtest.New(t, d, hubtest.Options{CRMs: orgCRMs{e: e, sf: &client}})
	env := &crmEnv{Env: *e}
	redirect := env.Server.URL + "/oauth/salesforce/callback"
	env.fake = sftest.NewServer(t, sftest.WithRedirectURL(redirect))
	env.fake.AddUser(sfUsername)
	hc := env.fake.HTTPClient()
	hc.Timeout = sfTimeout
	client = salesforce.New(salesforce.Config{
		ClientID: env.fake.ClientID(), ClientSecret: env.fake.ClientSecret(), RedirectURL: redirect,
		HTTPClient: hc, Logger: slog.New(slog.DiscardHandler),
	}, hub.SalesforceStore{DB: env.DB})
	env.Hub.Salesforce, env.Hub.SalesforceOAuth = client, true
	env.authorize(t)

	ctx := context.Background()
	org, admin, key, err := env.Hub.CreateOrg(ctx, "Built-in College", "admin@builtin.example", "Bea Builtin")
	if err != nil {
		t.Fatal(err)
	}
	rate := 0.0
	gw, err := env.Hub.CreateGateway(ctx, admin, hub.GatewayRequest{Name: "Built-in", Provider: sb.ProviderSim, Number: "+12025550200", Rate: &rate})
	if err != nil || !gw.Registered {
		t.Fatalf("second gateway: %v %+v", err, gw)
	}
	env.otherOrg, env.otherKey, env.otherGW = org.ID, key, gw.ID
	return env
}

// authorize connects the hubtest org to the fake Salesforce through the
// web-server flow, as an admin's browser does.
func (e *crmEnv) authorize(t *testing.T) {
	t.Helper()
	r := e.API(http.MethodPost, "/v1/crm/salesforce/authorize", map[string]string{"return_to": "/ui/settings"})
	var out struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	r.JSON(t, &out)
	code, state, err := e.fake.Authorize(out.AuthorizeURL, sfUsername)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.Server.URL + "/oauth/salesforce/callback?code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("OAuth callback: %d", resp.StatusCode)
	}
	org, err := e.DB.Org(context.Background(), e.Org.ID)
	if err != nil || org.Settings.CRM != sb.CRMSalesforce {
		t.Fatalf("org CRM after authorizing: %v %v", org, err)
	}
	// Bulk sends of an org on Salesforce need the Messaging API.
	if r := e.API(http.MethodPatch, "/v1/org/settings", map[string]any{"messaging_api_for_bulk": true}); r.Status != http.StatusOK {
		t.Fatalf("enable the Messaging API for bulk sends: %d %s", r.Status, r.Body)
	}
}

// bulk sends n messages from the org with key through gateway gw and
// returns the batch id.
func (e *crmEnv) bulk(t *testing.T, key, gw string, first, n int) string {
	t.Helper()
	r := e.Do(http.MethodPost, "/v1/bulk-sends", key, map[string]any{"gateway_id": gw, "body": "Orientation starts Monday", "recipients": recipients(first, n)})
	var res struct {
		BatchID  string `json:"batch_id"`
		Accepted int    `json:"accepted"`
	}
	r.JSON(t, &res)
	if r.Status != http.StatusAccepted || res.Accepted != n {
		t.Fatalf("bulk send: %d %s", r.Status, r.Body)
	}
	return res.BatchID
}

// delivered counts an org's messages Delivered in Switchboard.
func (e *crmEnv) delivered(orgID string) int {
	n, _ := e.DB.CountDelivered(context.Background(), orgID)
	return n
}

func (e *crmEnv) pending(orgID string) int {
	n, err := e.DB.CRMPendingCount(context.Background(), orgID)
	if err != nil {
		return -1
	}
	return n
}

// sfRecords returns the Salesforce message records by Switchboard message
// id, with how many records each id has.
func (e *crmEnv) sfRecords() (status map[string]string, copies map[string]int) {
	status, copies = map[string]string{}, map[string]int{}
	for _, r := range e.fake.Records("Switchboard_Message__c") {
		id, _ := r["Switchboard_Id__c"].(string)
		st, _ := r["Status__c"].(string)
		status[id] = st
		copies[id]++
	}
	return status, copies
}

// TestCRMFaults: the org's Salesforce fails — down with 503s for a while,
// slow, stalled beyond the client's timeout for a while — while a bulk send
// runs. Messages are still sent and delivered; the write-backs wait and
// then flow: every message ends up in Salesforce once, with its final
// status. Meanwhile an org on the built-in CRM on the same Switchboard is
// not held up at all.
func TestCRMFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault tests are long; skipped in -short")
	}
	cases := []struct {
		name string
		// fault breaks Salesforce; heal (nil: none) mends it once the
		// write-back was seen failing (tried at least calls more times).
		fault func(f *sftest.Server)
		calls int
		heal  func(f *sftest.Server)
	}{
		// Recipients given by number are looked up in Salesforce (global
		// opt-out) before a send is accepted, so while every call fails no
		// send is accepted at all (hub's TestSalesforceGlobalOptOutByNumber);
		// here the writes fail, or stall, for a while after the lookups
		// succeeded.
		{"writes refused with 503 for a while", func(f *sftest.Server) { f.FailNextWrites(1<<30, http.StatusServiceUnavailable) }, 8,
			func(f *sftest.Server) { f.FailNextWrites(0, 0) }},
		{"slow", func(f *sftest.Server) { f.SetLatency(sfTimeout / 6) }, 0, func(f *sftest.Server) { f.SetLatency(0) }},
		{"writes stalled beyond the client timeout for a while", func(f *sftest.Server) { f.SetWriteLatency(time.Hour) }, 3,
			func(f *sftest.Server) { f.SetWriteLatency(0) }},
	}
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			var he *hubtest.Env
			e := newCRMEnv(t, &he, d)
			sent := map[string]bool{} // Switchboard ids of the Salesforce org's messages
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					calls := e.fake.DataCalls()
					tc.fault(e.fake)
					healed := false
					defer func() {
						if !healed {
							tc.heal(e.fake)
						}
					}()
					sfBatch := e.bulk(t, e.Key, e.Gateway.ID, 5_000_000+i*10_000, crmFaultMessages)
					otherBatch := e.bulk(t, e.otherKey, e.otherGW, 6_000_000+i*10_000, crmFaultMessages)
					wantSF := (i + 1) * crmFaultMessages
					explain := func() string {
						st, copies := e.sfRecords()
						return fmt.Sprintf("Salesforce org: %d delivered, %d CRM changes pending, %d records (%d ids), %d data calls; built-in org: %d delivered, %d pending",
							e.delivered(e.Org.ID), e.pending(e.Org.ID), len(e.fake.Records("Switchboard_Message__c")), len(copies), e.fake.DataCalls(), e.delivered(e.otherOrg), e.pending(e.otherOrg)) + fmt.Sprintf(" (%d statuses)", len(st))
					}
					// The built-in CRM org is not held up by the other org's
					// Salesforce.
					waitUntil(t, "the built-in CRM org's messages delivered and written back", func() bool {
						return e.delivered(e.otherOrg) == (i+1)*crmFaultMessages && e.pending(e.otherOrg) == 0
					}, explain)
					if n, err := e.DB.CRMMessagesWithStatus(context.Background(), e.otherOrg, sb.StatusDelivered); err != nil || n != (i+1)*crmFaultMessages {
						t.Fatalf("built-in CRM has %d Delivered messages (err %v), want %d", n, err, (i+1)*crmFaultMessages)
					}
					if tc.calls > 0 {
						// Salesforce fails: messages are still delivered, the
						// write-backs wait and are retried.
						waitUntil(t, "Salesforce org delivered, write-back retried against the failing Salesforce", func() bool {
							return e.delivered(e.Org.ID) == wantSF && e.fake.DataCalls()-calls >= tc.calls
						}, explain)
						if e.pending(e.Org.ID) == 0 {
							t.Fatalf("no write-back pending while Salesforce fails: %s", explain())
						}
						tc.heal(e.fake)
						healed = true
					}
					waitUntil(t, "every Salesforce write-back done", func() bool {
						return e.delivered(e.Org.ID) == wantSF && e.pending(e.Org.ID) == 0
					}, explain)

					msgs := e.batchIDs(t, e.Org.ID, sfBatch)
					for _, id := range msgs {
						sent[id] = true
					}
					status, copies := e.sfRecords()
					for id := range sent {
						switch {
						case copies[id] != 1:
							t.Errorf("message %s has %d records in Salesforce, want 1", id, copies[id])
						case status[id] != string(sb.StatusDelivered):
							t.Errorf("message %s is %q in Salesforce, want Delivered", id, status[id])
						}
					}
					if len(copies) != len(sent) {
						t.Errorf("Salesforce has records of %d messages, Switchboard sent %d", len(copies), len(sent))
					}
					if counts := e.batchCounts(t, e.otherKey, otherBatch); counts[string(sb.StatusDelivered)] != crmFaultMessages {
						t.Errorf("built-in org batch: %v", counts)
					}
					t.Logf("%d Salesforce data calls in this case; calls so far: %v", e.fake.DataCalls()-calls, e.fake.CallCounts())
				})
				if t.Failed() {
					return
				}
			}
		})
	}
}

// batchIDs returns the ids of a bulk send's messages.
func (e *crmEnv) batchIDs(t *testing.T, orgID, batch string) []string {
	t.Helper()
	ms, err := e.DB.Messages(context.Background(), orgID, store.MessageFilter{BatchID: batch, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// batchCounts returns a bulk send's messages by status.
func (e *crmEnv) batchCounts(t *testing.T, key, batch string) map[string]int {
	t.Helper()
	var st struct {
		Counts map[string]int `json:"counts"`
	}
	e.Do(http.MethodGet, "/v1/bulk-sends/"+batch, key, nil).JSON(t, &st)
	return st.Counts
}
