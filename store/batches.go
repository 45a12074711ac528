package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	sb "github.com/switchboard/switchboard"
)

// Batch is a bulk send.
type Batch struct {
	ID         string          `json:"id"`
	OrgID      string          `json:"org_id"`
	GatewayID  string          `json:"gateway_id"`
	CreatedBy  string          `json:"created_by"`
	Total      int             `json:"total"`
	Excluded   string          `json:"-"`
	Exclusions json.RawMessage `json:"excluded"`
	CreatedAt  time.Time       `json:"created_at"`
	// IdempotencyKey and Result make a retried request return the first
	// one's result.
	IdempotencyKey string `json:"-"`
	Result         string `json:"-"`
	// RequestHash is the keyed hash of the request made with the key.
	RequestHash []byte `json:"-"`
}

// CreateBatch stores a bulk send.
func (tx *Tx) CreateBatch(ctx context.Context, b Batch) error {
	if b.Result == "" {
		b.Result = "{}"
	}
	_, err := tx.q.exec(ctx, `INSERT INTO batches (id, org_id, gateway_id, created_by, total, excluded, created_at, idempotency_key, result, request_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		b.ID, b.OrgID, b.GatewayID, b.CreatedBy, b.Total, b.Excluded, micros(b.CreatedAt), nullStr(b.IdempotencyKey), b.Result, nullBytes(b.RequestHash))
	if errors.Is(err, errUnique) {
		return sb.Errorf(sb.EConflict, "a bulk send with this idempotency key exists")
	}
	return err
}

// BatchResult returns the stored result of the bulk send made with an
// idempotency key and the hash of its request, or "" when there is none.
func (db *DB) BatchResult(ctx context.Context, orgID, key string) (result string, requestHash []byte, err error) {
	err = db.reader().queryRow(ctx, `SELECT result, request_hash FROM batches WHERE org_id = $1 AND idempotency_key = $2`, orgID, key).Scan(&result, &requestHash)
	if errors.Is(err, errNoRows) {
		return "", nil, nil
	}
	return result, requestHash, err
}

// BulkBatch returns a bulk send of an org.
func (db *DB) BulkBatch(ctx context.Context, orgID, id string) (*Batch, error) {
	var b Batch
	var created int64
	err := db.reader().queryRow(ctx, `SELECT id, org_id, gateway_id, created_by, total, excluded, created_at FROM batches WHERE id = $1 AND org_id = $2`, id, orgID).
		Scan(&b.ID, &b.OrgID, &b.GatewayID, &b.CreatedBy, &b.Total, &b.Excluded, &created)
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "bulk send %s not found", id)
	}
	b.Exclusions = json.RawMessage(b.Excluded)
	b.CreatedAt = fromMicros(created)
	return &b, err
}
