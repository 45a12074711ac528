package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// open returns a fresh store with an insert-only job queue.
func open(t *testing.T, d store.Dialect) *store.DB {
	t.Helper()
	db := storetest.Open(t, d)
	if _, err := db.NewQueue(&river.Config{}); err != nil {
		t.Fatal(err)
	}
	return db
}

func tx(t *testing.T, db *store.DB, f func(tx *store.Tx) error) {
	t.Helper()
	if err := db.Tx(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	org  *sb.Org
	user *sb.User
	gw   *sb.Gateway
}

func seed(t *testing.T, db *store.DB) fixture {
	t.Helper()
	return seedOrg(t, db, "Acme College", "Admin@Example.org", "+12025550100")
}

// seedOrg creates an org with an admin user (email) and a simulated
// gateway (number).
func seedOrg(t *testing.T, db *store.DB, name, email, number string) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{org: &sb.Org{Name: name}}
	tx(t, db, func(tx *store.Tx) error {
		if err := tx.CreateOrg(ctx, f.org); err != nil {
			return err
		}
		f.user = &sb.User{OrgID: f.org.ID, Email: email, Name: "Ada", Permissions: []sb.Permission{sb.PermSystemAdmin}}
		if err := tx.CreateUser(ctx, f.user, ""); err != nil {
			return err
		}
		f.gw = &sb.Gateway{OrgID: f.org.ID, Provider: "sim", Number: number, Config: map[string]string{"secret": "s3cr3t-value-for-test"}, Active: true}
		if err := f.gw.Normalize("US"); err != nil {
			return err
		}
		return tx.CreateGateway(ctx, f.gw)
	})
	return f
}

func TestMigrationsInLockstep(t *testing.T) {
	lite, err := store.Migrations(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := store.Migrations(store.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) || len(lite) == 0 {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].Name != pg[i].Name {
			t.Errorf("migration %d: sqlite %s, postgres %s", i, lite[i].Name, pg[i].Name)
		}
	}
	// After migrating, both engines have the same tables and columns.
	if len(storetest.Dialects()) < 2 {
		t.Skip("PostgreSQL not configured; schema comparison skipped")
	}
	ctx := context.Background()
	schemas := map[store.Dialect]map[string][]string{}
	for _, d := range storetest.Dialects() {
		db := storetest.Open(t, d)
		s, err := db.SchemaColumns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		schemas[d] = s
	}
	a, b := schemas[store.SQLite], schemas[store.Postgres]
	for table, cols := range a {
		if !slices.Equal(cols, b[table]) {
			t.Errorf("table %s: sqlite columns %v, postgres %v", table, cols, b[table])
		}
	}
	for table := range b {
		if _, ok := a[table]; !ok {
			t.Errorf("table %s only in postgres", table)
		}
	}
}

func TestMigrateTwice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		db := storetest.Open(t, d)
		if err := db.Migrate(context.Background(), nil); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
	})
}

func TestOrgUserAPIKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		if f.user.Email != "admin@example.org" {
			t.Errorf("email not normalised: %s", f.user.Email)
		}
		// Duplicate email in the org is a conflict.
		err := db.Tx(ctx, func(tx *store.Tx) error {
			return tx.CreateUser(ctx, &sb.User{OrgID: f.org.ID, Email: "admin@example.org", Name: "Other"}, "")
		})
		if sb.ErrorCode(err) != sb.EConflict {
			t.Fatalf("duplicate user: %v", err)
		}
		var keyID, key string
		tx(t, db, func(tx *store.Tx) error {
			var err error
			keyID, key, err = tx.CreateAPIKey(ctx, f.org.ID, f.user.ID, "ci")
			return err
		})
		u, err := db.Authenticate(ctx, key)
		if err != nil || u.ID != f.user.ID || !u.IsAdmin() {
			t.Fatalf("authenticate: %v %+v", err, u)
		}
		for _, bad := range []string{"", "sb_", key + "x", key[:len(key)-1], "sb_0000000000000000_abc", "Bearer " + key} {
			if _, err := db.Authenticate(ctx, bad); sb.ErrorCode(err) != sb.EUnauthorized {
				t.Errorf("Authenticate(%q) = %v, want unauthorized", bad, err)
			}
		}
		tx(t, db, func(tx *store.Tx) error { return tx.RevokeAPIKey(ctx, f.org.ID, keyID) })
		if _, err := db.Authenticate(ctx, key); sb.ErrorCode(err) != sb.EUnauthorized {
			t.Fatalf("revoked key still works: %v", err)
		}
	})
}

func TestGatewayConfigSealed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		got, err := db.Gateway(ctx, f.org.ID, f.gw.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Config["secret"] != "s3cr3t-value-for-test" || got.Number != "+12025550100" || got.Rate != 0 {
			t.Fatalf("round trip: %+v", got)
		}
		if !slices.Equal(got.Keywords.OptOut, sb.DefaultKeywords("sim").OptOut) {
			t.Fatalf("keywords: %v", got.Keywords)
		}
		raw, err := db.RawScan(ctx, "gateways")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("s3cr3t-value-for-test")) {
			t.Fatal("gateway secret stored in clear")
		}
		if _, err := db.Gateway(ctx, "other-org", f.gw.ID); sb.ErrorCode(err) != sb.ENotFound {
			t.Fatalf("gateway visible to another org: %v", err)
		}
	})
}

