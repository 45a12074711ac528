package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/form"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/link"
	"github.com/switchboard/switchboard/provider/sim"
	"github.com/switchboard/switchboard/store"
	sbtemplate "github.com/switchboard/switchboard/template"
)

var threadVersion = regexp.MustCompile(`data-version="([0-9a-f]+|none)"`)

func TestConversation(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		ana := e.contact("Ana", "Lopez", "+12025550111", false)
		ben := e.contact("Ben", "Okafor", "+12025550112", true)
		admin := e.signIn(t, "admin")
		conv := "/ui/conversation?record=" + ana.ID

		p := admin.get(conv)
		if p.Status != http.StatusOK || !p.has("Ana Lopez") || strings.Contains(p.Body, `id="send-warning"`) {
			t.Fatalf("conversation page: %d", p.Status)
		}
		v := threadVersion.FindStringSubmatch(p.Body)[1]
		poll := "/ui/conversation/thread?record=" + ana.ID + "&v=" + v
		if p := admin.get(poll); p.Status != http.StatusNoContent {
			t.Fatalf("poll with no change: %d, want 204", p.Status)
		}

		// Send; the message reaches the handset and its CRM record shows in
		// the thread with its final status.
		p = admin.post("/ui/conversation/send", url.Values{"record": {ana.ID}, "gateway": {e.Gateway.ID}, "body": {"See you Tuesday"}, "idem": {"ui-test-1"}})
		if p.Status != http.StatusOK || !p.has("Message queued") {
			t.Fatalf("send: %d %s", p.Status, p.Body)
		}
		ms, err := e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{RecordID: ana.ID})
		if err != nil || len(ms) != 1 {
			t.Fatalf("messages of the record: %d %v", len(ms), err)
		}
		m := e.WaitStatus(ms[0].ID, sb.StatusDelivered)
		if m.Source != sb.SourceAPI || m.CreatedByID != e.Admin.ID {
			t.Fatalf("sent message: %+v", m)
		}
		// A repeated form (same idempotency key) sends nothing more.
		admin.post("/ui/conversation/send", url.Values{"record": {ana.ID}, "gateway": {e.Gateway.ID}, "body": {"See you Tuesday"}, "idem": {"ui-test-1"}})
		if ms, _ := e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{RecordID: ana.ID}); len(ms) != 1 {
			t.Fatalf("a resubmitted form sent again: %d messages", len(ms))
		}
		e.WaitCRMSynced()
		p = admin.get(poll)
		if p.Status != http.StatusOK || !p.has("See you Tuesday") || !strings.Contains(p.Body, `data-status="Delivered"`) {
			t.Fatalf("poll after the send: %d %s", p.Status, p.Body)
		}

		// Errors are shown with the message kept.
		p = admin.post("/ui/conversation/send", url.Values{"record": {ana.ID}, "gateway": {e.Gateway.ID}, "body": {"   "}})
		if p.Status != http.StatusBadRequest || !p.has("Not sent: body is required") {
			t.Fatalf("empty body: %d", p.Status)
		}
		long := strings.Repeat("x", hub.MaxBodyChars+1)
		p = admin.post("/ui/conversation/send", url.Values{"record": {ana.ID}, "gateway": {e.Gateway.ID}, "body": {long}})
		if p.Status != http.StatusBadRequest || !p.has(long) {
			t.Fatalf("too long: %d", p.Status)
		}

		// A global opt-out disables sending.
		p = admin.get("/ui/conversation?record=" + ben.ID)
		if !p.has("global opt-out flag") || !strings.Contains(p.Body, "<fieldset disabled>") {
			t.Fatalf("global opt-out contact: no warning or fields enabled")
		}
		p = admin.post("/ui/conversation/send", url.Values{"record": {ben.ID}, "gateway": {e.Gateway.ID}, "body": {"hi"}})
		if p.Status != http.StatusConflict || !p.has("global opt-out") {
			t.Fatalf("send to a global opt-out: %d", p.Status)
		}

		// STOP: warning, fields disabled except the gateway picklist, no
		// manual opt-in.
		e.Text(ana.Phone, e.Gateway.Number, "stop")
		p = admin.get(conv)
		if !p.has("This number is opted out on Main (Opt-out keyword: STOP)") || !strings.Contains(p.Body, "<fieldset disabled>") ||
			strings.Contains(p.Body, `id="gateway" name="gateway" disabled`) {
			t.Fatalf("opted-out conversation: %s", p.Body)
		}
		if strings.Contains(p.Body, `value="Opt-In"`) {
			t.Fatal("manual opt-in offered after a keyword opt-out")
		}
		p = admin.post("/ui/conversation/send", url.Values{"record": {ana.ID}, "gateway": {e.Gateway.ID}, "body": {"hi"}})
		if p.Status != http.StatusConflict || !p.has("opt-out") {
			t.Fatalf("send to an opted-out number: %d", p.Status)
		}
		p = admin.post("/ui/conversation/subscription", url.Values{"record": {ana.ID}, "sub_gateway": {e.Gateway.ID}, "status": {"Opt-In"}})
		if p.Status != http.StatusConflict || !p.has("only an opt-in keyword") {
			t.Fatalf("manual opt-in after STOP: %d", p.Status)
		}

		// Limited Access: no buttons; Manual Opt-In/Opt-Out: buttons.
		cy := e.contact("Cy", "Tran", "+12025550113", false)
		limited := e.signIn(t, "limited")
		if p := limited.get("/ui/conversation?record=" + cy.ID); strings.Contains(p.Body, `name="status"`) {
			t.Fatal("Limited Access sees subscription buttons")
		}
		manual := e.signIn(t, "manual")
		p = manual.get("/ui/conversation?record=" + cy.ID)
		if !strings.Contains(p.Body, `value="Opt-Out"`) || strings.Contains(p.Body, `value="Opt-In"`) {
			t.Fatal("manual user: want an Opt-Out button only (number is opted in)")
		}
		p = manual.post("/ui/conversation/subscription", url.Values{"record": {cy.ID}, "sub_gateway": {e.Gateway.ID}, "status": {"Opt-Out"}})
		if p.Status != http.StatusOK || !p.has("Subscription changed: Opt-Out (Manual opt-out by Manual User)") || !p.has("This number is opted out on Main") {
			t.Fatalf("manual opt-out: %d", p.Status)
		}
		p = manual.post("/ui/conversation/subscription", url.Values{"record": {cy.ID}, "sub_gateway": {e.Gateway.ID}, "status": {"Opt-In"}})
		if p.Status != http.StatusOK || p.has("This number is opted out") {
			t.Fatalf("manual opt-in after a manual opt-out: %d", p.Status)
		}

		// A phone-number conversation; a bad number is refused.
		if p := admin.get("/ui/conversation?phone=" + url.QueryEscape("(202) 555-0142")); p.Status != http.StatusOK || !p.has("+12025550142") {
			t.Fatalf("phone conversation: %d", p.Status)
		}
		if p := admin.get("/ui/conversation?phone=12"); p.Status != http.StatusBadRequest || !p.has("too few digits") {
			t.Fatalf("bad phone: %d", p.Status)
		}
		if p := admin.get("/ui/conversation?record=003nothere"); p.Status != http.StatusNotFound {
			t.Fatalf("unknown record: %d", p.Status)
		}
	})
}

