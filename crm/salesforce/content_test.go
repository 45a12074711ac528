package salesforce_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
)

const (
	clickObject    = "Switchboard_Link_Click__c"
	formObject     = "Switchboard_Form_Response__c"
	clickUpserts   = "PATCH /composite/sobjects/Switchboard_Link_Click__c/Switchboard_Id__c"
	formUpserts    = "PATCH /composite/sobjects/Switchboard_Form_Response__c/Switchboard_Session_Id__c"
	accountRecord  = "001RS0000000001AAA"
	clickedAt      = "2025-03-14T09:30:00.000Z"
	formStartedAt  = "2025-03-14T09:00:00.000Z"
	formEndedAt    = "2025-03-14T09:05:00.000Z"
	unknownOwnerID = "user-1" // a Switchboard user without a CRM user id
)

var at = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

func newClicks(n int, prefix string) []switchboard.LinkClick {
	clicks := make([]switchboard.LinkClick, n)
	for i := range clicks {
		clicks[i] = switchboard.LinkClick{
			ID: fmt.Sprintf("%s-%04d", prefix, i), MessageID: "m-1", URL: "https://example.org/apply?x=" + fmt.Sprint(i),
			ShortURL: "https://go.example.org/l/abc", At: at, IP: "203.0.113.7", Domain: "go.example.org", Browser: "Chrome 124 on Android",
		}
	}
	return clicks
}

func newForms(n int, prefix string) []switchboard.FormResponse {
	rs := make([]switchboard.FormResponse, n)
	for i := range rs {
		rs[i] = switchboard.FormResponse{
			SessionID: fmt.Sprintf("%s-%04d", prefix, i), FormID: "f-1", FormName: "Intake", Status: switchboard.FormInProgress,
			StartedAt: at.Add(-30 * time.Minute), Answers: []switchboard.FormAnswer{{Question: "name", Text: "Your name?", Answer: "Ada", At: at}},
		}
	}
	return rs
}

// kind is one of the record kinds Switchboard upserts by external id.
type kind struct {
	name, object, upserts, extField string
	// write writes n new items whose keys start with prefix.
	write func(e *env, n int, prefix string) ([]switchboard.CRMResult, error)
}

var kinds = []kind{
	{"messages", "Switchboard_Message__c", messageUpserts, "Switchboard_Id__c", func(e *env, n int, prefix string) ([]switchboard.CRMResult, error) {
		return e.client.WriteMessages(context.Background(), e.org, newMessages(n, prefix))
	}},
	{"clicks", clickObject, clickUpserts, "Switchboard_Id__c", func(e *env, n int, prefix string) ([]switchboard.CRMResult, error) {
		return e.client.WriteClicks(context.Background(), e.org, newClicks(n, prefix))
	}},
	{"forms", formObject, formUpserts, "Switchboard_Session_Id__c", func(e *env, n int, prefix string) ([]switchboard.CRMResult, error) {
		return e.client.WriteFormResponses(context.Background(), e.org, newForms(n, prefix))
	}},
}

// checkResults fails unless every result succeeded on a record whose
// external id is the n-th key with prefix, in order.
func checkResults(t *testing.T, e *env, k kind, res []switchboard.CRMResult, n int, prefix string) []string {
	t.Helper()
	if len(res) != n {
		t.Fatalf("%d results for %d items", len(res), n)
	}
	ids := make([]string, n)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("result %d: %v", i, r.Err)
		}
		rec, ok := e.sf.Record(r.CRMMessageID)
		if want := fmt.Sprintf("%s-%04d", prefix, i); !ok || rec[k.extField] != want {
			t.Fatalf("result %d is record %v, want %s", i, rec[k.extField], want)
		}
		ids[i] = r.CRMMessageID
	}
	return ids
}

