package form_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/form"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/provider/sim"
	"github.com/switchboard/switchboard/store"
)

// clock is a controllable clock for session timeouts.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	*hubtest.Env
	svc   *form.Service
	clock *clock
}

// each runs f per dialect on a Switchboard with SMS forms wired in as
// cmd/switchboard does: both hooks, the routes, the workers and the
// periodic job; the form clock is controllable.
func each(t *testing.T, f func(t *testing.T, x *fixture)) {
	var mu sync.Mutex
	fixtures := map[*hubtest.Env]*fixture{}
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		mu.Lock()
		x := fixtures[e]
		mu.Unlock()
		e.Hub.OutgoingHooks = append(e.Hub.OutgoingHooks, x.svc)
		e.Hub.IncomingHooks = append(e.Hub.IncomingHooks, x.svc)
		e.HTTP.Content = &sbhttp.Content{Forms: x.svc}
		f(t, x)
	}, hubtest.Options{Setup: func(e *hubtest.Env, cfg *river.Config) {
		x := &fixture{Env: e, svc: form.New(e.DB, e.Hub), clock: &clock{t: time.Now().UTC().Truncate(time.Second)}}
		x.svc.Now = x.clock.Now
		x.svc.AddWorkers(cfg.Workers)
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, x.svc.PeriodicJobs()...)
		mu.Lock()
		fixtures[e] = x
		mu.Unlock()
	}})
}

func (x *fixture) user(t *testing.T, email string, perms ...sb.Permission) (*sb.User, string) {
	t.Helper()
	ctx := context.Background()
	u := &sb.User{OrgID: x.Org.ID, Email: email, Name: strings.Split(email, "@")[0], Permissions: perms}
	var key string
	err := x.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateUser(ctx, u, ""); err != nil {
			return err
		}
		var err error
		_, key, err = tx.CreateAPIKey(ctx, x.Org.ID, u.ID, "test")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return u, key
}

func (x *fixture) contact(t *testing.T, first, phone string) *sb.CRMRecord {
	t.Helper()
	ctx := context.Background()
	c := &sb.CRMRecord{FirstName: first, Phone: phone}
	if err := x.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveContact(ctx, x.Org.ID, c) }); err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	qAttend = "Will you attend? 1) Attending 2) Not attending"
	qGuests = "How many guests (0-5)?"
	qWhy    = "Sorry to hear that. Why not?"
	qArrive = "Arrival date?"
	closing = "Thanks, see you!"
)

func rsvp(gatewayID string) map[string]any {
	return map[string]any{
		"name": "RSVP",
		"questions": []map[string]any{
			{"key": "attend", "text": qAttend, "type": "choice", "choices": []string{"Attending", "Not attending"},
				"branches": []map[string]any{{"answer": "not attending", "next": "why"}}},
			{"key": "guests", "text": qGuests, "type": "number", "min": 0, "max": 5, "branches": []map[string]any{{"min": 3, "next": "end"}}, "next": "arrive"},
			{"key": "why", "text": qWhy, "next": "end"},
			{"key": "arrive", "text": qArrive, "type": "date"},
		},
		"closing_message": closing,
		"query_codes":     []map[string]any{{"gateway_id": gatewayID, "keyword": "rsvp"}},
	}
}

func (x *fixture) createForm(t *testing.T, body map[string]any) form.Form {
	t.Helper()
	r := x.API("POST", "/v1/forms", body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create form: %d %s", r.Status, r.Body)
	}
	var f form.Form
	r.JSON(t, &f)
	return f
}

// converse texts body from phone and waits for the next text back.
func (x *fixture) converse(t *testing.T, phone, body string) string {
	t.Helper()
	n := len(x.Carrier.Inbox(phone))
	x.Text(phone, x.Gateway.Number, body)
	x.WaitFor("a reply to "+body, func() bool { return len(x.Carrier.Inbox(phone)) > n })
	in := x.Carrier.Inbox(phone)
	if len(in) != n+1 {
		t.Fatalf("%d replies to %q", len(in)-n, body)
	}
	return in[n].Body
}

// silent texts body from phone and checks no reply was queued: a reply is
// stored with the incoming message before the gateway is answered.
func (x *fixture) silent(t *testing.T, phone, body string) {
	t.Helper()
	before := x.outgoing(t, phone)
	x.Text(phone, x.Gateway.Number, body)
	if after := x.outgoing(t, phone); after != before {
		t.Fatalf("%q got %d replies, want none", body, after-before)
	}
}

