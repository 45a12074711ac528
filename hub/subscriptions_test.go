package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/provider/sim"
	"github.com/switchboard/switchboard/provider/twilio"
	"github.com/switchboard/switchboard/store"
)

type subRow struct {
	GatewayID string `json:"gateway_id"`
	Status    string `json:"status"`
	Detail    string `json:"detail"`
	CanSend   bool   `json:"can_send"`
	CanOptIn  bool   `json:"can_opt_in"`
	CanOptOut bool   `json:"can_opt_out"`
	Locked    bool   `json:"locked"`
}

func subs(t *testing.T, e *hubtest.Env, key, phone string) map[string]subRow {
	t.Helper()
	r := e.Do("GET", "/v1/subscriptions?phone="+strings.ReplaceAll(phone, "+", "%2B"), key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("subscriptions: %d %s", r.Status, r.Body)
	}
	var out struct{ Subscriptions []subRow }
	r.JSON(t, &out)
	m := map[string]subRow{}
	for _, s := range out.Subscriptions {
		m[s.GatewayID] = s
	}
	return m
}

func secondGateway(t *testing.T, e *hubtest.Env) string {
	t.Helper()
	r := e.API("POST", "/v1/gateways", map[string]any{"provider": "sim", "number": "+12025550199", "name": "Second", "rate": 0})
	if r.Status != http.StatusCreated {
		t.Fatalf("second gateway: %d %s", r.Status, r.Body)
	}
	var g struct{ ID string }
	r.JSON(t, &g)
	return g.ID
}

func inboxBodies(e *hubtest.Env, phone string) []string {
	var out []string
	for _, m := range e.Carrier.Inbox(phone) {
		out = append(out, m.Body)
	}
	return out
}

// outgoing returns the outgoing messages stored for a number (confirmations
// are stored with the incoming message that asks for them).
func outgoing(t *testing.T, e *hubtest.Env, phone string) []*sb.Message {
	t.Helper()
	ms, err := e.DB.Messages(context.Background(), e.Org.ID, store.MessageFilter{PhoneHash: e.DB.Hasher().Phone(phone), Direction: sb.Outgoing, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// batchMessages returns a bulk send's messages by number.
func batchMessages(t *testing.T, e *hubtest.Env, batchID string, phones ...string) map[string]*sb.Message {
	t.Helper()
	out := map[string]*sb.Message{}
	for _, p := range phones {
		ms, err := e.DB.Messages(context.Background(), e.Org.ID, store.MessageFilter{BatchID: batchID, PhoneHash: e.DB.Hasher().Phone(p), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 {
			t.Fatalf("batch %s has %d messages to %s", batchID, len(ms), p)
		}
		out[p] = ms[0]
	}
	return out
}

func sendMode(e *hubtest.Env, gw, to, mode string) *hubtest.Response {
	return e.API("POST", "/v1/messages", map[string]any{"gateway_id": gw, "to": to, "body": "Reminder: classes start Monday", "mode": mode})
}

func TestKeywordsPerGateway(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		other := secondGateway(t, e)
		const phone = "+12025550151"
		e.Text(phone, e.Gateway.Number, "  Stop. ")
		e.WaitFor("opt-out confirmation", func() bool { return len(e.Carrier.Inbox(phone)) == 1 })
		if got := inboxBodies(e, phone); got[0] != sb.DefaultOptOutReply {
			t.Fatalf("confirmation: %q", got)
		}
		s := subs(t, e, e.Key, phone)
		if g := s[e.Gateway.ID]; g.Status != "Opt-Out" || g.Detail != "Opt-out keyword: STOP" || g.CanSend || !g.Locked || g.CanOptIn {
			t.Fatalf("gateway after STOP: %+v", g)
		}
		if g := s[other]; g.Status != "Opt-In" || !g.CanSend {
			t.Fatalf("other gateway touched by STOP: %+v", g)
		}
		// 1:1 refused before it is queued; automation and bulk create Error.
		if r := sendMode(e, e.Gateway.ID, phone, "one_to_one"); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "opted out") {
			t.Fatalf("1:1 to opted-out: %d %s", r.Status, r.Body)
		}
		r := sendMode(e, e.Gateway.ID, phone, "automation")
		var m sb.Message
		r.JSON(t, &m)
		if r.Status != http.StatusCreated || m.Status != sb.StatusError || m.Debug != "Previous Opt-out" {
			t.Fatalf("automation to opted-out: %d %s", r.Status, r.Body)
		}
		br := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "Bulk", "recipients": []map[string]string{{"to": phone}, {"to": "+12025550152"}}})
		var bres struct {
			BatchID         string `json:"batch_id"`
			Queued, Blocked int
		}
		br.JSON(t, &bres)
		if bres.Queued != 1 || bres.Blocked != 1 {
			t.Fatalf("bulk: %s", br.Body)
		}
		if bm := batchMessages(t, e, bres.BatchID, phone)[phone]; bm.Status != sb.StatusError || bm.Debug != "Previous Opt-out" {
			t.Fatalf("bulk message to the opted-out number: %+v", bm)
		}
		e.WaitFor("bulk delivered", func() bool { return len(e.Carrier.Inbox("+12025550152")) == 1 })
		if got := inboxBodies(e, phone); len(got) != 1 {
			t.Fatalf("opted-out number got more messages: %q", got)
		}
		// The other gateway still sends.
		if r := sendMode(e, other, phone, "one_to_one"); r.Status != http.StatusCreated {
			t.Fatalf("send on the other gateway: %d %s", r.Status, r.Body)
		}
		// HELP answers and changes nothing; START opts back in.
		e.Text(phone, e.Gateway.Number, "help")
		e.WaitFor("help answer", func() bool {
			return strings.Contains(strings.Join(inboxBodies(e, phone), "|"), sb.DefaultHelpText)
		})
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "Opt-Out" {
			t.Fatalf("state changed by HELP: %+v", s)
		}
		e.Text(phone, e.Gateway.Number, "START")
		e.WaitFor("opt-in confirmation", func() bool {
			return strings.Contains(strings.Join(inboxBodies(e, phone), "|"), sb.DefaultOptInReply)
		})
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "Opt-In" || s.Detail != "Opt-in keyword: START" {
			t.Fatalf("after START: %+v", s)
		}
		// "stop please" is not a keyword: the opted-in number stays opted in
		// and gets no confirmation.
		n := len(outgoing(t, e, phone))
		e.Text(phone, e.Gateway.Number, "stop please")
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "Opt-In" || s.Detail != "Opt-in keyword: START" {
			t.Fatalf(`"stop please" changed the subscription: %+v`, s)
		}
		if got := len(outgoing(t, e, phone)); got != n {
			t.Fatalf(`"stop please" was answered: %d outgoing messages, had %d`, got, n)
		}
		hist := e.API("GET", "/v1/subscriptions/history?phone=%2B12025550151", nil)
		if !strings.Contains(string(hist.Body), "Opt-out keyword: STOP") || !strings.Contains(string(hist.Body), "Opt-in keyword: START") {
			t.Fatalf("history: %s", hist.Body)
		}
	})
}

