package store

import (
	"context"
	"fmt"
	"strings"
)

// sealedColumn names a column holding values sealed with the keyring, and
// how its sealing context is built from the row.
type sealedColumn struct {
	table, key, column string
	// ctxCols are the columns the context is made of, ctx builds it.
	ctxCols string
	ctx     func(vals []string) string
}

// sealedColumns lists every sealed column of the schema.
var sealedColumns = []sealedColumn{
	{"gateways", "id", "sealed_config", "id", func(v []string) string { return "gateway:" + v[0] }},
	{"crm_connections", "org_id", "sealed", "org_id", func(v []string) string { return connCtx(v[0]) }},
	{"oauth_states", "state_hash", "sealed", "org_id", func(v []string) string { return "oauth:" + v[0] }},
	{"message_contents", "message_id", "sealed", "message_id", func(v []string) string { return "msg:" + v[0] }},
	{"link_clicks", "id", "sealed_ip", "id", func(v []string) string { return "click:" + v[0] }},
	{"form_sessions", "id", "sealed_phone", "id", func(v []string) string { return "form_phone:" + v[0] }},
	{"form_answers", "id", "sealed", "id", func(v []string) string { return "form_answer:" + v[0] }},
	{"chat_settings", "org_id", "sealed_key", "org_id", func(v []string) string { return chatSettingsContext(v[0]) }},
	{"chat_conversations", "id", "sealed_fields", "id", func(v []string) string { return chatContext(v[0]) + ":fields" }},
	{"chat_messages", "id", "sealed", "conversation_id, id", func(v []string) string { return chatContext(v[0]) + ":msg:" + v[1] }},
}

// Reseal re-encrypts every sealed value made with a key other than the
// keyring's current one (key rotation: put the new key first in
// SWITCHBOARD_SECRET_KEYS, run reseal, then drop the old key). It returns
// how many values it re-sealed, in batches of 500 per transaction.
func (db *DB) Reseal(ctx context.Context) (int, error) {
	total := 0
	for _, c := range sealedColumns {
		for {
			n, err := db.resealBatch(ctx, c)
			if err != nil {
				return total, fmt.Errorf("reseal %s.%s: %w", c.table, c.column, err)
			}
			total += n
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}

// resealBatch re-seals up to 500 values of a column that need it.
func (db *DB) resealBatch(ctx context.Context, c sealedColumn) (int, error) {
	done := 0
	err := db.Tx(ctx, func(tx *Tx) error {
		done = 0
		rs, err := tx.q.query(ctx, `SELECT `+c.key+`, `+c.ctxCols+`, `+c.column+` FROM `+c.table+` WHERE `+c.column+` IS NOT NULL`)
		if err != nil {
			return err
		}
		type upd struct {
			key    any
			sealed []byte
		}
		var ups []upd
		nctx := len(splitCols(c.ctxCols))
		for rs.Next() && len(ups) < 500 {
			var key any
			vals := make([]string, nctx)
			var sealed []byte
			dest := []any{&key}
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			dest = append(dest, &sealed)
			if err := rs.Scan(dest...); err != nil {
				rs.Close()
				return err
			}
			if !db.keys.NeedsReseal(sealed) {
				continue
			}
			context := c.ctx(vals)
			plain, err := db.keys.Open(context, sealed)
			if err != nil {
				rs.Close()
				return fmt.Errorf("a value of %s cannot be opened with any key in SWITCHBOARD_SECRET_KEYS", c.table)
			}
			ups = append(ups, upd{key: key, sealed: db.keys.Seal(context, plain)})
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		for _, u := range ups {
			if _, err := tx.q.exec(ctx, `UPDATE `+c.table+` SET `+c.column+` = $1 WHERE `+c.key+` = $2`, u.sealed, u.key); err != nil {
				return err
			}
		}
		done = len(ups)
		return nil
	})
	return done, err
}

func splitCols(s string) []string { return strings.Split(strings.ReplaceAll(s, " ", ""), ",") }