func (x *fixture) outgoing(t *testing.T, phone string) int {
	t.Helper()
	ms, err := x.DB.Messages(context.Background(), x.Org.ID, store.MessageFilter{PhoneHash: x.DB.Hasher().Phone(phone), Direction: sb.Outgoing, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

func (x *fixture) sessions(t *testing.T, formID string) []store.FormSession {
	t.Helper()
	var out struct{ Sessions []store.FormSession }
	r := x.API("GET", "/v1/forms/"+formID+"/sessions", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("sessions: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &out)
	return out.Sessions
}

// synced waits until messages and form records are all in the CRM.
func (x *fixture) synced(t *testing.T) {
	t.Helper()
	x.WaitCRMSynced()
	x.WaitFor("form write-back", func() bool {
		n, err := x.DB.FormPendingCount(context.Background(), x.Org.ID)
		return err == nil && n == 0
	})
}

func (x *fixture) responses(t *testing.T, recordID string) []store.CRMFormResponse {
	t.Helper()
	rs, err := x.DB.CRMFormResponses(context.Background(), x.Org.ID, recordID)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func answers(r store.CRMFormResponse) string {
	var parts []string
	for _, a := range r.Answers {
		parts = append(parts, a.Question+"="+a.Answer)
	}
	return strings.Join(parts, "; ")
}

func TestFormCRUD(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		_, limitedKey := x.user(t, "staff@example.org", sb.PermLimitedAccess)
		_, bulkKey := x.user(t, "sender@example.org", sb.PermBulkSMS)
		_, _, otherKey, err := x.Hub.CreateOrg(context.Background(), "Other Org", "other@example.org", "Other")
		if err != nil {
			t.Fatal(err)
		}
		f := x.createForm(t, rsvp(x.Gateway.ID))
		if f.Version != 1 || f.Timeout != "24h0m0s" || len(f.QueryCodes) != 1 || f.QueryCodes[0].Keyword != "RSVP" || f.Questions[0].Branches[0].Answer != "Not attending" {
			t.Fatalf("created: %+v", f)
		}
		other := rsvp(x.Gateway.ID)
		other["name"] = "Other"
		noCodes := rsvp(x.Gateway.ID)
		noCodes["name"], noCodes["query_codes"] = "Staff form", nil
		badChoice := rsvp(x.Gateway.ID)
		badChoice["name"] = "Bad"
		badChoice["questions"] = []map[string]any{{"text": "Coming?", "type": "choice", "choices": []string{"Yes", "No"}}}
		stopCode := rsvp(x.Gateway.ID)
		stopCode["name"], stopCode["query_codes"] = "Stop", []map[string]any{{"gateway_id": x.Gateway.ID, "keyword": "stop"}}
		cases := []struct {
			name, method, path, key string
			body                    any
			status                  int
			msg                     string
		}{
			{"query code taken", "POST", "/v1/forms", x.Key, other, 409, "query code"},
			{"name taken", "POST", "/v1/forms", x.Key, rsvp(x.Gateway.ID), 409, `"RSVP" exists already`},
			{"choice that is a keyword", "POST", "/v1/forms", x.Key, badChoice, 400, `choice "Yes" of question q1 is a gateway keyword`},
			{"query code that is a keyword", "POST", "/v1/forms", x.Key, stopCode, 400, "opt-out, opt-in or help keyword"},
			{"no questions", "POST", "/v1/forms", x.Key, map[string]any{"name": "Empty", "questions": []any{}}, 400, "at least one question"},
			{"limited access may create", "POST", "/v1/forms", limitedKey, noCodes, 201, ""},
			{"bulk-only user may not create", "POST", "/v1/forms", bulkKey, map[string]any{"name": "X", "questions": []map[string]any{{"text": "Q?"}}}, 403, "Limited Access"},
			{"bulk-only user may not delete", "DELETE", "/v1/forms/" + f.ID, bulkKey, nil, 403, "Limited Access"},
			{"anyone may read", "GET", "/v1/forms/" + f.ID, bulkKey, nil, 200, ""},
			{"other org cannot read", "GET", "/v1/forms/" + f.ID, otherKey, nil, 404, "not found"},
			{"other org cannot replace", "PUT", "/v1/forms/" + f.ID, otherKey, map[string]any{"name": "X", "questions": []map[string]any{{"text": "Q?"}}}, 404, "not found"},
			{"other org cannot list sessions", "GET", "/v1/forms/" + f.ID + "/sessions", otherKey, nil, 404, "not found"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := x.Do(c.method, c.path, c.key, c.body)
				if r.Status != c.status {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				if c.msg != "" {
					var eb sbhttp.ErrorBody
					r.JSON(t, &eb)
					if !strings.Contains(eb.Error.Message, c.msg) {
						t.Fatalf("message %q lacks %q", eb.Error.Message, c.msg)
					}
				}
			})
		}
		// A new version; the query code moves with it.
		edit := rsvp(x.Gateway.ID)
		edit["closing_message"] = "Thank you!"
		r := x.Do("PUT", "/v1/forms/"+f.ID, limitedKey, edit)
		var v2 form.Form
		r.JSON(t, &v2)
		if r.Status != http.StatusOK || v2.Version != 2 || v2.ClosingMessage != "Thank you!" || len(v2.QueryCodes) != 1 || v2.UpdatedBy == x.Admin.ID {
			t.Fatalf("replace: %d %s", r.Status, r.Body)
		}
		var list struct{ Forms []form.Form }
		x.Do("GET", "/v1/forms", bulkKey, nil).JSON(t, &list)
		if len(list.Forms) != 2 || list.Forms[0].Name != "RSVP" || list.Forms[1].Name != "Staff form" {
			t.Fatalf("list: %+v", list.Forms)
		}
		x.Do("GET", "/v1/forms", otherKey, nil).JSON(t, &list)
		if len(list.Forms) != 0 {
			t.Fatalf("other org lists %d forms", len(list.Forms))
		}
		if r := x.Do("DELETE", "/v1/forms/"+f.ID, limitedKey, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if r := x.API("GET", "/v1/forms/"+f.ID, nil); r.Status != http.StatusNotFound {
			t.Fatalf("deleted form: %d", r.Status)
		}
		// Its query code is free again.
		x.createForm(t, other)
	})
}

// TestFormFullFlow: forms started by a 1:1 and a bulk send, with branching,
// bad answers re-asked, closing messages, form records in the CRM and the
// system fields the seed asks for.
func TestFormFullFlow(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		ctx := context.Background()
		staff, staffKey := x.user(t, "staff@example.org", sb.PermLimitedAccess, sb.PermBulkSMS)
		integration := x.Org.Settings.IntegrationUserID
		f := x.createForm(t, rsvp(x.Gateway.ID))
		ada := x.contact(t, "Ada", "+12025550161")
		bob := x.contact(t, "Bob", "+12025550162")
		cy := x.contact(t, "Cy", "+12025550163")

		// 1:1: the message carries the first question after its text.
		r := x.Do("POST", "/v1/messages", staffKey, map[string]any{"gateway_id": x.Gateway.ID, "to": ada.Phone, "record_id": ada.ID,
			"body": "Hi Ada, a quick question.", "form_id": f.ID})
		if r.Status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		}
		var first sb.Message
		r.JSON(t, &first)
		x.WaitStatus(first.ID, sb.StatusDelivered)
		if got := x.Carrier.Inbox(ada.Phone)[0].Body; got != "Hi Ada, a quick question.\n"+qAttend {
			t.Fatalf("first text %q", got)
		}
		for _, step := range []struct{ reply, want string }{
			{"maybe", "Please answer 1 or 2. " + qAttend},
			{"2", qWhy},
			{"Exams that week", closing},
		} {
			if got := x.converse(t, ada.Phone, step.reply); got != step.want {
				t.Fatalf("after %q got %q, want %q", step.reply, got, step.want)
			}
		}
		// After the form, texts are plain messages again.
		x.silent(t, ada.Phone, "ok thanks")

		// Bulk: each recipient gets the first question and runs on.
		r = x.Do("POST", "/v1/bulk-sends", staffKey, map[string]any{"gateway_id": x.Gateway.ID, "form_id": f.ID,
			"recipients": []map[string]string{{"record_id": bob.ID}, {"record_id": cy.ID}}})
		if r.Status != http.StatusAccepted {
			t.Fatalf("bulk: %d %s", r.Status, r.Body)
		}
		x.WaitFor("bulk delivery", func() bool { return len(x.Carrier.Inbox(bob.Phone))+len(x.Carrier.Inbox(cy.Phone)) == 2 })
		if x.Carrier.Inbox(bob.Phone)[0].Body != qAttend || x.Carrier.Inbox(cy.Phone)[0].Body != qAttend {
			t.Fatalf("bulk first texts: %q, %q", x.Carrier.Inbox(bob.Phone)[0].Body, x.Carrier.Inbox(cy.Phone)[0].Body)
		}
		for _, step := range []struct{ phone, reply, want string }{
			{bob.Phone, "attending", qGuests},
			{cy.Phone, "1", qGuests},
			{bob.Phone, "9", "Please answer with a number from 0 to 5. " + qGuests},
			{bob.Phone, "4", closing}, // 3 or more guests: the branch ends the form
			{cy.Phone, "2", qArrive},
			{cy.Phone, "next friday", "Please answer with a date, e.g. 12/31/2025. " + qArrive},
			{cy.Phone, "6/13/2025", closing},
		} {
			if got := x.converse(t, step.phone, step.reply); got != step.want {
				t.Fatalf("%s: after %q got %q, want %q", step.phone, step.reply, got, step.want)
			}
		}

		x.synced(t)
		for _, c := range []struct {
			rec     *sb.CRMRecord
			answers string
		}{
			{ada, "attend=Not attending; why=Exams that week"},
			{bob, "attend=Attending; guests=4"},
			{cy, "attend=Attending; guests=2; arrive=2025-06-13"},
		} {
			rs := x.responses(t, c.rec.ID)
			if len(rs) != 1 {
				t.Fatalf("%s has %d form records", c.rec.FirstName, len(rs))
			}
			fr := rs[0]
			if fr.Status != sb.FormCompleted || answers(fr) != c.answers || fr.FormID != f.ID || fr.FormName != "RSVP" || fr.EndedAt.IsZero() {
				t.Fatalf("%s's form record: %+v (%s)", c.rec.FirstName, fr, answers(fr))
			}
			// The form record is owned and created by the user who started it.
			if fr.OwnerID != staff.ID || fr.CreatedByID != staff.ID {
				t.Fatalf("%s's form record: owner %s, created by %s", c.rec.FirstName, fr.OwnerID, fr.CreatedByID)
			}
			if fr.Answers[0].Text != qAttend {
				t.Fatalf("answer without its question: %+v", fr.Answers[0])
			}
		}
		// System fields of the SMS records: the first by the running user;
		// the rest created by the integration user, owned by the form's
		// owner.
		msgs, err := x.DB.CRMMessagesFor(ctx, x.Org.ID, ada.ID, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 8 { // question, 3 replies, 3 answers, "ok thanks"
			t.Fatalf("ada's record has %d messages", len(msgs))
		}
		for i, m := range msgs {
			wantCreator := integration
			if i == 0 {
				wantCreator = staff.ID
			}
			if m.OwnerID != staff.ID || m.CreatedByID != wantCreator {
				t.Fatalf("message %d (%s %q): owner %s, created by %s; want %s, %s", i, m.Direction, m.Body, m.OwnerID, m.CreatedByID, staff.ID, wantCreator)
			}
		}
		// Answers are gone from the operational tables once in the CRM.
		if n, _ := x.DB.CountRows(ctx, "form_answers"); n != 0 {
			t.Fatalf("%d answers left after write-back", n)
		}
		raw, err := x.DB.RawScan(ctx, "form_sessions")
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{ada.Phone, "Exams that week", "2025-06-13"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Fatalf("form_sessions holds %q in readable form", secret)
			}
		}
	})
}

// TestFormAnswersSealed: while a session runs, its answers are stored
// sealed, never readable.
func TestFormAnswersSealed(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		f := x.createForm(t, rsvp(x.Gateway.ID))
		phone := "+12025550164"
		if got := x.converse(t, phone, "RSVP"); got != qAttend {
			t.Fatalf("query code reply %q", got)
		}
		if got := x.converse(t, phone, "Not attending"); got != qWhy {
			t.Fatalf("got %q", got)
		}
		raw, err := x.DB.RawScan(context.Background(), "form_answers")
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) == 0 || bytes.Contains(raw, []byte("Not attending")) {
			t.Fatalf("form_answers: %q", raw)
		}
		ss := x.sessions(t, f.ID)
		if len(ss) != 1 || ss[0].Status != store.SessionOpen || ss[0].Question != "why" {
			t.Fatalf("sessions: %+v", ss)
		}
	})
}

