package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

func TestSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		db := open(t, d)
		f := seed(t, db)
		ctx := context.Background()
		t0 := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
		s := &store.Session{TokenHash: []byte("hash-of-token-one"), OrgID: f.org.ID, UserID: f.user.ID, CSRFToken: "csrf", CreatedAt: t0, LastSeenAt: t0}
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, err := db.Session(ctx, s.TokenHash)
		if err != nil || got.UserID != f.user.ID || got.CSRFToken != "csrf" || !got.CreatedAt.Equal(t0) || !got.LastSeenAt.Equal(t0) {
			t.Fatalf("session: %+v %v", got, err)
		}
		// Touching moves the last use forward only.
		if err := db.TouchSession(ctx, s.TokenHash, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := db.TouchSession(ctx, s.TokenHash, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Session(ctx, s.TokenHash); !got.LastSeenAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("last seen %v", got.LastSeenAt)
		}
		old := &store.Session{TokenHash: []byte("hash-of-token-two"), OrgID: f.org.ID, UserID: f.user.ID, CSRFToken: "x", CreatedAt: t0.Add(-24 * time.Hour), LastSeenAt: t0}
		if err := db.CreateSession(ctx, old); err != nil {
			t.Fatal(err)
		}
		n, err := db.DeleteExpiredSessions(ctx, t0.Add(-2*time.Hour), t0.Add(-12*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("expired sessions deleted: %d %v", n, err)
		}
		if _, err := db.Session(ctx, old.TokenHash); !sb.IsCode(err, sb.ENotFound) {
			t.Fatalf("too-old session still there: %v", err)
		}
		if err := db.DeleteSession(ctx, s.TokenHash); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Session(ctx, s.TokenHash); !sb.IsCode(err, sb.ENotFound) {
			t.Fatalf("deleted session: %v", err)
		}
	})
}

func TestLoginFailures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		db := open(t, d)
		ctx := context.Background()
		t0 := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
		a, b := []byte("key-a"), []byte("key-b")
		for i := range 3 {
			at := t0.Add(time.Duration(i) * time.Minute)
			if err := db.RecordLoginFailure(ctx, [][]byte{a, b}, at, at.Add(-15*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			since  time.Time
			n      int
			oldest time.Time
		}{
			{t0.Add(-time.Hour), 3, t0},
			{t0, 2, t0.Add(time.Minute)},
			{t0.Add(time.Minute), 1, t0.Add(2 * time.Minute)},
			{t0.Add(time.Hour), 0, time.Time{}},
		} {
			n, oldest, err := db.LoginFailures(ctx, a, tc.since)
			if err != nil || n != tc.n || !oldest.Equal(tc.oldest) {
				t.Errorf("since %v: %d %v %v, want %d %v", tc.since, n, oldest, err, tc.n, tc.oldest)
			}
		}
		if err := db.ClearLoginFailures(ctx, a); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := db.LoginFailures(ctx, a, time.Time{}); n != 0 {
			t.Fatalf("cleared key still has %d failures", n)
		}
		if n, _, _ := db.LoginFailures(ctx, b, time.Time{}); n != 3 {
			t.Fatalf("other key has %d failures, want 3", n)
		}
		// Old failures are dropped when new ones are recorded.
		late := t0.Add(time.Hour)
		if err := db.RecordLoginFailure(ctx, [][]byte{a}, late, late.Add(-15*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := db.LoginFailures(ctx, b, time.Time{}); n != 0 {
			t.Fatalf("failures past the window kept: %d", n)
		}
	})
}

func TestInboxAndMarkRead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		db := open(t, d)
		f := seed(t, db)
		ctx := context.Background()
		now := time.Now().UTC()
		var ids []string
		for i, body := range []string{"first", "second"} {
			m := &sb.Message{ID: store.NewID(), OrgID: f.org.ID, GatewayID: f.gw.ID, Direction: sb.Incoming, Status: sb.StatusReceived,
				Segments: 1, ProviderMessageID: "in-" + body, PhoneHash: db.Hasher().Phone("+12025550123"), CreatedAt: now.Add(time.Duration(i) * time.Second), UpdatedAt: now}
			tx(t, db, func(tx *store.Tx) error {
				_, err := tx.InsertIncoming(ctx, m, &sb.Content{Phone: "+12025550123", Body: body})
				return err
			})
			ids = append(ids, m.ID)
		}
		// The first one's CRM record is written: its text shows.
		tx(t, db, func(tx *store.Tx) error {
			_, err := tx.WriteCRMMessages(ctx, f.org.ID, []sb.CRMMessage{{MessageID: ids[0], Direction: sb.Incoming, Status: sb.StatusReceived,
				GatewayID: f.gw.ID, Phone: "+12025550123", Body: "first", RecordID: "003X", CreatedAt: now, StatusAt: now}})
			return err
		})
		items, total, err := db.Inbox(ctx, f.org.ID, nil, 10)
		if err != nil || total != 2 || len(items) != 2 {
			t.Fatalf("inbox: %d items, total %d, %v", len(items), total, err)
		}
		if items[0].MessageID != ids[1] || items[0].Body != "" || items[1].Body != "first" || items[1].Phone != "+12025550123" || items[1].RecordID != "003X" {
			t.Fatalf("inbox items: %+v", items)
		}
		tx(t, db, func(tx *store.Tx) error { _, err := tx.MarkRead(ctx, f.org.ID, nil, ids[:1]); return err })
		items, total, err = db.Inbox(ctx, f.org.ID, nil, 10)
		if err != nil || total != 1 || len(items) != 1 || items[0].MessageID != ids[1] {
			t.Fatalf("after mark read: %+v %d %v", items, total, err)
		}
	})
}

