package store

import (
	"context"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
)

// Queue is the durable job queue (River) on the store's database: the same
// workers, job args, unique keys and periodic jobs on SQLite and PostgreSQL.
type Queue struct {
	insertTx func(ctx context.Context, tx *Tx, params []river.InsertManyParams) error
	insert   func(ctx context.Context, params []river.InsertManyParams) error
	start    func(ctx context.Context) error
	stop     func(ctx context.Context) error
	cancel   func(ctx context.Context) error
	// Subscribe exposes River's event stream (tests, metrics).
	Subscribe func(kinds ...river.EventKind) (<-chan *river.Event, func())

	stopOnce sync.Once
	stopping chan struct{}
}

// NewQueue creates the queue client for this store with the given River
// configuration (workers, queues, periodic jobs). Jobs added to transactions
// are inserted through it.
func (db *DB) NewQueue(cfg *river.Config) (*Queue, error) {
	q := &Queue{stopping: make(chan struct{})}
	if db.dialect == Postgres {
		c, err := river.NewClient(riverpgxv5.New(db.pool), cfg)
		if err != nil {
			return nil, err
		}
		q.insertTx = func(ctx context.Context, tx *Tx, p []river.InsertManyParams) error {
			_, err := c.InsertManyTx(ctx, tx.pg, p)
			return err
		}
		q.insert = func(ctx context.Context, p []river.InsertManyParams) error {
			_, err := c.InsertMany(ctx, p)
			return err
		}
		q.start, q.stop, q.cancel, q.Subscribe = c.Start, c.Stop, c.StopAndCancel, c.Subscribe
	} else {
		if cfg.FetchPollInterval == 0 {
			// SQLite has no LISTEN/NOTIFY: poll often so work starts quickly.
			cfg.FetchPollInterval = 50 * time.Millisecond
			cfg.FetchCooldown = 10 * time.Millisecond
		}
		c, err := river.NewClient(riversqlite.New(db.sqlW), cfg)
		if err != nil {
			return nil, err
		}
		q.insertTx = func(ctx context.Context, tx *Tx, p []river.InsertManyParams) error {
			_, err := c.InsertManyTx(ctx, tx.sq, p)
			return err
		}
		q.insert = func(ctx context.Context, p []river.InsertManyParams) error {
			_, err := c.InsertMany(ctx, p)
			return err
		}
		q.start, q.stop, q.cancel, q.Subscribe = c.Start, c.Stop, c.StopAndCancel, c.Subscribe
	}
	db.queue = q
	return q, nil
}

// Start starts working jobs (when the config has workers). Cancelling ctx
// is a hard stop (running jobs' contexts are cancelled, as StopAndCancel
// does); pass a context that outlives the process's work and call Stop for a
// graceful one.
func (q *Queue) Start(ctx context.Context) error { return q.start(ctx) }

// Stop stops fetching new jobs and waits for running ones to finish; long
// jobs see Stopping and end early, leaving the rest of their work for the
// next start. If ctx ends first, Stop returns its error and the jobs keep
// running (call StopAndCancel).
func (q *Queue) Stop(ctx context.Context) error {
	q.markStopping()
	return q.stop(ctx)
}

// StopAndCancel cancels running jobs' contexts and waits for them to
// return (they are retried later).
func (q *Queue) StopAndCancel(ctx context.Context) error {
	q.markStopping()
	return q.cancel(ctx)
}

// Stopping is closed once Stop or StopAndCancel is called.
func (q *Queue) Stopping() <-chan struct{} { return q.stopping }

func (q *Queue) markStopping() { q.stopOnce.Do(func() { close(q.stopping) }) }

// Stopping is closed once the store's job queue begins to stop (nil, never
// closed, when the store has no queue): a job that works through many items
// (a paced send chunk) checks it between items and leaves the rest for the
// next start instead of holding up a graceful shutdown.
func (db *DB) Stopping() <-chan struct{} {
	if db.queue == nil {
		return nil
	}
	return db.queue.stopping
}

// Insert inserts jobs outside any transaction.
func (q *Queue) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	return q.insert(ctx, []river.InsertManyParams{{Args: args, InsertOpts: opts}})
}

// CRMWritebackArgs asks for an org's pending message changes to be written
// to its CRM. One is pending or running per org at a time; the worker lets
// changes gather for CRMWritebackDelay before it writes, so they go in few
// CRM calls.
type CRMWritebackArgs struct {
	OrgID string `json:"org_id"`
}

// Kind implements river.JobArgs.
func (CRMWritebackArgs) Kind() string { return "crm_writeback" }

// CRMWritebackDelay is how long changes gather before a write-back runs.
var CRMWritebackDelay = 500 * time.Millisecond

func crmWritebackJob(orgID string) river.InsertManyParams {
	return river.InsertManyParams{
		Args:       CRMWritebackArgs{OrgID: orgID},
		InsertOpts: WritebackOpts(),
	}
}

// WritebackOpts are the insert options of a per-org CRM write-back job
// (messages, link clicks, form records): on the CRM queue, one waiting or
// running per org. Not "completed": a change after a write-back finished
// gets one of its own. A change that lands while one runs is picked up by
// that run (it drains until nothing is pending) or, in the moment after its
// last look, by the periodic sweep.
func WritebackOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: QueueCRM, UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateRetryable}}}
}

// Queue names.
const (
	QueueSend    = "send"
	QueueCRM     = "crm"
	QueueDefault = river.QueueDefault
)

// writebackDedupe is how long after inserting an org's write-back job this
// process skips inserting another: the job waits CRMWritebackDelay before it
// starts and then drains everything pending, so a change in that window is
// covered (and the periodic sweep covers any moment in between). It spares
// the queue one unique insert per group commit.
const writebackDedupe = 100 * time.Millisecond

// recentWriteback reports (and records) whether this process inserted a
// write-back job for org within writebackDedupe.
func (db *DB) recentWriteback(org string) bool {
	now := time.Now()
	db.wbMu.Lock()
	defer db.wbMu.Unlock()
	if db.wbLast == nil {
		db.wbLast = map[string]time.Time{}
	}
	if t, ok := db.wbLast[org]; ok && now.Sub(t) < writebackDedupe {
		return true
	}
	db.wbLast[org] = now
	return false
}

// RecoverOrphanedJobs makes jobs left "running" by a process that died
// available again, at once. Only for SQLite, where the file lock guarantees
// this process is the only one: on PostgreSQL a running job may belong to a
// live process, and River's rescuer takes over jobs past their timeout.
func (db *DB) RecoverOrphanedJobs(ctx context.Context) (int64, error) {
	if db.dialect != SQLite {
		return 0, nil
	}
	return db.writer().exec(ctx, `UPDATE river_job SET state = 'available' WHERE state = 'running'`)
}
