package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	sb "github.com/switchboard/switchboard"
)

// The by_keyword column holds Subscription.Locked (first only keyword
// opt-outs were locked; provider opt-outs are too).
const subCols = `org_id, gateway_id, phone_hash, status, detail, via, by_keyword, COALESCE(updated_by, ''), updated_at`

func scanSub(r row) (*sb.Subscription, error) {
	var s sb.Subscription
	var at int64
	if err := r.Scan(&s.OrgID, &s.GatewayID, &s.PhoneHash, &s.Status, &s.Detail, &s.Via, &s.Locked, &s.UpdatedBy, &at); err != nil {
		return nil, err
	}
	s.UpdatedAt = fromMicros(at)
	return &s, nil
}

// Subscription returns the stored subscription of a phone on a gateway, or
// nil when there is none.
func (tx *Tx) Subscription(ctx context.Context, gatewayID string, phoneHash []byte) (*sb.Subscription, error) {
	return getSub(ctx, tx.q, gatewayID, phoneHash)
}

// Subscription returns the stored subscription outside a transaction.
func (db *DB) Subscription(ctx context.Context, gatewayID string, phoneHash []byte) (*sb.Subscription, error) {
	return getSub(ctx, db.reader(), gatewayID, phoneHash)
}

func getSub(ctx context.Context, q querier, gatewayID string, phoneHash []byte) (*sb.Subscription, error) {
	s, err := scanSub(q.queryRow(ctx, `SELECT `+subCols+` FROM subscriptions WHERE gateway_id = $1 AND phone_hash = $2`, gatewayID, phoneHash))
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	return s, err
}

// SubscriptionsForPhone returns every stored subscription of a phone in an org.
func (db *DB) SubscriptionsForPhone(ctx context.Context, orgID string, phoneHash []byte) ([]*sb.Subscription, error) {
	rs, err := db.reader().query(ctx, `SELECT `+subCols+` FROM subscriptions WHERE org_id = $1 AND phone_hash = $2`, orgID, phoneHash)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*sb.Subscription
	for rs.Next() {
		s, err := scanSub(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}

// SubscriptionStatuses returns the stored status of each phone hash on a
// gateway in ONE set-based query, however many numbers (a bulk send checks
// 100,000 recipients without 100,000 queries): the hashes travel as one
// array parameter. Hashes with no record are absent.
func (tx *Tx) SubscriptionStatuses(ctx context.Context, gatewayID string, hashes [][]byte) (map[string]sb.SubscriptionStatus, error) {
	out := make(map[string]sb.SubscriptionStatus)
	if len(hashes) == 0 {
		return out, nil
	}
	in, list := tx.db.inHashes("phone_hash", 2, hashes)
	rs, err := tx.q.query(ctx, `SELECT phone_hash, status FROM subscriptions WHERE gateway_id = $1 AND `+in, gatewayID, list)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var h []byte
		var st string
		if err := rs.Scan(&h, &st); err != nil {
			return nil, err
		}
		out[string(h)] = sb.SubscriptionStatus(st)
	}
	return out, rs.Err()
}

// inHashes returns the condition "column is one of hashes" with the hashes
// as ONE parameter ($n) and that parameter: an array on PostgreSQL, a JSON
// list of hex strings on SQLite. A set-based lookup of any number of phones
// is then one statement.
func (db *DB) inHashes(column string, n int, hashes [][]byte) (string, any) {
	if db.dialect == Postgres {
		return fmt.Sprintf("%s = ANY($%d::bytea[])", column, n), hashes
	}
	hexes := make([]string, len(hashes))
	for i, h := range hashes {
		hexes[i] = hex.EncodeToString(h)
	}
	list, _ := json.Marshal(hexes)
	return fmt.Sprintf("%s IN (SELECT unhex(value) FROM json_each($%d))", column, n), string(list)
}

// inStrings is inHashes for strings: on SQLite a JSON list of them.
func (db *DB) inStrings(column string, n int, ss []string) (string, any) {
	if db.dialect == Postgres {
		return fmt.Sprintf("%s = ANY($%d::text[])", column, n), ss
	}
	list, _ := json.Marshal(ss)
	return fmt.Sprintf("%s IN (SELECT value FROM json_each($%d))", column, n), string(list)
}

// Imported returns which of the (gateway, phone hash) pairs of an org an
// import of legacy opt-outs already applied (a history entry with via
// "import"), keyed by ImportKey, in one query.
func (tx *Tx) Imported(ctx context.Context, orgID string, hashes [][]byte) (map[string]bool, error) {
	out := map[string]bool{}
	if len(hashes) == 0 {
		return out, nil
	}
	in, list := tx.db.inHashes("phone_hash", 3, hashes)
	rs, err := tx.q.query(ctx, `SELECT DISTINCT gateway_id, phone_hash FROM subscription_events WHERE org_id = $1 AND via = $2 AND `+in, orgID, sb.ViaImport, list)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var gw string
		var h []byte
		if err := rs.Scan(&gw, &h); err != nil {
			return nil, err
		}
		out[ImportKey(gw, h)] = true
	}
	return out, rs.Err()
}