func TestDashboardAggregates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		t0 := time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC)
		now := t0
		db := storetest.Open(t, d, func(o *store.Options) { o.Now = func() time.Time { return now } })
		if _, err := db.NewQueue(&river.Config{}); err != nil {
			t.Fatal(err)
		}
		f := seed(t, db)
		ctx := context.Background()
		add := func(at time.Time, dir sb.Direction, st sb.Status) {
			m := &sb.Message{ID: store.NewID(), OrgID: f.org.ID, GatewayID: f.gw.ID, Direction: dir, Status: st, Segments: 1,
				PhoneHash: db.Hasher().Phone("+12025550123"), CreatedAt: at, UpdatedAt: at}
			tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{{Msg: m}}) })
		}
		add(t0.Add(10*time.Minute), sb.Outgoing, sb.StatusDelivered)
		add(t0.Add(20*time.Minute), sb.Outgoing, sb.StatusDelivered)
		add(t0.Add(30*time.Minute), sb.Outgoing, sb.StatusFailed)
		add(t0.Add(90*time.Minute), sb.Outgoing, sb.StatusDelivered)
		add(t0.Add(90*time.Minute), sb.Incoming, sb.StatusReceived)
		add(t0.Add(-time.Minute), sb.Outgoing, sb.StatusDelivered) // before the range
		add(t0.Add(3*time.Hour), sb.Outgoing, sb.StatusDelivered)  // after it
		got, err := db.MessageCounts(ctx, f.org.ID, t0, t0.Add(2*time.Hour), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.StatusCount{
			{f.gw.ID, 0, sb.Outgoing, sb.StatusDelivered, 2},
			{f.gw.ID, 0, sb.Outgoing, sb.StatusFailed, 1},
			{f.gw.ID, 1, sb.Incoming, sb.StatusReceived, 1},
			{f.gw.ID, 1, sb.Outgoing, sb.StatusDelivered, 1},
		}
		if len(got) != len(want) {
			t.Fatalf("counts: %+v", got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("count %d: %+v, want %+v", i, got[i], want[i])
			}
		}
		if _, err := db.MessageCounts(ctx, f.org.ID, t0, t0.Add(time.Hour), 0); !sb.IsCode(err, sb.EInvalid) {
			t.Fatalf("zero bucket: %v", err)
		}

		now = t0.Add(15 * time.Minute)
		for _, s := range []*sb.Subscription{
			{OrgID: f.org.ID, GatewayID: f.gw.ID, PhoneHash: db.Hasher().Phone("+12025550123"), Status: sb.OptedOut, Detail: "Opt-out keyword: STOP", Via: sb.ViaKeyword},
			{OrgID: f.org.ID, GatewayID: f.gw.ID, PhoneHash: db.Hasher().Phone("+12025550124"), Status: sb.OptedOut, Detail: "Manual opt-out by Ada", Via: sb.ViaManual},
			{OrgID: f.org.ID, GatewayID: f.gw.ID, PhoneHash: db.Hasher().Phone("+12025550125"), Status: sb.OptedIn, Detail: "Opt-in keyword: START", Via: sb.ViaKeyword},
		} {
			tx(t, db, func(tx *store.Tx) error { _, err := tx.SetSubscription(ctx, s); return err })
		}
		opts, err := db.OptOutCounts(ctx, f.org.ID, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(opts) != 2 || opts[0] != (store.OptOutCount{f.gw.ID, sb.ViaKeyword, 1}) || opts[1] != (store.OptOutCount{f.gw.ID, sb.ViaManual, 1}) {
			t.Fatalf("opt-outs: %+v", opts)
		}
		if opts, _ := db.OptOutCounts(ctx, f.org.ID, t0.Add(time.Hour), t0.Add(2*time.Hour)); len(opts) != 0 {
			t.Fatalf("opt-outs outside the range: %+v", opts)
		}
	})
}

func TestStoredSubscriptionStatuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		db := open(t, d)
		f := seed(t, db)
		ctx := context.Background()
		h := db.Hasher()
		tx(t, db, func(tx *store.Tx) error {
			_, err := tx.SetSubscription(ctx, &sb.Subscription{OrgID: f.org.ID, GatewayID: f.gw.ID, PhoneHash: h.Phone("+12025550123"), Status: sb.OptedOut, Detail: "x", Via: sb.ViaKeyword})
			return err
		})
		hashes := [][]byte{h.Phone("+12025550123"), h.Phone("+12025550124")}
		for i := range 1000 { // more than one chunk
			hashes = append(hashes, h.Phone(fmt.Sprintf("+1303555%04d", i)))
		}
		got, err := db.StoredSubscriptionStatuses(ctx, f.gw.ID, hashes)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[string(hashes[0])] != sb.OptedOut {
			t.Fatalf("statuses: %v", got)
		}
	})
}