func TestCustomKeywords(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		r := e.API("PATCH", "/v1/gateways/"+e.Gateway.ID, map[string]any{
			"keywords":      map[string]any{"opt_out": []string{"ARRET", "STOP PLEASE"}, "opt_in": []string{"GO"}, "help": []string{"AIDE"}},
			"opt_out_reply": "Vous êtes désabonné.", "opt_in_reply": "Vous êtes réabonné.", "help_text": "Aide: répondez ARRET."})
		if r.Status != http.StatusOK {
			t.Fatalf("edit keywords: %d %s", r.Status, r.Body)
		}
		e.Text("+12025550153", e.Gateway.Number, "STOP") // no longer configured
		if n := len(outgoing(t, e, "+12025550153")); n != 0 {
			t.Fatalf("unconfigured STOP was answered (%d messages)", n)
		}
		e.Text("+12025550154", e.Gateway.Number, "stop please!")
		e.WaitFor("confirmation", func() bool { return len(e.Carrier.Inbox("+12025550154")) == 1 })
		if s := subs(t, e, e.Key, "+12025550153")[e.Gateway.ID]; s.Status != "Opt-In" {
			t.Fatalf("unconfigured STOP acted: %+v", s)
		}
		if s := subs(t, e, e.Key, "+12025550154")[e.Gateway.ID]; s.Status != "Opt-Out" || s.Detail != "Opt-out keyword: STOP PLEASE" {
			t.Fatalf("configured phrase: %+v", s)
		}
		if got := inboxBodies(e, "+12025550154"); got[0] != "Vous êtes désabonné." {
			t.Fatalf("reply %q", got)
		}
		// The custom help keyword answers with the help text; the custom
		// opt-in keyword with the custom confirmation.
		e.Text("+12025550154", e.Gateway.Number, "aide?")
		e.WaitFor("help answer", func() bool { return len(e.Carrier.Inbox("+12025550154")) == 2 })
		if got := inboxBodies(e, "+12025550154"); got[1] != "Aide: répondez ARRET." {
			t.Fatalf("AIDE answered %q", got)
		}
		e.Text("+12025550154", e.Gateway.Number, "Go!")
		e.WaitFor("opt-in confirmation", func() bool { return len(e.Carrier.Inbox("+12025550154")) == 3 })
		if got := inboxBodies(e, "+12025550154"); got[2] != "Vous êtes réabonné." {
			t.Fatalf("GO answered %q", got)
		}
		if s := subs(t, e, e.Key, "+12025550154")[e.Gateway.ID]; s.Status != "Opt-In" || s.Detail != "Opt-in keyword: GO" {
			t.Fatalf("custom opt-in keyword: %+v", s)
		}
		bad := e.API("PATCH", "/v1/gateways/"+e.Gateway.ID, map[string]any{"keywords": map[string]any{"opt_out": []string{"GO"}, "opt_in": []string{"GO"}}})
		if bad.Status != http.StatusBadRequest || !strings.Contains(string(bad.Body), "GO") {
			t.Fatalf("overlapping keywords accepted: %d %s", bad.Status, bad.Body)
		}
	})
}

