package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
)

// Tx is a transaction. Jobs added with AddJob are inserted in the same
// transaction just before it commits (the transactional outbox), so a state
// change and the work it causes are stored together or not at all.
type Tx struct {
	db   *DB
	q    querier
	pg   pgx.Tx
	sq   *sql.Tx
	jobs []river.InsertManyParams
	// crmOrgs are orgs whose messages changed: a CRM write-back job is
	// inserted for each at commit.
	crmOrgs map[string]bool
}

// AddJob schedules a job insert for commit time.
func (tx *Tx) AddJob(args river.JobArgs, opts *river.InsertOpts) {
	tx.jobs = append(tx.jobs, river.InsertManyParams{Args: args, InsertOpts: opts})
}

// TouchCRM records that org has message changes to write to its CRM.
func (tx *Tx) TouchCRM(orgID string) {
	if tx.crmOrgs == nil {
		tx.crmOrgs = map[string]bool{}
	}
	tx.crmOrgs[orgID] = true
}

// Tx runs fn in a transaction and commits it when fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(tx *Tx) error) error {
	tx, err := db.begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.rollback(ctx)
		return err
	}
	return tx.commit(ctx)
}

func (db *DB) begin(ctx context.Context) (*Tx, error) {
	if db.dialect == Postgres {
		pt, err := db.pool.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("begin: %w", err)
		}
		return &Tx{db: db, q: db.observed(pgQ{pt}), pg: pt}, nil
	}
	st, err := db.sqlW.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &Tx{db: db, q: db.observed(sqlQ{st}), sq: st}, nil
}

func (tx *Tx) rollback(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if tx.pg != nil {
		_ = tx.pg.Rollback(ctx)
		return
	}
	_ = tx.sq.Rollback()
}