func TestMandatoryOptInWarning(t *testing.T) {
	e := newTestEnv(t, store.SQLite)
	s := e.Org.Settings
	s.OptInMode = sb.OptInMandatory
	if _, err := e.Hub.UpdateSettings(context.Background(), e.Admin, s); err != nil {
		t.Fatal(err)
	}
	b := e.signIn(t, "limited")
	p := b.get("/ui/conversation?phone=%2B12025550142")
	if !p.has("has not opted in on Main") || !strings.Contains(p.Body, "<fieldset disabled>") {
		t.Fatalf("mandatory mode without opt-in: no warning")
	}
}

func TestSegmentsCounter(t *testing.T) {
	e := newTestEnv(t, store.SQLite)
	b := e.signIn(t, "limited")
	for body, want := range map[string]string{
		"":                       "0 characters · 1 segment (GSM-7) · 160 left in this segment",
		strings.Repeat("a", 161): "161 characters · 2 segments (GSM-7) · 145 left in this segment",
		"€":                      "2 characters · 1 segment (GSM-7) · 158 left in this segment",
		"Grüße 🙂":                "8 UTF-16 units · 1 segment (UCS-2) · 62 left in this segment",
		strings.Repeat("ж", 71):  "71 UTF-16 units · 2 segments (UCS-2) · 63 left in this segment",
	} {
		p := b.post("/ui/segments", url.Values{"body": {body}}, "HX-Request", "true")
		if p.Status != http.StatusOK || strings.TrimSpace(p.Body) != want {
			t.Errorf("segments of %q: %d %q, want %q", body, p.Status, p.Body, want)
		}
	}
}

// TestSegmentsCounterShortLinks: with tracked links on, the compose box
// counts the body as it is sent, a long URL as its short link.
func TestSegmentsCounterShortLinks(t *testing.T) {
	e := newTestEnv(t, store.SQLite)
	b := e.signIn(t, "limited")
	long := "https://www.college.example/admissions/apply?program=evening&term=spring-2027&ref=" + strings.Repeat("a", 120)
	body := "Apply here: " + long
	count := func() string {
		t.Helper()
		p := b.post("/ui/segments", url.Values{"body": {body}}, "HX-Request", "true")
		if p.Status != http.StatusOK {
			t.Fatalf("segments: %d %s", p.Status, p.Body)
		}
		return strings.TrimSpace(p.Body)
	}
	if got, want := count(), "214 characters · 2 segments (GSM-7) · 92 left in this segment"; got != want {
		t.Fatalf("links off: %q, want %q", got, want)
	}
	if _, err := e.Links.SaveSettings(context.Background(), e.Admin, link.Settings{Enabled: true, Mode: link.ModeBasic, BaseURL: "https://go.example.org"}); err != nil {
		t.Fatal(err)
	}
	// "Apply here: " + "https://go.example.org/l/" + a 12-character code.
	if got, want := count(), "49 characters · 1 segment (GSM-7) · 111 left in this segment"; got != want {
		t.Fatalf("links on: %q, want %q", got, want)
	}
}

func TestInboxPage(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ana := e.contact("Ana", "Lopez", "+12025550111", false)
		e.Text(ana.Phone, e.Gateway.Number, "Is the office open?")
		e.Text("+12025550188", e.Gateway.Number, "Who is this?")
		e.WaitCRMSynced()
		b := e.signIn(t, "inbox")
		p := b.get("/ui/inbox")
		if !p.has("2 unread") || !p.has("Is the office open?") || !p.has("Ana Lopez") || !p.has("+12025550188") {
			t.Fatalf("inbox: %s", p.Body)
		}
		if !p.has("/ui/conversation?gateway=" + e.Gateway.ID + "&record=" + ana.ID) {
			t.Fatal("no link to the contact's conversation")
		}
		items, _, err := e.DB.Inbox(context.Background(), e.Org.ID, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		p = b.post("/ui/inbox/read", url.Values{"one": {items[0].MessageID}, "ids": {items[1].MessageID}})
		if p.Status != http.StatusOK || !p.has("Marked 1 message read") || !p.has("1 unread") {
			t.Fatalf("mark one read: %d %s", p.Status, p.Body)
		}
		p = b.post("/ui/inbox/read", nil)
		if p.Status != http.StatusBadRequest || !p.has("Tick the messages") {
			t.Fatalf("nothing ticked: %d", p.Status)
		}
		p = b.post("/ui/inbox/read", url.Values{"ids": {items[1].MessageID}})
		if !p.has("No unread messages") {
			t.Fatalf("all read: %s", p.Body)
		}
	})
}

