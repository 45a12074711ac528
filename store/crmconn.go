package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	sb "github.com/switchboard/switchboard"
)

// CRMConnection is an org's stored CRM connection document (plaintext JSON
// once opened; sealed at rest).
type CRMConnection struct {
	Data          []byte
	Offline       bool
	OfflineReason string
	UpdatedAt     time.Time

	// refreshHash is the stored hash of the refresh token the document
	// holds (the compare-and-swap's comparand).
	refreshHash []byte
}

func refreshHash(token string) []byte {
	if token == "" {
		return nil
	}
	s := sha256.Sum256([]byte(token))
	return s[:]
}

func connCtx(orgID string) string { return "crmconn:" + orgID }

// CRMConnection returns the org's connection document, or ENotFound.
func (db *DB) CRMConnection(ctx context.Context, orgID string) (*CRMConnection, error) {
	return db.crmConnection(ctx, db.reader(), orgID, false)
}

func (db *DB) crmConnection(ctx context.Context, q querier, orgID string, lock bool) (*CRMConnection, error) {
	var c CRMConnection
	var sealed []byte
	var at int64
	sfx := ""
	if lock && db.dialect == Postgres {
		sfx = " FOR UPDATE"
	}
	err := q.queryRow(ctx, `SELECT sealed, offline, offline_reason, updated_at, refresh_hash FROM crm_connections WHERE org_id = $1`+sfx, orgID).
		Scan(&sealed, &c.Offline, &c.OfflineReason, &at, &c.refreshHash)
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "org has no CRM connection")
	}
	if err != nil {
		return nil, err
	}
	if c.Data, err = db.keys.Open(connCtx(orgID), sealed); err != nil {
		return nil, err
	}
	c.UpdatedAt = fromMicros(at)
	return &c, nil
}

// SaveCRMConnection stores (replaces) an org's connection document; the
// refresh token it holds is given for the compare-and-swap of refreshes.
func (db *DB) SaveCRMConnection(ctx context.Context, orgID string, data []byte, refreshToken string, offline bool, reason string) error {
	return db.Tx(ctx, func(tx *Tx) error {
		_, err := tx.q.exec(ctx, `INSERT INTO crm_connections (org_id, sealed, offline, offline_reason, updated_at, refresh_hash)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (org_id) DO UPDATE SET sealed = excluded.sealed, offline = excluded.offline, offline_reason = excluded.offline_reason,
				updated_at = excluded.updated_at, refresh_hash = excluded.refresh_hash`,
			orgID, db.keys.Seal(connCtx(orgID), data), offline, reason, micros(db.now()), refreshHash(refreshToken))
		return err
	})
}

// SwapCRMTokens is the compare-and-swap of a token refresh: when the stored
// connection is online and still holds oldRefresh, update turns its
// document into the new one (and names the new refresh token). It returns
// the stored document afterwards, swapped or not.
//
// The comparison is made on the row read under its lock (FOR UPDATE on
// PostgreSQL; SQLite has one writer), and the UPDATE repeats it in its WHERE
// clause, so two refreshes from the same old token never both win.
func (db *DB) SwapCRMTokens(ctx context.Context, orgID, oldRefresh string, update func(data []byte) ([]byte, string, error)) ([]byte, error) {
	var out []byte
	old := refreshHash(oldRefresh)
	err := db.Tx(ctx, func(tx *Tx) error {
		cur, err := db.crmConnection(ctx, tx.q, orgID, true)
		if err != nil {
			return err
		}
		out = cur.Data
		if cur.Offline || string(cur.refreshHash) != string(old) {
			return nil
		}
		data, newRefresh, err := update(cur.Data)
		if err != nil {
			return err
		}
		// A connection without a refresh token (JWT bearer) has a NULL hash;
		// the comparison is NULL-safe.
		same := "refresh_hash IS $5"
		if db.dialect == Postgres {
			same = "refresh_hash IS NOT DISTINCT FROM $5"
		}
		n, err := tx.q.exec(ctx, `UPDATE crm_connections SET sealed = $2, refresh_hash = $3, updated_at = $4
			WHERE org_id = $1 AND `+same+` AND NOT offline`,
			orgID, db.keys.Seal(connCtx(orgID), data), refreshHash(newRefresh), micros(db.now()), old)
		if err != nil {
			return err
		}
		if n == 1 {
			out = data
		}
		return nil
	})
	return out, err
}

// SetCRMOffline marks an org's connection offline with a reason (no secrets).
func (db *DB) SetCRMOffline(ctx context.Context, orgID, reason string, update func(data []byte) []byte) error {
	return db.Tx(ctx, func(tx *Tx) error {
		cur, err := db.crmConnection(ctx, tx.q, orgID, true)
		if err != nil {
			return err
		}
		_, err = tx.q.exec(ctx, `UPDATE crm_connections SET sealed = $2, offline = TRUE, offline_reason = $3, updated_at = $4 WHERE org_id = $1`,
			orgID, db.keys.Seal(connCtx(orgID), update(cur.Data)), reason, micros(db.now()))
		return err
	})
}

// HealthCheck is one stored CRM health report.
type HealthCheck struct {
	ID     string    `json:"id"`
	OK     bool      `json:"ok"`
	Report []byte    `json:"-"`
	At     time.Time `json:"at"`
}