func newMsg(f fixture, db *store.DB, phone string) store.NewMessage {
	now := db.Now().UTC()
	return store.NewMessage{
		Msg: &sb.Message{ID: store.NewID(), OrgID: f.org.ID, GatewayID: f.gw.ID, Direction: sb.Outgoing, Status: sb.StatusQueued,
			Segments: 1, OwnerID: f.user.ID, CreatedByID: f.user.ID, PhoneHash: db.Hasher().Phone(phone), CreatedAt: now, UpdatedAt: now},
		Content: &sb.Content{Phone: phone, Body: "Your appointment is at 10am"},
	}
}

func TestStatusForwardOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		nm := newMsg(f, db, "+12025550123")
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{nm}) })
		id := nm.Msg.ID
		tx(t, db, func(tx *store.Tx) error {
			_, _, err := tx.RecordSend(ctx, store.SendOutcome{MessageID: id, ProviderMessageID: "P1", Status: sb.StatusQueued})
			return err
		})
		steps := []struct {
			u       sb.StatusUpdate
			applied bool
			want    sb.Status
		}{
			{sb.StatusUpdate{MessageID: id, Status: sb.StatusSent}, true, sb.StatusSent},
			{sb.StatusUpdate{ProviderMessageID: "P1", Status: sb.StatusDelivered}, true, sb.StatusDelivered},
			{sb.StatusUpdate{MessageID: id, Status: sb.StatusSent}, false, sb.StatusDelivered},      // late "sent"
			{sb.StatusUpdate{MessageID: id, Status: sb.StatusDelivered}, false, sb.StatusDelivered}, // replay
			{sb.StatusUpdate{MessageID: id, Status: sb.StatusFailed}, false, sb.StatusDelivered},    // sideways
		}
		for i, s := range steps {
			var res store.StatusResult
			tx(t, db, func(tx *store.Tx) error {
				var err error
				res, err = tx.ApplyStatus(ctx, f.gw.ID, s.u)
				return err
			})
			m, err := db.Message(ctx, f.org.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			if res.Applied != s.applied || m.Status != s.want {
				t.Fatalf("step %d: applied %v status %s, want %v %s", i, res.Applied, m.Status, s.applied, s.want)
			}
		}
		m, _ := db.Message(ctx, f.org.ID, id)
		if m.SentAt == nil || m.DeliveredAt == nil {
			t.Fatalf("timestamps not kept: %+v", m)
		}
		// A status for a message of another gateway is not applied.
		err := db.Tx(ctx, func(tx *store.Tx) error {
			_, err := tx.ApplyStatus(ctx, "other-gateway", sb.StatusUpdate{MessageID: id, Status: sb.StatusFailed})
			return err
		})
		if sb.ErrorCode(err) != sb.ENotFound {
			t.Fatalf("cross-gateway status: %v", err)
		}
	})
}

func TestStatusBeforeSendRecorded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		nm := newMsg(f, db, "+12025550124")
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{nm}) })
		// The receipt races ahead of the submit answer: kept, then applied.
		tx(t, db, func(tx *store.Tx) error {
			res, err := tx.ApplyStatus(ctx, f.gw.ID, sb.StatusUpdate{ProviderMessageID: "EARLY", Status: sb.StatusDelivered})
			if res.Applied {
				return errors.New("applied to nothing")
			}
			return err
		})
		tx(t, db, func(tx *store.Tx) error {
			_, _, err := tx.RecordSend(ctx, store.SendOutcome{MessageID: nm.Msg.ID, ProviderMessageID: "EARLY", Status: sb.StatusQueued})
			return err
		})
		m, _ := db.Message(ctx, f.org.ID, nm.Msg.ID)
		if m.Status != sb.StatusDelivered {
			t.Fatalf("early receipt not applied: %s", m.Status)
		}
	})
}

func TestIncomingDeduplicated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		for i, wantNew := range []bool{true, false} {
			m := &sb.Message{ID: store.NewID(), OrgID: f.org.ID, GatewayID: f.gw.ID, ProviderMessageID: "IN-1", Segments: 1,
				PhoneHash: db.Hasher().Phone("+12025550125"), CreatedAt: db.Now()}
			tx(t, db, func(tx *store.Tx) error {
				isNew, err := tx.InsertIncoming(ctx, m, &sb.Content{Phone: "+12025550125", Body: "hi"})
				if isNew != wantNew {
					return fmt.Errorf("delivery %d: new=%v", i, isNew)
				}
				return err
			})
		}
		ms, err := db.Messages(ctx, f.org.ID, store.MessageFilter{Direction: sb.Incoming})
		if err != nil || len(ms) != 1 {
			t.Fatalf("%d incoming messages, err %v", len(ms), err)
		}
	})
}

func TestIdempotencyKeyConflict(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		a, b := newMsg(f, db, "+12025550123"), newMsg(f, db, "+12025550123")
		a.Msg.IdempotencyKey, b.Msg.IdempotencyKey = "k1", "k1"
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{a}) })
		err := db.Tx(ctx, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{b}) })
		if sb.ErrorCode(err) != sb.EConflict {
			t.Fatalf("second insert with the key: %v", err)
		}
	})
}