func TestBulkPreviewAndSend(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		ana := e.contact("Ana", "Lopez", "+12025550111", false)
		ben := e.contact("Ben", "Okafor", "+12025550112", true)
		cy := e.contact("Cy", "Tran", "+12025550113", false)
		noPhone := e.contact("Dee", "Nophone", "", false)
		e.Text(cy.Phone, e.Gateway.Number, "STOP")
		b := e.signIn(t, "bulk")

		form := url.Values{"source": {"selected"}, "record": {ana.ID, ben.ID, cy.ID, noPhone.ID}, "body": {strings.Repeat("a", 200)},
			"gateway": {e.Gateway.ID}, "price": {"0.01"}}
		p := b.post("/ui/bulk/preview", form, "HX-Request", "true")
		if p.Status != http.StatusOK {
			t.Fatalf("preview: %d %s", p.Status, p.Body)
		}
		for _, want := range []string{
			`<dd id="pv-recipients">4</dd>`, `<dd id="pv-send">1</dd>`, `<dd id="pv-blocked">1</dd>`, `<dd id="pv-excluded">2</dd>`,
			`<dd id="pv-segments">2</dd>`, `<dd id="pv-cost">0.02 USD</dd>`,
		} {
			if !strings.Contains(p.Body, want) {
				t.Errorf("preview lacks %s", want)
			}
		}
		for _, want := range []string{"Ben Okafor</th><td>Global opt-out", "Cy Tran</th><td>Opted out on Main", "Dee Nophone</th><td>No phone number"} {
			if !strings.Contains(p.Body, want) {
				t.Errorf("preview lacks %q", want)
			}
		}
		if strings.Contains(p.Body, "<form") {
			t.Error("an htmx preview answers with the outcome only")
		}
		before, _ := e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{Direction: sb.Outgoing})

		// The preview agrees with what the send does.
		p = b.post("/ui/bulk/send", form, "HX-Request", "true")
		if p.Status != http.StatusAccepted || !p.has("Bulk send accepted: 1 queued, 1 blocked, 2 left out.") {
			t.Fatalf("send: %d %s", p.Status, p.Body)
		}
		id := regexp.MustCompile(`/ui/bulk/([0-9a-f-]+)/progress`).FindStringSubmatch(p.Body)
		if id == nil {
			t.Fatalf("no progress poll in %s", p.Body)
		}
		e.WaitFor("bulk send done", func() bool {
			bs, err := e.Hub.Batch(ctx, e.Admin, id[1])
			return err == nil && bs.Done
		})
		p = b.get("/ui/bulk/"+id[1]+"/progress", "HX-Request", "true")
		if !strings.Contains(p.Body, `data-finished="true"`) || strings.Contains(p.Body, "hx-trigger") || !p.has("2 of 2 processed") ||
			!p.has("Ben Okafor: Global opt-out") || !p.has("Dee Nophone: no phone number") {
			t.Fatalf("finished progress: %s", p.Body)
		}
		after, _ := e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{Direction: sb.Outgoing})
		if len(after)-len(before) != 2 {
			t.Fatalf("%d messages created, want 2 (one sent, one blocked)", len(after)-len(before))
		}

		// CSV upload: numbers without a header.
		csv := "+12025550141\n(202) 555-0142\n\n+12025550141\nnot a number\n"
		p = b.postFile("/ui/bulk/preview", url.Values{"source": {"csv"}, "body": {"Hi"}, "gateway": {e.Gateway.ID}}, "csv", "list.csv", []byte(csv))
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `<dd id="pv-recipients">4</dd>`) || !strings.Contains(p.Body, `<dd id="pv-send">2</dd>`) ||
			!p.has("Duplicate phone number") || !p.has("CSV line 5") || strings.Contains(p.Body, "+12025550141") {
			t.Fatalf("csv preview: %d %s", p.Status, p.Body)
		}
		// Contact rows with a header.
		csv = "First Name,Mobile Phone,Id\nAna,," + ana.ID + "\nEve,+12025550150,\n"
		p = b.postFile("/ui/bulk/preview", url.Values{"source": {"csv"}, "body": {"Hi"}, "gateway": {e.Gateway.ID}}, "csv", "contacts.csv", []byte(csv))
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `<dd id="pv-send">2</dd>`) {
			t.Fatalf("contact rows preview: %d %s", p.Status, p.Body)
		}
		// A number given alone that a globally opted-out contact has is
		// left out too.
		csv = "(202) 555-0112\n+12025550151\n"
		p = b.postFile("/ui/bulk/preview", url.Values{"source": {"csv"}, "body": {"Hi"}, "gateway": {e.Gateway.ID}}, "csv", "numbers.csv", []byte(csv))
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `<dd id="pv-send">1</dd>`) || !strings.Contains(p.Body, `<dd id="pv-excluded">1</dd>`) ||
			!strings.Contains(p.Body, "CSV line 1 &#43;1********12</th><td>Global opt-out") {
			t.Fatalf("numbers preview with a global opt-out: %d %s", p.Status, p.Body)
		}
		// Errors name the problem.
		for _, tc := range []struct {
			form url.Values
			want string
		}{
			{url.Values{"source": {"selected"}, "body": {"Hi"}, "gateway": {e.Gateway.ID}}, "tick at least one contact"},
			{url.Values{"source": {"selected"}, "record": {ana.ID}, "body": {" "}, "gateway": {e.Gateway.ID}}, "write the message"},
			{url.Values{"source": {"selected"}, "record": {ana.ID}, "body": {"Hi"}}, "choose a gateway"},
			{url.Values{"source": {"selected"}, "record": {ana.ID}, "body": {"Hi"}, "gateway": {e.Gateway.ID}, "price": {"-1"}}, "price per segment"},
			{url.Values{"source": {"csv"}, "body": {"Hi"}, "gateway": {e.Gateway.ID}}, "choose a CSV file"},
			{url.Values{"source": {"filter"}, "q": {"nobody"}, "body": {"Hi"}, "gateway": {e.Gateway.ID}}, "no contact with a phone number matches"},
		} {
			p := b.post("/ui/bulk/preview", tc.form, "HX-Request", "true")
			if p.Status != http.StatusBadRequest || !p.has(tc.want) {
				t.Errorf("preview %v: %d, want 400 with %q: %s", tc.form, p.Status, tc.want, p.Body)
			}
		}
		// Every contact matching a filter.
		p = b.post("/ui/bulk/preview", url.Values{"source": {"filter"}, "q": {"lopez"}, "body": {"Hi"}, "gateway": {e.Gateway.ID}}, "HX-Request", "true")
		if !strings.Contains(p.Body, `<dd id="pv-recipients">1</dd>`) {
			t.Fatalf("filtered preview: %s", p.Body)
		}
		// A custom field filter.
		future := &sb.CRMRecord{FirstName: "Fay", LastName: "Future", Phone: "+12025550160", Fields: map[string]string{"Student_Type": "Future"}}
		if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveContact(ctx, e.Org.ID, future) }); err != nil {
			t.Fatal(err)
		}
		p = b.post("/ui/bulk/preview", url.Values{"source": {"filter"}, "field": {"Student_Type = Future"}, "body": {"Hi"}, "gateway": {e.Gateway.ID}}, "HX-Request", "true")
		if !strings.Contains(p.Body, `<dd id="pv-recipients">1</dd>`) || !strings.Contains(p.Body, `<dd id="pv-send">1</dd>`) {
			t.Fatalf("field-filtered preview: %s", p.Body)
		}
		p = b.post("/ui/bulk/preview", url.Values{"source": {"filter"}, "field": {"Student_Type"}, "body": {"Hi"}, "gateway": {e.Gateway.ID}}, "HX-Request", "true")
		if p.Status != http.StatusBadRequest || !p.has("Name=Value") {
			t.Fatalf("bad field filter: %d", p.Status)
		}
		if p := b.get("/ui/bulk?field=nonsense"); p.Status != http.StatusOK || !p.has("Name=Value") {
			t.Fatalf("bulk page with a bad filter: %d", p.Status)
		}
		// The filter refreshes the contact list alone.
		p = b.get("/ui/bulk?q=okafor", "HX-Request", "true", "HX-Target", "contacts")
		if !p.has("Ben Okafor") || p.has("Ana Lopez") || strings.Contains(p.Body, "<form") {
			t.Fatalf("filtered contacts fragment: %s", p.Body)
		}
	})
}