// SaveHealthCheck stores a health report and keeps the latest 500 per org.
func (db *DB) SaveHealthCheck(ctx context.Context, orgID string, ok bool, report []byte) error {
	return db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.q.exec(ctx, `INSERT INTO health_checks (id, org_id, ok, report, at) VALUES ($1, $2, $3, $4, $5)`,
			NewID(), orgID, ok, string(report), micros(db.now())); err != nil {
			return err
		}
		_, err := tx.q.exec(ctx, `DELETE FROM health_checks WHERE org_id = $1 AND id NOT IN
			(SELECT id FROM health_checks WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT 500)`, orgID)
		return err
	})
}

// HealthAlertState returns what the org's admins were last alerted about
// (see ClaimHealthAlert): "" when nothing fails or no alert was sent yet.
func (db *DB) HealthAlertState(ctx context.Context, orgID string) (string, error) {
	var failing string
	err := db.reader().queryRow(ctx, `SELECT failing FROM health_alert_state WHERE org_id = $1`, orgID).Scan(&failing)
	if errors.Is(err, errNoRows) {
		return "", nil
	}
	return failing, err
}

// ClaimHealthAlert moves the org's alerted health state from was (as
// HealthAlertState read it) to now. It reports false when another check
// changed the state first: that check sends the alert, this one does not.
func (db *DB) ClaimHealthAlert(ctx context.Context, orgID, was, now string) (bool, error) {
	var n int64
	err := db.Tx(ctx, func(tx *Tx) error {
		var err error
		// No row reads as "" (HealthAlertState): the first claim inserts it.
		n, err = tx.q.exec(ctx, `INSERT INTO health_alert_state (org_id, failing) VALUES ($1, $3)
			ON CONFLICT (org_id) DO UPDATE SET failing = excluded.failing WHERE health_alert_state.failing = $2`, orgID, was, now)
		return err
	})
	return n == 1, err
}

// HealthChecks returns an org's latest health reports, newest first.
func (db *DB) HealthChecks(ctx context.Context, orgID string, limit int) ([]HealthCheck, error) {
	rs, err := db.reader().query(ctx, `SELECT id, ok, report, at FROM health_checks WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, orgID, limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []HealthCheck
	for rs.Next() {
		var h HealthCheck
		var report string
		var at int64
		if err := rs.Scan(&h.ID, &h.OK, &report, &at); err != nil {
			return nil, err
		}
		h.Report, h.At = []byte(report), fromMicros(at)
		out = append(out, h)
	}
	return out, rs.Err()
}

// SaveOAuthState stores an authorization request in flight.
func (db *DB) SaveOAuthState(ctx context.Context, state, orgID, userID string, payload []byte, ttl time.Duration) error {
	return db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.q.exec(ctx, `DELETE FROM oauth_states WHERE expires_at < $1`, micros(db.now())); err != nil {
			return err
		}
		_, err := tx.q.exec(ctx, `INSERT INTO oauth_states (state_hash, org_id, user_id, sealed, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			refreshHash(state), orgID, userID, db.keys.Seal("oauth:"+orgID, payload), micros(db.now().Add(ttl)))
		return err
	})
}

// TakeOAuthState returns and deletes an authorization request; an unknown
// or expired state is ENotFound.
func (db *DB) TakeOAuthState(ctx context.Context, state string) (orgID, userID string, payload []byte, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		var sealed []byte
		var exp int64
		err := tx.q.queryRow(ctx, `DELETE FROM oauth_states WHERE state_hash = $1 RETURNING org_id, user_id, sealed, expires_at`, refreshHash(state)).
			Scan(&orgID, &userID, &sealed, &exp)
		if errors.Is(err, errNoRows) || (err == nil && exp < micros(db.now())) {
			return sb.Errorf(sb.ENotFound, "the authorization request is unknown or has expired; start again")
		}
		if err != nil {
			return err
		}
		payload, err = db.keys.Open("oauth:"+orgID, sealed)
		return err
	})
	return orgID, userID, payload, err
}

// TakeListenerLease takes or renews the lease on a connection-oriented
// gateway for holder until the given time; it reports whether holder has it.
func (db *DB) TakeListenerLease(ctx context.Context, gatewayID, holder string, until time.Time) (bool, error) {
	var got string
	err := db.Batch(ctx, func(tx *Tx) error {
		return tx.q.queryRow(ctx, `INSERT INTO listener_leases (gateway_id, holder, until) VALUES ($1, $2, $3)
			ON CONFLICT (gateway_id) DO UPDATE SET holder = excluded.holder, until = excluded.until
				WHERE listener_leases.holder = excluded.holder OR listener_leases.until < $4
			RETURNING holder`, gatewayID, holder, micros(until), micros(db.now())).Scan(&got)
	})
	if errors.Is(err, errNoRows) {
		return false, nil
	}
	return err == nil && got == holder, err
}

// ReleaseListenerLease gives a lease up.
func (db *DB) ReleaseListenerLease(ctx context.Context, gatewayID, holder string) error {
	_, err := db.writer().exec(ctx, `DELETE FROM listener_leases WHERE gateway_id = $1 AND holder = $2`, gatewayID, holder)
	return err
}