func TestSubscriptions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		h := db.Hasher().Phone("+12025550126")
		set := func(s sb.Subscription) (bool, error) {
			s.OrgID, s.GatewayID, s.PhoneHash = f.org.ID, f.gw.ID, h
			var applied bool
			err := db.Tx(ctx, func(tx *store.Tx) error {
				var err error
				applied, err = tx.SetSubscription(ctx, &s)
				return err
			})
			return applied, err
		}
		get := func() *sb.Subscription {
			t.Helper()
			s, err := db.Subscription(ctx, f.gw.ID, h)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		if ok, err := set(sb.Subscription{Status: sb.OptedOut, Detail: "Opt-out keyword: STOP", Via: sb.ViaKeyword, Locked: true}); !ok || err != nil {
			t.Fatalf("keyword opt-out: %v %v", ok, err)
		}
		// The lock stays: another opt-out is history only, an opt-in other
		// than by keyword is refused.
		if ok, err := set(sb.Subscription{Status: sb.OptedOut, Detail: "Manual opt-out by Bo", Via: sb.ViaManual}); ok || err != nil {
			t.Fatalf("manual opt-out over the lock: %v %v", ok, err)
		}
		if s := get(); !s.LockedOut() || s.Detail != "Opt-out keyword: STOP" {
			t.Fatalf("lock lost: %+v", s)
		}
		for _, via := range []string{sb.ViaManual, sb.ViaAutomation, sb.ViaIncoming} {
			if ok, err := set(sb.Subscription{Status: sb.OptedIn, Detail: "x", Via: via}); ok || sb.ErrorCode(err) != sb.EConflict || !strings.Contains(sb.ErrorMessage(err), "(Opt-out keyword: STOP); only an opt-in keyword") {
				t.Fatalf("%s opt-in over the lock: %v %v", via, ok, err)
			}
		}
		if ok, err := set(sb.Subscription{Status: sb.OptedIn, Detail: "Opt-in keyword: START", Via: sb.ViaKeyword}); !ok || err != nil {
			t.Fatalf("keyword opt-in: %v %v", ok, err)
		}
		if s := get(); s.Status != sb.OptedIn || s.Locked {
			t.Fatalf("subscription: %+v", s)
		}
		hist, err := db.SubscriptionHistory(ctx, f.org.ID, h)
		if err != nil || len(hist) != 3 || hist[0].Status != sb.OptedIn || hist[1].Detail != "Manual opt-out by Bo" || hist[2].Detail != "Opt-out keyword: STOP" {
			t.Fatalf("history: %+v %v", hist, err)
		}
		// Set-based lookup over many numbers.
		hashes := [][]byte{h}
		for i := range 2000 {
			hashes = append(hashes, db.Hasher().Phone(fmt.Sprintf("+1202555%04d", i)))
		}
		tx(t, db, func(tx *store.Tx) error {
			st, err := tx.SubscriptionStatuses(ctx, f.gw.ID, hashes)
			if err != nil {
				return err
			}
			if len(st) != 1 || st[string(h)] != sb.OptedIn {
				return fmt.Errorf("statuses: %v", st)
			}
			return nil
		})
	})
}

func TestCRMClaimLeaseAndRelease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		var ids []string
		var nms []store.NewMessage
		for i := range 5 {
			nm := newMsg(f, db, fmt.Sprintf("+120255501%02d", i))
			nms = append(nms, nm)
			ids = append(ids, nm.Msg.ID)
		}
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, nms) })
		first, err := db.ClaimCRM(ctx, f.org.ID, 3, time.Minute, time.Time{})
		if err != nil || len(first) != 3 || first[0].Content == nil {
			t.Fatalf("claim: %d %v", len(first), err)
		}
		second, err := db.ClaimCRM(ctx, f.org.ID, 10, time.Minute, time.Time{})
		if err != nil || len(second) != 2 {
			t.Fatalf("leased rows claimed twice: %d %v", len(second), err)
		}
		// A change after the claim keeps the message pending after finish.
		tx(t, db, func(tx *store.Tx) error {
			_, _, err := tx.RecordSend(ctx, store.SendOutcome{MessageID: first[0].Msg.ID, ProviderMessageID: "P", Status: sb.StatusQueued})
			return err
		})
		var outs []store.CRMOutcome
		for _, p := range append(first, second...) {
			outs = append(outs, store.CRMOutcome{MessageID: p.Msg.ID, Version: p.Version, CRMMessageID: "crm-" + p.Msg.ID})
		}
		tx(t, db, func(tx *store.Tx) error { return tx.FinishCRM(ctx, outs) })
		n, err := db.CRMPendingCount(ctx, f.org.ID)
		if err != nil || n != 1 {
			t.Fatalf("pending after finish: %d %v", n, err)
		}
		again, _ := db.ClaimCRM(ctx, f.org.ID, 10, time.Minute, time.Time{})
		if len(again) != 1 || again[0].Msg.ID != first[0].Msg.ID || again[0].Content != nil || again[0].Msg.CRMMessageID == "" {
			t.Fatalf("re-claim: %+v", again)
		}
		// Content of the sent + written message is gone; queued ones keep it.
		items, err := db.MessagesToSend(ctx, ids)
		if err != nil || len(items) != 4 {
			t.Fatalf("to send: %d %v", len(items), err)
		}
		if c, _ := db.CountRows(ctx, "message_contents"); c != 4 {
			t.Fatalf("contents left: %d, want 4", c)
		}
	})
}

