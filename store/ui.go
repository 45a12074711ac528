package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	sb "github.com/switchboard/switchboard"
)

// The web UI's state: sign-in sessions, failed sign-ins (rate limiting
// across processes) and the inbox's reads.

// Session is a signed-in browser. It is found by the SHA-256 of the token
// in the browser's cookie; the token itself is never stored.
type Session struct {
	TokenHash  []byte
	OrgID      string
	UserID     string
	CSRFToken  string
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// CreateSession stores a new session.
func (db *DB) CreateSession(ctx context.Context, s *Session) error {
	_, err := db.writer().exec(ctx, `INSERT INTO sessions (token_hash, org_id, user_id, csrf_token, created_at, last_seen_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, s.TokenHash, s.OrgID, s.UserID, s.CSRFToken, micros(s.CreatedAt), micros(s.LastSeenAt))
	return err
}

// Session returns the session with the token hash, or a not_found error.
func (db *DB) Session(ctx context.Context, tokenHash []byte) (*Session, error) {
	var s Session
	var created, seen int64
	err := db.reader().queryRow(ctx, `SELECT token_hash, org_id, user_id, csrf_token, created_at, last_seen_at FROM sessions WHERE token_hash = $1`,
		tokenHash).Scan(&s.TokenHash, &s.OrgID, &s.UserID, &s.CSRFToken, &created, &seen)
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "session not found")
	}
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeenAt = fromMicros(created), fromMicros(seen)
	return &s, nil
}

// TouchSession records that a session was used at t.
func (db *DB) TouchSession(ctx context.Context, tokenHash []byte, t time.Time) error {
	_, err := db.writer().exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND last_seen_at < $2`, tokenHash, micros(t))
	return err
}

// DeleteSession ends a session (sign-out).
func (db *DB) DeleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := db.writer().exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
	return err
}

// DeleteExpiredSessions removes sessions idle since before idleBefore or
// created before createdBefore, and returns how many.
func (db *DB) DeleteExpiredSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	return db.writer().exec(ctx, `DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2`, micros(idleBefore), micros(createdBefore))
}

// RecordLoginFailure stores one failed sign-in for each key hash, and
// drops failures older than forgetBefore.
func (db *DB) RecordLoginFailure(ctx context.Context, keyHashes [][]byte, at, forgetBefore time.Time) error {
	return db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.q.exec(ctx, `DELETE FROM login_failures WHERE at < $1`, micros(forgetBefore)); err != nil {
			return err
		}
		for _, h := range keyHashes {
			if _, err := tx.q.exec(ctx, `INSERT INTO login_failures (id, key_hash, at) VALUES ($1, $2, $3)`, NewID(), h, micros(at)); err != nil {
				return err
			}
		}
		return nil
	})
}

// LoginFailures returns how many failed sign-ins the key hash has after
// since, and the time of the oldest of them (zero when none).
func (db *DB) LoginFailures(ctx context.Context, keyHash []byte, since time.Time) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	err := db.reader().queryRow(ctx, `SELECT COUNT(*), MIN(at) FROM login_failures WHERE key_hash = $1 AND at > $2`, keyHash, micros(since)).Scan(&n, &oldest)
	if err != nil || !oldest.Valid {
		return n, time.Time{}, err
	}
	return n, fromMicros(oldest.Int64), nil
}

// ClearLoginFailures forgets the failures of a key hash (after a successful
// sign-in).
func (db *DB) ClearLoginFailures(ctx context.Context, keyHash []byte) error {
	_, err := db.writer().exec(ctx, `DELETE FROM login_failures WHERE key_hash = $1`, keyHash)
	return err
}

// InboxItem is an unread incoming message with what the built-in CRM holds
// of it (body and number are empty until the CRM record is written, and for
// orgs whose CRM is external).
type InboxItem struct {
	MessageID string
	GatewayID string
	RecordID  string
	Phone     string
	Body      string
	CreatedAt time.Time
}

// Inbox lists an org's unread incoming messages, newest first, and the
// total number unread; with gatewayIDs (a user limited to some gateways)
// only those of these gateways.
func (db *DB) Inbox(ctx context.Context, orgID string, gatewayIDs []string, limit int) ([]InboxItem, int, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	where := `m.org_id = $1 AND m.direction = 'incoming' AND m.read_at IS NULL`
	args := []any{orgID}
	if gatewayIDs != nil {
		if len(gatewayIDs) == 0 {
			return nil, 0, nil
		}
		where += ` AND m.gateway_id IN ` + inList(2, len(gatewayIDs))
		args = append(args, anyStrings(gatewayIDs)...)
	}
	var total int
	if err := db.reader().queryRow(ctx, `SELECT COUNT(*) FROM messages m WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rs, err := db.reader().query(ctx, `SELECT m.id, m.gateway_id, COALESCE(NULLIF(c.record_id, ''), m.record_id, ''), COALESCE(c.phone, ''), COALESCE(c.body, ''), m.created_at
		FROM messages m LEFT JOIN crm_messages c ON c.message_id = m.id AND c.org_id = m.org_id
		WHERE `+where+`
		ORDER BY m.created_at DESC, m.id DESC LIMIT $`+strconv.Itoa(len(args)+1), append(args, limit)...)
	if err != nil {
		return nil, 0, err
	}
	defer rs.Close()
	var out []InboxItem
	for rs.Next() {
		var it InboxItem
		var created int64
		if err := rs.Scan(&it.MessageID, &it.GatewayID, &it.RecordID, &it.Phone, &it.Body, &created); err != nil {
			return nil, 0, err
		}
		it.CreatedAt = fromMicros(created)
		out = append(out, it)
	}
	return out, total, rs.Err()
}

// StoredSubscriptionStatuses is SubscriptionStatuses outside a transaction,
// on the read pool (a bulk send's preview).
func (db *DB) StoredSubscriptionStatuses(ctx context.Context, gatewayID string, hashes [][]byte) (map[string]sb.SubscriptionStatus, error) {
	out := make(map[string]sb.SubscriptionStatus)
	const chunk = 900
	for start := 0; start < len(hashes); start += chunk {
		part := hashes[start:min(start+chunk, len(hashes))]
		args := make([]any, 0, len(part)+1)
		args = append(args, gatewayID)
		for _, h := range part {
			args = append(args, h)
		}
		rs, err := db.reader().query(ctx, `SELECT phone_hash, status FROM subscriptions WHERE gateway_id = $1 AND phone_hash IN `+inList(2, len(part)), args...)
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