func TestSettingsActions(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		b := e.signIn(t, "admin")
		p := b.get("/ui/settings")
		if p.Status != http.StatusOK || !p.has("Needs action") {
			t.Fatalf("settings: %d", p.Status)
		}

		// The new key is shown once, and works.
		p = b.post("/ui/settings/api-key", nil)
		key := regexp.MustCompile(`id="new-api-key" class="mono">(sb_[^<]+)<`).FindStringSubmatch(p.Body)
		if key == nil {
			t.Fatalf("no key shown: %s", p.Body)
		}
		if u, err := e.DB.Authenticate(ctx, key[1]); err != nil || u.ID != e.Admin.ID {
			t.Fatalf("shown key: %v", err)
		}
		if p := b.get("/ui/settings"); p.has(key[1]) {
			t.Fatal("the key is shown again")
		}

		// One-way toggles: on, then an admin cannot switch them off.
		p = b.post("/ui/settings/toggles", url.Values{"name": {"connected_app_for_incoming"}, "value": {"on"}})
		if p.Status != http.StatusConflict || !p.has("(messaging_api_for_bulk) first") {
			t.Fatalf("connected app before the bulk API: %d", p.Status)
		}
		for _, name := range []string{"messaging_api_for_bulk", "connected_app_for_incoming"} {
			if p := b.post("/ui/settings/toggles", url.Values{"name": {name}, "value": {"on"}}); p.Status != http.StatusOK {
				t.Fatalf("enable %s: %d", name, p.Status)
			}
			p := b.post("/ui/settings/toggles", url.Values{"name": {name}, "value": {"off"}})
			if p.Status != http.StatusForbidden || !p.has("can only be disabled by a service operator") {
				t.Fatalf("disable %s as admin: %d", name, p.Status)
			}
			if !regexp.MustCompile(`id="toggle-` + name + `" aria-checked="true" class="switch" disabled`).MatchString(p.Body) {
				t.Fatalf("%s toggle not shown on and disabled", name)
			}
		}
		org, _ := e.DB.Org(ctx, e.Org.ID)
		if !org.Settings.MessagingAPIForBulk || !org.Settings.ConnectedAppForIncoming {
			t.Fatalf("settings: %+v", org.Settings)
		}

		// Opt-in mode.
		p = b.post("/ui/settings/opt-in", url.Values{"mode": {"mandatory"}, "create_opt_in": {"on"}})
		if p.Status != http.StatusOK {
			t.Fatalf("opt-in mode: %d", p.Status)
		}
		if org, _ := e.DB.Org(ctx, e.Org.ID); org.Settings.OptInMode != sb.OptInMandatory || !org.Settings.CreateOptInOnIncoming {
			t.Fatalf("opt-in settings: %+v", org.Settings)
		}
		if p := b.post("/ui/settings/opt-in", url.Values{"mode": {"sometimes"}}); p.Status != http.StatusBadRequest || !p.has("opt_in_mode must be") {
			t.Fatalf("bad mode: %d", p.Status)
		}

		// Gateways: the provider's fields, a bad number, then a good one.
		p = b.get("/ui/settings/gateway-fields?provider=sim", "HX-Request", "true")
		if !strings.Contains(p.Body, `name="config.secret" type="password"`) || !p.has("Carrier URL") {
			t.Fatalf("sim fields: %s", p.Body)
		}
		if p := b.get("/ui/settings/gateway-fields?provider=nope"); p.Status != http.StatusBadRequest {
			t.Fatalf("unknown provider fields: %d", p.Status)
		}
		p = b.post("/ui/settings/gateways", url.Values{"provider": {"sim"}, "name": {"Bad"}, "number": {"12"}, "config.secret": {"a-secret-that-is-long"}})
		if p.Status != http.StatusBadRequest || !p.has("gateway number") || p.has("a-secret-that-is-long") || !strings.Contains(p.Body, `value="Bad"`) {
			t.Fatalf("bad gateway: %d %s", p.Status, p.Body)
		}
		p = b.post("/ui/settings/gateways", url.Values{"provider": {"sim"}, "name": {"Admissions"}, "number": {"+1 202 555 0177"}, "rate": {"2"},
			"opt_out_keywords": {"stop, quit"}, "help_text": {"Admissions line. Reply STOP to opt out."}})
		if p.Status != http.StatusOK || !p.has("Gateway Admissions added. Its webhooks are registered") {
			t.Fatalf("add gateway: %d %s", p.Status, p.Body)
		}
		gws, _ := e.DB.Gateways(ctx, e.Org.ID)
		var added *sb.Gateway
		for _, g := range gws {
			if g.Name == "Admissions" {
				added = g
			}
		}
		if added == nil || added.Number != "+12025550177" || added.Rate != 2 || strings.Join(added.Keywords.OptOut, ",") != "STOP,QUIT" ||
			strings.Join(added.Keywords.OptIn, ",") != "START,UNSTOP,YES" || added.HelpText != "Admissions line. Reply STOP to opt out." {
			t.Fatalf("added gateway: %+v", added)
		}
		if p := b.post("/ui/settings/gateways", url.Values{"provider": {"sim"}, "number": {"+12025550178"}, "rate": {"fast"}}); p.Status != http.StatusBadRequest || !p.has("rate must be a number") {
			t.Fatalf("bad rate: %d", p.Status)
		}

		// Test send (mandatory mode now: the number has not opted in).
		p = b.post("/ui/settings/gateways/test", url.Values{"gateway": {e.Gateway.ID}, "to": {"+12025550142"}})
		if p.Status != http.StatusConflict || !p.has("not opted in") {
			t.Fatalf("test send without opt-in: %d %s", p.Status, p.Body)
		}
		s := org.Settings
		s.OptInMode = sb.OptInDefault
		if _, err := e.Hub.UpdateSettings(ctx, e.Admin, s); err != nil {
			t.Fatal(err)
		}
		p = b.post("/ui/settings/gateways/test", url.Values{"gateway": {e.Gateway.ID}, "to": {"+12025550142"}})
		if p.Status != http.StatusOK || !p.has("Test message queued") {
			t.Fatalf("test send: %d", p.Status)
		}
		e.WaitFor("test message on the handset", func() bool { return len(e.Carrier.Inbox("+12025550142")) == 1 })
		if got := e.Carrier.Inbox("+12025550142")[0].Body; got != "Test message from Switchboard." {
			t.Fatalf("test message: %q", got)
		}

		// Salesforce is not configured on this service: the step says so.
		p = b.post("/ui/settings/salesforce/authorize", nil)
		if p.Status != http.StatusServiceUnavailable || !p.has("Salesforce is not configured") {
			t.Fatalf("authorize without Salesforce: %d", p.Status)
		}
	})
}

