package store

import (
	"context"
	"time"
)

// Purge deletes data past its retention (before) and scrubs finished job
// payloads. It returns the rows changed. What goes:
//
//   - status reports that never matched a message (cached provider reports);
//   - sealed contents of messages that were processed long ago but never
//     written to the CRM (a message still waiting to be sent keeps it);
//   - link clicks already written to the CRM, and form sessions that ended
//     and are in the CRM (their answers go with them);
//   - the arguments of finished jobs (they carry ids only, but nothing is
//     kept longer than needed) — at once, not after the retention period.
func (db *DB) Purge(ctx context.Context, before time.Time) (int64, error) {
	b := micros(before)
	now := micros(db.now())
	stmts := []struct {
		q    string
		args []any
	}{
		{`DELETE FROM unmatched_statuses WHERE at < $1`, []any{b}},
		{`DELETE FROM message_contents WHERE created_at < $1 AND message_id IN
			(SELECT id FROM messages WHERE status <> 'Queued' OR provider_message_id IS NOT NULL)`, []any{b}},
		{`DELETE FROM link_clicks WHERE written_at IS NOT NULL AND written_at < $1`, []any{b}},
		{`DELETE FROM form_sessions WHERE status <> 'open' AND ended_at < $1 AND version <= crm_version`, []any{b}},
		{`UPDATE river_job SET args = '{}' WHERE state IN ('completed', 'cancelled', 'discarded') AND finalized_at IS NOT NULL AND ` + db.riverTimeBefore("finalized_at", "$1") + ` AND ` + db.argsNotEmpty(), []any{now}},
	}
	var total int64
	err := db.Tx(ctx, func(tx *Tx) error {
		total = 0
		for _, s := range stmts {
			n, err := tx.q.exec(ctx, s.q, s.args...)
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total, err
}

// riverTimeBefore compares one of River's timestamp columns (timestamptz on
// PostgreSQL, text on SQLite) with a Unix-microseconds parameter.
func (db *DB) riverTimeBefore(col, param string) string {
	if db.dialect == Postgres {
		return col + ` < to_timestamp(CAST(` + param + ` AS BIGINT) / 1000000.0)`
	}
	return `unixepoch(` + col + `, 'subsec') * 1000000 < ` + param
}

func (db *DB) argsNotEmpty() string {
	if db.dialect == Postgres {
		return `args <> '{}'::jsonb`
	}
	return `CAST(args AS TEXT) <> '{}'`
}