// TestFormQueryCode: a form started by a text; its records are owned like
// the incoming message and created by the integration user.
func TestFormQueryCode(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		staff, staffKey := x.user(t, "staff@example.org", sb.PermLimitedAccess)
		f := x.createForm(t, rsvp(x.Gateway.ID))
		// An unknown number: owned by the integration user.
		stranger := "+12025550171"
		for _, step := range []struct{ reply, want string }{
			{" rsvp! ", qAttend},
			{"Attending", qGuests},
			{"0", qArrive},
			{"2025-07-04", closing},
		} {
			if got := x.converse(t, stranger, step.reply); got != step.want {
				t.Fatalf("after %q got %q, want %q", step.reply, got, step.want)
			}
		}
		// A number staff texted before: the form record is staff's.
		ada := x.contact(t, "Ada", "+12025550172")
		r := x.Do("POST", "/v1/messages", staffKey, map[string]any{"gateway_id": x.Gateway.ID, "to": ada.Phone, "record_id": ada.ID, "body": "Text RSVP to answer our survey"})
		if r.Status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		}
		x.WaitFor("delivery", func() bool { return len(x.Carrier.Inbox(ada.Phone)) == 1 })
		if got := x.converse(t, ada.Phone, "RSVP"); got != qAttend {
			t.Fatalf("got %q", got)
		}
		// A text that is no query code gets no reply.
		x.silent(t, "+12025550173", "SURVEY")

		x.synced(t)
		integration := x.Org.Settings.IntegrationUserID
		all := x.responses(t, "")
		if len(all) != 2 {
			t.Fatalf("%d form records", len(all))
		}
		byRecord := map[string]store.CRMFormResponse{}
		for _, fr := range all {
			byRecord[fr.RecordID] = fr
		}
		strangers := byRecord[""]
		if strangers.Status != sb.FormCompleted || answers(strangers) != "attend=Attending; guests=0; arrive=2025-07-04" ||
			strangers.OwnerID != integration || strangers.CreatedByID != integration {
			t.Fatalf("stranger's form record: %+v", strangers)
		}
		adas := byRecord[ada.ID]
		if adas.Status != sb.FormInProgress || adas.OwnerID != staff.ID || adas.CreatedByID != integration || adas.FormID != f.ID {
			t.Fatalf("ada's form record: %+v", adas)
		}
	})
}

