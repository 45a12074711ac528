package link_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/builtin"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/link"
	"github.com/switchboard/switchboard/store"
)

const (
	chromeUA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36"
	longURL  = "https://example.org/admissions/apply?term=fall-2025"
	shortURL = "https://x.io/a"
)

// each runs f per dialect on a Switchboard with tracked links wired in as
// cmd/switchboard does: the hook, the routes, the workers and periodic jobs.
func each(t *testing.T, f func(t *testing.T, e *hubtest.Env, svc *link.Service), opts ...hubtest.Options) {
	var mu sync.Mutex
	services := map[*hubtest.Env]*link.Service{}
	o := hubtest.Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Setup = func(e *hubtest.Env, cfg *river.Config) {
		svc := link.New(e.DB, e.Hub, link.Options{})
		svc.AddWorkers(cfg.Workers)
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, svc.PeriodicJobs()...)
		e.T.Cleanup(func() { _ = svc.Close(context.Background()) })
		mu.Lock()
		services[e] = svc
		mu.Unlock()
	}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		mu.Lock()
		svc := services[e]
		mu.Unlock()
		e.Hub.OutgoingHooks = append(e.Hub.OutgoingHooks, svc)
		e.HTTP.Content = &sbhttp.Content{Links: svc}
		f(t, e, svc)
	}, o)
}

func settings(t *testing.T, e *hubtest.Env, s map[string]any) {
	t.Helper()
	if r := e.API("PUT", "/v1/link-settings", s); r.Status != http.StatusOK {
		t.Fatalf("link settings: %d %s", r.Status, r.Body)
	}
}

func addContact(t *testing.T, e *hubtest.Env, c *sb.CRMRecord) *sb.CRMRecord {
	t.Helper()
	ctx := context.Background()
	if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveContact(ctx, e.Org.ID, c) }); err != nil {
		t.Fatal(err)
	}
	return c
}

var codeRE = regexp.MustCompile(`https://go\.example\.org/l/([0-9A-Za-z]{12})`)

