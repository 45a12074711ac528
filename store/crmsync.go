package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// CRMPending is a message change waiting to be written to the CRM.
type CRMPending struct {
	Msg     *sb.Message
	Version int64
	// Content is set when the CRM record is still to be created.
	Content *sb.Content
}

// ClaimCRM leases up to limit of an org's messages whose latest change is
// not in the CRM yet and was made before settledBefore (so changes that
// follow each other quickly — queued, sent, delivered — are written once),
// oldest change first. A lease keeps other writers off the rows until it
// expires or FinishCRM ends it. A zero settledBefore claims every change.
func (db *DB) ClaimCRM(ctx context.Context, orgID string, limit int, lease time.Duration, settledBefore time.Time) ([]CRMPending, error) {
	return db.ClaimCRMBefore(ctx, orgID, CRMClaim{Limit: limit, Lease: lease, UrgentBefore: settledBefore, OtherBefore: settledBefore})
}

// freeCRM is the SQL condition of an org's ($1) change waiting for the CRM
// that no writer holds (its lease, if any, ended before $2).
const freeCRM = `org_id = $1 AND version > crm_version AND (crm_lease_until IS NULL OR crm_lease_until < $2)`

// urgentCRM is the SQL condition of an urgent change: an incoming message
// whose CRM record is still to be created.
const urgentCRM = `direction = 'incoming' AND crm_message_id IS NULL`

// inFlightCRM is the SQL condition of a change whose message is in flight,
// its next status likely still to come: an outgoing message Queued or Sent
// and changed after the active cut-off (the parameter named), or, when
// holdQueued, any Queued one (the org is sending: it will be sent soon).
func inFlightCRM(active string, holdQueued bool) string {
	if holdQueued {
		return `direction = 'outgoing' AND (status = 'Queued' OR (status = 'Sent' AND updated_at > ` + active + `))`
	}
	return `direction = 'outgoing' AND status IN ('Queued', 'Sent') AND updated_at > ` + active
}

// notQueuedCRM narrows the pending changes to messages that are not Queued:
// it lets both engines read them from their own index
// (messages_crm_pending_sent) rather than skip over a bulk send's queue.
const notQueuedCRM = ` AND status <> 'Queued'`

// CRMClaim says which of an org's pending changes ClaimCRMBefore takes.
type CRMClaim struct {
	// Limit is the most changes taken; Lease how long they are held.
	Limit int
	Lease time.Duration
	// UrgentBefore and OtherBefore: urgent changes (incoming messages to
	// create) made before UrgentBefore and others made before OtherBefore
	// are taken; a zero time takes every change of its kind.
	UrgentBefore, OtherBefore time.Time
	// ActiveAfter leaves out messages in flight — outgoing, Queued or
	// Sent, changed after it — whose next status is written with them; a
	// zero time leaves none out.
	ActiveAfter time.Time
	// HoldQueued leaves out every Queued message too (the org is sending:
	// see CRMGather.Sending).
	HoldQueued bool
}

// ClaimCRMBefore is ClaimCRM with the cut-offs of c.
func (db *DB) ClaimCRMBefore(ctx context.Context, orgID string, c CRMClaim) ([]CRMPending, error) {
	var out []CRMPending
	err := db.Tx(ctx, func(tx *Tx) error {
		sel, args := c.selection(db, orgID, true)
		var err error
		out, err = db.scanPending(ctx, tx.q, `UPDATE messages SET crm_lease_until = $7
			WHERE id IN (SELECT id FROM messages WHERE `+sel+`)
			AND (crm_lease_until IS NULL OR crm_lease_until < $2)
			RETURNING `+pendingCols+``,
			append(args, micros(db.now().Add(c.Lease)))...)
		return err
	})
	return out, err
}

// PendingCRM reads the changes c selects (c.Lease is not used) without
// taking them: the caller prepares their records, then writes them with
// WriteCRMPending. Reading first keeps the rows' locks for the write alone
// (preparing reads gateways, users and the CRM through other connections).
func (db *DB) PendingCRM(ctx context.Context, orgID string, c CRMClaim) ([]CRMPending, error) {
	sel, args := c.selection(db, orgID, false)
	return db.scanPending(ctx, db.reader(), `SELECT `+pendingCols+` FROM messages WHERE `+sel, args...)
}