// TestFormTimeout: a session with no answer for the timeout ends (the
// periodic job, or the next reply, closes it) and is written as expired.
func TestFormTimeout(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		ctx := context.Background()
		def := rsvp(x.Gateway.ID)
		def["timeout"] = "2h"
		f := x.createForm(t, def)
		ada := x.contact(t, "Ada", "+12025550181")
		bob := x.contact(t, "Bob", "+12025550182")
		r := x.API("POST", "/v1/bulk-sends", map[string]any{"gateway_id": x.Gateway.ID, "form_id": f.ID,
			"recipients": []map[string]string{{"record_id": ada.ID}, {"record_id": bob.ID}}})
		if r.Status != http.StatusAccepted {
			t.Fatalf("bulk: %d %s", r.Status, r.Body)
		}
		x.WaitFor("delivery", func() bool { return len(x.Carrier.Inbox(ada.Phone))+len(x.Carrier.Inbox(bob.Phone)) == 2 })
		// An answer within the timeout moves the deadline on.
		x.clock.Add(90 * time.Minute)
		if got := x.converse(t, ada.Phone, "1"); got != qGuests {
			t.Fatalf("got %q", got)
		}
		x.clock.Add(90 * time.Minute) // ada: 90 min since her answer; bob: 3 h
		if err := x.Queue.Insert(ctx, form.ExpireArgs{}, nil); err != nil {
			t.Fatal(err)
		}
		x.WaitFor("bob's session to expire", func() bool {
			for _, s := range x.sessions(t, f.ID) {
				if s.RecordID == bob.ID {
					return s.Status == store.SessionExpired
				}
			}
			return false
		})
		x.silent(t, bob.Phone, "1") // too late: a plain message now
		if got := x.converse(t, ada.Phone, "2"); got != qArrive {
			t.Fatalf("ada within her timeout got %q", got)
		}
		// Past ada's deadline, before the job ran: her reply closes it.
		x.clock.Add(2*time.Hour + time.Second)
		x.silent(t, ada.Phone, "6/1/2025")
		x.synced(t)
		if rs := x.responses(t, bob.ID); len(rs) != 1 || rs[0].Status != sb.FormExpired || len(rs[0].Answers) != 0 {
			t.Fatalf("bob's form record: %+v", rs)
		}
		if rs := x.responses(t, ada.ID); len(rs) != 1 || rs[0].Status != sb.FormExpired || answers(rs[0]) != "attend=Attending; guests=2" {
			t.Fatalf("ada's form record: %+v", rs)
		}
	})
}