// TestReportBeforeSendOutcome: a status report that overtakes its send's
// outcome records the provider's id with the status; the outcome then
// changes nothing, the message is not sent again, and a message already
// written to the CRM lets go of its sealed content once it is known sent.
func TestReportBeforeSendOutcome(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		a, b, c := newMsg(f, db, "+12025550101"), newMsg(f, db, "+12025550102"), newMsg(f, db, "+12025550103")
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{a, b, c}) })
		tx(t, db, func(tx *store.Tx) error {
			_, err := tx.ApplyStatuses(ctx, []store.StatusItem{{GatewayID: f.gw.ID, Update: sb.StatusUpdate{MessageID: a.Msg.ID, ProviderMessageID: "PA", Status: sb.StatusDelivered}}})
			return err
		})
		var recs []store.SendRecord
		tx(t, db, func(tx *store.Tx) error {
			var err error
			recs, err = tx.RecordSends(ctx, []store.SendOutcome{{MessageID: a.Msg.ID, ProviderMessageID: "PA-retry", Status: sb.StatusQueued}})
			return err
		})
		if recs[0].OrgID != "" {
			t.Fatalf("the outcome after the report updated the message: %+v", recs[0])
		}
		if m, _ := db.Message(ctx, f.org.ID, a.Msg.ID); m.Status != sb.StatusDelivered || m.ProviderMessageID != "PA" {
			t.Fatalf("message a: %s %q", m.Status, m.ProviderMessageID)
		}
		if items, err := db.MessagesToSend(ctx, []string{a.Msg.ID}); err != nil || len(items) != 0 {
			t.Fatalf("a message the partner reported on is to be sent again: %d %v", len(items), err)
		}

		// b and c are written to the CRM while Queued (the org was not
		// sending): their content stays until they are known sent.
		claimed, err := db.ClaimCRM(ctx, f.org.ID, 10, time.Minute, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var outs []store.CRMOutcome
		for _, p := range claimed {
			outs = append(outs, store.CRMOutcome{MessageID: p.Msg.ID, Version: p.Version, CRMMessageID: "crm-" + p.Msg.ID})
		}
		tx(t, db, func(tx *store.Tx) error { return tx.FinishCRM(ctx, outs) })
		contents := func() int {
			n, err := db.CountRows(ctx, "message_contents")
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := contents()
		tx(t, db, func(tx *store.Tx) error {
			_, err := tx.ApplyStatuses(ctx, []store.StatusItem{{GatewayID: f.gw.ID, Update: sb.StatusUpdate{MessageID: b.Msg.ID, ProviderMessageID: "PB", Status: sb.StatusSent}}})
			return err
		})
		if n := contents(); n != before-1 {
			t.Fatalf("contents after b's report: %d, want %d", n, before-1)
		}
		tx(t, db, func(tx *store.Tx) error {
			_, err := tx.ApplyStatus(ctx, f.gw.ID, sb.StatusUpdate{MessageID: c.Msg.ID, ProviderMessageID: "PC", Status: sb.StatusSent})
			return err
		})
		if n := contents(); n != before-2 {
			t.Fatalf("contents after c's report: %d, want %d", n, before-2)
		}
		if m, _ := db.Message(ctx, f.org.ID, c.Msg.ID); m.ProviderMessageID != "PC" || m.Status != sb.StatusSent {
			t.Fatalf("message c: %s %q", m.Status, m.ProviderMessageID)
		}
	})
}

// TestInFlight: an org has messages in flight while any outgoing one is
// Queued or Sent, and none once all have a final status.
func TestInFlight(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		if busy, err := db.InFlight(ctx, f.org.ID); busy || err != nil {
			t.Fatalf("no messages: in flight %v %v", busy, err)
		}
		a, b := newMsg(f, db, "+12025550101"), newMsg(f, db, "+12025550102")
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{a, b}) })
		steps := []func(tx *store.Tx) error{
			func(tx *store.Tx) error {
				_, _, err := tx.RecordSend(ctx, store.SendOutcome{MessageID: a.Msg.ID, ProviderMessageID: "P1", Status: sb.StatusSent})
				return err
			},
			func(tx *store.Tx) error {
				_, _, err := tx.RecordSend(ctx, store.SendOutcome{MessageID: b.Msg.ID, Status: sb.StatusFailed, Debug: "refused"})
				return err
			},
			func(tx *store.Tx) error {
				_, err := tx.ApplyStatus(ctx, f.gw.ID, sb.StatusUpdate{MessageID: a.Msg.ID, Status: sb.StatusDelivered})
				return err
			},
		}
		for i, step := range steps {
			if busy, err := db.InFlight(ctx, f.org.ID); !busy || err != nil {
				t.Fatalf("step %d: in flight %v %v, want true", i, busy, err)
			}
			tx(t, db, step)
		}
		if busy, err := db.InFlight(ctx, f.org.ID); busy || err != nil {
			t.Fatalf("all final: in flight %v %v", busy, err)
		}
	})
}

func TestGroupCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		var wg sync.WaitGroup
		errs := make([]error, 200)
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.Batch(ctx, func(tx *store.Tx) error {
					if i%50 == 7 {
						return sb.Errorf(sb.EInvalid, "item %d refused", i)
					}
					return tx.InsertMessages(ctx, []store.NewMessage{newMsg(f, db, fmt.Sprintf("+1202555%04d", i))})
				})
			}()
		}
		wg.Wait()
		failed := 0
		for i, err := range errs {
			if i%50 == 7 {
				if sb.ErrorCode(err) != sb.EInvalid {
					t.Errorf("item %d: %v, want its own error", i, err)
				}
				failed++
			} else if err != nil {
				t.Errorf("item %d: %v", i, err)
			}
		}
		if n, _ := db.CountRows(ctx, "messages"); n != 200-failed {
			t.Fatalf("%d messages stored, want %d", n, 200-failed)
		}
	})
}

func TestReserveSendSlots(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		db := storetest.Open(t, d, func(o *store.Options) { o.Now = func() time.Time { return now } })
		if _, err := db.NewQueue(&river.Config{}); err != nil {
			t.Fatal(err)
		}
		f := seed(t, db)
		var starts []int64
		for range 3 {
			s, err := db.ReserveSendSlots(ctx, f.gw.ID, 1, 500_000, 0)
			if err != nil {
				t.Fatal(err)
			}
			starts = append(starts, s)
		}
		base := now.UnixMicro()
		if starts[0] != base || starts[1] != base+500_000 || starts[2] != base+1_000_000 {
			t.Fatalf("slots %v not spaced 0.5 s from %d", starts, base)
		}
		// A lead pushes the first slot of an idle gateway ahead of the clock,
		// and leaves a busy gateway's next slot where it is.
		now = now.Add(2 * time.Second)
		s, err := db.ReserveSendSlots(ctx, f.gw.ID, 1, 500_000, 80_000)
		if err != nil || s != now.UnixMicro()+80_000 {
			t.Fatalf("idle gateway with a lead: slot %d (%v), want %d", s, err, now.UnixMicro()+80_000)
		}
		s, err = db.ReserveSendSlots(ctx, f.gw.ID, 1, 500_000, 80_000)
		if err != nil || s != now.UnixMicro()+580_000 {
			t.Fatalf("busy gateway with a lead: slot %d (%v), want %d", s, err, now.UnixMicro()+580_000)
		}
	})
}

func TestMergedStatusesAndSends(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		var nms []store.NewMessage
		for i := range 4 {
			nms = append(nms, newMsg(f, db, fmt.Sprintf("+120255502%02d", i)))
		}
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, nms) })
		a, b, c, dd := nms[0].Msg.ID, nms[1].Msg.ID, nms[2].Msg.ID, nms[3].Msg.ID
		// A receipt for d's provider id arrives before its send is recorded.
		tx(t, db, func(tx *store.Tx) error {
			_, err := tx.ApplyStatus(ctx, f.gw.ID, sb.StatusUpdate{ProviderMessageID: "PD", Status: sb.StatusDelivered})
			return err
		})
		// Concurrent send outcomes meet in merged steps.
		var wg sync.WaitGroup
		for i, id := range []string{a, b, c, dd} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := db.BatchMerge(ctx, "send", store.SendOutcome{MessageID: id, ProviderMessageID: []string{"PA", "PB", "PC", "PD"}[i], Status: sb.StatusQueued}, store.RecordSendsMerged)
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if m, _ := db.Message(ctx, f.org.ID, dd); m.Status != sb.StatusDelivered || m.ProviderMessageID != "PD" {
			t.Fatalf("early receipt: %s %q", m.Status, m.ProviderMessageID)
		}
		items := []store.StatusItem{
			{f.gw.ID, sb.StatusUpdate{MessageID: a, Status: sb.StatusSent}},
			{f.gw.ID, sb.StatusUpdate{MessageID: a, Status: sb.StatusDelivered}},
			{f.gw.ID, sb.StatusUpdate{MessageID: b, Status: sb.StatusFailed, ErrorCode: "30008", Debug: "Unknown error"}},
			{"other-gateway", sb.StatusUpdate{MessageID: c, Status: sb.StatusDelivered}},
			{f.gw.ID, sb.StatusUpdate{MessageID: dd, Status: sb.StatusSent}}, // late
		}
		var res []store.StatusResult
		tx(t, db, func(tx *store.Tx) error {
			var err error
			res, err = tx.ApplyStatuses(ctx, items)
			return err
		})
		want := []bool{true, true, true, false, false}
		for i, r := range res {
			if r.Applied != want[i] {
				t.Errorf("item %d applied %v", i, r.Applied)
			}
		}
		ma, _ := db.Message(ctx, f.org.ID, a)
		mb, _ := db.Message(ctx, f.org.ID, b)
		mc, _ := db.Message(ctx, f.org.ID, c)
		if ma.Status != sb.StatusDelivered || ma.SentAt == nil || ma.DeliveredAt == nil {
			t.Errorf("a: %+v", ma)
		}
		if mb.Status != sb.StatusFailed || mb.ErrorCode != "30008" || mb.FailedAt == nil {
			t.Errorf("b: %+v", mb)
		}
		if mc.Status != sb.StatusQueued {
			t.Errorf("c changed by another gateway's report: %s", mc.Status)
		}
	})
}