func TestManualOptInOut(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		_, limitedKey := addUser(t, e, "limited@example.org", sb.PermLimitedAccess)
		_, featureKey := addUser(t, e, "feature@example.org", sb.PermLimitedAccess, sb.PermManualOptInOut)
		const phone = "+12025550155"
		body := func(status string) map[string]any {
			return map[string]any{"gateway_id": e.Gateway.ID, "phone": phone, "status": status}
		}
		if r := e.Do("POST", "/v1/subscriptions", limitedKey, body("Opt-Out")); r.Status != http.StatusForbidden {
			t.Fatalf("limited access opted out: %d %s", r.Status, r.Body)
		}
		if s := subs(t, e, limitedKey, phone)[e.Gateway.ID]; s.CanOptIn || s.CanOptOut {
			t.Fatalf("limited access sees buttons: %+v", s)
		}
		if r := e.Do("POST", "/v1/subscriptions", featureKey, body("Opt-Out")); r.Status != http.StatusOK {
			t.Fatalf("feature user: %d %s", r.Status, r.Body)
		}
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "Opt-Out" || s.Detail != "Manual opt-out by feature" || !s.CanOptIn {
			t.Fatalf("manual opt-out: %+v", s)
		}
		if r := e.API("POST", "/v1/subscriptions", body("Opt-In")); r.Status != http.StatusOK {
			t.Fatalf("manual opt-in after manual opt-out: %d %s", r.Status, r.Body)
		}
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "Opt-In" || s.Detail != "Manual opt-in by Ada Admin" {
			t.Fatalf("manual opt-in: %+v", s)
		}
		// Automations may set their own detail.
		auto := map[string]any{"gateway_id": e.Gateway.ID, "phone": phone, "status": "Opt-Out", "via": "automation", "detail": "Unsubscribed via web form"}
		if r := e.API("POST", "/v1/subscriptions", auto); r.Status != http.StatusOK {
			t.Fatalf("automation: %d %s", r.Status, r.Body)
		}
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Detail != "Unsubscribed via web form" {
			t.Fatalf("automation detail: %+v", s)
		}
		// A keyword opt-out cannot be undone by hand.
		e.Text(phone, e.Gateway.Number, "UNSUBSCRIBE")
		e.WaitFor("keyword opt-out", func() bool { return subs(t, e, e.Key, phone)[e.Gateway.ID].Locked })
		r := e.API("POST", "/v1/subscriptions", body("Opt-In"))
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "only an opt-in keyword") {
			t.Fatalf("manual opt-in after keyword: %d %s", r.Status, r.Body)
		}
	})
}