// TestFormStop: STOP during a form is the opt-out keyword, never an answer;
// it cancels the form at once (written to the CRM as Cancelled), and an
// opt-in afterwards does not resume it.
func TestFormStop(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		f := x.createForm(t, rsvp(x.Gateway.ID))
		ada := x.contact(t, "Ada", "+12025550191")
		r := x.API("POST", "/v1/messages", map[string]any{"gateway_id": x.Gateway.ID, "to": ada.Phone, "record_id": ada.ID, "form_id": f.ID})
		if r.Status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		}
		x.WaitFor("delivery", func() bool { return len(x.Carrier.Inbox(ada.Phone)) == 1 })
		if got := x.converse(t, ada.Phone, "2"); got != qWhy {
			t.Fatalf("got %q", got)
		}
		// The question now takes any text, yet STOP is the keyword.
		if got := x.converse(t, ada.Phone, "STOP"); got != sb.DefaultOptOutReply {
			t.Fatalf("STOP got %q", got)
		}
		// Cancelled by the STOP itself, before any other text.
		ss := x.sessions(t, f.ID)
		if len(ss) != 1 || ss[0].Status != store.SessionCancelled || ss[0].Detail != "The recipient opted out" || ss[0].EndedAt == nil {
			t.Fatalf("sessions right after STOP: %+v", ss)
		}
		x.synced(t)
		rs := x.responses(t, ada.ID)
		if len(rs) != 1 || rs[0].Status != sb.FormCancelled || answers(rs[0]) != "attend=Not attending" || rs[0].EndedAt.IsZero() {
			t.Fatalf("form record right after STOP: %+v", rs)
		}
		// A query code cannot start a form for an opted-out number.
		x.silent(t, ada.Phone, "RSVP")
		// START opts back in; the cancelled form does not resume: the
		// answer it was waiting for is a plain message now.
		if got := x.converse(t, ada.Phone, "START"); got != sb.DefaultOptInReply {
			t.Fatalf("START got %q", got)
		}
		x.silent(t, ada.Phone, "Because of exams")
		x.silent(t, ada.Phone, "1")
		if ss := x.sessions(t, f.ID); len(ss) != 1 || ss[0].Status != store.SessionCancelled {
			t.Fatalf("sessions after START: %+v", ss)
		}
		x.synced(t)
		if rs := x.responses(t, ada.ID); len(rs) != 1 || rs[0].Status != sb.FormCancelled || answers(rs[0]) != "attend=Not attending" {
			t.Fatalf("form record after START: %+v", rs)
		}

		// A keyword added to the gateway later wins over a query code.
		kw := sb.DefaultKeywords(sb.ProviderSim)
		kw.OptOut = append(kw.OptOut, "RSVP")
		if r := x.API("PATCH", "/v1/gateways/"+x.Gateway.ID, map[string]any{"keywords": kw}); r.Status != http.StatusOK {
			t.Fatalf("gateway keywords: %d %s", r.Status, r.Body)
		}
		x.WaitFor("the gateway edit to show", func() bool {
			gw, err := x.Hub.Gateway(context.Background(), x.Org.ID, x.Gateway.ID)
			return err == nil && len(gw.Keywords.OptOut) == len(kw.OptOut)
		})
		if got := x.converse(t, "+12025550192", "rsvp"); got != sb.DefaultOptOutReply {
			t.Fatalf("RSVP as an opt-out keyword got %q", got)
		}
		if ss := x.sessions(t, f.ID); len(ss) != 1 {
			t.Fatalf("a keyword started a form: %+v", ss)
		}
	})
}

