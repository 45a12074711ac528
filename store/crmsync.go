package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	return db.ClaimCRMBefore(ctx, orgID, limit, lease, settledBefore, settledBefore)
}

// urgentCRM is the SQL condition of an urgent change: an incoming message
// whose CRM record is still to be created.
const urgentCRM = `direction = 'incoming' AND crm_message_id IS NULL`

// ClaimCRMBefore is ClaimCRM with two cut-offs: urgent changes (incoming
// messages to create) made before urgentBefore, and others made before
// otherBefore. A zero time claims every change of its kind.
func (db *DB) ClaimCRMBefore(ctx context.Context, orgID string, limit int, lease time.Duration, urgentBefore, otherBefore time.Time) ([]CRMPending, error) {
	now := micros(db.now())
	until := micros(db.now().Add(lease))
	cutoff := func(t time.Time) int64 {
		if t.IsZero() {
			return int64(1) << 62
		}
		return micros(t)
	}
	skip := ""
	if db.dialect == Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	var out []CRMPending
	err := db.Tx(ctx, func(tx *Tx) error {
		out = out[:0]
		rs, err := tx.q.query(ctx, `UPDATE messages SET crm_lease_until = $3
			WHERE id IN (SELECT id FROM messages WHERE org_id = $1 AND version > crm_version AND (crm_lease_until IS NULL OR crm_lease_until < $2)
				AND (updated_at <= $5 OR (`+urgentCRM+` AND updated_at <= $6)) ORDER BY updated_at LIMIT $4`+skip+`)
			AND (crm_lease_until IS NULL OR crm_lease_until < $2)
			RETURNING `+msgCols+`, version, (SELECT sealed FROM message_contents c WHERE c.message_id = messages.id AND messages.crm_message_id IS NULL)`,
			orgID, now, until, limit, cutoff(otherBefore), cutoff(urgentBefore))
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var p CRMPending
			var sealed []byte
			m, err := scanMessage(rs, &p.Version, &sealed)
			if err != nil {
				return err
			}
			p.Msg = m
			if sealed != nil {
				if p.Content, err = db.openContent(m.ID, sealed); err != nil {
					return err
				}
			}
			out = append(out, p)
		}
		return rs.Err()
	})
	return out, err
}

// CRMGather describes an org's message changes waiting for the CRM, for
// deciding when to write them (see CRMGatherState).
type CRMGather struct {
	// Pending: some change waits and no writer holds it.
	Pending bool
	// Ready counts the settled changes (made before the settle cut-off),
	// up to the cap asked for.
	Ready int
	// Oldest is when the oldest settled change was made (zero if none).
	Oldest time.Time
	// Urgent: a settled change is an incoming message to create.
	Urgent bool
	// Unsettled: a change was made after the settle cut-off.
	Unsettled bool
	// InFlight: an outgoing message of the org is Queued or Sent and
	// changed after the active cut-off, so more changes are coming.
	InFlight bool
}

// CRMGatherState reads an org's CRM write-back state: changes made before
// settled count as settled (up to cap are counted), and outgoing messages
// changed after active that are not final yet count as in flight.
func (db *DB) CRMGatherState(ctx context.Context, orgID string, settled, active time.Time, cap int) (CRMGather, error) {
	var g CRMGather
	var oldest sql.NullInt64
	const free = `org_id = $1 AND version > crm_version AND (crm_lease_until IS NULL OR crm_lease_until < $2)`
	err := db.reader().queryRow(ctx, `SELECT
			(SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE `+free+` AND updated_at <= $3 LIMIT $5) r),
			(SELECT MIN(updated_at) FROM messages WHERE `+free+` AND updated_at <= $3),
			EXISTS (SELECT 1 FROM messages WHERE `+free+` AND updated_at <= $3 AND `+urgentCRM+`),
			EXISTS (SELECT 1 FROM messages WHERE `+free+` AND updated_at > $3),
			EXISTS (SELECT 1 FROM messages WHERE org_id = $1 AND direction = 'outgoing' AND status IN ('Queued', 'Sent') AND updated_at > $4)`,
		orgID, micros(db.now()), micros(settled), micros(active), cap).Scan(&g.Ready, &oldest, &g.Urgent, &g.Unsettled, &g.InFlight)
	if err != nil {
		return g, err
	}
	if oldest.Valid {
		g.Oldest = fromMicros(oldest.Int64)
	}
	g.Pending = oldest.Valid || g.Unsettled
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

// FinishCRM records write-back outcomes (set-based: one statement per
// chunk) and releases contents no longer needed.
func (tx *Tx) FinishCRM(ctx context.Context, outs []CRMOutcome) error {
	var done []CRMOutcome
	ids := make([]string, 0, len(outs))
	for _, o := range outs {
		if o.Retry {
			if _, err := tx.q.exec(ctx, `UPDATE messages SET crm_lease_until = $2 WHERE id = $1`, o.MessageID, nullMicros(o.RetryAt)); err != nil {
				return err
			}
			continue
		}
		done = append(done, o)
		ids = append(ids, o.MessageID)
	}
	slices.SortFunc(done, func(a, b CRMOutcome) int { return strings.Compare(a.MessageID, b.MessageID) })
	const chunk = 300
	for start := 0; start < len(done); start += chunk {
		part := done[start:min(start+chunk, len(done))]
		var q strings.Builder
		q.WriteString(`WITH v (id, ver, cid, err) AS (VALUES `)
		args := make([]any, 0, len(part)*4)
		for i, o := range part {
			if i > 0 {
				q.WriteString(",")
			}
			n := len(args)
			fmt.Fprintf(&q, "($%d, CAST($%d AS BIGINT), $%d, $%d)", n+1, n+2, n+3, n+4)
			args = append(args, o.MessageID, o.Version, nullStr(o.CRMMessageID), o.Err)
		}
		q.WriteString(`) UPDATE messages SET crm_version = v.ver, crm_message_id = COALESCE(messages.crm_message_id, v.cid), crm_error = v.err,
			crm_lease_until = NULL FROM v WHERE messages.id = v.id`)
		if _, err := tx.q.exec(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return tx.ReleaseContents(ctx, ids)
}

// OrgsWithCRMPending lists orgs that have message changes not yet written
// to their CRM and not leased (the periodic sweep).
func (db *DB) OrgsWithCRMPending(ctx context.Context) ([]string, error) {
	rs, err := db.reader().query(ctx, `SELECT DISTINCT org_id FROM messages WHERE version > crm_version AND (crm_lease_until IS NULL OR crm_lease_until < $1)`, micros(db.now()))
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
