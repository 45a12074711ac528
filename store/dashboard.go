package store

import (
	"context"
	"time"

	sb "github.com/switchboard/switchboard"
)

// The dashboard's aggregates: set-based queries that group in the
// database, the same on both engines.

// StatusCount is how many messages of one gateway, direction and status
// were created in one time bucket.
type StatusCount struct {
	GatewayID string
	// Bucket is the bucket's index from the start of the range.
	Bucket    int
	Direction sb.Direction
	Status    sb.Status
	Count     int
}

// MessageCounts counts an org's messages created in [from, to) by gateway,
// time bucket of the given width, direction and status.
func (db *DB) MessageCounts(ctx context.Context, orgID string, from, to time.Time, bucket time.Duration) ([]StatusCount, error) {
	if bucket <= 0 {
		return nil, sb.FieldError("bucket", "bucket width must be positive")
	}
	width := bucket.Microseconds()
	if width <= 0 {
		return nil, sb.FieldError("bucket", "bucket width must be at least a microsecond")
	}
	rs, err := db.reader().query(ctx, `SELECT gateway_id, (created_at - $2) / $4, direction, status, COUNT(*) FROM messages
		WHERE org_id = $1 AND created_at >= $2 AND created_at < $3
		GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`, orgID, micros(from), micros(to), width)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []StatusCount
	for rs.Next() {
		var c StatusCount
		var b int64
		if err := rs.Scan(&c.GatewayID, &b, &c.Direction, &c.Status, &c.Count); err != nil {
			return nil, err
		}
		c.Bucket = int(b)
		out = append(out, c)
	}
	return out, rs.Err()
}

// OptOutCount is how many opt-outs one gateway recorded by one route
// (keyword, manual, provider…).
type OptOutCount struct {
	GatewayID string
	Via       string
	Count     int
}

// OptOutCounts counts an org's opt-outs recorded in [from, to) by gateway
// and route.
func (db *DB) OptOutCounts(ctx context.Context, orgID string, from, to time.Time) ([]OptOutCount, error) {
	rs, err := db.reader().query(ctx, `SELECT gateway_id, via, COUNT(*) FROM subscription_events
		WHERE org_id = $1 AND status = $4 AND at >= $2 AND at < $3
		GROUP BY 1, 2 ORDER BY 1, 2`, orgID, micros(from), micros(to), string(sb.OptedOut))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []OptOutCount
	for rs.Next() {
		var c OptOutCount
		if err := rs.Scan(&c.GatewayID, &c.Via, &c.Count); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rs.Err()
}