// TestFormProviderOptOut: a provider that refuses a send because the
// recipient unsubscribed at the carrier (21610) opts the number out, and
// that cancels the number's open form at once, as STOP does.
func TestFormProviderOptOut(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		f := x.createForm(t, rsvp(x.Gateway.ID))
		ada := x.contact(t, "Ada", "+12025550193")
		if r := x.API("POST", "/v1/messages", map[string]any{"gateway_id": x.Gateway.ID, "to": ada.Phone, "record_id": ada.ID, "form_id": f.ID}); r.Status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		}
		x.WaitFor("the first question", func() bool { return len(x.Carrier.Inbox(ada.Phone)) == 1 })
		if ss := x.sessions(t, f.ID); len(ss) != 1 || ss[0].Status != store.SessionOpen {
			t.Fatalf("sessions: %+v", ss)
		}
		if err := x.Carrier.SetHandset(ada.Phone, sim.Handset{Behaviour: sim.Unsubscribed}); err != nil {
			t.Fatal(err)
		}
		r := x.API("POST", "/v1/messages", map[string]any{"gateway_id": x.Gateway.ID, "to": ada.Phone, "record_id": ada.ID, "body": "Parking is free on Friday.", "mode": "automation"})
		var m sb.Message
		r.JSON(t, &m)
		if r.Status != http.StatusCreated {
			t.Fatalf("second send: %d %s", r.Status, r.Body)
		}
		x.WaitStatus(m.ID, sb.StatusFailed)
		ss := x.sessions(t, f.ID)
		if len(ss) != 1 || ss[0].Status != store.SessionCancelled || ss[0].Detail != "The recipient opted out" {
			t.Fatalf("sessions after the provider's opt-out: %+v", ss)
		}
		x.synced(t)
		if rs := x.responses(t, ada.ID); len(rs) != 1 || rs[0].Status != sb.FormCancelled {
			t.Fatalf("form record after the provider's opt-out: %+v", rs)
		}
	})
}

