package salesforce_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
)

// TestConversation: the thread of a record or a number is one SOQL query,
// the newest records up to the limit, oldest first, with the mapped fields
// read back; an unreachable Salesforce is a retryable CRMError.
func TestConversation(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	ctx := context.Background()
	contact := e.sf.AddRecord("Contact", map[string]any{"LastName": "Ng", "MobilePhone": "+12015550123"})
	other := e.sf.AddRecord("Contact", map[string]any{"LastName": "Li"})
	lead := e.sf.AddRecord("Lead", map[string]any{"LastName": "Lu", "Company": "Acme"})
	add := func(id, dir, status, body, phone, lookup, recordID string) string {
		e.clock.Advance(time.Second)
		f := map[string]any{"Switchboard_Id__c": id, "Direction__c": dir, "Status__c": status, "Body__c": body, "Phone__c": phone,
			"Gateway_Number__c": "+12015550100", "Segments__c": 1.0}
		if lookup != "" {
			f[lookup] = recordID
		}
		return e.sf.AddRecord("Switchboard_Message__c", f)
	}
	add("m1", "outgoing", "Delivered", "Hello 'there'", "+12015550123", "Contact__c", contact)
	add("m2", "incoming", "Received", "Hi!", "+12015550123", "Contact__c", contact)
	add("m3", "outgoing", "Sent", "Other", "+12015550199", "Contact__c", other)
	add("m4", "outgoing", "Queued", "Lead", "+12015550123", "Lead__c", lead)
	id5 := add("m5", "outgoing", "Sent", "Line one\nline two", "+12015550123", "Contact__c", contact)

	e.sf.ResetCounters()
	got, err := e.client.Conversation(ctx, e.org, contact, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.sf.DataCalls(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.MessageID)
	}
	if len(got) != 3 || ids[0] != "m1" || ids[1] != "m2" || ids[2] != "m5" {
		t.Fatalf("thread of the contact %v, want m1 m2 m5", ids)
	}
	m1, m2, m5 := got[0], got[1], got[2]
	if m1.Body != "Hello 'there'" || m1.Status != switchboard.StatusDelivered || m1.Direction != switchboard.Outgoing || m1.Phone != "+12015550123" ||
		m1.GatewayNumber != "+12015550100" || m1.Segments != 1 || m1.RecordID != contact || m1.OwnerID == "" || m1.ID == "" || m1.CRMMessageID != m1.ID || m1.CreatedAt.IsZero() {
		t.Errorf("first record %+v", m1)
	}
	if m2.Direction != switchboard.Incoming || m2.Status != switchboard.StatusReceived || !m1.CreatedAt.Before(m2.CreatedAt) {
		t.Errorf("second record %+v", m2)
	}
	if m5.Body != "Line one\nline two" || m5.ID != id5 || !m5.StatusAt.Equal(m5.CreatedAt) {
		t.Errorf("last record %+v", m5)
	}

	// The limit keeps the newest.
	got, err = e.client.Conversation(ctx, e.org, contact, "", 2)
	if err != nil || len(got) != 2 || got[0].MessageID != "m2" || got[1].MessageID != "m5" {
		t.Fatalf("limited thread %+v %v", got, err)
	}

	// By number: every record of the number, whatever record it is on.
	got, err = e.client.Conversation(ctx, e.org, "", "+12015550123", 0)
	if err != nil {
		t.Fatal(err)
	}
	ids = nil
	for _, r := range got {
		ids = append(ids, r.MessageID)
	}
	if len(ids) != 4 || ids[0] != "m1" || ids[2] != "m4" || ids[3] != "m5" || got[2].RecordID != lead {
		t.Fatalf("thread of the number %v", ids)
	}

	for _, bad := range []struct{ record, phone string }{{"not-an-id", ""}, {"", "2015550123"}, {"", ""}, {"001RS0000000001AAA", ""}} {
		if _, err := e.client.Conversation(ctx, e.org, bad.record, bad.phone, 0); switchboard.ErrorCode(err) != switchboard.EInvalid {
			t.Errorf("Conversation(%q, %q): %v, want invalid", bad.record, bad.phone, err)
		}
	}

	// By message id: one query, unknown ids left out.
	e.sf.ResetCounters()
	byID, err := e.client.MessagesByID(ctx, e.org, []string{"m1", "m3", "nope", "m1", "it's"})
	if err != nil || len(byID) != 2 || byID["m1"].Body != "Hello 'there'" || byID["m3"].RecordID != other {
		t.Fatalf("by id: %+v %v", byID, err)
	}
	if n := e.sf.DataCalls(); n != 1 {
		t.Errorf("%d calls by id, want 1", n)
	}

	// Down: a retryable CRMError once the retries are spent.
	e.sf.FailNext(10, http.StatusServiceUnavailable)
	_, err = e.client.Conversation(ctx, e.org, contact, "", 0)
	if ce := crmError(t, err); !ce.Retryable {
		t.Errorf("Salesforce down: %+v", ce)
	}
}
