package salesforce_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
)

// messageUpserts is the call counter of message creates: sObject
// Collections upserts by the message id.
const messageUpserts = "PATCH /composite/sobjects/Switchboard_Message__c/Switchboard_Id__c"

func newMessages(n int, prefix string) []switchboard.CRMMessage {
	msgs := make([]switchboard.CRMMessage, n)
	for i := range msgs {
		msgs[i] = switchboard.CRMMessage{
			MessageID:     fmt.Sprintf("%s-%04d", prefix, i),
			Direction:     switchboard.Outgoing,
			Status:        switchboard.StatusQueued,
			Phone:         "+12015550123",
			Body:          "Hello",
			GatewayNumber: "+12015550100",
		}
	}
	return msgs
}

func (e *env) write(msgs []switchboard.CRMMessage) []switchboard.CRMResult {
	e.t.Helper()
	res, err := e.client.WriteMessages(context.Background(), e.org, msgs)
	if err != nil {
		e.t.Fatalf("WriteMessages: %v", err)
	}
	if len(res) != len(msgs) {
		e.t.Fatalf("%d results for %d messages", len(res), len(msgs))
	}
	return res
}

// created writes msgs and returns them with their CRM ids filled in.
func (e *env) created(msgs []switchboard.CRMMessage) []switchboard.CRMMessage {
	e.t.Helper()
	for i, r := range e.write(msgs) {
		if r.Err != nil {
			e.t.Fatalf("create %d: %v", i, r.Err)
		}
		msgs[i].CRMMessageID = r.CRMMessageID
	}
	return msgs
}

func TestWriteMessagesCreatesInCollections(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	e.sf.ResetCounters()
	msgs := newMessages(450, "m")
	res := e.write(msgs)
	// Three collections of at most 200 in one /composite call.
	if got := e.sf.Calls("POST /composite"); got != 1 || e.sf.DataCalls() != 1 {
		t.Errorf("calls %v, want one composite call for 450 records", e.sf.CallCounts())
	}
	recs := e.sf.Records("Switchboard_Message__c")
	if len(recs) != 450 {
		t.Fatalf("%d records stored", len(recs))
	}
	for i, r := range res {
		if r.Err != nil || !strings.HasPrefix(r.CRMMessageID, "a0S") {
			t.Fatalf("result %d: %+v", i, r)
		}
		// results are in the order of the messages
		if rec, _ := e.sf.Record(r.CRMMessageID); rec["Switchboard_Id__c"] != msgs[i].MessageID {
			t.Fatalf("result %d points to %v, want %s", i, rec["Switchboard_Id__c"], msgs[i].MessageID)
		}
	}
	// One collection is a direct call.
	e.sf.ResetCounters()
	e.write(newMessages(200, "one"))
	if got := e.sf.Calls(messageUpserts); got != 1 || e.sf.DataCalls() != 1 {
		t.Errorf("calls %v, want one collection upsert for 200 records", e.sf.CallCounts())
	}
}