func TestDashboardPage(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		if err := e.Carrier.SetHandset("+12025550143", sim.Handset{Behaviour: sim.Undeliver}); err != nil {
			t.Fatal(err)
		}
		m := e.Send("+12025550142", "hello")
		e.WaitStatus(m.ID, sb.StatusDelivered)
		u := e.Send("+12025550143", "hello")
		e.WaitStatus(u.ID, sb.StatusUndelivered)
		e.Text("+12025550142", e.Gateway.Number, "STOP")
		e.WaitFor("the STOP confirmation delivered", func() bool {
			ms, err := e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{Direction: sb.Outgoing})
			delivered := 0
			for _, m := range ms {
				if m.Status == sb.StatusDelivered {
					delivered++
				}
			}
			return err == nil && delivered == 2
		})
		// The last statuses are written to the CRM half a second after they
		// came: the dashboard shows no change waiting once they are.
		e.WaitCRMSynced()
		b := e.signIn(t, "admin")
		for _, rg := range []string{"", "?range=7d", "?range=30d", "?range=bogus"} {
			p := b.get("/ui/dashboard" + rg)
			if p.Status != http.StatusOK {
				t.Fatalf("dashboard%s: %d", rg, p.Status)
			}
			for _, want := range []string{
				`<dd id="kpi-outgoing">3</dd>`, `<dd id="kpi-incoming">1</dd>`, `<dd id="kpi-optouts">1</dd>`,
				// Delivery rate: 2 delivered of 3 final (delivered, undelivered, failed).
				`<dd id="kpi-rate">66.7%</dd>`, "2 delivered, 1 undelivered or failed",
				"<svg", `class="st-delivered"`, `class="st-undelivered"`,
				// The built-in CRM: connected, not metered, never checked.
				`<dd id="crm-state"><span class="state done">Connected</span></dd>`, `<dd id="crm-api">not metered</dd>`,
				`<dd id="crm-pending">0</dd>`, `<dd id="crm-health">no check yet</dd>`,
			} {
				if !strings.Contains(p.Body, want) {
					t.Errorf("dashboard%s lacks %s", rg, want)
				}
			}
		}
	})
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[int]int{0: 2, 1: 2, 2: 2, 3: 5, 7: 10, 10: 10, 11: 20, 99: 100, 101: 200, 450: 500, 501: 1000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", in, got, want)
		}
	}
}

