package store_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

type noteArgs struct {
	Note string `json:"note"`
}

func (noteArgs) Kind() string { return "note" }

type noteWorker struct {
	river.WorkerDefaults[noteArgs]
}

func (noteWorker) Work(context.Context, *river.Job[noteArgs]) error { return nil }

type writebackWorker struct {
	river.WorkerDefaults[store.CRMWritebackArgs]
}

func (writebackWorker) Work(context.Context, *river.Job[store.CRMWritebackArgs]) error { return nil }

// TestRetention: with a controllable clock, cached provider reports and
// leftover contents go after 7 days, not before; finished jobs' payloads are
// scrubbed at once.
func TestRetention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		var mu sync.Mutex
		now := time.Now()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		db := storetest.Open(t, d, func(o *store.Options) { o.Now = clock })
		workers := river.NewWorkers()
		river.AddWorker(workers, noteWorker{})
		river.AddWorker(workers, writebackWorker{})
		q, err := db.NewQueue(&river.Config{Workers: workers, Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}, store.QueueCRM: {MaxWorkers: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		events, cancel := q.Subscribe(river.EventKindJobCompleted)
		defer cancel()
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Stop(context.Background()) })
		f := seed(t, db)

		nm := newMsg(f, db, "+12025550301")
		tx(t, db, func(tx *store.Tx) error {
			if err := tx.InsertMessages(ctx, []store.NewMessage{nm}); err != nil {
				return err
			}
			// Sent, but never written to the CRM (it keeps its content).
			if _, _, err := tx.RecordSend(ctx, store.SendOutcome{MessageID: nm.Msg.ID, ProviderMessageID: "P1", Status: sb.StatusQueued}); err != nil {
				return err
			}
			_, err := tx.ApplyStatus(ctx, f.gw.ID, sb.StatusUpdate{ProviderMessageID: "NEVER-SENT-BY-US", Status: sb.StatusDelivered})
			tx.AddJob(noteArgs{Note: "secret-ish payload"}, nil)
			return err
		})
		// Wait for the job to finish (and the writeback insert too).
		for done := false; !done; {
			select {
			case ev := <-events:
				done = ev.Job.Kind == "note"
			case <-time.After(30 * time.Second):
				t.Fatal("job did not complete")
			}
		}
		counts := func() (unmatched, contents int) {
			unmatched, _ = db.CountRows(ctx, "unmatched_statuses")
			contents, _ = db.CountRows(ctx, "message_contents")
			return
		}
		if raw, err := db.RawScan(ctx, "river_job"); err != nil || !bytes.Contains(raw, []byte("secret-ish payload")) {
			t.Fatalf("the finished job's payload should be there before the purge (err %v)", err)
		}
		// Scrub a moment later than the job finished.
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
		if _, err := db.Purge(ctx, clock().Add(-7*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if u, c := counts(); u != 1 || c != 1 {
			t.Fatalf("purged too early: %d reports, %d contents", u, c)
		}
		raw, err := db.RawScan(ctx, "river_job")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("secret-ish payload")) {
			t.Fatal("finished job's payload not scrubbed")
		}
		mu.Lock()
		now = now.Add(8 * 24 * time.Hour)
		mu.Unlock()
		if _, err := db.Purge(ctx, clock().Add(-7*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if u, c := counts(); u != 0 || c != 0 {
			t.Fatalf("after 8 days: %d reports, %d contents left", u, c)
		}
	})
}