// codes returns the short codes in the last text a handset received.
func codes(t *testing.T, e *hubtest.Env, phone string) (body string, found []string) {
	t.Helper()
	inbox := e.Carrier.Inbox(phone)
	if len(inbox) == 0 {
		t.Fatalf("%s got nothing", phone)
	}
	body = inbox[len(inbox)-1].Body
	for _, m := range codeRE.FindAllStringSubmatch(body, -1) {
		found = append(found, m[1])
	}
	return body, found
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// open requests a short link as a handset's browser (or a bot) would.
func open(t *testing.T, e *hubtest.Env, method, code string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.Server.URL+"/l/"+code, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.String()
}

func linkOf(t *testing.T, e *hubtest.Env, query string) []link.View {
	t.Helper()
	var out struct{ Links []link.View }
	r := e.API("GET", "/v1/links?"+query, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("links: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &out)
	return out.Links
}

func TestLinkSettingsAPI(t *testing.T) {
	each(t, func(t *testing.T, e *hubtest.Env, svc *link.Service) {
		var s link.Settings
		e.API("GET", "/v1/link-settings", nil).JSON(t, &s)
		if s.Enabled || s.Mode != link.ModeBasic || s.MinLength != 30 || s.BaseURL != "" {
			t.Fatalf("defaults: %+v", s)
		}
		ctx := context.Background()
		staff := &sb.User{OrgID: e.Org.ID, Email: "staff@example.org", Name: "Staff", Permissions: []sb.Permission{sb.PermLimitedAccess}}
		var staffKey string
		if err := e.DB.Tx(ctx, func(tx *store.Tx) error {
			if err := tx.CreateUser(ctx, staff, ""); err != nil {
				return err
			}
			var err error
			_, staffKey, err = tx.CreateAPIKey(ctx, e.Org.ID, staff.ID, "k")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, key string
			body      map[string]any
			status    int
			field     string
		}{
			{"not an admin", staffKey, map[string]any{"enabled": true}, 403, ""},
			{"bad mode", e.Key, map[string]any{"enabled": true, "mode": "everything"}, 400, "mode"},
			{"bad domain", e.Key, map[string]any{"base_url": "go.example.org"}, 400, "base_url"},
			{"domain with a path", e.Key, map[string]any{"base_url": "https://example.org/s/"}, 400, "base_url"},
			{"bad length", e.Key, map[string]any{"min_length": -5}, 400, "min_length"},
			{"unknown setting", e.Key, map[string]any{"colour": "red"}, 400, ""},
			{"ok", e.Key, map[string]any{"enabled": true, "mode": "per_recipient", "base_url": "https://Go.Example.org", "min_length": 40}, 200, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.Do("PUT", "/v1/link-settings", c.key, c.body)
				if r.Status != c.status {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				if c.field != "" {
					var eb sbhttp.ErrorBody
					r.JSON(t, &eb)
					if eb.Error.Field != c.field {
						t.Fatalf("field %q, want %q: %s", eb.Error.Field, c.field, r.Body)
					}
				}
			})
		}
		e.Do("GET", "/v1/link-settings", staffKey, nil).JSON(t, &s)
		if !s.Enabled || s.Mode != link.ModePerRecipient || s.BaseURL != "https://go.example.org" || s.MinLength != 40 || s.UpdatedBy != e.Admin.ID {
			t.Fatalf("saved: %+v", s)
		}
	})
}

func TestBasicLinks(t *testing.T) {
	each(t, func(t *testing.T, e *hubtest.Env, svc *link.Service) {
		// Off by default: bodies are left alone.
		m := e.Send("+12025550111", "Apply: "+longURL)
		e.WaitStatus(m.ID, sb.StatusDelivered)
		if body, _ := codes(t, e, "+12025550111"); body != "Apply: "+longURL {
			t.Fatalf("disabled links rewrote %q", body)
		}

		settings(t, e, map[string]any{"enabled": true, "mode": "basic", "base_url": "https://go.example.org"})
		other := "https://example.org/financial-aid/deadlines"
		m = e.Send("+12025550111", "Apply: "+longURL+" (again: "+longURL+"). Aid: "+other+". Short: "+shortURL)
		e.WaitStatus(m.ID, sb.StatusDelivered)
		body, found := codes(t, e, "+12025550111")
		if len(found) != 3 || found[0] != found[1] || found[0] == found[2] {
			t.Fatalf("codes %v in %q", found, body)
		}
		if !strings.Contains(body, "Short: "+shortURL) || strings.Contains(body, longURL) {
			t.Fatalf("body %q", body)
		}
		if !strings.HasPrefix(body, "Apply: https://go.example.org/l/"+found[0]+" (again: https://go.example.org/l/"+found[0]+"). Aid: ") {
			t.Fatalf("body %q", body)
		}
		ls := linkOf(t, e, "message_id="+m.ID)
		if len(ls) != 2 {
			t.Fatalf("links of the message: %+v", ls)
		}

		// A bulk send shares one code per URL.
		r := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "Deadline soon: " + longURL,
			"recipients": []map[string]string{{"to": "+12025550121"}, {"to": "+12025550122"}, {"to": "+12025550123"}}})
		if r.Status != http.StatusAccepted {
			t.Fatalf("bulk: %d %s", r.Status, r.Body)
		}
		var res hub.BulkResult
		r.JSON(t, &res)
		e.WaitFor("bulk delivery", func() bool {
			return len(e.Carrier.Inbox("+12025550121"))+len(e.Carrier.Inbox("+12025550122"))+len(e.Carrier.Inbox("+12025550123")) == 3
		})
		var bulkCodes []string
		for _, p := range []string{"+12025550121", "+12025550122", "+12025550123"} {
			_, c := codes(t, e, p)
			bulkCodes = append(bulkCodes, c...)
		}
		if len(bulkCodes) != 3 || bulkCodes[0] != bulkCodes[1] || bulkCodes[1] != bulkCodes[2] || bulkCodes[0] == found[0] {
			t.Fatalf("bulk codes %v (1:1 code %s)", bulkCodes, found[0])
		}
		bl := linkOf(t, e, "batch_id="+res.BatchID)
		if len(bl) != 1 || bl[0].Code != bulkCodes[0] || bl[0].URL != longURL || bl[0].ShortURL != "https://go.example.org/l/"+bulkCodes[0] {
			t.Fatalf("bulk links: %+v", bl)
		}

		// Clicks: people are counted apart from bots; all are redirected.
		code := bulkCodes[0]
		for _, c := range []struct {
			name, method string
			header       map[string]string
		}{
			{"person", "GET", map[string]string{"User-Agent": chromeUA}},
			{"another person", "GET", map[string]string{"User-Agent": chromeUA}},
			{"preview HEAD", "HEAD", map[string]string{"User-Agent": chromeUA}},
			{"facebook preview", "GET", map[string]string{"User-Agent": "facebookexternalhit/1.1"}},
			{"slack preview", "GET", map[string]string{"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}},
		} {
			resp, _ := open(t, e, c.method, code, c.header)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != longURL {
				t.Fatalf("%s: %d → %q", c.name, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		if err := svc.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		bl = linkOf(t, e, "batch_id="+res.BatchID)
		if bl[0].Clicks != 2 || bl[0].BotClicks != 3 || bl[0].LastClickAt == nil {
			t.Fatalf("counts: %+v", bl[0])
		}
		// Basic links keep no details of a click.
		if n, err := e.DB.CountRows(context.Background(), "link_clicks"); err != nil || n != 0 {
			t.Fatalf("basic clicks stored %d rows (%v)", n, err)
		}
	})
}

func TestUnknownCodes(t *testing.T) {
	each(t, func(t *testing.T, e *hubtest.Env, svc *link.Service) {
		for _, c := range []struct{ name, method, code string }{
			{"unknown", "GET", "AAAAAAAAAAAA"},
			{"malformed", "GET", "nope"},
			{"HEAD unknown", "HEAD", "AAAAAAAAAAAA"},
		} {
			t.Run(c.name, func(t *testing.T) {
				resp, body := open(t, e, c.method, c.code, map[string]string{"User-Agent": chromeUA})
				if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				if c.method == "GET" && (!strings.Contains(body, "Link not found") || len(body) > 1024) {
					t.Fatalf("page: %q", body)
				}
			})
		}
	})
}

// clickCRM is a CRM that records link clicks itself (as the Salesforce
// client will): the write-back hands them over.
type clickCRM struct {
	*builtin.CRM
	mu     sync.Mutex
	clicks []sb.LinkClick
}

func (c *clickCRM) WriteClicks(ctx context.Context, org *sb.Org, clicks []sb.LinkClick) ([]sb.CRMResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]sb.CRMResult, len(clicks))
	for i, k := range clicks {
		c.clicks = append(c.clicks, k)
		out[i].CRMMessageID = "click-" + k.ID
	}
	return out, nil
}

// switchCRMs hands out one CRM, which a test may swap while workers run.
type switchCRMs struct {
	mu  sync.Mutex
	crm sb.CRM
}

func (s *switchCRMs) For(context.Context, *sb.Org) (sb.CRM, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.crm, nil
}

func (s *switchCRMs) set(c sb.CRM) {
	s.mu.Lock()
	s.crm = c
	s.mu.Unlock()
}

func TestPerRecipientLinks(t *testing.T) {
	each(t, func(t *testing.T, e *hubtest.Env, svc *link.Service) {
		ctx := context.Background()
		settings(t, e, map[string]any{"enabled": true, "mode": "per_recipient", "base_url": "https://go.example.org"})
		ada := addContact(t, e, &sb.CRMRecord{FirstName: "Ada", Phone: "+12025550131"})
		bob := addContact(t, e, &sb.CRMRecord{FirstName: "Bob", Phone: "+12025550132"})
		r := e.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "Your offer: " + longURL,
			"recipients": []map[string]string{{"record_id": ada.ID}, {"record_id": bob.ID}}})
		if r.Status != http.StatusAccepted {
			t.Fatalf("bulk: %d %s", r.Status, r.Body)
		}
		e.WaitFor("delivery", func() bool { return len(e.Carrier.Inbox(ada.Phone))+len(e.Carrier.Inbox(bob.Phone)) == 2 })
		_, adaCodes := codes(t, e, ada.Phone)
		_, bobCodes := codes(t, e, bob.Phone)
		if len(adaCodes) != 1 || len(bobCodes) != 1 || adaCodes[0] == bobCodes[0] {
			t.Fatalf("codes: ada %v, bob %v", adaCodes, bobCodes)
		}
		// Ada clicks from a web mail page; Bob's link is only fetched by a
		// preview bot.
		resp, _ := open(t, e, "GET", adaCodes[0], map[string]string{"User-Agent": chromeUA, "Referer": "https://Mail.Example.com/inbox"})
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != longURL {
			t.Fatalf("ada's click: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = open(t, e, "GET", bobCodes[0], map[string]string{"User-Agent": "WhatsApp/2.23.20.0 A"})
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("bot: %d", resp.StatusCode)
		}
		if err := svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		e.WaitFor("click write-back", func() bool {
			n, err := e.DB.PendingClickCount(ctx, e.Org.ID)
			return err == nil && n == 0
		})
		got, err := e.DB.CRMLinkClicks(ctx, e.Org.ID, ada.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("ada's CRM clicks: %+v", got)
		}
		c := got[0]
		adaMsgs, err := e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{RecordID: ada.ID, Limit: 10})
		if err != nil || len(adaMsgs) != 1 {
			t.Fatalf("ada's messages: %v %v", adaMsgs, err)
		}
		if c.URL != longURL || c.ShortURL != "https://go.example.org/l/"+adaCodes[0] || c.IP != "127.0.0.1" || c.Domain != "mail.example.com" ||
			c.Browser != "Chrome 124 on Android" || c.MessageID != adaMsgs[0].ID || c.At.IsZero() {
			t.Fatalf("ada's click record: %+v", c)
		}
		if bobs, _ := e.DB.CRMLinkClicks(ctx, e.Org.ID, bob.ID); len(bobs) != 0 {
			t.Fatalf("a bot's click reached the CRM: %+v", bobs)
		}
		// Written clicks lose their sealed IP in the operational table.
		raw, err := e.DB.RawScan(ctx, "link_clicks")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("127.0.0.1")) || len(raw) == 0 {
			t.Fatalf("link_clicks after write-back: %q", raw)
		}
		ls := linkOf(t, e, "message_id="+adaMsgs[0].ID)
		if len(ls) != 1 || ls[0].Clicks != 1 || ls[0].BotClicks != 0 {
			t.Fatalf("ada's link: %+v", ls)
		}
	})
}

// TestClicksToACRMThatRecordsThem: a CRM implementing sb.ClickWriter gets
// the clicks; an external CRM that cannot record them keeps them pending.
func TestClicksToACRMThatRecordsThem(t *testing.T) {
	crms := &switchCRMs{}
	each(t, func(t *testing.T, e *hubtest.Env, svc *link.Service) {
		crm := &clickCRM{CRM: e.Builtin}
		crms.set(crm)
		ctx := context.Background()
		settings(t, e, map[string]any{"enabled": true, "mode": "per_recipient", "base_url": "https://go.example.org"})
		m := e.Send("+12025550141", "See "+longURL)
		e.WaitStatus(m.ID, sb.StatusDelivered)
		_, cs := codes(t, e, "+12025550141")
		open(t, e, "GET", cs[0], map[string]string{"User-Agent": chromeUA})
		if err := svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		e.WaitFor("click write-back", func() bool {
			n, err := e.DB.PendingClickCount(ctx, e.Org.ID)
			return err == nil && n == 0
		})
		crm.mu.Lock()
		got := crm.clicks
		crm.mu.Unlock()
		if len(got) != 1 {
			t.Fatalf("CRM got %d clicks", len(got))
		}
		if last := got[0]; last.MessageID != m.ID || last.URL != longURL || last.Browser != "Chrome 124 on Android" {
			t.Fatalf("CRM got %+v", last)
		}
		if rows, _ := e.DB.CRMLinkClicks(ctx, e.Org.ID, ""); len(rows) != 0 {
			t.Fatalf("built-in table used for a CRM that records clicks: %+v", rows)
		}

		// An org on an external CRM without click support: held.
		org := *e.Org
		org.Settings.CRM = sb.CRMSalesforce
		if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.UpdateOrgSettings(ctx, org.ID, org.Settings) }); err != nil {
			t.Fatal(err)
		}
		crms.set(struct{ sb.CRM }{e.Builtin}) // only sb.CRM: the built-in CRM's sb.ClickWriter is hidden
		m = e.Send("+12025550142", "See "+longURL)
		e.WaitStatus(m.ID, sb.StatusDelivered)
		_, cs = codes(t, e, "+12025550142")
		open(t, e, "GET", cs[0], map[string]string{"User-Agent": chromeUA})
		if err := svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := svc.WriteBack(ctx, e.Org.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := e.DB.PendingClickCount(ctx, e.Org.ID); n != 1 {
			t.Fatalf("%d clicks pending, want 1 held", n)
		}
	}, hubtest.Options{CRMs: crms})
}

// TestClicksSurviveShutdown: clicks still buffered when the service closes
// are written.
func TestClicksSurviveShutdown(t *testing.T) {
	each(t, func(t *testing.T, e *hubtest.Env, svc *link.Service) {
		settings(t, e, map[string]any{"enabled": true, "mode": "per_recipient", "base_url": "https://go.example.org"})
		m := e.Send("+12025550151", "See "+longURL)
		e.WaitStatus(m.ID, sb.StatusDelivered)
		_, cs := codes(t, e, "+12025550151")
		const n = 25
		for range n {
			open(t, e, "GET", cs[0], map[string]string{"User-Agent": chromeUA})
		}
		if err := svc.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		ls := linkOf(t, e, "message_id="+m.ID)
		if len(ls) != 1 || ls[0].Clicks != n {
			t.Fatalf("after shutdown: %+v", ls)
		}
		// A click after Close (a straggler request) is written at once.
		open(t, e, "GET", cs[0], map[string]string{"User-Agent": chromeUA})
		if ls = linkOf(t, e, "message_id="+m.ID); ls[0].Clicks != n+1 {
			t.Fatalf("straggler: %+v", ls)
		}
	})
}

// TestClicksWaitForTheirMessageRecord: a click is written to Salesforce only
// once its message's record is there, so the click record always links to
// it — even when the click comes before the message is written.
func TestClicksWaitForTheirMessageRecord(t *testing.T) {
	each(t, func(t *testing.T, e *hubtest.Env, svc *link.Service) {
		ctx := context.Background()
		e.AuthorizeSalesforce("integration@college.example")
		settings(t, e, map[string]any{"enabled": true, "mode": "per_recipient", "base_url": "https://go.example.org"})
		// The message's record cannot be written for now (a lock that
		// lasts: Salesforce's retryable UNABLE_TO_LOCK_ROW, on the record
		// with the recipient's number).
		const phone = "+12025550161"
		e.SF.AddRecordFault(sftest.RecordFault{Match: phone, Code: "UNABLE_TO_LOCK_ROW"})
		m := e.Send(phone, "Your offer letter: "+longURL)
		e.WaitStatus(m.ID, sb.StatusDelivered)
		e.WaitFor("a failed write of the message's record", func() bool { return e.SF.FaultsFired(phone) > 0 })

		_, cs := codes(t, e, phone)
		open(t, e, "GET", cs[0], map[string]string{"User-Agent": chromeUA})
		if err := svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := svc.WriteBack(ctx, e.Org.ID); err != nil {
			t.Fatal(err)
		}
		if got := e.SF.Records("Switchboard_Link_Click__c"); len(got) != 0 {
			t.Fatalf("a click was written before its message's record: %+v", got)
		}
		if n, _ := e.DB.PendingClickCount(ctx, e.Org.ID); n != 1 {
			t.Fatalf("%d clicks pending, want 1 waiting for its message", n)
		}

		// The lock goes: the message is written, then the click, linked.
		e.SF.ClearRecordFaults()
		e.WaitFor("the click in Salesforce", func() bool {
			n, err := e.DB.PendingClickCount(ctx, e.Org.ID)
			return err == nil && n == 0
		})
		msg := e.Message(m.ID)
		if msg.CRMMessageID == "" {
			t.Fatal("the click was written before its message's record")
		}
		clicks := e.SF.Records("Switchboard_Link_Click__c")
		if len(clicks) != 1 {
			t.Fatalf("%d click records", len(clicks))
		}
		if c := clicks[0]; c["Message__c"] != msg.CRMMessageID || c["URL__c"] != longURL || c["Browser__c"] != "Chrome 124 on Android" {
			t.Fatalf("click record %+v, want it linked to message record %s", c, msg.CRMMessageID)
		}
	}, hubtest.Options{Salesforce: true})
}