// TestUpsertsNeverDuplicate: messages, clicks and form records written
// again — on purpose, or because an answer was lost after Salesforce saved
// them — update their records instead of making second ones.
func TestUpsertsNeverDuplicate(t *testing.T) {
	scenarios := []struct {
		name string
		// lose answers of that many calls (status 0: connection dropped)
		lose, status int
		// firstFails: the first write fails as a whole (every answer lost)
		firstFails bool
		calls      int // data calls of the first write
	}{
		{"written twice", 0, 0, false, 1},
		{"answer lost, retried in the call", 1, 0, false, 2},
		{"500 after saving, retried in the call", 1, http.StatusInternalServerError, false, 2},
		{"every answer lost, written again by the caller", 1 + salesforce.DefaultMaxRetries, 0, true, 1 + salesforce.DefaultMaxRetries},
	}
	for _, k := range kinds {
		for _, sc := range scenarios {
			t.Run(k.name+"/"+sc.name, func(t *testing.T) {
				e := newEnv(t)
				e.connect(sftest.DefaultUsername)
				e.sf.ResetCounters()
				e.sf.LoseNextAnswers(sc.lose, sc.status)
				res, err := k.write(e, 3, "k")
				if got := e.sf.Calls(k.upserts); got != sc.calls {
					t.Errorf("upsert calls = %d, want %d (%v)", got, sc.calls, e.sf.CallCounts())
				}
				var first []string
				if sc.firstFails {
					if ce := crmError(t, err); !ce.Retryable || res != nil {
						t.Fatalf("first write: %+v, %v; want a retryable error and no results", ce, res)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					first = checkResults(t, e, k, res, 3, "k")
				}
				if n := len(e.sf.Records(k.object)); n != 3 {
					t.Fatalf("%d records after the first write, want 3", n)
				}
				res, err = k.write(e, 3, "k")
				if err != nil {
					t.Fatal(err)
				}
				again := checkResults(t, e, k, res, 3, "k")
				if n := len(e.sf.Records(k.object)); n != 3 {
					t.Errorf("%d records after writing again, want 3", n)
				}
				for i := range first {
					if first[i] != again[i] {
						t.Errorf("item %d: record %s then %s", i, first[i], again[i])
					}
				}
			})
		}
	}
}

// TestUpsertChunks: 450 items take three collections of at most 200, sent
// together in one /composite call, and an item given twice in one call is
// one record answering for both.
func TestUpsertChunks(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			e := newEnv(t)
			e.connect(sftest.DefaultUsername)
			e.sf.ResetCounters()
			res, err := k.write(e, 450, "c")
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, e, k, res, 450, "c")
			if got := e.sf.Calls("POST /composite"); got != 1 || e.sf.DataCalls() != 1 {
				t.Errorf("calls %v, want one composite call", e.sf.CallCounts())
			}
			if n := len(e.sf.Records(k.object)); n != 450 {
				t.Errorf("%d records", n)
			}
		})
	}
	t.Run("same key twice in one call", func(t *testing.T) {
		e := newEnv(t)
		e.connect(sftest.DefaultUsername)
		clicks := newClicks(2, "d")
		clicks = append(clicks, clicks[0])
		clicks[2].Browser = "Safari 17 on iOS"
		res, err := e.client.WriteClicks(context.Background(), e.org, clicks)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || res[2].Err != nil || res[0].CRMMessageID != res[2].CRMMessageID || res[1].CRMMessageID == res[0].CRMMessageID {
			t.Fatalf("results %+v", res)
		}
		if rec, _ := e.sf.Record(res[0].CRMMessageID); rec["Browser__c"] != "Safari 17 on iOS" || len(e.sf.Records(clickObject)) != 2 {
			t.Errorf("record %v; the later click must win", rec)
		}

		msgs := newMessages(2, "d")
		msgs = append(msgs, msgs[0])
		msgs[2].Status = switchboard.StatusSent
		msgs[0].Status = switchboard.StatusDelivered
		mres := e.write(msgs)
		if mres[0].Err != nil || mres[0].CRMMessageID != mres[2].CRMMessageID || len(e.sf.Records("Switchboard_Message__c")) != 2 {
			t.Fatalf("message results %+v", mres)
		}
		if rec, _ := e.sf.Record(mres[0].CRMMessageID); rec["Status__c"] != "Delivered" {
			t.Errorf("merged create has status %v, want the furthest (Delivered)", rec["Status__c"])
		}
	})
}