// TestOfflineBanner: when the org's CRM connection is offline every page
// says so.
func TestOfflineBanner(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		b := e.signIn(t, "limited")
		if p := b.get("/ui/"); p.has("CRM offline") {
			t.Fatal("banner shown while the built-in CRM is in use")
		}
		s := e.Org.Settings
		s.CRM = sb.CRMSalesforce
		if _, err := e.Hub.UpdateSettings(context.Background(), e.Admin, s); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/ui/", "/ui/conversation?phone=%2B12025550142", "/ui/nowhere"} {
			if p := b.get(path); !p.has("CRM offline:") || !strings.Contains(p.Body, `class="banner offline" role="alert"`) {
				t.Errorf("%s: no offline banner", path)
			}
		}
		admin := e.signIn(t, "admin")
		p := admin.get("/ui/settings")
		if !p.has("CRM offline:") || !p.has("authorize the CRM again") || !strings.Contains(p.Body, `<span class="state todo">Offline</span>`) {
			t.Fatalf("settings while offline: %s", p.Body)
		}
	})
}

// TestGatewayRestrictedUser: a user limited to some gateways sees only
// their messages in the inbox (and can mark only those read), and only
// those gateways in the conversation view's and the bulk page's picklists.
func TestGatewayRestrictedUser(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		rate := 0.0
		second, err := e.Hub.CreateGateway(ctx, e.Admin, hub.GatewayRequest{Name: "Evening", Provider: sb.ProviderSim, Number: "+12025550199", Rate: &rate})
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{"inbox", "bulk"} {
			u := e.Users[role]
			u.GatewayIDs = []string{e.Gateway.ID}
			if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.UpdateUser(ctx, u) }); err != nil {
				t.Fatal(err)
			}
		}
		e.Text("+12025550187", e.Gateway.Number, "Main question")
		e.Text("+12025550188", second.Number, "Evening question")
		e.WaitCRMSynced()

		b := e.signIn(t, "inbox")
		p := b.get("/ui/inbox")
		if !p.has("1 unread") || !p.has("Main question") || p.has("Evening question") {
			t.Fatalf("restricted inbox: %s", p.Body)
		}
		items, _, err := e.DB.Inbox(ctx, e.Org.ID, nil, 10)
		if err != nil || len(items) != 2 {
			t.Fatalf("inbox: %v %v", items, err)
		}
		var evening string
		for _, it := range items {
			if it.GatewayID == second.ID {
				evening = it.MessageID
			}
		}
		p = b.post("/ui/inbox/read", url.Values{"one": {evening}})
		if p.Status != http.StatusOK || !p.has("Marked 0 messages read") {
			t.Fatalf("mark another gateway's message read: %d %s", p.Status, p.Body)
		}
		if _, total, _ := e.DB.Inbox(ctx, e.Org.ID, nil, 10); total != 2 {
			t.Fatalf("another gateway's message was marked read: %d unread", total)
		}
		admin := e.signIn(t, "admin")
		if p := admin.get("/ui/inbox"); !p.has("2 unread") {
			t.Fatalf("admin inbox: %s", p.Body)
		}

		p = b.get("/ui/conversation?phone=%2B12025550188")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `<option value="`+e.Gateway.ID+`"`) || strings.Contains(p.Body, `<option value="`+second.ID+`"`) {
			t.Fatalf("restricted conversation picklist: %d %s", p.Status, p.Body)
		}
		if p := admin.get("/ui/conversation?phone=%2B12025550188"); !strings.Contains(p.Body, `<option value="`+second.ID+`"`) {
			t.Fatalf("admin conversation picklist lacks the second gateway")
		}
		p = b.post("/ui/conversation/send", url.Values{"phone": {"+12025550188"}, "gateway": {second.ID}, "body": {"hi"}})
		if p.Status != http.StatusForbidden || !p.has(`you do not have access to gateway "Evening"`) {
			t.Fatalf("send through another gateway from the conversation view: %d %s", p.Status, p.Body)
		}

		bulk := e.signIn(t, "bulk")
		p = bulk.get("/ui/bulk")
		if !strings.Contains(p.Body, `value="`+e.Gateway.ID+`"`) || strings.Contains(p.Body, `value="`+second.ID+`"`) {
			t.Fatalf("restricted bulk picklist: %s", p.Body)
		}
		p = bulk.post("/ui/bulk/preview", url.Values{"source": {"numbers"}, "numbers": {"+12025550189"}, "body": {"Hi"}, "gateway": {second.ID}}, "HX-Request", "true")
		if p.Status != http.StatusForbidden || !p.has(`you do not have access to gateway "Evening"`) {
			t.Fatalf("bulk preview through another gateway: %d %s", p.Status, p.Body)
		}
	})
}