// gatherStore opens a store whose clock reads t0 until set moves it, with a
// job queue (for the write-back jobs changes insert) and the seed fixture.
func gatherStore(t *testing.T, d store.Dialect, t0 time.Time) (*store.DB, fixture, func(time.Time)) {
	t.Helper()
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	db := storetest.Open(t, d, func(o *store.Options) { o.Now = clock })
	if _, err := db.NewQueue(&river.Config{}); err != nil {
		t.Fatal(err)
	}
	return db, seed(t, db), set
}

// TestCRMGatherState: what the write-back decides on — settled changes
// (counted, the oldest), urgent ones (incoming messages to create),
// unsettled ones, outgoing messages in flight — and that urgent changes can
// be claimed before the rest.
func TestCRMGatherState(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		db, f, set := gatherStore(t, d, t0)
		out := newMsg(f, db, "+12025550101") // Queued at t0
		in := &sb.Message{ID: store.NewID(), OrgID: f.org.ID, GatewayID: f.gw.ID, Direction: sb.Incoming, Status: sb.StatusReceived, Segments: 1,
			ProviderMessageID: "in-1", PhoneHash: db.Hasher().Phone("+12025550102"), CreatedAt: t0.Add(2 * time.Second), UpdatedAt: t0.Add(2 * time.Second)}
		tx(t, db, func(tx *store.Tx) error {
			if err := tx.InsertMessages(ctx, []store.NewMessage{out}); err != nil {
				return err
			}
			_, err := tx.InsertIncoming(ctx, in, &sb.Content{Phone: "+12025550102", Body: "hi"})
			return err
		})
		state := func(at time.Time) store.CRMGather {
			t.Helper()
			set(at)
			g, err := db.CRMGatherState(ctx, f.org.ID, at.Add(-500*time.Millisecond), at.Add(-10*time.Second), 1000)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		// The queued message is in flight: its change waits for the next
		// status instead of counting as ready.
		if g := state(t0.Add(time.Second)); !g.Pending || g.Ready != 0 || !g.Oldest.IsZero() || !g.Waiting || g.Urgent || !g.Unsettled || !g.InFlight {
			t.Fatalf("at +1s: %+v", g)
		}
		if g := state(t0.Add(3 * time.Second)); g.Ready != 1 || !g.Oldest.Equal(in.UpdatedAt) || !g.Urgent || g.Unsettled || !g.InFlight || !g.Waiting {
			t.Fatalf("at +3s: %+v", g)
		}
		// Only the urgent change is claimed when the others may wait.
		got, err := db.ClaimCRMBefore(ctx, f.org.ID, store.CRMClaim{Limit: 10, Lease: time.Minute, UrgentBefore: t0.Add(2500 * time.Millisecond), OtherBefore: t0.Add(-time.Second)})
		if err != nil || len(got) != 1 || got[0].Msg.ID != in.ID || got[0].Content == nil {
			t.Fatalf("urgent claim: %+v %v", got, err)
		}
		if g := state(t0.Add(3 * time.Second)); g.Ready != 0 || g.Urgent || !g.Pending || !g.Waiting {
			t.Fatalf("after the urgent claim: %+v", g)
		}
		// A claim leaves the message in flight alone.
		if got, err := db.ClaimCRMBefore(ctx, f.org.ID, store.CRMClaim{Limit: 10, Lease: time.Minute, UrgentBefore: t0.Add(2500 * time.Millisecond), OtherBefore: t0.Add(2500 * time.Millisecond), ActiveAfter: t0.Add(-7 * time.Second)}); err != nil || len(got) != 0 {
			t.Fatalf("claim while in flight: %+v %v", got, err)
		}
		// Long after its last change the queued message is no longer in
		// flight: it is ready, and claimed.
		if g := state(t0.Add(20 * time.Second)); g.InFlight || g.Waiting || g.Ready != 1 || !g.Oldest.Equal(out.Msg.UpdatedAt) {
			t.Fatalf("at +20s: %+v", g)
		}
		if got, err := db.ClaimCRMBefore(ctx, f.org.ID, store.CRMClaim{Limit: 10, Lease: time.Minute, UrgentBefore: t0.Add(19 * time.Second), OtherBefore: t0.Add(19 * time.Second), ActiveAfter: t0.Add(10 * time.Second)}); err != nil || len(got) != 1 || got[0].Msg.ID != out.Msg.ID {
			t.Fatalf("claim after the window: %+v %v", got, err)
		}
		// A cap bounds the count.
		set(t0.Add(time.Hour))
		if g, err := db.CRMGatherState(ctx, f.org.ID, t0.Add(time.Hour), t0, 0); err != nil || g.Ready != 0 || !g.Pending {
			t.Fatalf("cap 0: %+v %v", g, err)
		}
	})
}