func TestWriteClicksFields(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	contact := e.sf.AddRecord("Contact", map[string]any{"LastName": "Ng"})
	lead := e.sf.AddRecord("Lead", map[string]any{"LastName": "Li", "Company": "Acme"})
	msg := e.created(newMessages(1, "m"))[0]
	clicks := newClicks(3, "f")
	clicks[0].RecordID, clicks[0].CRMMessageID = contact, msg.CRMMessageID
	clicks[1].RecordID, clicks[1].IP, clicks[1].Domain, clicks[1].Browser = lead, "", "", ""
	clicks[2].At = time.Time{}
	res, err := e.client.WriteClicks(context.Background(), e.org, clicks)
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"Switchboard_Id__c": "f-0000", "Message__c": msg.CRMMessageID, "Contact__c": contact, "Lead__c": nil, "URL__c": clicks[0].URL, "Short_URL__c": "https://go.example.org/l/abc",
			"Clicked_At__c": clickedAt, "IP_Address__c": "203.0.113.7", "Domain__c": "go.example.org", "Browser__c": "Chrome 124 on Android"},
		{"Switchboard_Id__c": "f-0001", "Message__c": nil, "Lead__c": lead, "Contact__c": nil, "IP_Address__c": nil, "Domain__c": nil, "Browser__c": nil},
		{"Switchboard_Id__c": "f-0002", "Clicked_At__c": nil, "Contact__c": nil},
	}
	for i, w := range want {
		if res[i].Err != nil || !strings.HasPrefix(res[i].CRMMessageID, "a0L") {
			t.Fatalf("result %d: %+v", i, res[i])
		}
		rec, _ := e.sf.Record(res[i].CRMMessageID)
		for f, v := range w {
			if rec[f] != v {
				t.Errorf("click %d: %s = %v, want %v", i, f, rec[f], v)
			}
		}
	}
}

func TestWriteFormResponsesFields(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	contact := e.sf.AddRecord("Contact", map[string]any{"LastName": "Ng"})
	owner := e.sf.AddUser("agent@acme.example")
	r := newForms(1, "s")[0]
	r.RecordID, r.OwnerID, r.StartedAt = contact, owner, time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	res, err := e.client.WriteFormResponses(context.Background(), e.org, []switchboard.FormResponse{r})
	if err != nil || res[0].Err != nil {
		t.Fatalf("first write: %v %+v", err, res)
	}
	id := res[0].CRMMessageID
	rec, _ := e.sf.Record(id)
	for f, v := range map[string]any{"Switchboard_Session_Id__c": "s-0000", "Form_Name__c": "Intake", "Form_Id__c": "f-1", "Status__c": "In Progress",
		"Contact__c": contact, "OwnerId": owner, "Started_At__c": formStartedAt, "Ended_At__c": nil, "Answers__c": "Your name?: Ada"} {
		if rec[f] != v {
			t.Errorf("first write: %s = %v, want %v", f, rec[f], v)
		}
	}

	// More answers arrive and the form completes: the same record.
	r.CRMFormID = id
	r.Status = switchboard.FormCompleted
	r.EndedAt = r.StartedAt.Add(5 * time.Minute)
	r.Answers = append(r.Answers, switchboard.FormAnswer{Question: "goal", Answer: "Study\nmaths"})
	res, err = e.client.WriteFormResponses(context.Background(), e.org, []switchboard.FormResponse{r})
	if err != nil || res[0].Err != nil || res[0].CRMMessageID != id {
		t.Fatalf("second write: %v %+v, want record %s", err, res, id)
	}
	rec, _ = e.sf.Record(id)
	for f, v := range map[string]any{"Status__c": "Completed", "Ended_At__c": formEndedAt, "Answers__c": "Your name?: Ada\ngoal: Study maths", "OwnerId": owner} {
		if rec[f] != v {
			t.Errorf("second write: %s = %v, want %v", f, rec[f], v)
		}
	}
	if n := len(e.sf.Records(formObject)); n != 1 {
		t.Errorf("%d form records", n)
	}

	// An owner that is not a Salesforce id is left out.
	r2 := newForms(1, "u")[0]
	r2.OwnerID, r2.CreatedByID = unknownOwnerID, unknownOwnerID
	res, err = e.client.WriteFormResponses(context.Background(), e.org, []switchboard.FormResponse{r2})
	if err != nil || res[0].Err != nil {
		t.Fatalf("unknown owner: %v %+v", err, res)
	}
	if rec, _ := e.sf.Record(res[0].CRMMessageID); rec["OwnerId"] != e.sf.UserID(sftest.DefaultUsername) {
		t.Errorf("owner %v, want the integration user", rec["OwnerId"])
	}
}

