package store

import (
	"context"
	"errors"

	sb "github.com/switchboard/switchboard"
)

const subCols = `org_id, gateway_id, phone_hash, status, detail, via, by_keyword, COALESCE(updated_by, ''), updated_at`

func scanSub(r row) (*sb.Subscription, error) {
	var s sb.Subscription
	var at int64
	if err := r.Scan(&s.OrgID, &s.GatewayID, &s.PhoneHash, &s.Status, &s.Detail, &s.Via, &s.ByKeyword, &s.UpdatedBy, &at); err != nil {
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
// gateway in one set-based query (bulk sends check 100,000 recipients
// without 100,000 queries). Hashes with no record are absent.
func (tx *Tx) SubscriptionStatuses(ctx context.Context, gatewayID string, hashes [][]byte) (map[string]sb.SubscriptionStatus, error) {
	out := make(map[string]sb.SubscriptionStatus)
	const chunk = 900
	for start := 0; start < len(hashes); start += chunk {
		part := hashes[start:min(start+chunk, len(hashes))]
		args := make([]any, 0, len(part)+1)
		args = append(args, gatewayID)
		for _, h := range part {
			args = append(args, h)
		}
		rs, err := tx.q.query(ctx, `SELECT phone_hash, status FROM subscriptions WHERE gateway_id = $1 AND phone_hash IN `+inList(2, len(part)), args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var h []byte
			var st string
			if err := rs.Scan(&h, &st); err != nil {
				rs.Close()
				return nil, err
			}
			out[string(h)] = sb.SubscriptionStatus(st)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SetSubscription stores a subscription change and its history entry.
func (tx *Tx) SetSubscription(ctx context.Context, s *sb.Subscription) error {
	s.UpdatedAt = tx.db.now().UTC()
	at := micros(s.UpdatedAt)
	_, err := tx.q.exec(ctx, `INSERT INTO subscriptions (org_id, gateway_id, phone_hash, status, detail, via, by_keyword, updated_by, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (gateway_id, phone_hash) DO UPDATE SET status = excluded.status, detail = excluded.detail, via = excluded.via,
			by_keyword = excluded.by_keyword, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		s.OrgID, s.GatewayID, s.PhoneHash, string(s.Status), s.Detail, s.Via, s.ByKeyword, nullStr(s.UpdatedBy), at)
	if err != nil {
		return err
	}
	_, err = tx.q.exec(ctx, `INSERT INTO subscription_events (id, org_id, gateway_id, phone_hash, status, detail, via, user_id, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		NewID(), s.OrgID, s.GatewayID, s.PhoneHash, string(s.Status), s.Detail, s.Via, nullStr(s.UpdatedBy), at)
	return err
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