// TestCRMGatherHoldsQueued: while an org is sending (a message became Sent
// within the window, or moved on from Queued to a later status without a
// Sent report, as with carriers that report only the final status), its
// Queued messages wait to be sent instead of being written once as Queued
// and again when sent; once nothing is being sent they are ready like any
// change.
func TestCRMGatherHoldsQueued(t *testing.T) {
	type moveFn = func(ctx context.Context, tx *store.Tx, gw, id string) error
	progress := map[string]moveFn{
		"sent": func(ctx context.Context, tx *store.Tx, _, id string) error {
			_, _, err := tx.RecordSend(ctx, store.SendOutcome{MessageID: id, ProviderMessageID: "p-1", Status: sb.StatusSent})
			return err
		},
		"delivered without a sent report": func(ctx context.Context, tx *store.Tx, gw, id string) error {
			if _, _, err := tx.RecordSend(ctx, store.SendOutcome{MessageID: id, ProviderMessageID: "p-1", Status: sb.StatusQueued}); err != nil {
				return err
			}
			rs, err := tx.ApplyStatuses(ctx, []store.StatusItem{{GatewayID: gw, Update: sb.StatusUpdate{MessageID: id, Status: sb.StatusDelivered}}})
			if err == nil && (len(rs) != 1 || !rs[0].Applied) {
				err = fmt.Errorf("delivered report not applied: %+v", rs)
			}
			return err
		},
	}
	for name, move := range progress {
		t.Run(name, func(t *testing.T) { testCRMGatherHoldsQueued(t, move, name != "sent") })
	}
}

// testCRMGatherHoldsQueued: move takes the second message on; final says
// whether the status it reaches is final (ready at once) or Sent (in flight
// itself).
func testCRMGatherHoldsQueued(t *testing.T, move func(ctx context.Context, tx *store.Tx, gw, id string) error, final bool) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		db, f, set := gatherStore(t, d, t0)
		queued, sent := newMsg(f, db, "+12025550101"), newMsg(f, db, "+12025550102")
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{queued, sent}) })
		// A minute later the second message is sent: the org is sending.
		set(t0.Add(time.Minute))
		tx(t, db, func(tx *store.Tx) error { return move(ctx, tx, f.gw.ID, sent.Msg.ID) })
		at := t0.Add(time.Minute + 2*time.Second)
		set(at)
		settled, active := at.Add(-500*time.Millisecond), at.Add(-10*time.Second)
		g, err := db.CRMGatherState(ctx, f.org.ID, settled, active, 1000)
		// A Sent message is in flight itself (its next status is to come);
		// a Delivered one is final and ready.
		ready := 0
		if final {
			ready = 1
		}
		if err != nil || !g.Sending || g.Ready != ready || g.InFlight == final || !g.Waiting || !g.Pending {
			t.Fatalf("while sending: %+v %v", g, err)
		}
		claim := store.CRMClaim{Limit: 10, Lease: time.Minute, UrgentBefore: settled, OtherBefore: settled, ActiveAfter: active, HoldQueued: g.Sending}
		if got, err := db.ClaimCRMBefore(ctx, f.org.ID, claim); err != nil || len(got) != g.Ready || (len(got) == 1 && got[0].Msg.ID != sent.Msg.ID) {
			t.Fatalf("claim while sending: %d %v", len(got), err)
		}
		// The window passes with no other send: the Queued message is
		// ready, the oldest, and so is the Sent one (a final one was
		// claimed above and is still held by that claim).
		at = t0.Add(2 * time.Minute)
		set(at)
		settled, active = at.Add(-500*time.Millisecond), at.Add(-10*time.Second)
		g, err = db.CRMGatherState(ctx, f.org.ID, settled, active, 1000)
		if err != nil || g.Sending || g.Ready != 2-ready || g.Waiting || g.InFlight || !g.Oldest.Equal(queued.Msg.UpdatedAt) {
			t.Fatalf("after the window: %+v %v", g, err)
		}
		claim = store.CRMClaim{Limit: 10, Lease: time.Minute, UrgentBefore: settled, OtherBefore: settled, ActiveAfter: active, HoldQueued: g.Sending}
		got, err := db.ClaimCRMBefore(ctx, f.org.ID, claim)
		if err != nil || len(got) != 2-ready || !slices.ContainsFunc(got, func(p store.CRMPending) bool { return p.Msg.ID == queued.Msg.ID }) {
			t.Fatalf("claim after the window: %d %v", len(got), err)
		}
	})
}