// TestContentRecordErrors: per-record errors are mapped like messages' —
// the other records are written, permanent errors name the problem, lock
// errors are retried and stay retryable.
func TestContentRecordErrors(t *testing.T) {
	tests := []struct {
		name      string
		fault     *sftest.RecordFault // matched on the second item's key
		edit      func(clicks []switchboard.LinkClick, forms []switchboard.FormResponse)
		wantCode  string
		retryable bool
		wantMsg   string
		noCall    bool
	}{
		{name: "required field", fault: &sftest.RecordFault{Code: "REQUIRED_FIELD_MISSING", Fields: []string{"Domain__c"}}, wantCode: "REQUIRED_FIELD_MISSING", wantMsg: "Domain__c"},
		{name: "validation rule", fault: &sftest.RecordFault{Code: "FIELD_CUSTOM_VALIDATION_EXCEPTION", Message: "Not on weekends"}, wantCode: "FIELD_CUSTOM_VALIDATION_EXCEPTION", wantMsg: "Not on weekends"},
		{name: "lock clears", fault: &sftest.RecordFault{Code: "UNABLE_TO_LOCK_ROW", Times: 1}},
		{name: "lock persists", fault: &sftest.RecordFault{Code: "UNABLE_TO_LOCK_ROW"}, wantCode: "UNABLE_TO_LOCK_ROW", retryable: true, wantMsg: "exclusive access"},
		{name: "unmapped record", edit: func(c []switchboard.LinkClick, f []switchboard.FormResponse) {
			c[1].RecordID, f[1].RecordID = accountRecord, accountRecord
		}, wantCode: salesforce.CodeUnmappedRecord, wantMsg: "id prefix 001"},
		{name: "bad record id", edit: func(c []switchboard.LinkClick, f []switchboard.FormResponse) {
			c[1].RecordID, f[1].RecordID = "003' OR 1=1", "003' OR 1=1"
		}, wantCode: salesforce.CodeInvalidInput, wantMsg: "not a Salesforce record id", noCall: true},
		{name: "no key", edit: func(c []switchboard.LinkClick, f []switchboard.FormResponse) {
			c[1].ID, f[1].SessionID = "", ""
		}, wantCode: salesforce.CodeInvalidInput, wantMsg: "without an id", noCall: true},
		{name: "long key", edit: func(c []switchboard.LinkClick, f []switchboard.FormResponse) {
			c[1].ID, f[1].SessionID = strings.Repeat("x", 256), strings.Repeat("x", 256)
		}, wantCode: salesforce.CodeInvalidInput, wantMsg: "longer than 255", noCall: true},
		{name: "bad message id or status", edit: func(c []switchboard.LinkClick, f []switchboard.FormResponse) {
			c[1].CRMMessageID, f[1].Status = "a0S/x", "Paused"
		}, wantCode: salesforce.CodeInvalidInput, noCall: true},
	}
	for _, tt := range tests {
		for _, k := range kinds[1:] {
			t.Run(tt.name+"/"+k.name, func(t *testing.T) {
				e := newEnv(t)
				e.connect(sftest.DefaultUsername)
				clicks, forms := newClicks(3, "e"), newForms(3, "e")
				if tt.edit != nil {
					tt.edit(clicks, forms)
				}
				if tt.fault != nil {
					f := *tt.fault
					f.Match = "e-0001"
					e.sf.AddRecordFault(f)
				}
				e.sf.ResetCounters()
				var res []switchboard.CRMResult
				var err error
				if k.name == "clicks" {
					res, err = e.client.WriteClicks(context.Background(), e.org, clicks)
				} else {
					res, err = e.client.WriteFormResponses(context.Background(), e.org, forms)
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, i := range []int{0, 2} {
					if res[i].Err != nil {
						t.Errorf("item %d failed: %v", i, res[i].Err)
					}
				}
				wantRecords := 2
				if tt.wantCode == "" {
					wantRecords = 3
					if res[1].Err != nil {
						t.Errorf("item 1: %v", res[1].Err)
					}
				} else {
					ce := crmError(t, res[1].Err)
					if ce.Code != tt.wantCode || ce.Retryable != tt.retryable || !strings.Contains(ce.Message, tt.wantMsg) {
						t.Errorf("error %+v, want %s retryable=%v mentioning %q", ce, tt.wantCode, tt.retryable, tt.wantMsg)
					}
				}
				if n := len(e.sf.Records(k.object)); n != wantRecords {
					t.Errorf("%d records, want %d", n, wantRecords)
				}
				if tt.noCall && e.sf.Calls(k.upserts) != 1 {
					t.Errorf("upsert calls %d: an invalid item must not cost a call of its own", e.sf.Calls(k.upserts))
				}
			})
		}
	}
}

// TestContentWholeCallErrors: a write that cannot reach Salesforce fails as
// a whole, with the error callers use to hold or retry.
func TestContentWholeCallErrors(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(e *env)
		wantCode  string
		offline   bool
		retryable bool
	}{
		{"not connected", func(e *env) {}, salesforce.CodeNotConnected, true, false},
		{"request limit", func(e *env) { e.connect(sftest.DefaultUsername); e.sf.SetAPIUsage(10, 10) }, salesforce.CodeRequestLimit, false, true},
		{"object not installed", func(e *env) {
			e.connect(sftest.DefaultUsername)
			conn := e.stored()
			conn.Mapping.Clicks.Object, conn.Mapping.Forms.Object = "Missing__c", "Missing__c"
			if err := e.client.SetMapping(context.Background(), e.org.ID, conn.Mapping); err != nil {
				e.t.Fatal(err)
			}
		}, "NOT_FOUND", false, false},
	}
	for _, tt := range tests {
		for _, k := range kinds {
			t.Run(tt.name+"/"+k.name, func(t *testing.T) {
				e := newEnv(t)
				tt.setup(e)
				res, err := k.write(e, 2, "w")
				if k.name == "messages" && tt.wantCode == "NOT_FOUND" {
					if err != nil {
						t.Fatal(err) // the message object is still there
					}
					return
				}
				ce := crmError(t, err)
				if res != nil || ce.Code != tt.wantCode || ce.Offline != tt.offline || ce.Retryable != tt.retryable {
					t.Errorf("error %+v results %v; want %s offline=%v retryable=%v", ce, res, tt.wantCode, tt.offline, tt.retryable)
				}
			})
		}
	}
	t.Run("no org, nothing to write", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.client.WriteClicks(context.Background(), nil, newClicks(1, "n")); !switchboard.IsCode(err, switchboard.EInvalid) {
			t.Errorf("nil org: %v", err)
		}
		if _, err := e.client.WriteFormResponses(context.Background(), nil, newForms(1, "n")); !switchboard.IsCode(err, switchboard.EInvalid) {
			t.Errorf("nil org: %v", err)
		}
		if res, err := e.client.WriteClicks(context.Background(), e.org, nil); err != nil || len(res) != 0 {
			t.Errorf("no clicks: %v %v", res, err)
		}
		if e.sf.DataCalls() != 0 {
			t.Error("calls were made")
		}
	})
}