// TestFormOwnerKeepsTheRest: after the first SMS, a form's messages —
// the recipient's answers and the questions that follow — belong to the
// form's owner and are created by the integration user, even when another
// user texted the number in between (the seed's system fields for forms).
func TestFormOwnerKeepsTheRest(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		ctx := context.Background()
		staffA, keyA := x.user(t, "a@example.org", sb.PermLimitedAccess)
		staffB, keyB := x.user(t, "b@example.org", sb.PermLimitedAccess)
		integration := x.Org.Settings.IntegrationUserID
		f := x.createForm(t, rsvp(x.Gateway.ID))
		ada := x.contact(t, "Ada", "+12025550196")
		r := x.Do("POST", "/v1/messages", keyA, map[string]any{"gateway_id": x.Gateway.ID, "to": ada.Phone, "record_id": ada.ID, "form_id": f.ID})
		if r.Status != http.StatusCreated {
			t.Fatalf("A starts the form: %d %s", r.Status, r.Body)
		}
		x.WaitFor("the first question", func() bool { return len(x.Carrier.Inbox(ada.Phone)) == 1 })
		r = x.Do("POST", "/v1/messages", keyB, map[string]any{"gateway_id": x.Gateway.ID, "to": ada.Phone, "record_id": ada.ID, "body": "The office moved to room 4."})
		if r.Status != http.StatusCreated {
			t.Fatalf("B texts the number: %d %s", r.Status, r.Body)
		}
		x.WaitFor("B's message", func() bool { return len(x.Carrier.Inbox(ada.Phone)) == 2 })
		if got := x.converse(t, ada.Phone, "1"); got != qGuests {
			t.Fatalf("answer got %q", got)
		}
		if got := x.converse(t, ada.Phone, "7"); got != "Please answer with a number from 0 to 5. "+qGuests {
			t.Fatalf("bad answer got %q", got)
		}
		if got := x.converse(t, ada.Phone, "4"); got != closing {
			t.Fatalf("last answer got %q", got)
		}
		x.synced(t)
		msgs, err := x.DB.CRMMessagesFor(ctx, x.Org.ID, ada.ID, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		type sys struct{ owner, creator string }
		want := map[string]sys{
			qAttend:                       {staffA.ID, staffA.ID}, // the first SMS: the running user
			"The office moved to room 4.": {staffB.ID, staffB.ID}, // B's own message
			"1":                           {staffA.ID, integration},
			qGuests:                       {staffA.ID, integration},
			"7":                           {staffA.ID, integration},
			"Please answer with a number from 0 to 5. " + qGuests: {staffA.ID, integration},
			"4":     {staffA.ID, integration},
			closing: {staffA.ID, integration},
		}
		if len(msgs) != len(want) {
			t.Fatalf("ada's record has %d messages, want %d", len(msgs), len(want))
		}
		for _, m := range msgs {
			w, ok := want[m.Body]
			if !ok {
				t.Fatalf("unexpected message %q", m.Body)
			}
			if m.OwnerID != w.owner || m.CreatedByID != w.creator {
				t.Errorf("%s %q: owner %s, created by %s; want %s, %s", m.Direction, m.Body, m.OwnerID, m.CreatedByID, w.owner, w.creator)
			}
		}
		rs := x.responses(t, ada.ID)
		if len(rs) != 1 || rs[0].OwnerID != staffA.ID || rs[0].Status != sb.FormCompleted {
			t.Fatalf("form record: %+v", rs)
		}
	})
}