// ImportKey names a (gateway, phone hash) pair in Imported's answer.
func ImportKey(gatewayID string, phoneHash []byte) string {
	return gatewayID + "\x00" + string(phoneHash)
}

// AddSubscriptionEvent records a history entry without changing the
// subscription (an import noting a number that was already opted out).
func (tx *Tx) AddSubscriptionEvent(ctx context.Context, s *sb.Subscription) error {
	_, err := tx.q.exec(ctx, `INSERT INTO subscription_events (id, org_id, gateway_id, phone_hash, status, detail, via, user_id, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		NewID(), s.OrgID, s.GatewayID, s.PhoneHash, string(s.Status), s.Detail, s.Via, nullStr(s.UpdatedBy), micros(tx.db.now()))
	return err
}

// SetSubscription stores a subscription change and its history entry. A
// locked opt-out (Subscription.Locked: an opt-out keyword, or the provider's
// "unsubscribed") stays locked whatever else happens, checked in the same
// statement that writes, so no concurrent change slips between: an opt-out
// of another kind is only recorded in the history; an opt-in other than an
// opt-in keyword from the phone is refused with a conflict error naming the
// rule. applied reports whether the stored state changed.
func (tx *Tx) SetSubscription(ctx context.Context, s *sb.Subscription) (applied bool, err error) {
	if s.Status == sb.OptedIn {
		s.Locked = false
	}
	s.UpdatedAt = tx.db.now().UTC()
	at := micros(s.UpdatedAt)
	n, err := tx.q.exec(ctx, `INSERT INTO subscriptions (org_id, gateway_id, phone_hash, status, detail, via, by_keyword, updated_by, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (gateway_id, phone_hash) DO UPDATE SET status = excluded.status, detail = excluded.detail, via = excluded.via,
			by_keyword = excluded.by_keyword, updated_by = excluded.updated_by, updated_at = excluded.updated_at
		WHERE NOT (subscriptions.status = 'Opt-Out' AND subscriptions.by_keyword)
			OR excluded.by_keyword OR (excluded.status = 'Opt-In' AND excluded.via = $10)`,
		s.OrgID, s.GatewayID, s.PhoneHash, string(s.Status), s.Detail, s.Via, s.Locked, nullStr(s.UpdatedBy), at, sb.ViaKeyword)
	if err != nil {
		return false, err
	}
	if n == 0 && s.Status == sb.OptedIn {
		cur, err := getSub(ctx, tx.q, s.GatewayID, s.PhoneHash)
		if err != nil {
			return false, err
		}
		detail := ""
		if cur != nil {
			detail = cur.Detail
		}
		return false, sb.ErrLocked(detail)
	}
	_, err = tx.q.exec(ctx, `INSERT INTO subscription_events (id, org_id, gateway_id, phone_hash, status, detail, via, user_id, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		NewID(), s.OrgID, s.GatewayID, s.PhoneHash, string(s.Status), s.Detail, s.Via, nullStr(s.UpdatedBy), at)
	if err == nil && n > 0 && s.Status == sb.OptedOut && tx.db.optOutHook != nil {
		err = tx.db.optOutHook(ctx, tx, s.OrgID, s.GatewayID, s.PhoneHash)
	}
	return n > 0, err
}

// SetOptOutHook makes every opt-out the store records — by keyword, by hand,
// by automation, by import, or reported by a provider — call fn inside the
// transaction that records it, so what runs for the number (an open SMS
// form) stops at once. Set it before the store is used.
func (db *DB) SetOptOutHook(fn func(ctx context.Context, tx *Tx, orgID, gatewayID string, phoneHash []byte) error) {
	db.optOutHook = fn
}

// SubscriptionHistory returns the changes of a phone's subscriptions, newest first.
func (db *DB) SubscriptionHistory(ctx context.Context, orgID string, phoneHash []byte) ([]sb.SubscriptionEvent, error) {
	rs, err := db.reader().query(ctx, `SELECT gateway_id, status, detail, via, COALESCE(user_id, ''), at FROM subscription_events
		WHERE org_id = $1 AND phone_hash = $2 ORDER BY at DESC, id DESC LIMIT 500`, orgID, phoneHash)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []sb.SubscriptionEvent
	for rs.Next() {
		var e sb.SubscriptionEvent
		var at int64
		if err := rs.Scan(&e.GatewayID, &e.Status, &e.Detail, &e.Via, &e.UserID, &at); err != nil {
			return nil, err
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, rs.Err()
}