// TestContentUsesDefaultsForOldMappings: a mapping saved before the click
// and form sections existed writes to the managed objects.
func TestContentUsesDefaultsForOldMappings(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	conn := e.stored()
	conn.Mapping.Clicks, conn.Mapping.Forms = salesforce.ClickMapping{}, salesforce.FormMapping{}
	if err := e.store.SaveConnection(context.Background(), e.org.ID, conn); err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		res, err := k.write(e, 1, "o")
		if err != nil {
			t.Fatal(err)
		}
		checkResults(t, e, k, res, 1, "o")
	}
}

// TestClickLookupsFollowTheMapping: a custom lookup field per record object,
// and an object without one using the message object's field name.
func TestClickLookupsFollowTheMapping(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	e.sf.AddField(clickObject, sftest.Field{Name: "Person__c", Type: "reference", Createable: true, Updateable: true})
	conn := e.stored()
	conn.Mapping.Clicks.Lookups = map[string]string{salesforce.ObjectContact: "Person__c"} // Lead: Lead__c as on messages
	if err := e.client.SetMapping(context.Background(), e.org.ID, conn.Mapping); err != nil {
		t.Fatal(err)
	}
	contact := e.sf.AddRecord("Contact", map[string]any{"LastName": "Ng"})
	lead := e.sf.AddRecord("Lead", map[string]any{"LastName": "Li", "Company": "Acme"})
	clicks := newClicks(2, "l")
	clicks[0].RecordID, clicks[1].RecordID = contact, lead
	res, err := e.client.WriteClicks(context.Background(), e.org, clicks)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.sf.Record(res[0].CRMMessageID)
	l, _ := e.sf.Record(res[1].CRMMessageID)
	if c["Person__c"] != contact || c["Contact__c"] != nil || l["Lead__c"] != lead {
		t.Errorf("contact click %v, lead click %v", c, l)
	}
	if r := e.client.Check(context.Background(), e.org); !r.OK {
		t.Errorf("health check: %+v", r.Failing())
	}
}