// TestBulkSelection: the listed contacts start unticked; "Select all" ticks
// every listed one, "Clear" none, and a refreshed list keeps the ticks.
func TestBulkSelection(t *testing.T) {
	e := newTestEnv(t, store.SQLite)
	ana := e.contact("Ana", "Lopez", "+12025550111", false)
	ben := e.contact("Ben", "Okafor", "+12025550112", false)
	b := e.signIn(t, "bulk")
	ticked := func(p *result) []string {
		var out []string
		for _, c := range []*sb.CRMRecord{ana, ben} {
			if regexp.MustCompile(`id="rec-` + c.ID + `"[^>]* checked`).MatchString(p.Body) {
				out = append(out, c.FirstName)
			}
		}
		return out
	}
	p := b.get("/ui/bulk")
	if p.Status != http.StatusOK || len(ticked(p)) != 0 || !strings.Contains(p.Body, `id="select-all"`) {
		t.Fatalf("bulk page: %d, ticked %v", p.Status, ticked(p))
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"?select=all", "Ana,Ben"},
		{"?select=all&q=okafor", "Ben"},
		{"?select=none&record=" + ana.ID, ""},
		{"?record=" + ana.ID, "Ana"},
	} {
		p := b.get("/ui/bulk"+tc.query, "HX-Request", "true", "HX-Target", "contacts")
		if got := strings.Join(ticked(p), ","); p.Status != http.StatusOK || got != tc.want {
			t.Errorf("%s: %d, ticked %q, want %q", tc.query, p.Status, got, tc.want)
		}
	}
	// Without htmx "Select all" reloads the page, keeping what was typed.
	p = b.get("/ui/bulk?select=all&body=Hello+all")
	if got := strings.Join(ticked(p), ","); got != "Ana,Ben" || !p.has(">Hello all</textarea>") {
		t.Fatalf("select all without htmx: ticked %q", got)
	}
}

// TestBulkPreviewCountsTheSentBody: the preview counts segments on the
// body as it will be sent — long URLs replaced by tracked links, an SMS
// form's first question appended — and stores nothing.
func TestBulkPreviewCountsTheSentBody(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		ana := e.contact("Ana", "Lopez", "+12025550111", false)
		if _, err := e.Links.SaveSettings(ctx, e.Admin, link.Settings{Enabled: true, Mode: link.ModePerRecipient, BaseURL: "https://go.example.org"}); err != nil {
			t.Fatal(err)
		}
		b := e.signIn(t, "bulk")
		long := "https://admissions.example.edu/open-day/registration?campus=north&programme=engineering&utm_source=sms&utm_campaign=open-day-2025"
		body := "Open day on Saturday from 10am, register here: " + long // 168 characters as written: 2 segments
		form := url.Values{"source": {"selected"}, "record": {ana.ID}, "body": {body}, "gateway": {e.Gateway.ID}, "price": {"0.01"}}
		p := b.post("/ui/bulk/preview", form, "HX-Request", "true")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `<dd id="pv-per">1 (GSM-7)</dd>`) || !strings.Contains(p.Body, `<dd id="pv-segments">1</dd>`) ||
			!regexp.MustCompile(`register here: https://go\.example\.org/l/[0-9A-Za-z]{12}</blockquote>`).MatchString(p.Body) {
			t.Fatalf("preview with a tracked link: %d %s", p.Status, p.Body)
		}
		// The send agrees.
		p = b.post("/ui/bulk/send", form, "HX-Request", "true")
		if p.Status != http.StatusAccepted {
			t.Fatalf("send: %d %s", p.Status, p.Body)
		}
		e.WaitFor("the text", func() bool { return len(e.Carrier.Inbox(ana.Phone)) == 1 })
		if got := e.Carrier.Inbox(ana.Phone)[0]; sb.CountSegments(got.Body).Segments != 1 || !strings.Contains(got.Body, "https://go.example.org/l/") {
			t.Fatalf("sent %q", got.Body)
		}
		if ls, err := e.DB.Links(ctx, e.Org.ID, store.LinkFilter{}); err != nil || len(ls) != 1 {
			t.Fatalf("links stored: %d %v, want the send's one (none by the preview)", len(ls), err)
		}

		// An SMS form's first question goes with the message.
		q := "How did you hear about open day? Reply 1 for a friend, 2 for our website, 3 for social media."
		name := "Open day"
		f, err := e.Forms.Create(ctx, e.Admin, formInput(name, q))
		if err != nil {
			t.Fatal(err)
		}
		p = b.get("/ui/bulk")
		if !strings.Contains(p.Body, `<option value="`+f.ID+`">Open day</option>`) {
			t.Fatalf("no form picker: %s", p.Body)
		}
		form.Set("body", "Thanks for registering.")
		form.Set("form_id", f.ID)
		p = b.post("/ui/bulk/preview", form, "HX-Request", "true")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `<dd id="pv-per">1 (GSM-7)</dd>`) || !p.has("Thanks for registering.\n"+q+"</blockquote>") {
			t.Fatalf("preview with a form: %d %s", p.Status, p.Body)
		}
		form.Set("body", strings.Repeat("a", 100))
		p = b.post("/ui/bulk/preview", form, "HX-Request", "true")
		if !strings.Contains(p.Body, `<dd id="pv-per">2 (GSM-7)</dd>`) || !strings.Contains(p.Body, `<dd id="pv-segments">2</dd>`) {
			t.Fatalf("a body that fits one segment alone takes two with the question: %s", p.Body)
		}
		if ss, err := e.DB.FormSessions(ctx, e.Org.ID, f.ID, 10); err != nil || len(ss) != 0 {
			t.Fatalf("the preview started %d form sessions (%v)", len(ss), err)
		}
		form.Set("body", "")
		p = b.post("/ui/bulk/preview", form, "HX-Request", "true")
		if p.Status != http.StatusOK || !p.has(">"+q+"</blockquote>") {
			t.Fatalf("a form alone: %d %s", p.Status, p.Body)
		}
		form.Set("form_id", "nope")
		if p = b.post("/ui/bulk/preview", form, "HX-Request", "true"); p.Status != http.StatusNotFound || !p.has("form nope not found") {
			t.Fatalf("unknown form: %d %s", p.Status, p.Body)
		}
		// Sent with the form: the session runs.
		form.Set("form_id", f.ID)
		form.Set("body", "Thanks for registering.")
		if p = b.post("/ui/bulk/send", form, "HX-Request", "true"); p.Status != http.StatusAccepted {
			t.Fatalf("send with a form: %d %s", p.Status, p.Body)
		}
		e.WaitFor("the question", func() bool { return len(e.Carrier.Inbox(ana.Phone)) == 2 })
		if got := e.Carrier.Inbox(ana.Phone)[1].Body; got != "Thanks for registering.\n"+q {
			t.Fatalf("sent %q", got)
		}
		if ss, _ := e.DB.FormSessions(ctx, e.Org.ID, f.ID, 10); len(ss) != 1 || ss[0].RecordID != ana.ID {
			t.Fatalf("sessions after the send: %+v", ss)
		}
	})
}