func TestWriteMessagesFields(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	contact := e.sf.AddRecord("Contact", map[string]any{"LastName": "Ng"})
	lead := e.sf.AddRecord("Lead", map[string]any{"LastName": "Li", "Company": "Acme"})
	owner := e.sf.AddUser("agent@acme.example")
	msgs := []switchboard.CRMMessage{
		{MessageID: "out-1", Direction: switchboard.Outgoing, Status: switchboard.StatusQueued, Phone: "+12015550123", Body: "Hi there", GatewayNumber: "+12015550100", RecordID: contact, OwnerID: owner, BatchID: "b-1", Segments: 1,
			MediaURLs: []string{"https://cdn.example.org/flyer.png"}},
		{MessageID: "in-1", Direction: switchboard.Incoming, Status: switchboard.StatusReceived, Phone: "+12015550124", Body: "STOP", GatewayNumber: "+12015550100", RecordID: lead, ProviderMessageID: "SM1",
			MediaURLs: []string{"https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2"}},
		{MessageID: "err-1", Direction: switchboard.Outgoing, Status: switchboard.StatusError, Debug: switchboard.DebugPreviousOptOut, Phone: "+12015550125", Body: "Hi", GatewayNumber: "+12015550100"},
	}
	res := e.write(msgs)
	want := []map[string]any{
		{"Switchboard_Id__c": "out-1", "Direction__c": "outgoing", "Status__c": "Queued", "Phone__c": "+12015550123", "Body__c": "Hi there", "Gateway_Number__c": "+12015550100", "Contact__c": contact, "OwnerId": owner, "Batch_Id__c": "b-1", "Segments__c": 1.0,
			"Media_Urls__c": "https://cdn.example.org/flyer.png"},
		{"Switchboard_Id__c": "in-1", "Direction__c": "incoming", "Status__c": "Received", "Lead__c": lead, "Provider_Message_Id__c": "SM1", "OwnerId": e.sf.UserID(sftest.DefaultUsername),
			"Media_Urls__c": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1\nhttps://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2"},
		{"Switchboard_Id__c": "err-1", "Status__c": "Error", "Debug__c": "Previous Opt-out"},
	}
	for i, w := range want {
		rec, ok := e.sf.Record(res[i].CRMMessageID)
		if !ok {
			t.Fatalf("record %d not stored: %+v", i, res[i])
		}
		for k, v := range w {
			if rec[k] != v {
				t.Errorf("record %d: %s = %v, want %v", i, k, rec[k], v)
			}
		}
	}
	if rec, _ := e.sf.Record(res[2].CRMMessageID); rec["Media_Urls__c"] != nil {
		t.Errorf("a message without media wrote Media_Urls__c = %q", rec["Media_Urls__c"])
	}

	// Updates send status, debug, provider id and segments only.
	upd := []switchboard.CRMMessage{{MessageID: "out-1", CRMMessageID: res[0].CRMMessageID, Status: switchboard.StatusFailed, Debug: "Carrier rejected", ProviderMessageID: "SM9", Segments: 2, Body: "changed", Phone: "+19999999999", OwnerID: "005000000000000AAA"}}
	if r := e.write(upd); r[0].Err != nil || r[0].CRMMessageID != res[0].CRMMessageID {
		t.Fatalf("update: %+v", r[0])
	}
	rec, _ := e.sf.Record(res[0].CRMMessageID)
	for k, v := range map[string]any{"Status__c": "Failed", "Debug__c": "Carrier rejected", "Provider_Message_Id__c": "SM9", "Segments__c": 2.0, "Body__c": "Hi there", "Phone__c": "+12015550123", "OwnerId": owner} {
		if rec[k] != v {
			t.Errorf("after update: %s = %v, want %v", k, rec[k], v)
		}
	}
}

func TestWriteMessagesMixedInOneComposite(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	existing := e.created(newMessages(3, "old"))
	e.sf.ResetCounters()
	var batch []switchboard.CRMMessage
	for _, m := range existing {
		batch = append(batch, switchboard.CRMMessage{MessageID: m.MessageID, CRMMessageID: m.CRMMessageID, Status: switchboard.StatusDelivered})
	}
	batch = append(batch, newMessages(2, "new")...)
	// interleave to check the order of results
	batch[1], batch[3] = batch[3], batch[1]
	res := e.write(batch)
	if e.sf.Calls("POST /composite") != 1 || e.sf.DataCalls() != 1 {
		t.Errorf("calls %v, want one POST /composite", e.sf.CallCounts())
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("result %d: %v", i, r.Err)
		}
		rec, _ := e.sf.Record(r.CRMMessageID)
		if rec["Switchboard_Id__c"] != batch[i].MessageID {
			t.Errorf("result %d is record %v, want %s", i, rec["Switchboard_Id__c"], batch[i].MessageID)
		}
		if batch[i].CRMMessageID != "" && rec["Status__c"] != "Delivered" {
			t.Errorf("update %d not applied: %v", i, rec["Status__c"])
		}
	}

	// 600 creates and 500 updates: 6 collections, so two composite calls.
	many := e.created(newMessages(500, "bulk"))
	e.sf.ResetCounters()
	batch = newMessages(600, "more")
	for _, m := range many {
		batch = append(batch, switchboard.CRMMessage{MessageID: m.MessageID, CRMMessageID: m.CRMMessageID, Status: switchboard.StatusSent})
	}
	for i, r := range e.write(batch) {
		if r.Err != nil {
			t.Fatalf("result %d: %v", i, r.Err)
		}
	}
	if got := e.sf.DataCalls(); got != 2 {
		t.Errorf("data calls = %d (%v), want 2", got, e.sf.CallCounts())
	}
}