// TestWriteMessagesCompositeRetriedAfterLostAnswer: creates and updates in
// one /composite request are sent again after a lost answer, without a
// second record.
func TestWriteMessagesCompositeRetriedAfterLostAnswer(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	existing := e.created(newMessages(2, "old"))
	batch := []switchboard.CRMMessage{{MessageID: existing[0].MessageID, CRMMessageID: existing[0].CRMMessageID, Status: switchboard.StatusDelivered}}
	batch = append(batch, newMessages(2, "new")...)
	e.sf.ResetCounters()
	e.sf.LoseNextAnswers(1, 0)
	res := e.write(batch)
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("result %d: %v", i, r.Err)
		}
	}
	if got := e.sf.Calls("POST /composite"); got != 2 {
		t.Errorf("composite calls = %d, want 2 (the lost one and its retry)", got)
	}
	if n := len(e.sf.Records("Switchboard_Message__c")); n != 4 {
		t.Errorf("%d message records, want 4", n)
	}
}

func TestTranscript(t *testing.T) {
	answers := []switchboard.FormAnswer{
		{Question: "name", Text: "Your name?", Answer: "Ada"},
		{Question: "goal", Answer: "Study\r\nmaths"},
		{Question: "q3", Text: "Line\nbreak?", Answer: "é✓" + strings.Repeat("x", 30)},
	}
	third := "Line break?: é✓" + strings.Repeat("x", 30) // 45 characters
	tests := []struct {
		name string
		in   []switchboard.FormAnswer
		max  int
		want string
	}{
		{"none", nil, 100, ""},
		{"all", answers, 100, "Your name?: Ada\ngoal: Study maths\n" + third},
		{"exactly fits", answers, 79, "Your name?: Ada\ngoal: Study maths\n" + third},
		{"cut at a whole answer", answers, 78, "Your name?: Ada\ngoal: Study maths\n[1 more answer not shown]"},
		{"two left out", answers, 58, "Your name?: Ada\n[2 more answers not shown]"},
		{"nothing fits", answers, 30, "[3 more answers not shown]"},
		{"not even the note", answers, 5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := salesforce.Transcript(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Transcript = %q, want %q", got, tt.want)
			}
			if utf8.RuneCountInString(got) > tt.max {
				t.Errorf("%d characters, max %d", utf8.RuneCountInString(got), tt.max)
			}
		})
	}
}

// FuzzTranscript: the transcript never exceeds its limit, has one line per
// answer shown, and is valid UTF-8 whenever the answers are.
func FuzzTranscript(f *testing.F) {
	f.Add("Your name?", "Ada", "goal", "Study\nmaths", 40)
	f.Add("", "", "", "", 0)
	f.Add("q\r\n", "a\r", "é", "✓", 3)
	f.Fuzz(func(t *testing.T, q1, a1, q2, a2 string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		in := []switchboard.FormAnswer{{Question: "k1", Text: q1, Answer: a1}, {Question: "k2", Text: q2, Answer: a2}}
		got := salesforce.Transcript(in, max)
		if utf8.RuneCountInString(got) > max {
			t.Fatalf("%d characters, max %d: %q", utf8.RuneCountInString(got), max, got)
		}
		if strings.Count(got, "\n") > 1 || strings.Contains(got, "\r") {
			t.Fatalf("more lines than answers: %q", got)
		}
		valid := utf8.ValidString(q1) && utf8.ValidString(a1) && utf8.ValidString(q2) && utf8.ValidString(a2)
		if valid && !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8: %q", got)
		}
	})
}
