package store

import (
	"context"
	"slices"
	"strconv"
	"strings"

	sb "github.com/switchboard/switchboard"
)

// Set-based forms of the hottest writes, used through BatchMerge so that
// the status callbacks and send outcomes meeting in one group commit become
// one statement each.

// StatusItem is a status report for a message of a gateway, by our id.
type StatusItem struct {
	GatewayID string
	Update    sb.StatusUpdate
}

// LockIDs implements RowLocker.
func (s StatusItem) LockIDs() []string { return []string{s.Update.MessageID} }

// statusCols and sendCols are the rows of ApplyStatuses and RecordSends.
var (
	statusCols = []rowCol{{"id", "text"}, {"gw", "text"}, {"status", "text"}, {"rnk", "integer"}, {"at", "bigint"}, {"sent", "bigint"}, {"code", "text"}, {"debug", "text"}, {"pid", "text"}}
	sendCols   = []rowCol{{"id", "text"}, {"pid", "text"}, {"status", "text"}, {"rnk", "integer"}, {"code", "text"}, {"debug", "text"}}
)

// ApplyStatuses moves many outgoing messages' statuses forward at once.
// Reports must name the message (MessageID); for several reports of one
// message the furthest wins, keeping the time it was sent. A report that
// does not move its message forward (repeat, late, unknown) is not applied.
func (tx *Tx) ApplyStatuses(ctx context.Context, items []StatusItem) ([]StatusResult, error) {
	out := make([]StatusResult, len(items))
	type row struct {
		gw     string
		u      sb.StatusUpdate
		sentAt any
		idx    []int
		optOut bool
		// optCode, optDebug: the provider's error of the report that said
		// the recipient unsubscribed.
		optCode, optDebug string
	}
	rows := map[string]*row{}
	var order []string
	for i, it := range items {
		u := it.Update
		if u.MessageID == "" || !u.Status.Valid() || u.Status == sb.StatusReceived {
			return nil, sb.FieldError("status", "ApplyStatuses needs message ids and outgoing statuses")
		}
		if u.At.IsZero() {
			u.At = tx.db.now()
		}
		r, ok := rows[u.MessageID]
		if !ok {
			r = &row{gw: it.GatewayID, u: u}
			rows[u.MessageID] = r
			order = append(order, u.MessageID)
		} else if u.Status.Rank() > r.u.Status.Rank() {
			r.u = u
		}
		if u.Status == sb.StatusSent {
			r.sentAt = micros(u.At)
		}
		if u.OptedOut && !r.optOut {
			r.optOut, r.optCode, r.optDebug = true, u.ErrorCode, u.Debug
		}
		r.idx = append(r.idx, i)
	}
	// Rows are updated in id order, as in every set-based update, so
	// concurrent transactions take row locks in the same order (PostgreSQL
	// deadlocks otherwise).
	slices.Sort(order)
	now := micros(tx.db.now())
	type optOut struct {
		org, gw     string
		hash        []byte
		code, debug string
	}
	var optOuts []optOut
	// release: messages written to the CRM whose send this report records
	// (their sealed content is no longer needed).
	var release []string
	const chunk = 250
	for start := 0; start < len(order); start += chunk {
		part := order[start:min(start+chunk, len(order))]
		vals := make([][]any, len(part))
		for i, id := range part {
			r := rows[id]
			vals[i] = []any{id, r.gw, string(r.u.Status), r.u.Status.Rank(), micros(r.u.At), r.sentAt, r.u.ErrorCode, r.u.Debug, r.u.ProviderMessageID}
		}
		// The clock is the last parameter, after the rows': on SQLite
		// parameters numbered in the order they appear bind much faster.
		cte, args := tx.rowsCTE(1, statusCols, vals)
		args = append(args, now)
		// A report that overtakes its send's outcome (the partner posts it
		// before its answer to the send is recorded) also records the
		// provider's id: the outcome then finds the message recorded and
		// changes nothing, one update of the row fewer.
		q := `WITH ` + cte + ` UPDATE messages SET status = v.status, status_rank = v.rnk, updated_at = $` + strconv.Itoa(len(args)) + `, version = version + 1,
			provider_message_id = COALESCE(messages.provider_message_id, NULLIF(v.pid, '')),
			sent_at = CASE WHEN v.sent IS NOT NULL THEN COALESCE(messages.sent_at, v.sent) ELSE messages.sent_at END,
			delivered_at = CASE WHEN v.status = 'Delivered' THEN v.at ELSE messages.delivered_at END,
			failed_at = CASE WHEN v.status IN ('Failed', 'Undelivered') THEN v.at ELSE messages.failed_at END,
			error_code = CASE WHEN v.code <> '' THEN v.code ELSE messages.error_code END,
			debug = CASE WHEN v.debug <> '' THEN v.debug ELSE messages.debug END
			FROM v WHERE messages.id = v.id AND messages.gateway_id = v.gw AND messages.direction = 'outgoing' AND messages.status_rank < v.rnk
			RETURNING messages.id, messages.org_id, messages.phone_hash, ` + crmWritten
		rs, err := tx.q.query(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var res StatusResult
			var written bool
			if err := rs.Scan(&res.MessageID, &res.OrgID, &res.PhoneHash, &written); err != nil {
				rs.Close()
				return nil, err
			}
			if written && rows[res.MessageID].u.ProviderMessageID != "" {
				release = append(release, res.MessageID)
			}
			res.Applied = true
			tx.TouchCRM(res.OrgID)
			r := rows[res.MessageID]
			for _, i := range r.idx {
				out[i] = res
			}
			if r.optOut {
				optOuts = append(optOuts, optOut{res.OrgID, r.gw, res.PhoneHash, r.optCode, r.optDebug})
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	// The provider said these recipients unsubscribed.
	for _, o := range optOuts {
		if err := tx.ProviderOptOut(ctx, o.org, o.gw, o.hash, o.code, o.debug); err != nil {
			return nil, err
		}
	}
	return out, tx.ReleaseContents(ctx, release)
}

// SendResult tells what RecordSends did for one outcome.
type SendRecord struct {
	OrgID     string
	PhoneHash []byte
}

// RecordSends stores many send outcomes at once (see RecordSend).
func (tx *Tx) RecordSends(ctx context.Context, outs []SendOutcome) ([]SendRecord, error) {
	res := make([]SendRecord, len(outs))
	idx := map[string]int{}
	var ok []int
	for i, o := range outs {
		if o.ProviderMessageID == "" {
			org, hash, err := tx.RecordSend(ctx, o)
			if err != nil {
				return nil, err
			}
			res[i] = SendRecord{OrgID: org, PhoneHash: hash}
			continue
		}
		if _, dup := idx[o.MessageID]; dup {
			continue
		}
		idx[o.MessageID] = i
		ok = append(ok, i)
	}
	slices.SortFunc(ok, func(a, b int) int { return strings.Compare(outs[a].MessageID, outs[b].MessageID) })
	now := micros(tx.db.now())
	var ids []string
	pidsByGW := map[string][]string{}
	const chunk = 250
	for start := 0; start < len(ok); start += chunk {
		part := ok[start:min(start+chunk, len(ok))]
		vals := make([][]any, len(part))
		for j, i := range part {
			o := outs[i]
			vals[j] = []any{o.MessageID, o.ProviderMessageID, string(o.Status), o.Status.Rank(), o.ErrorCode, o.Debug}
		}
		// The clock follows the rows, once for each use (see ApplyStatuses).
		cte, args := tx.rowsCTE(1, sendCols, vals)
		args = append(args, now, now)
		at := len(args) - 1
		rs, err := tx.q.query(ctx, `WITH `+cte+` UPDATE messages SET provider_message_id = v.pid,
			status = CASE WHEN messages.status_rank < v.rnk THEN v.status ELSE messages.status END,
			status_rank = CASE WHEN messages.status_rank < v.rnk THEN v.rnk ELSE messages.status_rank END,
			error_code = CASE WHEN v.code <> '' THEN v.code ELSE messages.error_code END,
			debug = CASE WHEN v.debug <> '' THEN v.debug ELSE messages.debug END,
			updated_at = $`+strconv.Itoa(at)+`, version = version + 1,
			sent_at = CASE WHEN v.status = 'Sent' AND messages.sent_at IS NULL THEN $`+strconv.Itoa(at+1)+` ELSE messages.sent_at END
			FROM v WHERE messages.id = v.id AND messages.provider_message_id IS NULL
			RETURNING messages.id, messages.org_id, messages.gateway_id, messages.phone_hash, messages.provider_message_id`, args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var id, org, gw, pid string
			var hash []byte
			if err := rs.Scan(&id, &org, &gw, &hash, &pid); err != nil {
				rs.Close()
				return nil, err
			}
			res[idx[id]] = SendRecord{OrgID: org, PhoneHash: hash}
			tx.TouchCRM(org)
			ids = append(ids, id)
			pidsByGW[gw] = append(pidsByGW[gw], pid)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	// Reports that raced ahead of their send are applied now.
	for gw, pids := range pidsByGW {
		for start := 0; start < len(pids); start += 900 {
			part := pids[start:min(start+900, len(pids))]
			rs, err := tx.q.query(ctx, `SELECT DISTINCT provider_message_id FROM unmatched_statuses WHERE gateway_id = $1 AND provider_message_id IN `+inList(2, len(part)),
				append([]any{gw}, anyStrings(part)...)...)
			if err != nil {
				return nil, err
			}
			early, err := scanStrings(rs)
			if err != nil {
				return nil, err
			}
			for _, pid := range early {
				if err := tx.applyUnmatched(ctx, gw, pid); err != nil {
					return nil, err
				}
			}
		}
	}
	return res, tx.ReleaseContents(ctx, ids)
}

// ApplyStatusesMerged is the merged step of StatusItem payloads (see
// BatchMerge): one StatusResult per payload.
func ApplyStatusesMerged(ctx context.Context, tx *Tx, payloads []any) ([]any, error) {
	return merged(payloads, func(items []StatusItem) ([]StatusResult, error) { return tx.ApplyStatuses(ctx, items) })
}

// RecordSendsMerged is the merged step of SendOutcome payloads (see
// BatchMerge): one SendRecord per payload.
func RecordSendsMerged(ctx context.Context, tx *Tx, payloads []any) ([]any, error) {
	return merged(payloads, func(outs []SendOutcome) ([]SendRecord, error) { return tx.RecordSends(ctx, outs) })
}

// merged runs a set-based step on BatchMerge's payloads, all of type P, and
// hands its results back in BatchMerge's form.
func merged[P, R any](payloads []any, step func([]P) ([]R, error)) ([]any, error) {
	ps := make([]P, len(payloads))
	for i, p := range payloads {
		ps[i] = p.(P)
	}
	rs, err := step(ps)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out, nil
}
