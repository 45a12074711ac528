package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// Outcomes and reports of many messages, handed in at once from many
// goroutines, all land: on PostgreSQL they are committed by several lanes at
// once, each message's items in one lane and in the order they came.
func TestGroupCommitLanes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := open(t, d)
		f := seed(t, db)
		const n = 300
		var nms []store.NewMessage
		for i := range n {
			nms = append(nms, newMsg(f, db, fmt.Sprintf("+1202555%04d", i)))
		}
		tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, nms) })
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i, nm := range nms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// One goroutine per message: its send outcome, then its
				// delivery report, as a partner's answer and callback come.
				id := nm.Msg.ID
				if _, err := db.BatchMerge(ctx, "send", store.SendOutcome{MessageID: id, ProviderMessageID: fmt.Sprintf("P%04d", i), Status: sb.StatusSent}, store.RecordSendsMerged); err != nil {
					errs <- err
					return
				}
				if _, err := db.BatchMergeAll(ctx, "status", []any{store.StatusItem{GatewayID: f.gw.ID, Update: sb.StatusUpdate{MessageID: id, Status: sb.StatusDelivered}}}, store.ApplyStatusesMerged); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i, nm := range nms {
			m, err := db.Message(ctx, f.org.ID, nm.Msg.ID)
			if err != nil {
				t.Fatal(err)
			}
			if m.Status != sb.StatusDelivered || m.ProviderMessageID != fmt.Sprintf("P%04d", i) || m.SentAt == nil || m.DeliveredAt == nil {
				t.Fatalf("message %d: status %s, provider id %q, sent %v, delivered %v", i, m.Status, m.ProviderMessageID, m.SentAt, m.DeliveredAt)
			}
		}
	})
}

// A group commit that loses a deadlock against another transaction is run
// again: the caller gets no error, and the group's writes land.
func TestGroupCommitRetriesDeadlock(t *testing.T) {
	ctx := context.Background()
	url := storetest.URL(t, store.Postgres)
	db := storetest.OpenURL(t, url)
	if _, err := db.NewQueue(&river.Config{}); err != nil {
		t.Fatal(err)
	}
	f := seed(t, db)
	a, b := newMsg(f, db, "+12025550301"), newMsg(f, db, "+12025550302")
	tx(t, db, func(tx *store.Tx) error { return tx.InsertMessages(ctx, []store.NewMessage{a, b}) })

	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	watch, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	var otherPID int
	if err := other.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&otherPID); err != nil {
		t.Fatal(err)
	}
	otx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer otx.Rollback(ctx)
	// The other transaction holds b.
	if _, err := otx.Exec(ctx, `UPDATE messages SET send_progress = 'other' WHERE id = $1`, b.Msg.ID); err != nil {
		t.Fatal(err)
	}

	var runs atomic.Int32
	holdsA := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Batch(ctx, func(tx *store.Tx) error {
			if err := tx.SaveSendProgress(ctx, a.Msg.ID, "group"); err != nil {
				return err
			}
			if runs.Add(1) == 1 {
				close(holdsA)
			}
			return tx.SaveSendProgress(ctx, b.Msg.ID, "group") // waits for the other transaction
		})
	}()
	<-holdsA
	// Once the group waits for b, the other transaction reaches for a: each
	// waits for the other. The group waited first, so PostgreSQL's deadlock
	// check ends the group's transaction.
	for {
		var waiting bool
		if err := watch.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))`, otherPID).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
	}
	if _, err := otx.Exec(ctx, `UPDATE messages SET send_progress = 'other' WHERE id = $1`, a.Msg.ID); err != nil {
		t.Fatalf("the other transaction lost the deadlock instead: %v", err)
	}
	if err := otx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("group commit after a deadlock: %v", err)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("group ran %d times, want 2 (once more after the deadlock)", n)
	}
	for _, id := range []string{a.Msg.ID, b.Msg.ID} {
		var progress string
		if err := watch.QueryRow(ctx, `SELECT send_progress FROM messages WHERE id = $1`, id).Scan(&progress); err != nil {
			t.Fatal(err)
		}
		if progress != "group" {
			t.Errorf("message %s: progress %q, want the group's write", id, progress)
		}
	}
}
