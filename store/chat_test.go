package store_test

import (
	"context"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// TestChatExportGuard checks that an export outcome is recorded only for
// the conversation's current round while it is being exported, so a stale
// or repeated job can never mark a conversation twice.
func TestChatExportGuard(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		c := &store.ChatConversation{OrgID: f.org.ID}
		tx(t, db, func(tx *store.Tx) error {
			if err := tx.CreateChatConversation(ctx, c, map[string]string{"email": "ada@example.org"}, nil); err != nil {
				return err
			}
			return tx.AddChatMessage(ctx, f.org.ID, c.ID, &store.ChatMessage{Speaker: "visitor", Name: "Ada", Text: "hello", At: time.Now()}, 10)
		})
		finish := func(round int, status string) bool {
			t.Helper()
			var ok bool
			tx(t, db, func(tx *store.Tx) error {
				var err error
				ok, err = tx.FinishChatExport(ctx, store.ChatExportOutcome{OrgID: f.org.ID, ConversationID: c.ID, Round: round, Status: status, Attempted: true, PurgeAfter: time.Now()})
				return err
			})
			return ok
		}
		if finish(1, store.ChatExported) {
			t.Fatal("an open conversation was marked exported")
		}
		var round int
		var closed bool
		tx(t, db, func(tx *store.Tx) error {
			var err error
			round, closed, err = tx.CloseChatConversation(ctx, f.org.ID, c.ID, f.user.ID)
			return err
		})
		if round != 1 || !closed {
			t.Fatalf("close: round %d closed %v", round, closed)
		}
		tx(t, db, func(tx *store.Tx) error {
			r, again, err := tx.CloseChatConversation(ctx, f.org.ID, c.ID, f.user.ID)
			if r != 1 || again || err != nil {
				t.Errorf("second close: round %d closed %v err %v", r, again, err)
			}
			return nil
		})
		if finish(2, store.ChatExported) {
			t.Error("a job of another round was recorded")
		}
		if !finish(1, store.ChatRetrying) || !finish(1, store.ChatExported) {
			t.Fatal("the current round's outcomes were not recorded")
		}
		if finish(1, store.ChatExported) || finish(1, store.ChatFailed) {
			t.Error("an exported conversation was marked again")
		}
		e, err := db.ChatExportRound(ctx, f.org.ID, c.ID, 1)
		if err != nil || e.Status != store.ChatExported || e.Attempts != 2 || e.FinishedAt == nil {
			t.Errorf("log entry %+v %v", e, err)
		}
		err = db.Tx(ctx, func(tx *store.Tx) error { _, err := tx.ReexportChat(ctx, f.org.ID, c.ID, f.user.ID); return err })
		if !sb.IsCode(err, sb.EConflict) {
			t.Errorf("re-export of an exported conversation: %v", err)
		}
		// Messages are stored sealed and come back opened.
		_, msgs, err := db.ChatContent(ctx, f.org.ID, c.ID)
		if err != nil || len(msgs) != 1 || msgs[0].Name != "Ada" || msgs[0].Text != "hello" {
			t.Errorf("content %+v %v", msgs, err)
		}
		if n, err := db.PurgeChatContent(ctx, time.Now().Add(time.Second)); n != 1 || err != nil {
			t.Errorf("purge: %d %v", n, err)
		}
		fields, msgs, err := db.ChatContent(ctx, f.org.ID, c.ID)
		if err != nil || len(msgs) != 0 || len(fields) != 0 {
			t.Errorf("content after purge: %v %v %v", fields, msgs, err)
		}
	})
}