// TestBulkTemplateSend: a bulk send with a template: the preview renders it
// for the recipients (merge fields filled, the segments of each body
// counted), and the send texts each recipient its own body.
func TestBulkTemplateSend(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		ana := e.contact("Ana", "Lopez", "+12025550111", false)
		anon := e.contact("", "Nameless", "+12025550114", false)
		name, body := "Reminder", "Hi {Contact.FirstName|there}, this is {User.Name} from {Org.Name}. "+strings.Repeat("x", 100)
		tpl, err := e.Templates.Create(ctx, e.Admin, sbtemplate.Input{Name: &name, Body: &body})
		if err != nil {
			t.Fatal(err)
		}
		bad, badBody := "Broken", "Hi {Contact.Fields.Shoe_Size}"
		broken, err := e.Templates.Create(ctx, e.Admin, sbtemplate.Input{Name: &bad, Body: &badBody})
		if err != nil {
			t.Fatal(err)
		}
		b := e.signIn(t, "bulk")
		if p := b.get("/ui/bulk"); !strings.Contains(p.Body, `<option value="`+tpl.ID+`">Reminder</option>`) {
			t.Fatal("no template picker on the bulk page")
		}
		form := url.Values{"source": {"selected"}, "record": {ana.ID, anon.ID}, "template_id": {tpl.ID}, "body": {"ignored"}, "gateway": {e.Gateway.ID}, "price": {"0.5"}}
		// "Hi Ana, this is Bulk User from Test College. " + 100 x: 146 characters, 1 segment each.
		wantAna := "Hi Ana, this is Bulk User from Test College. " + strings.Repeat("x", 100)
		wantAnon := "Hi there, this is Bulk User from Test College. " + strings.Repeat("x", 100)
		p := b.post("/ui/bulk/preview", form, "HX-Request", "true")
		for _, want := range []string{`<dd id="pv-send">2</dd>`, `<dd id="pv-per">varies by recipient</dd>`, `<dd id="pv-segments">2</dd>`, `<dd id="pv-cost">1.00 USD</dd>`} {
			if !strings.Contains(p.Body, want) {
				t.Errorf("template preview lacks %s", want)
			}
		}
		if !p.has("(to Ana Lopez)") || !p.has(">"+wantAna+"</blockquote>") {
			t.Fatalf("template preview sample: %s", p.Body)
		}
		// A template with an unknown merge field leaves the recipients out
		// with the reason.
		bf := url.Values{"source": {"selected"}, "record": {ana.ID}, "template_id": {broken.ID}, "gateway": {e.Gateway.ID}}
		if p := b.post("/ui/bulk/preview", bf, "HX-Request", "true"); !p.has("Ana Lopez</th><td>Template: ") || !p.has("Shoe_Size") {
			t.Fatalf("broken template preview: %s", p.Body)
		}

		p = b.post("/ui/bulk/send", form, "HX-Request", "true")
		if p.Status != http.StatusAccepted || !p.has("Bulk send accepted: 2 queued, 0 blocked, 0 left out.") {
			t.Fatalf("template send: %d %s", p.Status, p.Body)
		}
		e.WaitFor("both texts", func() bool { return len(e.Carrier.Inbox(ana.Phone)) == 1 && len(e.Carrier.Inbox(anon.Phone)) == 1 })
		if got := e.Carrier.Inbox(ana.Phone)[0].Body; got != wantAna {
			t.Errorf("Ana got %q", got)
		}
		if got := e.Carrier.Inbox(anon.Phone)[0].Body; got != wantAnon {
			t.Errorf("the contact without a first name got %q", got)
		}
	})
}

// formInput is a one-question form.
func formInput(name, question string) form.Input {
	return form.Input{Name: name, Definition: form.Definition{Questions: []form.Question{{Key: "heard", Text: question, Type: "choice", Choices: []string{"a friend", "our website", "social media"}}}}}
}