func TestMandatoryOptInMode(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		// "Create Opt-in for Incoming SMS" is an option of mandatory mode.
		r := e.API("PATCH", "/v1/org/settings", map[string]any{"create_opt_in_on_incoming": true})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"field":"create_opt_in_on_incoming"`) || !strings.Contains(string(r.Body), "option of mandatory opt-in mode") {
			t.Fatalf("create opt-in in default mode: %d %s", r.Status, r.Body)
		}
		if r := e.API("PATCH", "/v1/org/settings", map[string]any{"opt_in_mode": "mandatory"}); r.Status != http.StatusOK {
			t.Fatalf("settings: %d %s", r.Status, r.Body)
		}
		const phone = "+12025550156"
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "No Opt-In" || s.CanSend {
			t.Fatalf("mandatory mode: %+v", s)
		}
		if r := sendMode(e, e.Gateway.ID, phone, "one_to_one"); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "not opted in") {
			t.Fatalf("1:1 in mandatory mode: %d %s", r.Status, r.Body)
		}
		var m sb.Message
		sendMode(e, e.Gateway.ID, phone, "automation").JSON(t, &m)
		if m.Status != sb.StatusError || m.Debug != "No Opt-In" {
			t.Fatalf("automation in mandatory mode: %+v", m)
		}
		// Bulk: the number not opted in gets Error "No Opt-In", the opted-in
		// one is sent.
		const optedIn = "+12025550179"
		if r := e.API("POST", "/v1/subscriptions", map[string]any{"gateway_id": e.Gateway.ID, "phone": optedIn, "status": "Opt-In"}); r.Status != http.StatusOK {
			t.Fatalf("opt-in: %d %s", r.Status, r.Body)
		}
		br := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "Bulk", "recipients": []map[string]string{{"to": phone}, {"to": optedIn}}})
		var bres struct {
			BatchID         string `json:"batch_id"`
			Queued, Blocked int
		}
		br.JSON(t, &bres)
		if bres.Queued != 1 || bres.Blocked != 1 {
			t.Fatalf("bulk in mandatory mode: %s", br.Body)
		}
		bm := batchMessages(t, e, bres.BatchID, phone, optedIn)
		if bm[phone].Status != sb.StatusError || bm[phone].Debug != "No Opt-In" || bm[optedIn].Status == sb.StatusError {
			t.Fatalf("bulk in mandatory mode: %+v %+v", bm[phone], bm[optedIn])
		}
		e.WaitFor("bulk delivered", func() bool { return len(e.Carrier.Inbox(optedIn)) == 1 })
		if n := len(e.Carrier.Inbox(phone)); n != 0 {
			t.Fatalf("the number not opted in got %d messages", n)
		}
		// An incoming text does not opt in unless the setting is on.
		e.Text(phone, e.Gateway.Number, "Hello?")
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "No Opt-In" {
			t.Fatalf("incoming opted in without the setting: %+v", s)
		}
		e.API("PATCH", "/v1/org/settings", map[string]any{"create_opt_in_on_incoming": true})
		e.Text(phone, e.Gateway.Number, "Hello again")
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "Opt-In" || s.Detail != "Opt-in from incoming SMS" {
			t.Fatalf("create opt-in for incoming: %+v", s)
		}
		if r := sendMode(e, e.Gateway.ID, phone, "one_to_one"); r.Status != http.StatusCreated {
			t.Fatalf("1:1 after opt-in: %d %s", r.Status, r.Body)
		}
		// After a keyword opt-out, texting does not opt back in.
		e.Text(phone, e.Gateway.Number, "STOP")
		e.Text(phone, e.Gateway.Number, "Actually one question")
		if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "Opt-Out" {
			t.Fatalf("incoming text undid a keyword opt-out: %+v", s)
		}
		// Nor after a manual, automation, imported or provider opt-out.
		optOut := func(phone string, body map[string]any) {
			t.Helper()
			body["gateway_id"], body["phone"], body["status"] = e.Gateway.ID, phone, "Opt-Out"
			if r := e.API("POST", "/v1/subscriptions", body); r.Status != http.StatusOK {
				t.Fatalf("opt-out: %d %s", r.Status, r.Body)
			}
		}
		optOut("+12025550165", map[string]any{})
		optOut("+12025550166", map[string]any{"via": "automation", "detail": "Unsubscribed via web form"})
		if r := e.Do("POST", "/v1/subscriptions/import", e.Key, []byte("phone\n+12025550167\n"), "Content-Type", "text/csv"); r.Status != http.StatusOK {
			t.Fatalf("import: %d %s", r.Status, r.Body)
		}
		const unsubscribed = "+12025550168"
		if err := e.Carrier.SetHandset(unsubscribed, sim.Handset{Behaviour: sim.Unsubscribed}); err != nil {
			t.Fatal(err)
		}
		if r := e.API("POST", "/v1/subscriptions", map[string]any{"gateway_id": e.Gateway.ID, "phone": unsubscribed, "status": "Opt-In"}); r.Status != http.StatusOK {
			t.Fatalf("opt-in: %d %s", r.Status, r.Body)
		}
		e.WaitStatus(e.Send(unsubscribed, "Welcome").ID, sb.StatusFailed)
		for p, detail := range map[string]string{
			"+12025550165": "Manual opt-out by Ada Admin",
			"+12025550166": "Unsubscribed via web form",
			"+12025550167": "Imported legacy opt-out",
			unsubscribed:   "Opt-out at provider: Simulated carrier 21610: recipient has unsubscribed",
		} {
			e.Text(p, e.Gateway.Number, "hello")
			if s := subs(t, e, e.Key, p)[e.Gateway.ID]; s.Status != "Opt-Out" || s.Detail != detail {
				t.Fatalf("%s: an incoming text undid the opt-out %q: %+v", p, detail, s)
			}
		}
		// Leaving mandatory mode needs the option off too.
		r = e.API("PATCH", "/v1/org/settings", map[string]any{"opt_in_mode": "default"})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "create_opt_in_on_incoming") {
			t.Fatalf("default mode with create opt-in: %d %s", r.Status, r.Body)
		}
		if r := e.API("PATCH", "/v1/org/settings", map[string]any{"opt_in_mode": "default", "create_opt_in_on_incoming": false}); r.Status != http.StatusOK {
			t.Fatalf("back to default mode: %d %s", r.Status, r.Body)
		}
	})
}

// countingCRMs resolves every org to the built-in CRM and counts the
// phone lookups made.
type countingCRMs struct {
	crm               sb.CRM
	byPhone, byPhones atomic.Int64
	phonesAsked       atomic.Int64
}

func (c *countingCRMs) For(context.Context, *sb.Org) (sb.CRM, error) {
	return countingCRM{c.crm, c}, nil
}

type countingCRM struct {
	sb.CRM
	c *countingCRMs
}

func (c countingCRM) FindByPhone(ctx context.Context, org *sb.Org, phone string) ([]sb.CRMRecord, error) {
	c.c.byPhone.Add(1)
	return c.CRM.FindByPhone(ctx, org, phone)
}

func (c countingCRM) FindByPhones(ctx context.Context, org *sb.Org, phones []string) (map[string][]sb.CRMRecord, error) {
	c.c.byPhones.Add(1)
	c.c.phonesAsked.Add(int64(len(phones)))
	return c.CRM.FindByPhones(ctx, org, phones)
}

func TestGlobalOptOut(t *testing.T) {
	crms := &countingCRMs{}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		crms.crm = e.Builtin
		contact := func(last, phone string, optOut bool) sb.CRMRecord {
			t.Helper()
			r := e.API("POST", "/v1/contacts", map[string]any{"first_name": "Pat", "last_name": last, "phone": phone, "opt_out": optOut})
			var c sb.CRMRecord
			r.JSON(t, &c)
			if r.Status != http.StatusCreated {
				t.Fatalf("contact: %d %s", r.Status, r.Body)
			}
			return c
		}
		c := contact("Texts", "+12025550157", true)
		base := map[string]any{"gateway_id": e.Gateway.ID, "to": "+12025550157", "body": "hi", "record_id": c.ID}
		if r := e.API("POST", "/v1/messages", base); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "global opt-out") {
			t.Fatalf("1:1 to global opt-out: %d %s", r.Status, r.Body)
		}
		base["mode"] = "automation"
		var m sb.Message
		e.API("POST", "/v1/messages", base).JSON(t, &m)
		if m.Status != sb.StatusError || m.Debug != "Global Opt-out" {
			t.Fatalf("automation to global opt-out: %+v", m)
		}
		br := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "x", "recipients": []map[string]string{{"record_id": c.ID}, {"to": "+12025550158"}}})
		if !strings.Contains(string(br.Body), `"reason":"Global opt-out"`) || !strings.Contains(string(br.Body), `"accepted":1`) {
			t.Fatalf("bulk with global opt-out: %s", br.Body)
		}

		// Addressed by number only, the records with that number count.
		byPhone := map[string]any{"gateway_id": e.Gateway.ID, "to": "(202) 555-0157", "body": "hi"}
		r := e.API("POST", "/v1/messages", byPhone)
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "not sent: CRM record "+c.ID+" with this number has the global opt-out flag set") {
			t.Fatalf("1:1 by number to global opt-out: %d %s", r.Status, r.Body)
		}
		byPhone["mode"] = "automation"
		r = e.API("POST", "/v1/messages", byPhone)
		m = sb.Message{}
		r.JSON(t, &m)
		if r.Status != http.StatusCreated || m.Status != sb.StatusError || m.Debug != "Global Opt-out" || m.RecordID != c.ID {
			t.Fatalf("automation by number to global opt-out: %d %s", r.Status, r.Body)
		}
		// Another record with the number, without the flag: the flag of any
		// of them wins.
		contact("Sibling", "+12025550157", false)
		if r := e.API("POST", "/v1/messages", map[string]any{"gateway_id": e.Gateway.ID, "to": "+12025550157", "body": "hi"}); r.Status != http.StatusConflict {
			t.Fatalf("1:1 to a number two records share, one opted out: %d %s", r.Status, r.Body)
		}
		// One record with the number: the message is linked to it.
		single := contact("Single", "+12025550159", false)
		contact("Twin A", "+12025550169", false)
		contact("Twin B", "+12025550169", false)
		m = *e.Send("+12025550159", "Linked?")
		if m.RecordID != single.ID {
			t.Fatalf("message to a number one record has: record %q, want %q", m.RecordID, single.ID)
		}
		if m := e.Send("+12025550169", "Two records"); m.RecordID != "" {
			t.Fatalf("message to a number two records have was linked to %s", m.RecordID)
		}

		// Bulk: numbers are looked up in one set-based call.
		before, beforeOne := crms.byPhones.Load(), crms.byPhone.Load()
		recips := []map[string]string{{"to": "+12025550157"}, {"to": "+12025550159"}, {"to": "+12025550169"}}
		for i := range 20 {
			recips = append(recips, map[string]string{"to": fmt.Sprintf("+120255502%02d", i)})
		}
		r = e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "Bulk by number", "recipients": recips})
		var res struct {
			BatchID  string `json:"batch_id"`
			Accepted int
			Excluded []struct {
				Index    int
				RecordID string `json:"record_id"`
				Reason   string
			}
		}
		r.JSON(t, &res)
		if r.Status != http.StatusAccepted || res.Accepted != 22 || len(res.Excluded) != 1 || res.Excluded[0].Index != 0 ||
			res.Excluded[0].Reason != "Global opt-out" || res.Excluded[0].RecordID != c.ID {
			t.Fatalf("bulk by number: %d %s", r.Status, r.Body)
		}
		if n := crms.byPhones.Load() - before; n != 1 || crms.byPhone.Load() != beforeOne {
			t.Fatalf("bulk of 23 numbers made %d set-based and %d single phone lookups", n, crms.byPhone.Load()-beforeOne)
		}
		ms, err := e.DB.Messages(context.Background(), e.Org.ID, store.MessageFilter{BatchID: res.BatchID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		linked := 0
		for _, m := range ms {
			if m.RecordID != "" {
				linked++
				if m.RecordID != single.ID {
					t.Fatalf("bulk message linked to %s", m.RecordID)
				}
			}
		}
		if len(ms) != 22 || linked != 1 {
			t.Fatalf("bulk: %d messages, %d linked", len(ms), linked)
		}
		for _, p := range []string{"+12025550157"} {
			if n := len(e.Carrier.Inbox(p)); n != 0 {
				t.Fatalf("a globally opted-out number was texted %d times", n)
			}
		}
	}, hubtest.Options{CRMs: crms})
}

func TestImportLegacyOptOuts(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		other := secondGateway(t, e)
		// A number already opted out by hand before the import.
		if r := e.API("POST", "/v1/subscriptions", map[string]any{"gateway_id": e.Gateway.ID, "phone": "+12025550178", "status": "Opt-Out"}); r.Status != http.StatusOK {
			t.Fatalf("manual opt-out: %d %s", r.Status, r.Body)
		}
		csv := "phone,gateway_id,detail\n(202) 555-0160,,\n+12025550161," + e.Gateway.ID + ",Opted out on paper form\nnot-a-number,,\n+12025550162,no-such-gateway,\n+12025550178," + e.Gateway.ID + ",\n"
		importCSV := func(run string, imported, already int) {
			t.Helper()
			r := e.Do("POST", "/v1/subscriptions/import", e.Key, []byte(csv), "Content-Type", "text/csv")
			var res struct {
				Imported, Already int
				Rejected          []struct{ Reason string }
			}
			r.JSON(t, &res)
			if r.Status != http.StatusOK || res.Imported != imported || res.Already != already || len(res.Rejected) != 2 {
				t.Fatalf("%s: %d %s", run, r.Status, r.Body)
			}
		}
		importCSV("first run", 3, 1)
		importCSV("second run", 0, 4)
		s := subs(t, e, e.Key, "+12025550160")
		if s[e.Gateway.ID].Status != "Opt-Out" || s[other].Status != "Opt-Out" || s[e.Gateway.ID].Detail != "Imported legacy opt-out" {
			t.Fatalf("imported on every gateway: %+v", s)
		}
		s = subs(t, e, e.Key, "+12025550161")
		if s[e.Gateway.ID].Detail != "Opted out on paper form" || s[other].Status != "Opt-In" {
			t.Fatalf("imported on one gateway: %+v", s)
		}
		if s := subs(t, e, e.Key, "+12025550178")[e.Gateway.ID]; s.Detail != "Manual opt-out by Ada Admin" {
			t.Fatalf("import changed an existing opt-out: %+v", s)
		}
		// The people opt back in since; running the import again leaves
		// them opted in.
		e.Text("+12025550160", e.Gateway.Number, "START")
		if r := e.API("POST", "/v1/subscriptions", map[string]any{"gateway_id": e.Gateway.ID, "phone": "+12025550178", "status": "Opt-In"}); r.Status != http.StatusOK {
			t.Fatalf("manual opt-in: %d %s", r.Status, r.Body)
		}
		importCSV("run after START", 0, 4)
		s = subs(t, e, e.Key, "+12025550160")
		if s[e.Gateway.ID].Status != "Opt-In" || s[e.Gateway.ID].Detail != "Opt-in keyword: START" || s[other].Status != "Opt-Out" {
			t.Fatalf("re-run import after START: %+v", s)
		}
		if s := subs(t, e, e.Key, "+12025550178")[e.Gateway.ID]; s.Status != "Opt-In" {
			t.Fatalf("re-run import after a manual opt-in: %+v", s)
		}

		// From the CRM's global opt-out flags.
		ctx := context.Background()
		for i := range 3 {
			rec := &sb.CRMRecord{LastName: fmt.Sprint("Legacy", i), Phone: fmt.Sprintf("+1202555017%d", i), OptOut: i < 2}
			if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveContact(ctx, e.Org.ID, rec) }); err != nil {
				t.Fatal(err)
			}
		}
		r := e.API("POST", "/v1/subscriptions/import", map[string]string{"source": "crm"})
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"imported":4`) {
			t.Fatalf("from CRM: %d %s", r.Status, r.Body)
		}
		if s := subs(t, e, e.Key, "+12025550172")[e.Gateway.ID]; s.Status != "Opt-In" {
			t.Fatalf("record without the flag imported: %+v", s)
		}
		e.Text("+12025550170", "+12025550199", "UNSTOP") // the second gateway
		r = e.API("POST", "/v1/subscriptions/import", map[string]string{"source": "crm"})
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"imported":0,"already":4`) {
			t.Fatalf("from CRM again: %d %s", r.Status, r.Body)
		}
		if s := subs(t, e, e.Key, "+12025550170"); s[other].Status != "Opt-In" || s[e.Gateway.ID].Status != "Opt-Out" {
			t.Fatalf("re-run CRM import after UNSTOP: %+v", s)
		}
		_, limitedKey := addUser(t, e, "limited2@example.org", sb.PermLimitedAccess)
		r = e.Do("POST", "/v1/subscriptions/import", limitedKey, []byte(csv), "Content-Type", "text/csv")
		if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), `this needs the \"System Admin\" permission set"`) {
			t.Fatalf("limited user imported: %d %s", r.Status, r.Body)
		}
	})
}

// TestOptOutLockKept: once a number opted out from the phone, no other
// opt-out lifts the lock; only an opt-in keyword from the phone does.
func TestOptOutLockKept(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		const phone = "+12025550163"
		set := func(status, via string) *hubtest.Response {
			return e.API("POST", "/v1/subscriptions", map[string]any{"gateway_id": e.Gateway.ID, "phone": phone, "status": status, "via": via, "detail": "CRM flow"})
		}
		e.Text(phone, e.Gateway.Number, "STOP")
		e.WaitFor("keyword opt-out", func() bool { return subs(t, e, e.Key, phone)[e.Gateway.ID].Locked })
		for _, via := range []string{"manual", "automation"} {
			if r := set("Opt-Out", via); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"detail":"Opt-out keyword: STOP"`) || !strings.Contains(string(r.Body), `"locked":true`) {
				t.Fatalf("%s opt-out over the lock: %d %s", via, r.Status, r.Body)
			}
			if s := subs(t, e, e.Key, phone)[e.Gateway.ID]; s.Status != "Opt-Out" || !s.Locked || s.CanOptIn || s.Detail != "Opt-out keyword: STOP" {
				t.Fatalf("after %s opt-out: %+v", via, s)
			}
			r := set("Opt-In", via)
			if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "(Opt-out keyword: STOP); only an opt-in keyword such as START texted from the phone can opt it back in") {
				t.Fatalf("%s opt-in after STOP and a %s opt-out: %d %s", via, via, r.Status, r.Body)
			}
		}
		if r := sendMode(e, e.Gateway.ID, phone, "one_to_one"); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "opted out") {
			t.Fatalf("1:1 after the refused opt-in: %d %s", r.Status, r.Body)
		}
		hist := e.API("GET", "/v1/subscriptions/history?phone=%2B12025550163", nil)
		if !strings.Contains(string(hist.Body), "Manual opt-out by Ada Admin") || !strings.Contains(string(hist.Body), "CRM flow") {
			t.Fatalf("the later opt-outs are not in the history: %s", hist.Body)
		}
		e.Text(phone, e.Gateway.Number, "unstop")
		e.WaitFor("keyword opt-in", func() bool { return subs(t, e, e.Key, phone)[e.Gateway.ID].Status == "Opt-In" })
		if r := sendMode(e, e.Gateway.ID, phone, "one_to_one"); r.Status != http.StatusCreated {
			t.Fatalf("1:1 after UNSTOP: %d %s", r.Status, r.Body)
		}
	})
}