// TestFormNeedsOptIn: in mandatory opt-in mode a number that has not opted
// in gets no form questions from a query code, unless "Create Opt-in for
// Incoming SMS" opts it in first; a manual opt-out cancels a running form
// at once.
func TestFormNeedsOptIn(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		f := x.createForm(t, rsvp(x.Gateway.ID))
		if r := x.API("PATCH", "/v1/org/settings", map[string]any{"opt_in_mode": "mandatory"}); r.Status != http.StatusOK {
			t.Fatalf("mandatory mode: %d %s", r.Status, r.Body)
		}
		phone := "+12025550197"
		x.silent(t, phone, "RSVP")
		if ss := x.sessions(t, f.ID); len(ss) != 0 {
			t.Fatalf("a query code from a number without opt-in started a form: %+v", ss)
		}
		if r := x.API("PATCH", "/v1/org/settings", map[string]any{"create_opt_in_on_incoming": true}); r.Status != http.StatusOK {
			t.Fatalf("create opt-in: %d %s", r.Status, r.Body)
		}
		if got := x.converse(t, phone, "RSVP"); got != qAttend {
			t.Fatalf("query code after the automatic opt-in got %q", got)
		}
		// A manual opt-out ends the form at once.
		r := x.API("POST", "/v1/subscriptions", map[string]any{"gateway_id": x.Gateway.ID, "phone": phone, "status": "Opt-Out"})
		if r.Status != http.StatusOK {
			t.Fatalf("manual opt-out: %d %s", r.Status, r.Body)
		}
		if ss := x.sessions(t, f.ID); len(ss) != 1 || ss[0].Status != store.SessionCancelled || ss[0].Detail != "The recipient opted out" {
			t.Fatalf("sessions after a manual opt-out: %+v", ss)
		}
		x.silent(t, phone, "1")
	})
}

// TestFormSendErrors: bad form_id values are refused before anything is
// queued.
func TestFormSendErrors(t *testing.T) {
	each(t, func(t *testing.T, x *fixture) {
		f := x.createForm(t, rsvp(x.Gateway.ID))
		long := strings.Repeat("x", 1590)
		for _, c := range []struct {
			name string
			req  map[string]any
			code int
			msg  string
		}{
			{"unknown form", map[string]any{"form_id": "nope"}, 404, "form nope not found"},
			{"too long with the question", map[string]any{"form_id": f.ID, "body": long}, 400, "with the form's first question"},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.req["gateway_id"], c.req["to"] = x.Gateway.ID, "+12025550199"
				r := x.API("POST", "/v1/messages", c.req)
				if r.Status != c.code || !strings.Contains(string(r.Body), c.msg) {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
			})
		}
		if n := x.outgoing(t, "+12025550199"); n != 0 {
			t.Fatalf("%d messages stored for refused sends", n)
		}
	})
}
