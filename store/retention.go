package store

import (
	"context"
	"time"
)

// Purge deletes data past its retention: status reports that never matched
// a message, and sealed contents of messages that were never processed
// (a message still waiting to be sent is kept). It returns the rows deleted.
func (db *DB) Purge(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	err := db.Tx(ctx, func(tx *Tx) error {
		total = 0
		n, err := tx.q.exec(ctx, `DELETE FROM unmatched_statuses WHERE at < $1`, micros(before))
		if err != nil {
			return err
		}
		total += n
		n, err = tx.q.exec(ctx, `DELETE FROM message_contents WHERE created_at < $1 AND message_id IN
			(SELECT id FROM messages WHERE status <> 'Queued' OR provider_message_id IS NOT NULL)`, micros(before))
		total += n
		return err
	})
	return total, err
}