func TestWriteMessagesCoalescesUpdates(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	m := e.created(newMessages(1, "c"))[0]
	e.sf.ResetCounters()
	batch := []switchboard.CRMMessage{
		{MessageID: m.MessageID, CRMMessageID: m.CRMMessageID, Status: switchboard.StatusSent, ProviderMessageID: "SM1"},
		{MessageID: m.MessageID, CRMMessageID: m.CRMMessageID, Status: switchboard.StatusDelivered},
		{MessageID: m.MessageID, CRMMessageID: m.CRMMessageID, Status: switchboard.StatusSent, Segments: 3},
	}
	res := e.write(batch)
	for i, r := range res {
		if r.Err != nil || r.CRMMessageID != m.CRMMessageID {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	rec, _ := e.sf.Record(m.CRMMessageID)
	if rec["Status__c"] != "Delivered" || rec["Provider_Message_Id__c"] != "SM1" || rec["Segments__c"] != 3.0 {
		t.Errorf("merged record: %v", rec)
	}
	if e.sf.DataCalls() != 1 {
		t.Errorf("data calls = %d, want 1", e.sf.DataCalls())
	}
}

func TestWriteMessagesRecordErrors(t *testing.T) {
	tests := []struct {
		name      string
		fault     sftest.RecordFault
		wantCode  string
		retryable bool
		wantMsg   string
	}{
		{"required field", sftest.RecordFault{Code: "REQUIRED_FIELD_MISSING", Fields: []string{"Status__c", "Contact__c"}}, "REQUIRED_FIELD_MISSING", false, "Status__c, Contact__c"},
		{"validation rule", sftest.RecordFault{Code: "FIELD_CUSTOM_VALIDATION_EXCEPTION", Message: "Body must not be empty", Fields: []string{"Body__c"}}, "FIELD_CUSTOM_VALIDATION_EXCEPTION", false, "Body must not be empty (fields: Body__c)"},
		{"invalid field", sftest.RecordFault{Code: "INVALID_FIELD_FOR_INSERT_UPDATE", Message: "Unable to create/update fields: Debug__c", Fields: []string{"Debug__c"}}, "INVALID_FIELD_FOR_INSERT_UPDATE", false, "Debug__c"},
		{"phone in message is masked", sftest.RecordFault{Code: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", Message: "bad value for restricted picklist field: +12015550123"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", false, "+#########23"},
		{"lock", sftest.RecordFault{Code: "UNABLE_TO_LOCK_ROW"}, "UNABLE_TO_LOCK_ROW", true, "exclusive access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.connect(sftest.DefaultUsername)
			msgs := newMessages(5, "r")
			f := tt.fault
			f.Match = msgs[2].MessageID
			e.sf.AddRecordFault(f)
			res := e.write(msgs)
			for i, r := range res {
				if i == 2 {
					continue
				}
				if r.Err != nil {
					t.Errorf("record %d failed: %v", i, r.Err)
				}
			}
			ce := crmError(t, res[2].Err)
			if ce.Code != tt.wantCode || ce.Retryable != tt.retryable || !strings.Contains(ce.Message, tt.wantMsg) {
				t.Errorf("error = %+v, want %s retryable=%v mentioning %q", ce, tt.wantCode, tt.retryable, tt.wantMsg)
			}
			if strings.Contains(ce.Message, "+12015550123") {
				t.Error("the error contains a readable phone number")
			}
			if len(e.sf.Records("Switchboard_Message__c")) != 4 {
				t.Error("the other records must be created (allOrNone false)")
			}
		})
	}
}

func TestWriteMessagesLockRetry(t *testing.T) {
	tests := []struct {
		name      string
		times     int // 0: always locked
		wantErr   bool
		wantCalls int
	}{
		{"lock clears", 2, false, 3},
		{"lock persists", 0, true, 1 + salesforce.DefaultLockRetries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.connect(sftest.DefaultUsername)
			msgs := e.created(newMessages(4, "l"))
			e.sf.AddRecordFault(sftest.RecordFault{Match: msgs[1].CRMMessageID, Code: "UNABLE_TO_LOCK_ROW", Times: tt.times})
			e.sf.ResetCounters()
			for i := range msgs {
				msgs[i].Status = switchboard.StatusSent
			}
			res := e.write(msgs)
			if got := e.sf.Calls("PATCH /composite/sobjects"); got != tt.wantCalls {
				t.Errorf("update calls = %d, want %d", got, tt.wantCalls)
			}
			if got := e.sleep.Count(); got != tt.wantCalls-1 {
				t.Errorf("back-off waits = %d, want %d", got, tt.wantCalls-1)
			}
			for i, r := range res {
				if i == 1 && tt.wantErr {
					if ce := crmError(t, r.Err); ce.Code != "UNABLE_TO_LOCK_ROW" || !ce.Retryable {
						t.Errorf("locked record: %+v", ce)
					}
					continue
				}
				if r.Err != nil {
					t.Errorf("record %d: %v", i, r.Err)
				}
			}
			rec, _ := e.sf.Record(msgs[1].CRMMessageID)
			if (rec["Status__c"] == "Sent") == tt.wantErr {
				t.Errorf("locked record status = %v", rec["Status__c"])
			}
		})
	}
}

func TestWriteMessagesServerErrors(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		status    int
		wantErr   bool
		wantCalls int
	}{
		{"503 twice then fine", 2, http.StatusServiceUnavailable, false, 3},
		{"500 once", 1, http.StatusInternalServerError, false, 2},
		{"503 beyond retries", 10, http.StatusServiceUnavailable, true, 1 + salesforce.DefaultMaxRetries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.connect(sftest.DefaultUsername)
			e.sf.ResetCounters()
			e.sf.FailNext(tt.failures, tt.status)
			res, err := e.client.WriteMessages(context.Background(), e.org, newMessages(3, "s"))
			if got := e.sf.DataCalls(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if waits := e.sleep.Count(); waits != tt.wantCalls-1 {
				t.Errorf("waits = %d, want %d", waits, tt.wantCalls-1)
			}
			if tt.wantErr {
				if ce := crmError(t, err); !ce.Retryable || res != nil {
					t.Errorf("error %+v results %v; want a retryable error and no results", ce, res)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					t.Error(r.Err)
				}
			}
		})
	}
}