// TestOrgsWithCRMPending: the sweep finds every org with a change no
// writer holds, and no org whose changes are all held or written.
func TestOrgsWithCRMPending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		var orgs []fixture
		for i, name := range []string{"Held", "Open one", "Written", "Open two"} {
			f := seedOrg(t, db, name, fmt.Sprintf("admin%d@example.org", i), fmt.Sprintf("+1202555020%d", i))
			msgs := []store.NewMessage{newMsg(f, db, "+12025550101"), newMsg(f, db, "+12025550102")}
			tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, msgs) })
			orgs = append(orgs, f)
		}
		// The first org's changes are all held by a writer; the third's are
		// written.
		if got, err := db.ClaimCRM(ctx, orgs[0].org.ID, 10, time.Hour, time.Time{}); err != nil || len(got) != 2 {
			t.Fatalf("claim: %d %v", len(got), err)
		}
		got, err := db.ClaimCRM(ctx, orgs[2].org.ID, 10, time.Hour, time.Time{})
		if err != nil || len(got) != 2 {
			t.Fatalf("claim: %d %v", len(got), err)
		}
		var outs []store.CRMOutcome
		for _, p := range got {
			outs = append(outs, store.CRMOutcome{MessageID: p.Msg.ID, Version: p.Version, CRMMessageID: "crm-" + p.Msg.ID})
		}
		tx(t, db, func(tx *store.Tx) error { return tx.FinishCRM(ctx, outs) })
		pending, err := db.OrgsWithCRMPending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(pending)
		want := []string{orgs[1].org.ID, orgs[3].org.ID}
		slices.Sort(want)
		if !slices.Equal(pending, want) {
			t.Fatalf("orgs with pending changes = %v, want %v", pending, want)
		}
	})
}

// TestWriteCRMPending: the write-back of a CRM in Switchboard's own database
// reads the changes, then takes, writes and finishes them in one
// transaction — a failed write changes nothing (the changes stay pending,
// with no lease), a good one finishes those still unchanged since they were
// read (a change made meanwhile stays pending, to be read again), on
// PostgreSQL the rows it holds are skipped by other writers meanwhile, and
// writing the same read again writes nothing.
func TestWriteCRMPending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		nms := []store.NewMessage{newMsg(f, db, "+12025550101"), newMsg(f, db, "+12025550102"), newMsg(f, db, "+12025550103")}
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, nms) })
		all := store.CRMClaim{Limit: 10}
		pend, err := db.PendingCRM(ctx, f.org.ID, all)
		if err != nil || len(pend) != 3 || pend[0].Content == nil || pend[0].Content.Body == "" {
			t.Fatalf("pending: %d %v", len(pend), err)
		}
		boom := errors.New("the CRM's table is gone")
		n, err := db.WriteCRMPending(ctx, pend, func(tx *store.Tx, held []store.CRMPending) ([]store.CRMOutcome, error) {
			if len(held) != 3 {
				t.Errorf("held: %d", len(held))
			}
			return nil, boom
		})
		if !errors.Is(err, boom) || n != 0 {
			t.Fatalf("failed write: %d %v", n, err)
		}
		if ok, err := db.CRMClaimable(ctx, f.org.ID); !ok || err != nil {
			t.Fatalf("after a failed write the changes are not claimable: %v %v", ok, err)
		}
		// The third message changes after the read.
		changed := nms[2].Msg.ID
		tx(t, db, func(tx *store.Tx) error {
			_, err := tx.FailQueued(ctx, []string{changed}, sb.StatusFailed, "30003", "unreachable")
			return err
		})
		n, err = db.WriteCRMPending(ctx, pend, func(tx *store.Tx, held []store.CRMPending) ([]store.CRMOutcome, error) {
			if d == store.Postgres {
				// Another writer meanwhile finds only the change not held.
				other, err := db.ClaimCRM(ctx, f.org.ID, 10, time.Minute, time.Time{})
				if err != nil || len(other) != 1 || other[0].Msg.ID != changed {
					t.Errorf("another writer claimed %d %v", len(other), err)
				}
			}
			msgs := make([]sb.CRMMessage, len(held))
			for i, p := range held {
				if p.Msg.ID == changed {
					t.Errorf("a change made after the read is written with the read's state")
				}
				msgs[i] = sb.CRMMessage{MessageID: p.Msg.ID, Direction: p.Msg.Direction, Status: p.Msg.Status, GatewayID: p.Msg.GatewayID,
					Phone: p.Content.Phone, Body: p.Content.Body, CreatedAt: p.Msg.CreatedAt, StatusAt: p.Msg.UpdatedAt}
			}
			ids, err := tx.WriteCRMMessages(ctx, f.org.ID, msgs)
			if err != nil {
				return nil, err
			}
			outs := make([]store.CRMOutcome, len(held))
			for i, p := range held {
				outs[i] = store.CRMOutcome{MessageID: p.Msg.ID, Version: p.Version, CRMMessageID: ids[i]}
			}
			return outs, nil
		})
		if err != nil || n != 2 {
			t.Fatalf("write: %d %v", n, err)
		}
		if left, err := db.CRMPendingCount(ctx, f.org.ID); err != nil || left != 1 {
			t.Fatalf("pending after the write: %d %v, want the changed message", left, err)
		}
		for _, nm := range nms[:2] {
			m, err := db.Message(ctx, f.org.ID, nm.Msg.ID)
			if err != nil || m.CRMMessageID == "" {
				t.Fatalf("message %s has no CRM record: %+v %v", nm.Msg.ID, m, err)
			}
		}
		if n, err := db.WriteCRMPending(ctx, pend, func(*store.Tx, []store.CRMPending) ([]store.CRMOutcome, error) {
			t.Error("write called again with the same read")
			return nil, nil
		}); err != nil || n != 0 {
			t.Fatalf("the same read again: %d %v", n, err)
		}
	})
}
