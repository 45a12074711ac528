package builtin_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/builtin"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// newCRM returns the built-in CRM on a fresh store with one org.
func newCRM(t *testing.T, d store.Dialect) (*builtin.CRM, *sb.Org) {
	t.Helper()
	db := storetest.Open(t, d)
	org := &sb.Org{Name: "Acme"}
	if err := db.Tx(context.Background(), func(tx *store.Tx) error { return tx.CreateOrg(context.Background(), org) }); err != nil {
		t.Fatal(err)
	}
	return builtin.New(db), org
}

var at = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

// TestWriteClicks: clicks land in crm_link_clicks, once each however often
// they are written, with their ids in order.
func TestWriteClicks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		crm, org := newCRM(t, d)
		var cw sb.ClickWriter = crm // implemented explicitly
		ctx := context.Background()
		clicks := []sb.LinkClick{
			{ID: "c1", MessageID: "m1", RecordID: "r1", URL: "https://example.org/a", ShortURL: "https://go.example.org/l/a", At: at, IP: "203.0.113.7", Domain: "go.example.org", Browser: "Chrome 124 on Android"},
			{ID: "c2", MessageID: "m1", RecordID: "r1", URL: "https://example.org/b", At: at.Add(time.Minute)},
		}
		tests := []struct {
			name   string
			clicks []sb.LinkClick
		}{
			{"first write", clicks},
			{"written again (a retry)", clicks},
			{"one of them again, with its message record now known", []sb.LinkClick{{ID: "c2", MessageID: "m1", CRMMessageID: "msg-rec", URL: "https://example.org/b", At: at.Add(time.Minute)}}},
		}
		ids := map[string]string{}
		for _, tt := range tests {
			res, err := cw.WriteClicks(ctx, org, tt.clicks)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if len(res) != len(tt.clicks) {
				t.Fatalf("%s: %d results for %d clicks", tt.name, len(res), len(tt.clicks))
			}
			for i, r := range res {
				if r.Err != nil || r.CRMMessageID == "" {
					t.Fatalf("%s: result %d = %+v", tt.name, i, r)
				}
				if prev, ok := ids[tt.clicks[i].ID]; ok && prev != r.CRMMessageID {
					t.Errorf("%s: click %s is record %s, was %s", tt.name, tt.clicks[i].ID, r.CRMMessageID, prev)
				}
				ids[tt.clicks[i].ID] = r.CRMMessageID
			}
		}
		if ids["c1"] == ids["c2"] {
			t.Error("two clicks share a record")
		}
		stored, err := crm.DB.CRMLinkClicks(ctx, org.ID, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 2 {
			t.Fatalf("%d click records, want 2", len(stored))
		}
		got := stored[0]
		if got.CRMID != ids["c1"] || got.ID != "c1" || got.URL != clicks[0].URL || got.ShortURL != clicks[0].ShortURL || got.IP != "203.0.113.7" ||
			got.Domain != "go.example.org" || got.Browser != "Chrome 124 on Android" || !got.At.Equal(at) {
			t.Errorf("stored click %+v", got)
		}
		if stored[1].CRMMessageID != "msg-rec" {
			t.Errorf("message record of c2 = %q, want msg-rec", stored[1].CRMMessageID)
		}
	})
}

// TestWriteFormResponses: a form record is created once and updated as
// answers arrive.
func TestWriteFormResponses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		crm, org := newCRM(t, d)
		var fw sb.FormResponseWriter = crm // implemented explicitly
		ctx := context.Background()
		r := sb.FormResponse{SessionID: "s1", FormID: "f1", FormName: "Intake", RecordID: "r1", Status: sb.FormInProgress, OwnerID: "u1", StartedAt: at,
			Answers: []sb.FormAnswer{{Question: "name", Text: "Your name?", Answer: "Ada", At: at}}}
		other := sb.FormResponse{SessionID: "s2", FormID: "f1", FormName: "Intake", Status: sb.FormInProgress, StartedAt: at, Answers: []sb.FormAnswer{}}
		res, err := fw.WriteFormResponses(ctx, org, []sb.FormResponse{r, other})
		if err != nil || len(res) != 2 || res[0].Err != nil || res[1].Err != nil || res[0].CRMMessageID == res[1].CRMMessageID {
			t.Fatalf("first write: %+v, %v", res, err)
		}
		id := res[0].CRMMessageID

		r.Status, r.EndedAt = sb.FormCompleted, at.Add(5*time.Minute)
		r.Answers = append(r.Answers, sb.FormAnswer{Question: "goal", Text: "Your goal?", Answer: "Maths", At: at.Add(time.Minute)})
		for _, name := range []string{"answers arrive", "written again (a retry)"} {
			res, err = fw.WriteFormResponses(ctx, org, []sb.FormResponse{r})
			if err != nil || len(res) != 1 || res[0].Err != nil || res[0].CRMMessageID != id {
				t.Fatalf("%s: %+v, %v; want record %s", name, res, err, id)
			}
		}
		stored, err := crm.DB.CRMFormResponses(ctx, org.ID, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 1 {
			t.Fatalf("%d form records of r1, want 1", len(stored))
		}
		got := stored[0]
		if got.ID != id || got.Status != sb.FormCompleted || !got.EndedAt.Equal(r.EndedAt) || len(got.Answers) != 2 || got.Answers[1].Answer != "Maths" || got.OwnerID != "u1" {
			t.Errorf("stored form record %+v", got)
		}
	})
}