func TestRequestLimitExceeded(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	e.sf.SetAPIUsage(15000, 15000)
	_, err := e.client.WriteMessages(context.Background(), e.org, newMessages(2, "x"))
	ce := crmError(t, err)
	if ce.Code != "REQUEST_LIMIT_EXCEEDED" || !ce.Retryable || ce.RetryAfter != salesforce.DefaultLimitBackoff {
		t.Fatalf("error = %+v", ce)
	}
	// The org is left alone until the deadline: no call reaches Salesforce.
	e.sf.SetAPIUsage(0, 15000)
	before := e.sf.DataCalls()
	e.clock.Advance(10 * time.Minute)
	_, err = e.client.WriteMessages(context.Background(), e.org, newMessages(2, "y"))
	if ce := crmError(t, err); ce.Code != "REQUEST_LIMIT_EXCEEDED" || ce.RetryAfter != 20*time.Minute {
		t.Errorf("during back-off: %+v", ce)
	}
	if _, err := e.query(contactsQuery); crmError(t, err).Code != "REQUEST_LIMIT_EXCEEDED" {
		t.Error("queries must back off too")
	}
	if e.sf.DataCalls() != before {
		t.Error("calls were made during the back-off")
	}
	e.clock.Advance(20 * time.Minute)
	e.write(newMessages(2, "z"))
}

func TestWriteMessagesInvalidInput(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	account := "001RS0000000001AAA"
	tests := []struct {
		name string
		msg  switchboard.CRMMessage
		code string
	}{
		{"no id", switchboard.CRMMessage{Direction: switchboard.Outgoing, Status: switchboard.StatusQueued}, salesforce.CodeInvalidInput},
		{"bad direction", switchboard.CRMMessage{MessageID: "a", Direction: "sideways", Status: switchboard.StatusQueued}, salesforce.CodeInvalidInput},
		{"bad status", switchboard.CRMMessage{MessageID: "a", Direction: switchboard.Outgoing, Status: "Lost"}, salesforce.CodeInvalidInput},
		{"bad crm id", switchboard.CRMMessage{MessageID: "a", CRMMessageID: "a0S' OR 1=1", Status: switchboard.StatusSent}, salesforce.CodeInvalidInput},
		{"bad record id", switchboard.CRMMessage{MessageID: "a", Direction: switchboard.Outgoing, Status: switchboard.StatusQueued, RecordID: "003/../x"}, salesforce.CodeInvalidInput},
		{"unmapped record", switchboard.CRMMessage{MessageID: "a", Direction: switchboard.Outgoing, Status: switchboard.StatusQueued, RecordID: account}, salesforce.CodeUnmappedRecord},
	}
	msgs := make([]switchboard.CRMMessage, len(tests))
	for i, tt := range tests {
		msgs[i] = tt.msg
	}
	e.sf.ResetCounters()
	res := e.write(msgs)
	for i, tt := range tests {
		ce := crmError(t, res[i].Err)
		if ce.Code != tt.code || ce.Retryable {
			t.Errorf("%s: %+v, want permanent %s", tt.name, ce, tt.code)
		}
	}
	if e.sf.DataCalls() != 0 {
		t.Error("invalid messages must not be sent")
	}
}