func (tx *Tx) commit(ctx context.Context) error {
	if err := tx.flushJobs(ctx); err != nil {
		tx.rollback(ctx)
		return err
	}
	if tx.pg != nil {
		if err := tx.pg.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	if err := tx.sq.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (tx *Tx) flushJobs(ctx context.Context) error {
	for org := range tx.crmOrgs {
		if tx.db.recentWriteback(org) {
			continue
		}
		tx.jobs = append(tx.jobs, crmWritebackJob(org))
	}
	tx.crmOrgs = nil
	if len(tx.jobs) == 0 {
		return nil
	}
	if tx.db.queue == nil {
		return errors.New("store: job queue not configured")
	}
	err := tx.db.queue.insertTx(ctx, tx, tx.jobs)
	tx.jobs = nil
	if err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	return nil
}

// --- group commit ---

// Batch runs fn in a transaction shared with other concurrent Batch calls
// (group commit): many small writes (webhooks, send results) share one
// commit. fn may run more than once (when another fn in its group fails the
// group is retried without it), so it must only touch the database. Batch
// returns once fn's writes are committed, or with fn's error.
func (db *DB) Batch(ctx context.Context, fn func(tx *Tx) error) error {
	it := &batchItem{fn: fn, done: make(chan error, 1)}
	select {
	case db.batcher.lane(it) <- it:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.batcher.quit:
		return errors.New("store: closed")
	}
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type batchItem struct {
	fn   func(tx *Tx) error
	done chan error
	// Mergeable items of one kind run together in one set-based step.
	kind    string
	payload any
	merge   func(ctx context.Context, tx *Tx, payloads []any) ([]any, error)
	result  any
	single  bool
}

// BatchMerge is Batch for work that is much cheaper done for many items at
// once (status updates, send outcomes): items of the same kind that meet in
// one group commit are handed together to merge, which returns one result
// per payload. When a merged step fails, its items are retried one by one.
func (db *DB) BatchMerge(ctx context.Context, kind string, payload any, merge func(ctx context.Context, tx *Tx, payloads []any) ([]any, error)) (any, error) {
	res, err := db.BatchMergeAll(ctx, kind, []any{payload}, merge)
	if res == nil {
		return nil, err
	}
	return res[0], err
}

// BatchMergeAll is BatchMerge for several payloads of one kind handed in at
// once (a webhook that carries many status reports): all of them are queued
// before any is waited for, so they meet in the same group commit instead of
// taking one commit each. It returns one result per payload, in order, and
// the first error met; payloads that did not fail are applied all the same.
func (db *DB) BatchMergeAll(ctx context.Context, kind string, payloads []any, merge func(ctx context.Context, tx *Tx, payloads []any) ([]any, error)) ([]any, error) {
	items := make([]*batchItem, 0, len(payloads))
	var err error
queue:
	for _, p := range payloads {
		it := &batchItem{kind: kind, payload: p, merge: merge, done: make(chan error, 1)}
		select {
		case db.batcher.lane(it) <- it:
			items = append(items, it)
		case <-ctx.Done():
			err = ctx.Err()
			break queue
		case <-db.batcher.quit:
			err = errors.New("store: closed")
			break queue
		}
	}
	out := make([]any, len(payloads))
	for i, it := range items {
		select {
		case e := <-it.done:
			if e != nil && err == nil {
				err = e
			}
			out[i] = it.result
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, err
}

type batcher struct {
	db *DB
	// lanes each have their own committing goroutine (see newBatcher).
	lanes []chan *batchItem
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

const maxBatch = 512

// pgLanes is how many groups commit at once on PostgreSQL. One committer
// left the server idle while it waited on each group's round trips and
// commit; two fill that time. More gained nothing on two cores: the
// groups then only compete for the same CPU.
const pgLanes = 2

func newBatcher(db *DB) *batcher {
	// SQLite has one writer, so one lane. On PostgreSQL the lanes split the
	// items by message (see lane): the outcome and the reports of one
	// message always meet in the same lane, so groups committing at once
	// do not wait on each other's rows. Items spanning messages of both
	// lanes (a write-back's finish) take their row locks in id order (see
	// lockRows), as groups of different processes do.
	n := 1
	if db.dialect == Postgres {
		n = pgLanes
	}
	b := &batcher{db: db, quit: make(chan struct{})}
	for range n {
		in := make(chan *batchItem, maxBatch)
		b.lanes = append(b.lanes, in)
		b.wg.Add(1)
		go b.loop(in)
	}
	return b
}

// lane is the queue an item goes to: by the first message row it locks, so
// that the items of one message are committed in the order they came;
// items that name no message go to the first lane.
func (b *batcher) lane(it *batchItem) chan *batchItem {
	if len(b.lanes) == 1 {
		return b.lanes[0]
	}
	if l, ok := it.payload.(RowLocker); ok {
		if ids := l.LockIDs(); len(ids) > 0 {
			h := fnv.New32a()
			h.Write([]byte(ids[0]))
			return b.lanes[h.Sum32()%uint32(len(b.lanes))]
		}
	}
	return b.lanes[0]
}

func (b *batcher) close() {
	b.once.Do(func() { close(b.quit) })
	b.wg.Wait()
}

func (b *batcher) loop(in chan *batchItem) {
	defer b.wg.Done()
	for {
		var first *batchItem
		select {
		case first = <-in:
		case <-b.quit:
			return
		}
		items := []*batchItem{first}
	fill:
		for len(items) < maxBatch {
			select {
			case it := <-in:
				items = append(items, it)
			default:
				break fill
			}
		}
		b.run(items)
	}
}

// run commits items together. Plain items run one after the other;
// mergeable items of one kind run as one step. An item (or single-item
// step) that fails is answered with its error and the rest run again
// without it; a merged step that fails is split into single items; when the
// commit itself fails every item is run alone so one bad write cannot sink
// the others. A group that lost a deadlock to another lane or process (or
// any transaction) is run again as it was, since no item was at fault.
func (b *batcher) run(items []*batchItem) {
	ctx := context.Background()
	retries := 0
	for len(items) > 0 {
		tx, err := b.db.begin(ctx)
		if err != nil {
			for _, it := range items {
				it.done <- err
			}
			return
		}
		failed, ferr := b.apply(ctx, tx, items)
		if failed != nil {
			tx.rollback(ctx)
			if contended(ferr) && retries < maxContendedRetries {
				retries++
				continue
			}
			if len(failed) > 1 {
				for _, it := range failed {
					it.single = true
				}
				continue
			}
			failed[0].done <- ferr
			items = slices.DeleteFunc(items, func(it *batchItem) bool { return it == failed[0] })
			continue
		}
		if err := tx.commit(ctx); err != nil {
			if contended(err) && retries < maxContendedRetries {
				retries++
				continue
			}
			if len(items) == 1 {
				items[0].done <- err
				return
			}
			for _, it := range items {
				it.single = true
				b.run([]*batchItem{it})
			}
			return
		}
		for _, it := range items {
			it.done <- nil
		}
		return
	}
}

// maxContendedRetries bounds how often a group is run again after losing
// to a concurrent transaction.
const maxContendedRetries = 5

// contended tells whether err is PostgreSQL ending a transaction because of
// concurrent ones (deadlock, serialization failure): running it again is the
// remedy, and the items are not at fault.
func contended(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// RowLocker is implemented by merged payloads that update message rows:
// on PostgreSQL a group takes the row locks of all its payloads first, in id
// order, so that groups committed at once by several processes never wait on
// each other in a circle (deadlock).
type RowLocker interface {
	LockIDs() []string
}

// lockRows locks the message rows the group's payloads will update, in id
// order.
func (b *batcher) lockRows(ctx context.Context, tx *Tx, items []*batchItem) error {
	if b.db.dialect != Postgres {
		return nil // one writer: nothing to order
	}
	var ids []string
	for _, it := range items {
		if l, ok := it.payload.(RowLocker); ok {
			ids = append(ids, l.LockIDs()...)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	_, err := tx.q.exec(ctx, `SELECT 1 FROM messages WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	return err
}

// apply runs items in tx and returns the failing unit with its error.
func (b *batcher) apply(ctx context.Context, tx *Tx, items []*batchItem) ([]*batchItem, error) {
	if err := b.lockRows(ctx, tx, items); err != nil {
		return items, err
	}
	groups := map[string][]*batchItem{}
	var order []string
	for _, it := range items {
		if it.merge == nil {
			if err := it.fn(tx); err != nil {
				return []*batchItem{it}, err
			}
			continue
		}
		key := it.kind
		if it.single {
			key = fmt.Sprintf("%s#%p", it.kind, it)
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], it)
	}
	for _, key := range order {
		g := groups[key]
		payloads := make([]any, len(g))
		for i, it := range g {
			payloads[i] = it.payload
		}
		res, err := g[0].merge(ctx, tx, payloads)
		if err == nil && len(res) != len(g) {
			err = fmt.Errorf("store: merged step %s returned %d results for %d items", g[0].kind, len(res), len(g))
		}
		if err != nil {
			return g, err
		}
		for i, it := range g {
			it.result = res[i]
		}
	}
	return nil, nil
}