// TestWriteErrors: bad calls fail with the errors callers act on.
func TestWriteErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		crm, org := newCRM(t, d)
		ctx := context.Background()
		unknown := &sb.Org{ID: "no-such-org"}
		tests := []struct {
			name      string
			write     func() ([]sb.CRMResult, error)
			code      string // domain error code, or "" for a CRMError
			retryable bool
		}{
			{"clicks without org", func() ([]sb.CRMResult, error) { return crm.WriteClicks(ctx, nil, nil) }, sb.EInvalid, false},
			{"forms without org", func() ([]sb.CRMResult, error) { return crm.WriteFormResponses(ctx, nil, nil) }, sb.EInvalid, false},
			{"clicks of an unknown org", func() ([]sb.CRMResult, error) {
				return crm.WriteClicks(ctx, unknown, []sb.LinkClick{{ID: "x1", URL: "https://example.org", At: at}})
			}, "", true},
			{"forms of an unknown org", func() ([]sb.CRMResult, error) {
				return crm.WriteFormResponses(ctx, unknown, []sb.FormResponse{{SessionID: "x1", FormID: "f", FormName: "F", Status: sb.FormInProgress, StartedAt: at}})
			}, "", true},
		}
		for _, tt := range tests {
			res, err := tt.write()
			if res != nil {
				t.Errorf("%s: results %+v", tt.name, res)
			}
			if tt.code != "" {
				if !sb.IsCode(err, tt.code) {
					t.Errorf("%s: error %v, want %s", tt.name, err, tt.code)
				}
				continue
			}
			var ce *sb.CRMError
			if !errors.As(err, &ce) || ce.Retryable != tt.retryable {
				t.Errorf("%s: error %v, want a CRMError retryable=%v", tt.name, err, tt.retryable)
			}
		}
		if res, err := crm.WriteClicks(ctx, org, nil); err != nil || len(res) != 0 {
			t.Errorf("no clicks: %+v, %v", res, err)
		}
	})
}

// TestLookups: contacts of many numbers at once, by email, and the owner of
// the newest outgoing message record to a phone on a gateway.
func TestLookups(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		crm, org := newCRM(t, d)
		ctx := context.Background()
		a := &sb.CRMRecord{FirstName: "Ada", LastName: "Ng", Phone: "+12025550101", Email: "ada@example.org"}
		b := &sb.CRMRecord{FirstName: "Bo", LastName: "Li", Phone: "+12025550102"}
		b2 := &sb.CRMRecord{FirstName: "Bo", LastName: "Li (work)", Phone: "+12025550102"}
		if err := crm.DB.Tx(ctx, func(tx *store.Tx) error {
			for _, c := range []*sb.CRMRecord{a, b, b2} {
				if err := tx.SaveContact(ctx, org.ID, c); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		found, err := crm.FindByPhones(ctx, org, []string{"+12025550101", "+12025550102", "+12025550103"})
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != 2 || len(found["+12025550101"]) != 1 || found["+12025550101"][0].ID != a.ID ||
			len(found["+12025550102"]) != 2 || found["+12025550102"][0].ID != b.ID || found["+12025550102"][1].ID != b2.ID {
			t.Fatalf("by phones: %+v", found)
		}
		if recs, err := crm.FindByEmail(ctx, org, "ADA@example.org "); err != nil || len(recs) != 1 || recs[0].ID != a.ID {
			t.Fatalf("by email: %+v %v", recs, err)
		}

		const gw = "+12025550100"
		msg := func(id string, dir sb.Direction, owner, to string, at time.Time) sb.CRMMessage {
			return sb.CRMMessage{MessageID: id, Direction: dir, Status: sb.StatusDelivered, GatewayID: "g1", GatewayNumber: gw, Phone: to, OwnerID: owner, CreatedAt: at, StatusAt: at}
		}
		if _, err := crm.WriteMessages(ctx, org, []sb.CRMMessage{
			msg("m1", sb.Outgoing, "u-first", "+12025550101", at),
			msg("m2", sb.Outgoing, "u-second", "+12025550101", at.Add(time.Hour)),
			msg("m3", sb.Incoming, "u-third", "+12025550101", at.Add(2*time.Hour)),
			msg("m4", sb.Outgoing, "u-first", "+12025550102", at),
		}); err != nil {
			t.Fatal(err)
		}
		p1, p2, p3 := sb.PhoneOnGateway{GatewayNumber: gw, Phone: "+12025550101"}, sb.PhoneOnGateway{GatewayNumber: gw, Phone: "+12025550102"}, sb.PhoneOnGateway{GatewayNumber: "+12025550199", Phone: "+12025550101"}
		owners, err := crm.LastOutgoingOwners(ctx, org, []sb.PhoneOnGateway{p1, p2, p3})
		if err != nil || len(owners) != 2 || owners[p1] != "u-second" || owners[p2] != "u-first" {
			t.Fatalf("owners: %v %v", owners, err)
		}
	})
}