// TestAPICallsPer1000Messages measures the CRM API calls for 1,000
// messages that are created and then move to Sent and to Delivered.
func TestAPICallsPer1000Messages(t *testing.T) {
	count := func(t *testing.T, write func(e *env, msgs []switchboard.CRMMessage)) int {
		e := newEnv(t)
		e.connect(sftest.DefaultUsername)
		e.sf.ResetCounters()
		write(e, newMessages(1000, "f"))
		if n := len(e.sf.Records("Switchboard_Message__c")); n != 1000 {
			t.Fatalf("%d records", n)
		}
		for _, r := range e.sf.Records("Switchboard_Message__c") {
			if r["Status__c"] != "Delivered" {
				t.Fatalf("record %v ends %v", r["Id"], r["Status__c"])
			}
		}
		return e.sf.DataCalls()
	}
	statusUpdates := func(msgs []switchboard.CRMMessage, s switchboard.Status) []switchboard.CRMMessage {
		out := make([]switchboard.CRMMessage, len(msgs))
		for i, m := range msgs {
			out[i] = switchboard.CRMMessage{MessageID: m.MessageID, CRMMessageID: m.CRMMessageID, Status: s}
		}
		return out
	}
	naive := count(t, func(e *env, msgs []switchboard.CRMMessage) {
		for i := range msgs {
			msgs[i].CRMMessageID = e.write(msgs[i : i+1])[0].CRMMessageID
		}
		for _, s := range []switchboard.Status{switchboard.StatusSent, switchboard.StatusDelivered} {
			for _, u := range statusUpdates(msgs, s) {
				e.write([]switchboard.CRMMessage{u})
			}
		}
	})
	batched := count(t, func(e *env, msgs []switchboard.CRMMessage) {
		msgs = e.created(msgs)
		e.write(statusUpdates(msgs, switchboard.StatusSent))
		e.write(statusUpdates(msgs, switchboard.StatusDelivered))
	})
	oneBatch := count(t, func(e *env, msgs []switchboard.CRMMessage) {
		msgs = e.created(msgs)
		e.write(append(statusUpdates(msgs, switchboard.StatusSent), statusUpdates(msgs, switchboard.StatusDelivered)...))
	})
	// A flush of 1,000 records that mixes creates and updates 500 to 500
	// needs six collections (200 + 200 + 100 of each kind): two calls.
	mixed := count(t, func(e *env, msgs []switchboard.CRMMessage) {
		first := e.created(msgs[:500])
		for i := range msgs[500:] {
			msgs[500+i].Status = switchboard.StatusDelivered
		}
		e.write(append(statusUpdates(first, switchboard.StatusDelivered), msgs[500:]...))
	})
	t.Logf("CRM API calls for 1,000 messages (create, Sent, Delivered): naive %d, in three flushes %d, statuses in one flush %d; 500 creates + 500 updates in one flush after 500 creates: %d",
		naive, batched, oneBatch, mixed)
	if mixed != 3 {
		t.Errorf("mixed flush = %d calls, want 1 + 2", mixed)
	}
	if naive != 3000 {
		t.Errorf("naive = %d, want 3000", naive)
	}
	// Each flush of 1,000 records is one /composite call of five
	// collections of 200.
	if batched != 3 {
		t.Errorf("create, Sent and Delivered in three flushes = %d calls, want 3", batched)
	}
	if oneBatch != 2 {
		t.Errorf("create, then both statuses in one flush = %d calls, want 2", oneBatch)
	}
	if n := e1000Composite(t); n != 1 {
		t.Errorf("1,000 pure updates took %d calls, want 1 composite", n)
	}
}

// e1000Composite writes 1,000 status updates of existing records in one
// write and returns the calls it took.
func e1000Composite(t *testing.T) int {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	msgs := e.created(newMessages(1000, "u"))
	e.sf.ResetCounters()
	updates := make([]switchboard.CRMMessage, len(msgs))
	for i, m := range msgs {
		updates[i] = switchboard.CRMMessage{MessageID: m.MessageID, CRMMessageID: m.CRMMessageID, Status: switchboard.StatusDelivered}
	}
	for _, r := range e.write(updates) {
		if r.Err != nil {
			t.Fatalf("update: %v", r.Err)
		}
	}
	if e.sf.Calls("POST /composite") != e.sf.DataCalls() {
		t.Errorf("calls %v, want composite calls only", e.sf.CallCounts())
	}
	return e.sf.DataCalls()
}
