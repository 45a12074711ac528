package salesforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
)

func TestQueryPaging(t *testing.T) {
	e := newEnv(t, sftest.WithPageSize(2))
	e.connect(sftest.DefaultUsername)
	var want []string
	for i := range 6 {
		want = append(want, e.sf.AddRecord("Contact", map[string]any{"LastName": string(rune('A' + i))}))
	}
	e.sf.ResetCounters()
	var got []string
	err := e.client.Query(context.Background(), e.org.ID, "SELECT Id, LastName FROM Contact ORDER BY LastName", func(raw json.RawMessage) error {
		var r struct{ Id string }
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		got = append(got, r.Id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
	if n := e.sf.Calls("GET /query"); n != 3 {
		t.Errorf("query calls = %d, want 3 pages", n)
	}

	// fn's error stops the query
	stop := errors.New("stop")
	calls := 0
	err = e.client.Query(context.Background(), e.org.ID, contactsQuery, func(json.RawMessage) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("error %v after %d records", err, calls)
	}

	// a malformed query is Salesforce's MALFORMED_QUERY, not retryable
	_, err = e.query("SELECT Id FROM Contact WHERE LastName = 'A' OR LastName = 'B' AND Email = null")
	if ce := crmError(t, err); ce.Code != "MALFORMED_QUERY" || ce.Retryable {
		t.Errorf("malformed query: %+v", ce)
	}
}

func TestGetRecords(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	c := e.sf.AddRecord("Contact", map[string]any{"FirstName": "Ada", "LastName": "Ng", "Email": "ada@acme.example", "MobilePhone": "+12015550123", "Switchboard_Opt_Out__c": true})
	l := e.sf.AddRecord("Lead", map[string]any{"LastName": "Li", "Company": "Acme", "Phone": "(201) 555-0199"})
	recs, err := e.client.GetRecords(context.Background(), e.org, []string{c, "003RS00000000ZZAAA", l, "001RS0000000001AAA", c})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("records %+v, want the contact and the lead", recs)
	}
	rc, rl := recs[0], recs[1]
	if rc.ID != c || rc.Type != "Contact" || rc.FirstName != "Ada" || rc.LastName != "Ng" || rc.Email != "ada@acme.example" || rc.Phone != "+12015550123" || !rc.OptOut || rc.OwnerID == "" || rc.CreatedAt.IsZero() {
		t.Errorf("contact %+v", rc)
	}
	if rl.ID != l || rl.Type != "Lead" || rl.Phone != "(201) 555-0199" || rl.OptOut {
		t.Errorf("lead %+v", rl)
	}
	if _, err := e.client.GetRecords(context.Background(), e.org, []string{"003' OR Id != '"}); !switchboard.IsCode(err, switchboard.EInvalid) {
		t.Errorf("a malformed id must be refused: %v", err)
	}
}

func TestFindByPhone(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	want := []string{
		e.sf.AddRecord("Contact", map[string]any{"LastName": "E164", "MobilePhone": "+12015550123"}),
		e.sf.AddRecord("Contact", map[string]any{"LastName": "National", "Phone": "(201) 555-0123"}),
		e.sf.AddRecord("Lead", map[string]any{"LastName": "Dashes", "Company": "A", "MobilePhone": "201-555-0123"}),
	}
	e.sf.AddRecord("Contact", map[string]any{"LastName": "Other", "MobilePhone": "+12015550124"})
	e.sf.AddRecord("Lead", map[string]any{"LastName": "None", "Company": "A"})
	recs, err := e.client.FindByPhone(context.Background(), e.org, "+12015550123")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	for _, bad := range []string{"2015550123", "+1201555012'3", ""} {
		if _, err := e.client.FindByPhone(context.Background(), e.org, bad); !switchboard.IsCode(err, switchboard.EInvalid) {
			t.Errorf("FindByPhone(%q) = %v, want EInvalid", bad, err)
		}
	}
}

// TestFindByPhonesFormats: each record comes back under the number it
// matches, however the number is written in it (E.164, dashes, national,
// dots), on contacts and leads, oldest first, with its global opt-out flag;
// numbers not in E.164 form are left out.
func TestFindByPhonesFormats(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	a := []string{
		e.sf.AddRecord("Contact", map[string]any{"LastName": "E164", "MobilePhone": "+12015550123"}),
		e.sf.AddRecord("Lead", map[string]any{"LastName": "Dashes", "Company": "A", "MobilePhone": "201-555-0123"}),
	}
	b := e.sf.AddRecord("Contact", map[string]any{"LastName": "National", "Phone": "(201) 555-0124", "Switchboard_Opt_Out__c": true})
	// Many numbers: the queries are batched to stay inside the URI limit.
	phones := []string{"+12015550123", "+12015550124", "+12015550125", "+12015550123"}
	for i := range 150 {
		phones = append(phones, fmt.Sprintf("+1201555%04d", 2000+i))
	}
	last := e.sf.AddRecord("Contact", map[string]any{"LastName": "Last", "MobilePhone": "201.555.2149"})
	e.sf.ResetCounters()
	got, err := e.client.FindByPhones(context.Background(), e.org, phones)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(recs []switchboard.CRMRecord) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	if len(got) != 3 || !slices.Equal(ids(got["+12015550123"]), a) || !slices.Equal(ids(got["+12015550124"]), []string{b}) ||
		!got["+12015550124"][0].OptOut || !slices.Equal(ids(got["+12015552149"]), []string{last}) {
		t.Errorf("found %v", got)
	}
	for _, bad := range []string{"2015550123", "+1201555012'3"} {
		got, err := e.client.FindByPhones(context.Background(), e.org, []string{"+12015550123", bad})
		if err != nil || len(got) != 1 || len(got["+12015550123"]) != 2 {
			t.Errorf("FindByPhones with %q: %v %v, want only +12015550123's records", bad, got, err)
		}
	}
}

func TestFindContactsByEmail(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	id := e.sf.AddRecord("Contact", map[string]any{"LastName": "O'Brien", "Email": "o'brien@acme.example"})
	e.sf.AddRecord("Contact", map[string]any{"LastName": "Other", "Email": "other@acme.example"})
	recs, err := e.client.FindContactsByEmail(context.Background(), e.org, "O'Brien@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ID != id || recs[0].LastName != "O'Brien" {
		t.Errorf("found %+v", recs)
	}
	// an injection attempt is just an address that matches nothing
	recs, err = e.client.FindContactsByEmail(context.Background(), e.org, "x@y' OR Email != '")
	if err != nil || len(recs) != 0 {
		t.Errorf("injection attempt found %d records, err %v", len(recs), err)
	}
	if _, err := e.client.FindContactsByEmail(context.Background(), e.org, "not-an-email"); !switchboard.IsCode(err, switchboard.EInvalid) {
		t.Errorf("invalid email: %v", err)
	}
}

func TestLastOutgoingOwner(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	first := e.sf.AddUser("first@acme.example")
	second := e.sf.AddUser("second@acme.example")
	const gw, phone = "+12015550100", "+12015550123"
	add := func(dir, owner, gateway, to string) {
		e.sf.AddRecord("Switchboard_Message__c", map[string]any{"Switchboard_Id__c": "x", "Direction__c": dir, "OwnerId": owner, "Gateway_Number__c": gateway, "Phone__c": to})
	}
	add("outgoing", first, gw, phone)
	add("outgoing", second, gw, phone)
	add("incoming", first, gw, phone)
	add("outgoing", first, "+12015550101", phone)
	add("outgoing", first, gw, "+12015550999")
	tests := []struct {
		name, gateway, phone, want string
	}{
		{"newest outgoing", gw, phone, second},
		{"other gateway", "+12015550101", phone, first},
		{"no outgoing", gw, "+12015550777", ""},
		{"quote in input", gw, "+1' OR Phone__c != '", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.client.LastOutgoingOwner(context.Background(), e.org, tt.gateway, tt.phone)
			if err != nil || got != tt.want {
				t.Errorf("owner = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestFindByPhones: many numbers are looked up together — 200 numbers on
// the two default record objects cost one API call — and each record comes
// back under the number it matches, however the number is written in it.
func TestFindByPhones(t *testing.T) {
	e := newEnv(t, sftest.WithPageSize(50))
	e.connect(sftest.DefaultUsername)
	var phones []string
	want := map[string][]string{}
	for i := range 200 {
		n := fmt.Sprintf("+1201555%04d", 1000+i)
		phones = append(phones, n)
		national := n[2:]
		switch i % 4 {
		case 0: // a contact in E.164
			want[n] = append(want[n], e.sf.AddRecord("Contact", map[string]any{"LastName": "C" + n, "MobilePhone": n}))
		case 1: // a contact written nationally, and a lead with dashes
			want[n] = append(want[n], e.sf.AddRecord("Contact", map[string]any{"LastName": "N" + n, "Phone": "(" + national[:3] + ") " + national[3:6] + "-" + national[6:]}))
			want[n] = append(want[n], e.sf.AddRecord("Lead", map[string]any{"LastName": "L" + n, "Company": "A", "MobilePhone": national[:3] + "-" + national[3:6] + "-" + national[6:]}))
		case 2: // nobody
		case 3: // a lead without the plus
			want[n] = append(want[n], e.sf.AddRecord("Lead", map[string]any{"LastName": "P" + n, "Company": "A", "Phone": n[1:]}))
		}
	}
	e.sf.AddRecord("Contact", map[string]any{"LastName": "Other", "MobilePhone": "+12015559999"})
	e.sf.ResetCounters()
	found, err := e.client.FindByPhones(context.Background(), e.org, append(phones, "not a number", "2015551000", phones[0]))
	if err != nil {
		t.Fatal(err)
	}
	if n := e.sf.Calls("POST /composite"); n != 1 {
		t.Errorf("%d composite calls for 200 numbers, want 1 (calls %v)", n, e.sf.CallCounts())
	}
	// 150 records in pages of 50: the rest of each statement's answer is
	// read through nextRecordsUrl.
	if len(found) != len(want) {
		t.Errorf("found records for %d numbers, want %d", len(found), len(want))
	}
	for n, ids := range want {
		var got []string
		for _, r := range found[n] {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, ids) {
			t.Errorf("%s: found %v, want %v", n, got, ids)
		}
	}

	// Many more numbers: statements stay within Salesforce's limits and go
	// five to a composite call.
	var many []string
	for i := range 2000 {
		many = append(many, fmt.Sprintf("+1202555%04d", i))
	}
	e.sf.ResetCounters()
	if found, err = e.client.FindByPhones(context.Background(), e.org, many); err != nil || len(found) != 0 {
		t.Fatalf("2,000 numbers: %d found, %v", len(found), err)
	}
	if n := e.sf.Calls("POST /composite"); n < 2 || n > 20 {
		t.Errorf("%d composite calls for 2,000 numbers", n)
	}
}

// TestFindByEmail: contacts and leads with the address, object by object.
func TestFindByEmail(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	c := e.sf.AddRecord("Contact", map[string]any{"LastName": "O'Brien", "Email": "o'brien@acme.example"})
	l := e.sf.AddRecord("Lead", map[string]any{"LastName": "O'Brien", "Company": "Acme", "Email": "o'brien@acme.example"})
	e.sf.AddRecord("Lead", map[string]any{"LastName": "Other", "Company": "Acme", "Email": "other@acme.example"})
	e.sf.ResetCounters()
	recs, err := e.client.FindByEmail(context.Background(), e.org, "O'Brien@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ID != c || recs[0].Type != "Contact" || recs[1].ID != l || recs[1].Type != "Lead" {
		t.Errorf("found %+v", recs)
	}
	if n := e.sf.DataCalls(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
	if recs, err := e.client.FindByEmail(context.Background(), e.org, "x@y' OR Email != '"); err != nil || len(recs) != 0 {
		t.Errorf("injection attempt found %d records, err %v", len(recs), err)
	}
	if _, err := e.client.FindByEmail(context.Background(), e.org, "not-an-email"); !switchboard.IsCode(err, switchboard.EInvalid) {
		t.Errorf("invalid email: %v", err)
	}
}

// TestLastOutgoingOwners: the owners of many phone-on-gateway pairs in one
// call, each from its newest outgoing record.
func TestLastOutgoingOwners(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	first := e.sf.AddUser("first@acme.example")
	second := e.sf.AddUser("second@acme.example")
	const gw, gw2 = "+12015550100", "+12015550101"
	add := func(dir, owner, gateway, to string) {
		e.sf.AddRecord("Switchboard_Message__c", map[string]any{"Switchboard_Id__c": "x", "Direction__c": dir, "OwnerId": owner, "Gateway_Number__c": gateway, "Phone__c": to})
	}
	var pairs []switchboard.PhoneOnGateway
	want := map[switchboard.PhoneOnGateway]string{}
	for i := range 300 {
		p := switchboard.PhoneOnGateway{GatewayNumber: gw, Phone: fmt.Sprintf("+1201555%04d", 2000+i)}
		if i%2 == 1 {
			p.GatewayNumber = gw2
		}
		pairs = append(pairs, p)
		switch i % 3 {
		case 0:
			add("outgoing", first, p.GatewayNumber, p.Phone)
			add("outgoing", second, p.GatewayNumber, p.Phone)
			want[p] = second
		case 1:
			add("outgoing", first, p.GatewayNumber, p.Phone)
			add("incoming", second, p.GatewayNumber, p.Phone)
			want[p] = first
		case 2:
			add("outgoing", first, gw+"9", p.Phone) // another gateway only
		}
	}
	e.sf.ResetCounters()
	got, err := e.client.LastOutgoingOwners(context.Background(), e.org, pairs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("owners: %d found, want %d", len(got), len(want))
	}
	if n := e.sf.DataCalls(); n != 1 {
		t.Errorf("%d calls for 300 pairs, want 1", n)
	}
}

func TestSaveContactAndTask(t *testing.T) {
	tests := []struct {
		name     string
		existing bool
		// noExternalID clears the task external id field, which the
		// default mapping sets (Switchboard_Chat_Id__c).
		noExternalID bool
	}{
		{"new contact", false, false},
		{"existing contact", true, false},
		{"no task external id field", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.connect(sftest.DefaultUsername)
			if e.stored().Mapping.TaskExternalIDField != "Switchboard_Chat_Id__c" {
				t.Fatalf("default task external id field = %q", e.stored().Mapping.TaskExternalIDField)
			}
			if tt.noExternalID {
				conn := e.stored()
				conn.Mapping.TaskExternalIDField = ""
				if err := e.client.SetMapping(context.Background(), e.org.ID, conn.Mapping); err != nil {
					t.Fatal(err)
				}
			}
			contact := &switchboard.CRMRecord{FirstName: "Ada", LastName: "Ng", Email: "ada@acme.example", Phone: "+12015550123", Fields: map[string]string{"Description": "Future student"}}
			if tt.existing {
				contact.ID = e.sf.AddRecord("Contact", map[string]any{"LastName": "Old"})
			}
			task := &switchboard.CRMTask{Subject: "Chat transcript", ActivityDate: "2025-03-14", Description: "Visitor: hi\nBot: hello", ExternalID: "chat-42"}
			e.sf.ResetCounters()
			cid, tid, err := e.client.SaveContactAndTask(context.Background(), e.org, contact, task)
			if err != nil {
				t.Fatal(err)
			}
			if e.sf.DataCalls() != 1 || e.sf.Calls("POST /composite") != 1 {
				t.Errorf("calls %v, want one POST /composite", e.sf.CallCounts())
			}
			c, ok := e.sf.Record(cid)
			if !ok || c["LastName"] != "Ng" || c["Email"] != "ada@acme.example" || c["MobilePhone"] != "+12015550123" || c["Description"] != "Future student" {
				t.Errorf("contact %v", c)
			}
			if tt.existing && cid != contact.ID {
				t.Errorf("contact id %s, want %s", cid, contact.ID)
			}
			tk, ok := e.sf.Record(tid)
			if !ok || tk["WhoId"] != cid || tk["Status"] != "Completed" || tk["Subject"] != "Chat transcript" || tk["ActivityDate"] != "2025-03-14" {
				t.Errorf("task %v", tk)
			}
			contact.ID = cid
			_, tid2, err := e.client.SaveContactAndTask(context.Background(), e.org, contact, task)
			if err != nil {
				t.Fatal(err)
			}
			tasks := len(e.sf.Records("Task"))
			if !tt.noExternalID && (tid2 != tid || tasks != 1) {
				t.Errorf("repeated export: task %s (first %s), %d tasks; want the first task", tid2, tid, tasks)
			}
			if tt.noExternalID && tasks != 2 {
				t.Errorf("%d tasks, want 2 without an external id field", tasks)
			}
		})
	}
}

func TestSaveContactAndTaskAllOrNone(t *testing.T) {
	e := newEnv(t)
	e.connect(sftest.DefaultUsername)
	e.sf.SetRequired("Task", "Priority", true)
	_, _, err := e.client.SaveContactAndTask(context.Background(), e.org, &switchboard.CRMRecord{LastName: "Ng"}, &switchboard.CRMTask{Subject: "Chat"})
	ce := crmError(t, err)
	if ce.Code != "REQUIRED_FIELD_MISSING" || !strings.Contains(ce.Message, "Priority") || ce.Retryable {
		t.Errorf("error = %+v", ce)
	}
	if n := len(e.sf.Records("Contact")); n != 0 {
		t.Errorf("%d contacts left behind; the contact must be rolled back", n)
	}
	if _, _, err := e.client.SaveContactAndTask(context.Background(), e.org, &switchboard.CRMRecord{FirstName: "No last name"}, &switchboard.CRMTask{Subject: "Chat"}); !switchboard.IsCode(err, switchboard.EInvalid) {
		t.Errorf("missing last name: %v", err)
	}
}

func TestEscapeSOQL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"O'Brien", `O\'Brien`},
		{`back\slash`, `back\\slash`},
		{`"quoted"`, `\"quoted\"`},
		{"line\nbreak\r\ttab", `line\nbreak\r\ttab`},
		{"bell\bform\f", `bell\bform\f`},
		{"nul\x00esc\x1b", `nul\u0000esc\u001b`},
		{`x\' OR Id != '`, `x\\\' OR Id != \'`},
		{"café ✓", "café ✓"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
	}
	for _, tt := range tests {
		if got := salesforce.EscapeSOQL(tt.in); got != tt.want {
			t.Errorf("EscapeSOQL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzEscapeSOQL checks that an escaped value inside quotes is always one
// literal with exactly the value: it never ends the literal early.
func FuzzEscapeSOQL(f *testing.F) {
	for _, s := range []string{"", "'", `\`, `\'`, "a' OR Id != 'b", "\n\r\t", "\x00", "é", "\\u0027", "'; DELETE", "\u2028", "\xfd\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := "SELECT Id FROM Contact WHERE Email = '" + salesforce.EscapeSOQL(s) + "' AND LastName = 'x'"
		parsed, err := sftest.ParseSOQL(q)
		if err != nil {
			t.Fatalf("query with escaped %q does not parse: %v", s, err)
		}
		w := parsed.Where
		if w == nil || w.Op != "AND" || len(w.Args) != 2 {
			t.Fatalf("escaped %q changed the query's shape: %+v", s, w)
		}
		eq := w.Args[0]
		var want strings.Builder // each invalid byte reads back as U+FFFD
		for _, r := range s {
			want.WriteRune(r)
		}
		if eq.Op != "=" || eq.Field != "Email" || len(eq.Values) != 1 || eq.Values[0] != want.String() {
			t.Fatalf("escaped %q reads back as %+v", s, eq)
		}
		if !utf8.ValidString(salesforce.EscapeSOQL(s)) {
			t.Fatal("escaped value is not valid UTF-8")
		}
	})
}

func TestParseLimitInfo(t *testing.T) {
	tests := []struct {
		in        string
		used, max int
		ok        bool
	}{
		{"api-usage=18/5000", 18, 5000, true},
		{"api-usage=10018/100000; api-bursts=1/750", 10018, 100000, true},
		{"per-app-api-usage=17/250(appName=sample-connected-app); api-usage=25/5000", 25, 5000, true},
		{" API-Usage = 1 / 2 ", 1, 2, true},
		{"", 0, 0, false},
		{"api-usage=18", 0, 0, false},
		{"api-usage=18/0", 0, 0, false},
		{"api-usage=-1/5000", 0, 0, false},
		{"api-usage=x/5000", 0, 0, false},
		{"api-usage=1/99999999999999999999", 0, 0, false},
	}
	for _, tt := range tests {
		used, max, ok := salesforce.ParseLimitInfo(tt.in)
		if used != tt.used || max != tt.max || ok != tt.ok {
			t.Errorf("ParseLimitInfo(%q) = %d, %d, %v; want %d, %d, %v", tt.in, used, max, ok, tt.used, tt.max, tt.ok)
		}
	}
}

func FuzzParseLimitInfo(f *testing.F) {
	for _, s := range []string{"api-usage=18/5000", "api-usage=1/2; api-bursts=1/750", "api-usage=/", "api-usage=0/1;", ";;=/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		used, max, ok := salesforce.ParseLimitInfo(s)
		if ok && (used < 0 || max <= 0) {
			t.Fatalf("ParseLimitInfo(%q) = %d/%d", s, used, max)
		}
		if !ok && (used != 0 || max != 0) {
			t.Fatalf("ParseLimitInfo(%q) returned values without ok", s)
		}
	})
}

func TestUsageAndThrottle(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var heard []int
	e.cfg.OnLimits = func(orgID string, used, max int) {
		mu.Lock()
		defer mu.Unlock()
		if orgID == e.org.ID && max == 1000 {
			heard = append(heard, used)
		}
	}
	e.client = salesforce.New(e.cfg, e.store)
	e.connect(sftest.DefaultUsername)
	tests := []struct {
		used     int
		throttle bool
	}{
		{500, false},
		{798, false},
		{799, true}, // the call itself counts: 800 of 1000
		{990, true},
	}
	for _, tt := range tests {
		e.sf.SetAPIUsage(tt.used, 1000)
		if _, err := e.query(contactsQuery); err != nil {
			t.Fatal(err)
		}
		used, max := e.client.Usage(e.org.ID)
		if used != tt.used+1 || max != 1000 || e.client.Throttle(e.org.ID) != tt.throttle {
			t.Errorf("usage %d/%d throttle %v; want %d/1000 throttle %v", used, max, e.client.Throttle(e.org.ID), tt.used+1, tt.throttle)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(heard, []int{501, 799, 800, 991}) {
		t.Errorf("OnLimits heard %v", heard)
	}
	if e.client.Throttle("unknown-org") {
		t.Error("an org without readings must not be throttled")
	}
}

func TestHealthCheck(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(e *env)
		wantOK   bool
		failing  string
		wantText string
	}{
		{"healthy", func(e *env) {}, true, "", ""},
		{"expired token is refreshed", func(e *env) { e.sf.ExpireAccessTokens() }, true, "", ""},
		{"missing field", func(e *env) { e.sf.RemoveField("Switchboard_Message__c", "Debug__c") }, false, salesforce.CheckMessageObject, "Debug__c"},
		{"missing media field", func(e *env) { e.sf.RemoveField("Switchboard_Message__c", "Media_Urls__c") }, false, salesforce.CheckMessageObject, "Media_Urls__c"},
		{"read-only field", func(e *env) { e.sf.SetFieldAccess("Switchboard_Message__c", "Status__c", true, false) }, false, salesforce.CheckMessageObject, "Status__c"},
		{"missing phone field", func(e *env) { e.sf.RemoveField("Lead", "MobilePhone") }, false, salesforce.CheckRecordObjects, "MobilePhone"},
		{"api budget", func(e *env) { e.sf.SetAPIUsage(900, 1000) }, false, salesforce.CheckAPIBudget, "daily API requests"},
		{"revoked", func(e *env) { e.sf.RevokeRefreshTokens() }, false, salesforce.CheckToken, "authorize"},
		{"message field not updateable: upserts update it", func(e *env) { e.sf.SetFieldAccess("Switchboard_Message__c", "Body__c", true, false) }, false, salesforce.CheckMessageObject, "Body__c"},
		{"message external id not an External ID", func(e *env) {
			e.sf.AddField("Switchboard_Message__c", sftest.Field{Name: "Switchboard_Id__c", Type: "string", Createable: true, Updateable: true})
		}, false, salesforce.CheckMessageObject, "not an External ID field"},
		{"task external id field missing", func(e *env) { e.sf.RemoveField("Task", "Switchboard_Chat_Id__c") }, false, salesforce.CheckTaskObject, "Switchboard_Chat_Id__c"},
		{"click field missing", func(e *env) { e.sf.RemoveField("Switchboard_Link_Click__c", "Browser__c") }, false, salesforce.CheckClickObject, "Browser__c"},
		{"click lookup read-only", func(e *env) { e.sf.SetFieldAccess("Switchboard_Link_Click__c", "Lead__c", true, false) }, false, salesforce.CheckClickObject, "Lead__c"},
		{"click external id not an External ID", func(e *env) {
			e.sf.AddField("Switchboard_Link_Click__c", sftest.Field{Name: "Switchboard_Id__c", Type: "string", Createable: true, Updateable: true})
		}, false, salesforce.CheckClickObject, "Switchboard_Link_Click__c.Switchboard_Id__c is not an External ID field"},
		{"form object not installed", func(e *env) {
			conn := e.stored()
			conn.Mapping.Forms.Object = "Survey__c"
			if err := e.client.SetMapping(context.Background(), e.org.ID, conn.Mapping); err != nil {
				e.t.Fatal(err)
			}
		}, false, salesforce.CheckFormObject, "Survey__c does not exist"},
		{"form answers read-only", func(e *env) { e.sf.SetFieldAccess("Switchboard_Form_Response__c", "Answers__c", false, false) }, false, salesforce.CheckFormObject, "Answers__c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.connect(sftest.DefaultUsername)
			tt.setup(e)
			r := e.client.Check(context.Background(), e.org)
			if r.OK != tt.wantOK {
				t.Fatalf("OK = %v, items %+v", r.OK, r.Items)
			}
			if saved := e.store.Health(e.org.ID); saved == nil || saved.OK != r.OK || len(saved.Items) != len(r.Items) {
				t.Error("report not saved")
			}
			if _, err := json.Marshal(r); err != nil {
				t.Error(err)
			}
			if tt.wantOK {
				names := []string{salesforce.CheckConnection, salesforce.CheckToken, salesforce.CheckIdentity, salesforce.CheckMessageObject, salesforce.CheckRecordObjects,
					salesforce.CheckTaskObject, salesforce.CheckClickObject, salesforce.CheckFormObject, salesforce.CheckAPIBudget}
				if len(r.Items) != len(names) {
					t.Fatalf("items %+v", r.Items)
				}
				for i, n := range names {
					if r.Items[i].Name != n || !r.Items[i].OK {
						t.Errorf("item %d = %+v, want %s ok", i, r.Items[i], n)
					}
				}
				return
			}
			it, ok := r.Item(tt.failing)
			if !ok || it.OK || !strings.Contains(it.Message, tt.wantText) {
				t.Errorf("item %s = %+v, want failing mentioning %q (all: %+v)", tt.failing, it, tt.wantText, r.Items)
			}
			if failing := r.Failing(); len(failing) != 1 {
				t.Errorf("failing items %+v, want only %s", failing, tt.failing)
			}
		})
	}
	e := newEnv(t)
	if r := e.client.Check(context.Background(), e.org); r.OK || r.Items[0].Name != salesforce.CheckConnection || !strings.Contains(r.Items[0].Message, "not connected") {
		t.Errorf("unconnected org: %+v", r)
	}
}

func TestMappingValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(m *salesforce.Mapping)
		field string
	}{
		{"default", func(m *salesforce.Mapping) {}, ""},
		{"no object", func(m *salesforce.Mapping) { m.MessageObject = "" }, "mapping.message_object"},
		{"injection in object", func(m *salesforce.Mapping) { m.MessageObject = "Msg__c WHERE Id != null" }, "mapping.message_object"},
		{"no status", func(m *salesforce.Mapping) { m.Fields.Status = "" }, "mapping.fields.status"},
		{"bad field", func(m *salesforce.Mapping) { m.Fields.Debug = "Debug-Text" }, "mapping.fields.debug"},
		{"duplicate field", func(m *salesforce.Mapping) { m.Fields.Debug = "status__c" }, "mapping.fields.debug"},
		{"bad media field", func(m *salesforce.Mapping) { m.Fields.Media = "Media URLs" }, "mapping.fields.media"},
		{"media field clashes with body", func(m *salesforce.Mapping) { m.Fields.Media = "Body__c" }, "mapping.fields.media"},
		{"media field left out", func(m *salesforce.Mapping) { m.Fields.Media = "" }, ""},
		{"lookup clash", func(m *salesforce.Mapping) { m.Records[1].LookupField = "Contact__c" }, "mapping.records[1].lookup_field"},
		{"bad prefix", func(m *salesforce.Mapping) { m.Records[0].KeyPrefix = "03" }, "mapping.records[0].key_prefix"},
		{"same prefix", func(m *salesforce.Mapping) { m.Records[1].KeyPrefix = "003" }, "mapping.records[1].key_prefix"},
		{"bad phone field", func(m *salesforce.Mapping) { m.Records[0].PhoneFields = []string{"Mobile Phone"} }, "mapping.records[0].phone_fields[0]"},
		{"no task object", func(m *salesforce.Mapping) { m.TaskObject = "" }, "mapping.task_object"},
		{"bad task external id", func(m *salesforce.Mapping) { m.TaskExternalIDField = "Chat Id" }, "mapping.task_external_id_field"},
		{"no task external id", func(m *salesforce.Mapping) { m.TaskExternalIDField = "" }, ""},
		{"no click object", func(m *salesforce.Mapping) { m.Clicks.Object = "" }, "mapping.clicks.object"},
		{"injection in click object", func(m *salesforce.Mapping) { m.Clicks.Object = "Click__c/x" }, "mapping.clicks.object"},
		{"no click external id", func(m *salesforce.Mapping) { m.Clicks.Fields.ExternalID = "" }, "mapping.clicks.fields.external_id"},
		{"bad click field", func(m *salesforce.Mapping) { m.Clicks.Fields.IPAddress = "IP Address" }, "mapping.clicks.fields.ip_address"},
		{"optional click field left out", func(m *salesforce.Mapping) { m.Clicks.Fields.Browser = "" }, ""},
		{"duplicate click field", func(m *salesforce.Mapping) { m.Clicks.Fields.Domain = "url__c" }, "mapping.clicks.fields.domain"},
		{"click lookup to an unmapped object", func(m *salesforce.Mapping) { m.Clicks.Lookups["Account"] = "Account__c" }, "mapping.clicks.lookups.Account"},
		{"click lookup given twice", func(m *salesforce.Mapping) { m.Clicks.Lookups["contact"] = "Person__c" }, "mapping.clicks.lookups.contact"},
		{"bad click lookup", func(m *salesforce.Mapping) { m.Clicks.Lookups[salesforce.ObjectLead] = "Lead-Id" }, "mapping.clicks.lookups.Lead"},
		{"click lookup clashes with a field", func(m *salesforce.Mapping) { m.Clicks.Lookups[salesforce.ObjectLead] = "Message__c" }, "mapping.clicks.lookups.Lead"},
		{"click lookups default to the message lookups", func(m *salesforce.Mapping) { m.Clicks.Lookups = nil }, ""},
		{"no form object", func(m *salesforce.Mapping) { m.Forms.Object = "" }, "mapping.forms.object"},
		{"no form external id", func(m *salesforce.Mapping) { m.Forms.Fields.ExternalID = "" }, "mapping.forms.fields.external_id"},
		{"bad form answers field", func(m *salesforce.Mapping) { m.Forms.Fields.Answers = "Answers__c;" }, "mapping.forms.fields.answers"},
		{"duplicate form field", func(m *salesforce.Mapping) { m.Forms.Fields.EndedAt = "Started_At__c" }, "mapping.forms.fields.ended_at"},
		{"form created-by lookup", func(m *salesforce.Mapping) { m.Forms.Fields.CreatedBy = "Started_By__c" }, ""},
		{"form lookup clash", func(m *salesforce.Mapping) { m.Forms.Lookups[salesforce.ObjectLead] = "Contact__c" }, "mapping.forms.lookups.Lead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := salesforce.DefaultMapping()
			tt.edit(&m)
			err := m.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var de *switchboard.Error
			if !errors.As(err, &de) || de.Field != tt.field || de.Code != switchboard.EInvalid {
				t.Errorf("error = %v, want EInvalid on %s", err, tt.field)
			}
		})
	}
}

func TestMappingDefaults(t *testing.T) {
	m := salesforce.DefaultMapping()
	if m.TaskExternalIDField != "Switchboard_Chat_Id__c" || m.Clicks.Object != "Switchboard_Link_Click__c" || m.Clicks.Fields.ExternalID != "Switchboard_Id__c" ||
		m.Forms.Object != "Switchboard_Form_Response__c" || m.Forms.Fields.ExternalID != "Switchboard_Session_Id__c" || m.Forms.Fields.Owner != "OwnerId" {
		t.Errorf("defaults %+v", m)
	}
	// A mapping saved before the click and form sections existed gets them.
	old := salesforce.DefaultMapping()
	old.Clicks, old.Forms = salesforce.ClickMapping{}, salesforce.FormMapping{}
	if err := old.Validate(); err == nil {
		t.Error("a mapping without a click section must not validate")
	}
	if got := old.WithDefaults(); !reflect.DeepEqual(got, m) {
		t.Errorf("WithDefaults = %+v, want %+v", got, m)
	}
	// A section that is set is kept.
	custom := salesforce.DefaultMapping()
	custom.Clicks.Object = "Click__c"
	if got := custom.WithDefaults(); got.Clicks.Object != "Click__c" {
		t.Errorf("WithDefaults replaced a set section: %+v", got.Clicks)
	}
	// Clone copies the lookups.
	cp := m.Clone()
	cp.Clicks.Lookups[salesforce.ObjectContact] = "Other__c"
	cp.Forms.Lookups[salesforce.ObjectContact] = "Other__c"
	if m.Clicks.Lookups[salesforce.ObjectContact] != "Contact__c" || m.Forms.Lookups[salesforce.ObjectContact] != "Contact__c" {
		t.Error("Clone shares the lookups")
	}
}

func FuzzValidateInstanceURL(f *testing.F) {
	for _, s := range []string{"https://acme.my.salesforce.com", "https://login.salesforce.com", "http://x", "https://a.salesforce.com.evil", "https://%zz", "https://[::1]", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := salesforce.ValidateInstanceURL(s)
		if err != nil {
			if !switchboard.IsCode(err, switchboard.EInvalid) {
				t.Fatalf("error %v is not EInvalid", err)
			}
			return
		}
		host := strings.TrimPrefix(got, "https://")
		if !strings.HasPrefix(got, "https://") || !strings.HasSuffix(host, ".salesforce.com") || host == "login.salesforce.com" || host == "test.salesforce.com" || strings.ContainsAny(host, "/?#@:") {
			t.Fatalf("ValidateInstanceURL(%q) accepted %q", s, got)
		}
	})
}
