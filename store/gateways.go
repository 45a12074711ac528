package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sb "github.com/switchboard/switchboard"
)

const gatewayCols = `id, org_id, name, provider, number, number_type, rate, rate_unit, keywords, help_text, opt_out_reply, opt_in_reply, sandbox, sealed_config, active, created_at`

func (db *DB) scanGateway(r row) (*sb.Gateway, error) {
	var g sb.Gateway
	var keywords string
	var sealed []byte
	var created int64
	if err := r.Scan(&g.ID, &g.OrgID, &g.Name, &g.Provider, &g.Number, &g.NumberType, &g.Rate, &g.RateUnit, &keywords,
		&g.HelpText, &g.OptOutReply, &g.OptInReply, &g.Sandbox, &sealed, &g.Active, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(keywords), &g.Keywords); err != nil {
		return nil, fmt.Errorf("gateway %s keywords: %w", g.ID, err)
	}
	plain, err := db.keys.Open("gateway:"+g.ID, sealed)
	if err != nil {
		return nil, fmt.Errorf("gateway %s config: %w", g.ID, err)
	}
	if err := json.Unmarshal(plain, &g.Config); err != nil {
		return nil, fmt.Errorf("gateway %s config: %w", g.ID, err)
	}
	g.CreatedAt = fromMicros(created)
	return &g, nil
}

// CreateGateway stores a gateway (already normalised and validated by its
// provider). Its config is sealed.
func (tx *Tx) CreateGateway(ctx context.Context, g *sb.Gateway) error {
	if g.ID == "" {
		g.ID = NewID()
	}
	now := tx.db.now().UTC()
	g.CreatedAt = now
	kw, _ := json.Marshal(g.Keywords)
	cfg, _ := json.Marshal(g.Config)
	_, err := tx.q.exec(ctx, `INSERT INTO gateways (`+gatewayCols+`, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)`,
		g.ID, g.OrgID, g.Name, g.Provider, g.Number, g.NumberType, g.Rate, g.RateUnit, string(kw),
		g.HelpText, g.OptOutReply, g.OptInReply, g.Sandbox, tx.db.keys.Seal("gateway:"+g.ID, cfg), g.Active, micros(now))
	if errors.Is(err, errUnique) {
		return sb.Errorf(sb.EConflict, "this org already has a %s gateway for %s", g.Provider, g.Number)
	}
	if err != nil {
		return err
	}
	_, err = tx.q.exec(ctx, `INSERT INTO gateway_pacing (gateway_id, next_at) VALUES ($1, 0)`, g.ID)
	return err
}

// DeleteNewGateway removes a gateway that was just created and never used
// (its setup at the partner failed). A gateway with messages or
// subscriptions is not removed: their references make the delete fail.
func (tx *Tx) DeleteNewGateway(ctx context.Context, orgID, id string) error {
	n, err := tx.q.exec(ctx, `DELETE FROM gateways WHERE id = $1 AND org_id = $2`, id, orgID)
	if err != nil {
		return err
	}
	if n == 0 {
		return sb.Errorf(sb.ENotFound, "gateway %s not found", id)
	}
	return nil
}

// UpdateGateway replaces a gateway's settings.
func (tx *Tx) UpdateGateway(ctx context.Context, g *sb.Gateway) error {
	kw, _ := json.Marshal(g.Keywords)
	cfg, _ := json.Marshal(g.Config)
	n, err := tx.q.exec(ctx, `UPDATE gateways SET name = $3, number = $4, number_type = $5, rate = $6, rate_unit = $7, keywords = $8,
		help_text = $9, opt_out_reply = $10, opt_in_reply = $11, sandbox = $12, sealed_config = $13, active = $14, updated_at = $15
		WHERE id = $1 AND org_id = $2`,
		g.ID, g.OrgID, g.Name, g.Number, g.NumberType, g.Rate, g.RateUnit, string(kw), g.HelpText, g.OptOutReply, g.OptInReply,
		g.Sandbox, tx.db.keys.Seal("gateway:"+g.ID, cfg), g.Active, micros(tx.db.now()))
	if errors.Is(err, errUnique) {
		return sb.Errorf(sb.EConflict, "this org already has a %s gateway for %s", g.Provider, g.Number)
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return sb.Errorf(sb.ENotFound, "gateway %s not found", g.ID)
	}
	return nil
}