// TestProviderOptOutIsLocked: a provider's "unsubscribed" (the recipient
// replied STOP at the carrier) is locked like an opt-out keyword, whether it
// comes as the send's answer or in a status callback (naming our message or
// only the provider's).
func TestProviderOptOutIsLocked(t *testing.T) {
	var sids atomic.Int64
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"sid":"SM%032d","status":"queued"}`, sids.Add(1))
	}))
	t.Cleanup(fake.Close)
	opts := hubtest.Options{Providers: []sb.Provider{twilio.New(twilio.Options{})}}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		locked := func(gw, phone, detail string) {
			t.Helper()
			s := subs(t, e, e.Key, phone)[gw]
			if s.Status != "Opt-Out" || s.Detail != detail || !s.Locked || s.CanOptIn || s.CanSend {
				t.Fatalf("%s after the provider's opt-out: %+v", phone, s)
			}
			r := e.API("POST", "/v1/subscriptions", map[string]any{"gateway_id": gw, "phone": phone, "status": "Opt-In"})
			if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "only an opt-in keyword") {
				t.Fatalf("manual opt-in after the provider's opt-out: %d %s", r.Status, r.Body)
			}
			if r := e.API("POST", "/v1/subscriptions", map[string]any{"gateway_id": gw, "phone": phone, "status": "Opt-Out"}); r.Status != http.StatusOK {
				t.Fatalf("manual opt-out: %d %s", r.Status, r.Body)
			}
			if s := subs(t, e, e.Key, phone)[gw]; !s.Locked || s.CanOptIn || s.Detail != detail {
				t.Fatalf("a manual opt-out lifted the provider's lock: %+v", s)
			}
		}
		// The simulated carrier refuses the send with 21610.
		const simPhone = "+12025550164"
		if err := e.Carrier.SetHandset(simPhone, sim.Handset{Behaviour: sim.Unsubscribed}); err != nil {
			t.Fatal(err)
		}
		e.WaitStatus(e.Send(simPhone, "hello").ID, sb.StatusFailed)
		locked(e.Gateway.ID, simPhone, "Opt-out at provider: Simulated carrier 21610: recipient has unsubscribed")
		e.Text(simPhone, e.Gateway.Number, "START")
		e.WaitFor("keyword opt-in", func() bool { return subs(t, e, e.Key, simPhone)[e.Gateway.ID].Status == "Opt-In" })

		// Twilio reports 21610 in status callbacks.
		ctx := context.Background()
		sandbox := true
		tw, err := e.Hub.CreateGateway(ctx, e.Admin, hub.GatewayRequest{Provider: "twilio", Number: "+12025550185", Sandbox: &sandbox, Rate: new(float64),
			Config: map[string]string{"account_sid": "AC" + strings.Repeat("c3", 16), "auth_token": "twilio-auth-token-0123456789", "api_base_url": fake.URL}})
		if err != nil {
			t.Fatal(err)
		}
		real, err := e.DB.Gateway(ctx, e.Org.ID, tw.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i, byOurID := range []bool{true, false} {
			phone := fmt.Sprintf("+1202555018%d", 6+i)
			r := e.API("POST", "/v1/messages", map[string]any{"gateway_id": tw.ID, "to": phone, "body": "Your appointment is tomorrow"})
			var m sb.Message
			r.JSON(t, &m)
			e.WaitFor("provider id", func() bool { return e.Message(m.ID).ProviderMessageID != "" })
			path := "/webhooks/twilio/" + tw.ID + "/status"
			if byOurID {
				path += "?" + twilio.MessageIDParam + "=" + m.ID
			}
			form := url.Values{"MessageSid": {e.Message(m.ID).ProviderMessageID}, "AccountSid": {real.Config["account_sid"]}, "MessageStatus": {"failed"}, "ErrorCode": {"21610"}}
			sig := twilio.Signature(real.Config["auth_token"], e.Server.URL+path, form)
			if r := e.Do("POST", path, "", []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig); r.Status != http.StatusOK {
				t.Fatalf("status callback: %d %s", r.Status, r.Body)
			}
			if got := e.Message(m.ID); got.Status != sb.StatusFailed || got.ErrorCode != "21610" {
				t.Fatalf("message after the callback: %+v", got)
			}
			locked(tw.ID, phone, "Opt-out at provider: Twilio 21610: recipient has unsubscribed (replied STOP)")
		}
	}, opts)
}

// TestGatewayVisibility: a user limited to some gateways sees only them in
// the subscriptions view and cannot send or change subscriptions through
// the others; a System Admin always has every gateway.
func TestGatewayVisibility(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		other := secondGateway(t, e)
		if r := e.API("POST", "/v1/users", map[string]any{"email": "x@example.org", "name": "X", "gateway_ids": []string{"no-such-gateway"}}); r.Status != http.StatusBadRequest ||
			!strings.Contains(string(r.Body), `gateway \"no-such-gateway\" is not a gateway of this org`) {
			t.Fatalf("unknown gateway: %d %s", r.Status, r.Body)
		}
		r := e.API("POST", "/v1/users", map[string]any{"email": "main-only@example.org", "name": "Mai", "gateway_ids": []string{e.Gateway.ID},
			"permissions": []string{"Limited Access", "Feature: Bulk SMS", "Feature: Manual Opt-In/Opt-Out"}})
		var u sb.User
		r.JSON(t, &u)
		if r.Status != http.StatusCreated || len(u.GatewayIDs) != 1 || u.GatewayIDs[0] != e.Gateway.ID {
			t.Fatalf("create user: %d %s", r.Status, r.Body)
		}
		var key struct{ Key string }
		e.API("POST", "/v1/api-keys", map[string]any{"user_id": u.ID, "name": "mai"}).JSON(t, &key)
		if me := e.Do("GET", "/v1/me", key.Key, nil); !strings.Contains(string(me.Body), `"gateway_ids":["`+e.Gateway.ID+`"]`) {
			t.Fatalf("me: %s", me.Body)
		}

		const phone = "+12025550180"
		if s := subs(t, e, key.Key, phone); len(s) != 1 || s[e.Gateway.ID].Status != "Opt-In" {
			t.Fatalf("restricted user's subscriptions view: %+v", s)
		}
		if s := subs(t, e, e.Key, phone); len(s) != 2 {
			t.Fatalf("admin's subscriptions view: %+v", s)
		}
		var gws struct{ Gateways []struct{ ID string } }
		e.Do("GET", "/v1/gateways", key.Key, nil).JSON(t, &gws)
		if len(gws.Gateways) != 1 || gws.Gateways[0].ID != e.Gateway.ID {
			t.Fatalf("restricted user's gateways: %+v", gws)
		}

		forbidden := func(what string, r *hubtest.Response) {
			t.Helper()
			if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), `you do not have access to gateway \"Second\" (+12025550199, `+other+`)`) {
				t.Fatalf("%s through the other gateway: %d %s", what, r.Status, r.Body)
			}
		}
		send := func(gw, mode string) *hubtest.Response {
			return e.Do("POST", "/v1/messages", key.Key, map[string]any{"gateway_id": gw, "to": phone, "body": "hi", "mode": mode})
		}
		forbidden("1:1", send(other, "one_to_one"))
		forbidden("automation", send(other, "automation"))
		forbidden("bulk", e.Do("POST", "/v1/bulk-sends", key.Key, map[string]any{"gateway_id": other, "body": "hi", "recipients": []map[string]string{{"to": phone}}}))
		forbidden("opt-out", e.Do("POST", "/v1/subscriptions", key.Key, map[string]any{"gateway_id": other, "phone": phone, "status": "Opt-Out"}))
		if n := len(outgoing(t, e, phone)); n != 0 {
			t.Fatalf("%d messages stored for refused sends", n)
		}
		if r := send(e.Gateway.ID, "one_to_one"); r.Status != http.StatusCreated {
			t.Fatalf("1:1 through the user's gateway: %d %s", r.Status, r.Body)
		}
		// The history shows only the user's gateways.
		e.API("POST", "/v1/subscriptions", map[string]any{"gateway_id": other, "phone": phone, "status": "Opt-Out"})
		if h := e.Do("GET", "/v1/subscriptions/history?phone=%2B12025550180", key.Key, nil); strings.Contains(string(h.Body), other) {
			t.Fatalf("history shows the other gateway: %s", h.Body)
		}

		// Reads: the other gateway's messages, bulk sends and settings are
		// not shown to the user.
		var mine sb.Message
		e.Do("POST", "/v1/messages", key.Key, map[string]any{"gateway_id": e.Gateway.ID, "to": "+12025550181", "body": "mine", "mode": "automation"}).JSON(t, &mine)
		var theirs sb.Message
		e.API("POST", "/v1/messages", map[string]any{"gateway_id": other, "to": "+12025550181", "body": "theirs", "mode": "automation"}).JSON(t, &theirs)
		var bulk struct {
			BatchID string `json:"batch_id"`
		}
		e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": other, "body": "theirs", "recipients": []map[string]string{{"to": "+12025550182"}}}).JSON(t, &bulk)
		if mine.ID == "" || theirs.ID == "" || bulk.BatchID == "" {
			t.Fatalf("messages for the reads: %+v %+v %+v", mine, theirs, bulk)
		}
		var list struct{ Messages []sb.Message }
		for _, q := range []string{"", "?phone=%2B12025550181"} {
			e.Do("GET", "/v1/messages"+q, key.Key, nil).JSON(t, &list)
			if len(list.Messages) == 0 {
				t.Fatalf("restricted user's messages%s: none", q)
			}
			for _, m := range list.Messages {
				if m.GatewayID != e.Gateway.ID {
					t.Fatalf("restricted user's messages%s include gateway %s", q, m.GatewayID)
				}
			}
			e.API("GET", "/v1/messages"+q, nil).JSON(t, &list)
			if !slices.ContainsFunc(list.Messages, func(m sb.Message) bool { return m.ID == theirs.ID }) {
				t.Fatalf("admin's messages%s lack the other gateway's message", q)
			}
		}
		for what, path := range map[string]string{
			"messages of the gateway": "/v1/messages?gateway_id=" + other,
			"the message":             "/v1/messages/" + theirs.ID,
			"the gateway":             "/v1/gateways/" + other,
			"the bulk send":           "/v1/bulk-sends/" + bulk.BatchID,
		} {
			r := e.Do("GET", path, key.Key, nil)
			if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), other) || strings.Contains(string(r.Body), "theirs") {
				t.Fatalf("%s of the other gateway: %d %s", what, r.Status, r.Body)
			}
			if r := e.API("GET", path, nil); r.Status != http.StatusOK {
				t.Fatalf("admin reads %s: %d %s", what, r.Status, r.Body)
			}
		}
		if r := e.Do("GET", "/v1/messages/"+mine.ID, key.Key, nil); r.Status != http.StatusOK {
			t.Fatalf("own gateway's message: %d %s", r.Status, r.Body)
		}

		// Every gateway again.
		if r := e.API("PATCH", "/v1/users/"+u.ID, map[string]any{"gateway_ids": []string{}}); r.Status != http.StatusOK {
			t.Fatalf("lift the restriction: %d %s", r.Status, r.Body)
		}
		if r := send(other, "automation"); r.Status != http.StatusCreated {
			t.Fatalf("send after the restriction was lifted: %d %s", r.Status, r.Body)
		}
		// A System Admin is never limited.
		r = e.API("POST", "/v1/users", map[string]any{"email": "admin2@example.org", "name": "Ad", "gateway_ids": []string{e.Gateway.ID}, "permissions": []string{"System Admin"}})
		var adm sb.User
		r.JSON(t, &adm)
		var akey struct{ Key string }
		e.API("POST", "/v1/api-keys", map[string]any{"user_id": adm.ID}).JSON(t, &akey)
		if s := subs(t, e, akey.Key, phone); len(s) != 2 {
			t.Fatalf("a System Admin limited to one gateway: %+v", s)
		}
	})
}