// WriteCRMPending is the write-back of a CRM kept in Switchboard's own
// database (the built-in CRM): in one transaction it takes those of pend
// (read by PendingCRM) still waiting unchanged — not written, leased or
// changed since, and on PostgreSQL not held by another transaction — lets
// write store their records in that same transaction and return their
// outcomes, and finishes them (as FinishCRM). No lease is written: the rows
// stay locked by the transaction (PostgreSQL: other writers skip them;
// SQLite has one writer), so each change costs one update of its row rather
// than a lease and a finish. A change left out stays pending, to be read
// again with its latest state. When write fails nothing is changed. It
// returns how many changes were written.
func (db *DB) WriteCRMPending(ctx context.Context, pend []CRMPending, write func(tx *Tx, held []CRMPending) ([]CRMOutcome, error)) (int, error) {
	if len(pend) == 0 {
		return 0, nil
	}
	// Only rows still at the version read are taken (and, on PostgreSQL,
	// locked): a change made since is left free for the next read.
	ids := make([]string, len(pend))
	vers := make([]int64, len(pend))
	for i, p := range pend {
		ids[i], vers[i] = p.Msg.ID, p.Version
	}
	args := []any{micros(db.now())}
	var taken, lock string
	if db.dialect == Postgres {
		taken = `(id, version) IN (SELECT * FROM unnest($2::text[], $3::bigint[]))`
		args = append(args, ids, vers)
		lock = " ORDER BY id FOR UPDATE SKIP LOCKED"
	} else {
		var list any
		taken, list = db.inStrings("id", 2, ids) // the versions are compared below
		args = append(args, list)
	}
	n := 0
	err := db.Tx(ctx, func(tx *Tx) error {
		rs, err := tx.q.query(ctx, `SELECT id, version FROM messages WHERE `+taken+`
			AND version > crm_version AND (crm_lease_until IS NULL OR crm_lease_until < $1)`+lock, args...)
		if err != nil {
			return err
		}
		versions := make(map[string]int64, len(pend))
		for rs.Next() {
			var id string
			var v int64
			if err := rs.Scan(&id, &v); err != nil {
				rs.Close()
				return err
			}
			versions[id] = v
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		var held []CRMPending
		for _, p := range pend {
			if v, ok := versions[p.Msg.ID]; ok && v == p.Version {
				held = append(held, p)
			}
		}
		if len(held) == 0 {
			return nil
		}
		outs, err := write(tx, held)
		if err != nil {
			return err
		}
		n = len(held)
		return tx.FinishCRM(ctx, outs)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// pendingCols are the columns scanPending reads: the message, its version
// and, while its CRM record is still to be created, its sealed content.
const pendingCols = msgCols + `, version, (SELECT sealed FROM message_contents c WHERE c.message_id = messages.id AND messages.crm_message_id IS NULL)`

// selection is the SQL (after WHERE) and arguments ($1–$6) choosing the
// changes c takes, oldest first; with lock, on PostgreSQL, the rows are
// locked and rows another transaction holds skipped.
func (c CRMClaim) selection(db *DB, orgID string, lock bool) (string, []any) {
	cutoff := func(t time.Time) int64 {
		if t.IsZero() {
			return int64(1) << 62
		}
		return micros(t)
	}
	skip := ""
	if lock && db.dialect == Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	held := ""
	if c.HoldQueued {
		held = notQueuedCRM
	}
	return freeCRM + held + ` AND (updated_at <= $4 OR (` + urgentCRM + ` AND updated_at <= $5)) AND NOT (` + inFlightCRM("$6", c.HoldQueued) + `)
			ORDER BY updated_at LIMIT $3` + skip,
		[]any{orgID, micros(db.now()), c.Limit, cutoff(c.OtherBefore), cutoff(c.UrgentBefore), cutoff(c.ActiveAfter)}
}

// scanPending runs a query returning pendingCols on q and opens the contents.
func (db *DB) scanPending(ctx context.Context, q querier, query string, args ...any) ([]CRMPending, error) {
	rs, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []CRMPending
	for rs.Next() {
		var p CRMPending
		var sealed []byte
		m, err := scanMessage(rs, &p.Version, &sealed)
		if err != nil {
			return nil, err
		}
		p.Msg = m
		if sealed != nil {
			if p.Content, err = db.openContent(m.ID, sealed); err != nil {
				return nil, err
			}
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

// CRMGather describes an org's message changes waiting for the CRM, for
// deciding when to write them (see CRMGatherState).
type CRMGather struct {
	// Pending: some change waits and no writer holds it.
	Pending bool
	// Ready counts the settled changes (made before the settle cut-off) of
	// messages not in flight, up to the cap asked for. A message in flight
	// (outgoing, Queued or Sent, changed after the active cut-off) waits
	// for its next status, so that it is written once with it.
	Ready int
	// Oldest is when the oldest ready change was made (zero if none).
	Oldest time.Time
	// Waiting: a settled change is held back because its message is in
	// flight (it becomes ready with its next status, or once it has been
	// unchanged since the active cut-off).
	Waiting bool
	// Urgent: a settled change is an incoming message to create.
	Urgent bool
	// Unsettled: a change was made after the settle cut-off.
	Unsettled bool
	// InFlight: an outgoing message of the org is Queued or Sent and
	// changed after the active cut-off, so more changes are coming.
	InFlight bool
	// Sending: the org is sending — an outgoing message became Sent, or
	// reached a later status not yet written to the CRM, after the active
	// cut-off — so its Queued messages are in flight too: they
	// wait to be sent rather than be written once as Queued and again as
	// sent (under a bulk send's backlog that would double the writes).
	Sending bool
}

// CRMGatherState reads an org's CRM write-back state: changes made before
// settled count as settled (up to cap ready ones are counted), and outgoing
// messages changed after active that are not final yet count as in flight.
func (db *DB) CRMGatherState(ctx context.Context, orgID string, settled, active time.Time, cap int) (CRMGather, error) {
	var g CRMGather
	var oldest sql.NullInt64
	// Sending: a message became Sent, or moved on from Queued and waits
	// for the CRM (read from messages_crm_pending_sent), within the window.
	// The second covers partners whose reports skip Sent (SMPP carriers
	// that report only the final status, reports posted in batches).
	err := db.reader().queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE org_id = $1 AND `+inFlightCRM("$2", false)+`
			AND status = 'Sent')
		OR EXISTS (SELECT 1 FROM messages WHERE org_id = $1 AND version > crm_version AND status <> 'Queued'
			AND direction = 'outgoing' AND updated_at > $2)`, orgID, micros(active)).Scan(&g.Sending)
	if err != nil {
		return g, err
	}
	ready := freeCRM + ` AND updated_at <= $3 AND NOT (` + inFlightCRM("$4", g.Sending) + `)`
	if g.Sending {
		ready += notQueuedCRM
	}
	err = db.reader().queryRow(ctx, `SELECT
			(SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE `+ready+` LIMIT $5) r),
			(SELECT MIN(updated_at) FROM messages WHERE `+ready+`),
			EXISTS (SELECT 1 FROM messages WHERE `+ready+` AND `+urgentCRM+`),
			EXISTS (SELECT 1 FROM messages WHERE `+freeCRM+` AND updated_at > $3),
			EXISTS (SELECT 1 FROM messages WHERE org_id = $1 AND `+inFlightCRM("$4", false)+`),
			EXISTS (SELECT 1 FROM messages WHERE `+freeCRM+` AND updated_at <= $3 AND `+inFlightCRM("$4", g.Sending)+`)`,
		orgID, micros(db.now()), micros(settled), micros(active), cap).Scan(&g.Ready, &oldest, &g.Urgent, &g.Unsettled, &g.InFlight, &g.Waiting)
	if err != nil {
		return g, err
	}
	if oldest.Valid {
		g.Oldest = fromMicros(oldest.Int64)
	}
	g.Pending = oldest.Valid || g.Unsettled || g.Waiting
	return g, nil
}

// CRMOutcome is the result of writing one claimed change.
type CRMOutcome struct {
	MessageID    string
	Version      int64
	CRMMessageID string
	// Err is a permanent failure text; the change is not retried.
	Err string
	// Retry leaves the change pending; RetryAt keeps it leased until then.
	Retry   bool
	RetryAt time.Time
}

// CRMFinish is one write-back's outcomes, finished through BatchMerge.
type CRMFinish []CRMOutcome

// LockIDs implements RowLocker.
func (f CRMFinish) LockIDs() []string {
	ids := make([]string, len(f))
	for i, o := range f {
		ids[i] = o.MessageID
	}
	return ids
}

// FinishCRMMerged is the merged step of CRMFinish payloads.
func FinishCRMMerged(ctx context.Context, tx *Tx, payloads []any) ([]any, error) {
	var all []CRMOutcome
	for _, p := range payloads {
		all = append(all, p.(CRMFinish)...)
	}
	if err := tx.FinishCRM(ctx, all); err != nil {
		return nil, err
	}
	return make([]any, len(payloads)), nil
}

// finishCols are the rows of FinishCRM.
var finishCols = []rowCol{{"id", "text"}, {"ver", "bigint"}, {"cid", "text"}, {"err", "text"}}

// FinishCRM records write-back outcomes (set-based: one statement per
// chunk) and releases contents no longer needed.
func (tx *Tx) FinishCRM(ctx context.Context, outs []CRMOutcome) error {
	var done []CRMOutcome
	var ids []string
	for _, o := range outs {
		if o.Retry {
			if _, err := tx.q.exec(ctx, `UPDATE messages SET crm_lease_until = $2 WHERE id = $1`, o.MessageID, nullMicros(o.RetryAt)); err != nil {
				return err
			}
			continue
		}
		done = append(done, o)
	}
	slices.SortFunc(done, func(a, b CRMOutcome) int { return strings.Compare(a.MessageID, b.MessageID) })
	const chunk = 300
	for start := 0; start < len(done); start += chunk {
		part := done[start:min(start+chunk, len(done))]
		vals := make([][]any, len(part))
		for i, o := range part {
			vals[i] = []any{o.MessageID, o.Version, nullStr(o.CRMMessageID), o.Err}
		}
		cte, args := tx.rowsCTE(1, finishCols, vals)
		// The rows say at once which messages no longer need their sealed
		// content (handed to the provider, or failed, and now written).
		rs, err := tx.q.query(ctx, `WITH `+cte+` UPDATE messages SET crm_version = v.ver, crm_message_id = COALESCE(messages.crm_message_id, v.cid), crm_error = v.err,
			crm_lease_until = NULL FROM v WHERE messages.id = v.id
			RETURNING messages.id, `+contentDone, args...)
		if err != nil {
			return err
		}
		for rs.Next() {
			var id string
			var release bool
			if err := rs.Scan(&id, &release); err != nil {
				rs.Close()
				return err
			}
			if release {
				ids = append(ids, id)
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
	}
	return tx.deleteContents(ctx, ids)
}

// OrgsWithCRMPending lists orgs that have message changes not yet written
// to their CRM and not leased (the periodic sweep). It skips from org to org
// along the pending index (messages_crm_pending), one seek per org, rather
// than read every pending change: under a bulk send's backlog that is most
// of the table.
func (db *DB) OrgsWithCRMPending(ctx context.Context) ([]string, error) {
	const next = `SELECT org_id FROM messages WHERE version > crm_version AND (crm_lease_until IS NULL OR crm_lease_until < $1)`
	rs, err := db.reader().query(ctx, `WITH RECURSIVE o (id) AS (
			SELECT (`+next+` ORDER BY org_id LIMIT 1)
			UNION ALL
			SELECT (`+next+` AND org_id > o.id ORDER BY org_id LIMIT 1) FROM o WHERE o.id IS NOT NULL)
		SELECT id FROM o WHERE id IS NOT NULL`, micros(db.now()))
	if err != nil {
		return nil, err
	}
	return scanStrings(rs)
}

// CRMClaimable reports whether an org has message changes waiting for the
// CRM that no writer holds (some may not have settled yet).
func (db *DB) CRMClaimable(ctx context.Context, orgID string) (bool, error) {
	var one int
	err := db.reader().queryRow(ctx, `SELECT 1 FROM messages WHERE org_id = $1 AND version > crm_version
		AND (crm_lease_until IS NULL OR crm_lease_until < $2) LIMIT 1`, orgID, micros(db.now())).Scan(&one)
	if errors.Is(err, errNoRows) {
		return false, nil
	}
	return err == nil, err
}

// InFlight reports whether any outgoing message of an org is still Queued
// or Sent, waiting for the partner's final report (benchmarks,
// diagnostics). It reads one entry of an index, however many messages the
// org has.
func (db *DB) InFlight(ctx context.Context, orgID string) (bool, error) {
	var one int
	err := db.reader().queryRow(ctx, `SELECT 1 FROM messages WHERE org_id = $1 AND direction = 'outgoing'
		AND status IN ('Queued', 'Sent') LIMIT 1`, orgID).Scan(&one)
	if errors.Is(err, errNoRows) {
		return false, nil
	}
	return err == nil, err
}

// CRMPendingCount returns how many message changes of an org wait for the CRM.
func (db *DB) CRMPendingCount(ctx context.Context, orgID string) (int, error) {
	var n int
	err := db.reader().queryRow(ctx, `SELECT COUNT(*) FROM messages WHERE org_id = $1 AND version > crm_version`, orgID).Scan(&n)
	return n, err
}

// TouchCRMJob inserts a write-back job for the org (used after a CRM comes
// back online).
func (db *DB) TouchCRMJob(ctx context.Context, orgID string) error {
	return db.Tx(ctx, func(tx *Tx) error { tx.TouchCRM(orgID); return nil })
}