// Gateway returns a gateway by id. orgID "" finds it in any org (webhooks).
func (db *DB) Gateway(ctx context.Context, orgID, id string) (*sb.Gateway, error) {
	return db.gateway(ctx, db.reader(), orgID, id)
}

// Gateway returns a gateway within the transaction.
func (tx *Tx) Gateway(ctx context.Context, orgID, id string) (*sb.Gateway, error) {
	return tx.db.gateway(ctx, tx.q, orgID, id)
}

func (db *DB) gateway(ctx context.Context, q querier, orgID, id string) (*sb.Gateway, error) {
	var g *sb.Gateway
	var err error
	if orgID == "" {
		g, err = db.scanGateway(q.queryRow(ctx, `SELECT `+gatewayCols+` FROM gateways WHERE id = $1`, id))
	} else {
		g, err = db.scanGateway(q.queryRow(ctx, `SELECT `+gatewayCols+` FROM gateways WHERE id = $1 AND org_id = $2`, id, orgID))
	}
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "gateway %s not found", id)
	}
	return g, err
}

// Gateways lists an org's gateways; orgID "" lists every org's.
func (db *DB) Gateways(ctx context.Context, orgID string) ([]*sb.Gateway, error) {
	var rs rows
	var err error
	if orgID == "" {
		rs, err = db.reader().query(ctx, `SELECT `+gatewayCols+` FROM gateways ORDER BY created_at`)
	} else {
		rs, err = db.reader().query(ctx, `SELECT `+gatewayCols+` FROM gateways WHERE org_id = $1 ORDER BY created_at`, orgID)
	}
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*sb.Gateway
	for rs.Next() {
		g, err := db.scanGateway(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rs.Err()
}

// ReserveSendSlots reserves n send slots of cost seconds each on a gateway's
// shared pacing row and returns when the first may be used (Unix
// microseconds). Slots are consecutive: slot i starts at first + i*cost.
// Reservations from every process go through the same row, so together they
// never exceed the gateway's rate. The first slot starts no earlier than
// lead after the statement runs, so that a reservation whose answer takes a
// while to come back (a busy database or machine) still finds its slot
// ahead, not behind.
func (db *DB) ReserveSendSlots(ctx context.Context, gatewayID string, n int, costMicros, leadMicros int64) (int64, error) {
	total := int64(n) * costMicros
	greatest := "MAX"
	if db.dialect == Postgres {
		greatest = "GREATEST"
	}
	var next int64
	err := db.Batch(ctx, func(tx *Tx) error {
		// The clock is read when the statement runs, not when the call was
		// made: a group commit may have queued it behind other work.
		notBefore := micros(db.now()) + max(leadMicros, 0)
		return tx.q.queryRow(ctx, `UPDATE gateway_pacing SET next_at = `+greatest+`(next_at, $2) + $3 WHERE gateway_id = $1 RETURNING next_at`,
			gatewayID, notBefore, total).Scan(&next)
	})
	if errors.Is(err, errNoRows) {
		return 0, sb.Errorf(sb.ENotFound, "gateway %s has no pacing row", gatewayID)
	}
	if err != nil {
		return 0, err
	}
	return next - total, nil
}

// PacingNext returns a gateway's next free send slot (Unix microseconds).
func (db *DB) PacingNext(ctx context.Context, gatewayID string) (int64, error) {
	var next int64
	err := db.reader().queryRow(ctx, `SELECT next_at FROM gateway_pacing WHERE gateway_id = $1`, gatewayID).Scan(&next)
	if errors.Is(err, errNoRows) {
		return 0, nil
	}
	return next, err
}

// DelayGateway pushes a gateway's next free send slot to at least until
// (a provider asked every sender to slow down).
func (db *DB) DelayGateway(ctx context.Context, gatewayID string, until time.Time) error {
	greatest := "MAX"
	if db.dialect == Postgres {
		greatest = "GREATEST"
	}
	return db.Batch(ctx, func(tx *Tx) error {
		_, err := tx.q.exec(ctx, `UPDATE gateway_pacing SET next_at = `+greatest+`(next_at, $2) WHERE gateway_id = $1`, gatewayID, micros(until))
		return err
	})
}
