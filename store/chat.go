package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// Chat conversations (package chat) keep their content — speaker names,
// message text, captured fields — sealed in the chat_* tables, bound to the
// conversation, and delete it after a successful export plus the org's
// retention period. States, times, counts and the export log stay.

// Chat conversation states.
const (
	ChatOpen     = "open"
	ChatPending  = "pending" // export queued, running or retrying
	ChatHeld     = "held"    // the CRM is offline; the export waits
	ChatExported = "exported"
	ChatSkipped  = "skipped"
	ChatFailed   = "failed"
)

// ChatRetrying is the export log status of a round that failed with a
// retryable error and waits for its next attempt (the conversation is then
// pending).
const ChatRetrying = "retrying"

// ChatConversation is the operational record of a chat conversation.
type ChatConversation struct {
	ID     string `json:"id"`
	OrgID  string `json:"org_id"`
	UserID string `json:"user_id,omitempty"`
	// Source is "api" or "widget".
	Source       string     `json:"source"`
	State        string     `json:"state"`
	Round        int        `json:"export_round"`
	MessageCount int        `json:"message_count"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	ClosedAt     *time.Time `json:"closed_at,omitempty"`
	ExportedAt   *time.Time `json:"exported_at,omitempty"`
	PurgeAfter   *time.Time `json:"content_purge_after,omitempty"`
	PurgedAt     *time.Time `json:"content_purged_at,omitempty"`
}

// ChatMessage is one message of a conversation. Name and Text are stored
// sealed.
type ChatMessage struct {
	ID  string `json:"id"`
	Seq int    `json:"seq"`
	// Speaker is visitor, bot or agent.
	Speaker string    `json:"speaker"`
	Name    string    `json:"name,omitempty"`
	Text    string    `json:"text"`
	At      time.Time `json:"at"`
}

const chatCols = `id, org_id, COALESCE(user_id, ''), source, state, round, message_count, created_at, updated_at,
	closed_at, exported_at, purge_after, purged_at`

func scanChat(r row, extra ...any) (*ChatConversation, error) {
	var c ChatConversation
	var created, updated int64
	var closed, exported, purgeAfter, purged sql.NullInt64
	dest := []any{&c.ID, &c.OrgID, &c.UserID, &c.Source, &c.State, &c.Round, &c.MessageCount, &created, &updated,
		&closed, &exported, &purgeAfter, &purged}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	c.ClosedAt, c.ExportedAt, c.PurgeAfter, c.PurgedAt = timePtr(closed), timePtr(exported), timePtr(purgeAfter), timePtr(purged)
	return &c, nil
}

func chatContext(convID string) string { return "chat:" + convID }

func (db *DB) sealChatFields(convID string, fields map[string]string) []byte {
	if fields == nil {
		fields = map[string]string{}
	}
	b, _ := json.Marshal(fields)
	return db.keys.Seal(chatContext(convID)+":fields", b)
}

func (db *DB) openChatFields(convID string, sealed []byte) (map[string]string, error) {
	out := map[string]string{}
	if sealed == nil {
		return out, nil
	}
	b, err := db.keys.Open(chatContext(convID)+":fields", sealed)
	if err != nil {
		return nil, fmt.Errorf("chat %s fields: %w", convID, err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// sealedMessage is the sealed part of a chat message.
type sealedMessage struct {
	Name string `json:"n"`
	Text string `json:"t"`
}

func (db *DB) sealChatMessage(convID string, m *ChatMessage) []byte {
	b, _ := json.Marshal(sealedMessage{Name: m.Name, Text: m.Text})
	return db.keys.Seal(chatContext(convID)+":msg:"+m.ID, b)
}

func (db *DB) openChatMessage(convID string, m *ChatMessage, sealed []byte) error {
	b, err := db.keys.Open(chatContext(convID)+":msg:"+m.ID, sealed)
	if err != nil {
		return fmt.Errorf("chat %s message %s: %w", convID, m.ID, err)
	}
	var sm sealedMessage
	if err := json.Unmarshal(b, &sm); err != nil {
		return err
	}
	m.Name, m.Text = sm.Name, sm.Text
	return nil
}

// CreateChatConversation stores a new open conversation with its captured
// fields. visitorSecretHash (widget conversations) may be nil.
func (tx *Tx) CreateChatConversation(ctx context.Context, c *ChatConversation, fields map[string]string, visitorSecretHash []byte) error {
	if c.ID == "" {
		c.ID = NewID()
	}
	if c.Source == "" {
		c.Source = "api"
	}
	now := tx.db.now().UTC()
	c.State, c.Round, c.MessageCount, c.CreatedAt, c.UpdatedAt = ChatOpen, 0, 0, now, now
	_, err := tx.q.exec(ctx, `INSERT INTO chat_conversations (id, org_id, user_id, source, state, round, message_count, sealed_fields,
		visitor_secret_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $7, $8, $8)`,
		c.ID, c.OrgID, nullStr(c.UserID), c.Source, ChatOpen, tx.db.sealChatFields(c.ID, fields), visitorSecretHash, micros(now))
	return err
}

// getChat reads a conversation; with sealed set it also reads the sealed
// fields into it. suffix ends the query (FOR UPDATE).
func getChat(ctx context.Context, q querier, orgID, id, suffix string, sealed *[]byte) (*ChatConversation, error) {
	cols, extra := chatCols, []any{}
	if sealed != nil {
		cols, extra = chatCols+", sealed_fields", []any{sealed}
	}
	c, err := scanChat(q.queryRow(ctx, `SELECT `+cols+` FROM chat_conversations WHERE id = $1 AND org_id = $2`+suffix, id, orgID), extra...)
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "chat conversation %s not found", id)
	}
	return c, err
}

// ChatConversation returns a conversation of an org.
func (db *DB) ChatConversation(ctx context.Context, orgID, id string) (*ChatConversation, error) {
	return getChat(ctx, db.reader(), orgID, id, "", nil)
}

// LockChatConversation returns a conversation and its captured fields,
// locking its row until the transaction ends (PostgreSQL; SQLite
// transactions already hold the single write lock).
func (tx *Tx) LockChatConversation(ctx context.Context, orgID, id string) (*ChatConversation, map[string]string, error) {
	lock := ""
	if tx.db.dialect == Postgres {
		lock = " FOR UPDATE"
	}
	var sealed []byte
	c, err := getChat(ctx, tx.q, orgID, id, lock, &sealed)
	if err != nil {
		return nil, nil, err
	}
	fields, err := tx.db.openChatFields(id, sealed)
	return c, fields, err
}

// notOpen explains why a conversation could not be changed: it does not
// exist, or it is closed.
func (tx *Tx) notOpen(ctx context.Context, orgID, id string) error {
	c, err := getChat(ctx, tx.q, orgID, id, "", nil)
	if err != nil {
		return err
	}
	return sb.Errorf(sb.EConflict, "chat conversation %s is closed (%s); it cannot be changed", id, c.State)
}

// SetChatFields replaces the captured fields of an open conversation.
func (tx *Tx) SetChatFields(ctx context.Context, orgID, id string, fields map[string]string) error {
	n, err := tx.q.exec(ctx, `UPDATE chat_conversations SET sealed_fields = $3, updated_at = $4 WHERE id = $1 AND org_id = $2 AND state = 'open'`,
		id, orgID, tx.db.sealChatFields(id, fields), micros(tx.db.now()))
	if err != nil {
		return err
	}
	if n == 0 {
		return tx.notOpen(ctx, orgID, id)
	}
	return nil
}

// SetChatUser sets the user who handles an open conversation ("" for none).
func (tx *Tx) SetChatUser(ctx context.Context, orgID, id, userID string) error {
	n, err := tx.q.exec(ctx, `UPDATE chat_conversations SET user_id = $3, updated_at = $4 WHERE id = $1 AND org_id = $2 AND state = 'open'`,
		id, orgID, nullStr(userID), micros(tx.db.now()))
	if err != nil {
		return err
	}
	if n == 0 {
		return tx.notOpen(ctx, orgID, id)
	}
	return nil
}

// AddChatMessage appends a message to an open conversation; it sets the
// message's id and sequence number. max bounds the messages of one
// conversation.
func (tx *Tx) AddChatMessage(ctx context.Context, orgID, convID string, m *ChatMessage, max int) error {
	var seq int
	err := tx.q.queryRow(ctx, `UPDATE chat_conversations SET message_count = message_count + 1, updated_at = $3
		WHERE id = $1 AND org_id = $2 AND state = 'open' RETURNING message_count`, convID, orgID, micros(tx.db.now())).Scan(&seq)
	if errors.Is(err, errNoRows) {
		return tx.notOpen(ctx, orgID, convID)
	}
	if err != nil {
		return err
	}
	if seq > max {
		return sb.Errorf(sb.EConflict, "chat conversation %s already has %d messages, the most one conversation may have", convID, max)
	}
	m.ID, m.Seq = NewID(), seq
	_, err = tx.q.exec(ctx, `INSERT INTO chat_messages (id, conversation_id, seq, speaker, sealed, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		m.ID, convID, seq, m.Speaker, tx.db.sealChatMessage(convID, m), micros(m.At))
	return err
}

// ChatContent returns the captured fields and the messages of a
// conversation (in time order), opened. Both are empty once purged.
func (db *DB) ChatContent(ctx context.Context, orgID, id string) (map[string]string, []ChatMessage, error) {
	var sealed []byte
	if _, err := getChat(ctx, db.reader(), orgID, id, "", &sealed); err != nil {
		return nil, nil, err
	}
	fields, err := db.openChatFields(id, sealed)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := db.chatMessages(ctx, id, 0, 0)
	return fields, msgs, err
}

// ChatMessagesAfter returns up to limit messages of a conversation with a
// sequence number above after, in sequence order (widget polling).
func (db *DB) ChatMessagesAfter(ctx context.Context, orgID, id string, after, limit int) ([]ChatMessage, error) {
	if _, err := getChat(ctx, db.reader(), orgID, id, "", nil); err != nil {
		return nil, err
	}
	return db.chatMessages(ctx, id, after, limit)
}

func (db *DB) chatMessages(ctx context.Context, convID string, after, limit int) ([]ChatMessage, error) {
	q := `SELECT id, seq, speaker, sealed, at FROM chat_messages WHERE conversation_id = $1 ORDER BY at, seq`
	args := []any{convID}
	if limit > 0 {
		q = `SELECT id, seq, speaker, sealed, at FROM chat_messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`
		args = append(args, after, limit)
	}
	rs, err := db.reader().query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []ChatMessage
	for rs.Next() {
		var m ChatMessage
		var sealed []byte
		var at int64
		if err := rs.Scan(&m.ID, &m.Seq, &m.Speaker, &sealed, &at); err != nil {
			return nil, err
		}
		m.At = fromMicros(at)
		if err := db.openChatMessage(convID, &m, sealed); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rs.Err()
}

// ChatFilter selects conversations to list.
type ChatFilter struct {
	State  string
	UserID string
	// Before lists conversations created before this time (paging).
	Before time.Time
	Limit  int
}

// ChatConversations lists an org's conversations, newest first.
func (db *DB) ChatConversations(ctx context.Context, orgID string, f ChatFilter) ([]*ChatConversation, error) {
	where := []string{"org_id = $1"}
	args := []any{orgID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.State != "" {
		add("state = ?", f.State)
	}
	if f.UserID != "" {
		add("user_id = ?", f.UserID)
	}
	if !f.Before.IsZero() {
		add("created_at < ?", micros(f.Before))
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	args = append(args, f.Limit)
	rs, err := db.reader().query(ctx, `SELECT `+chatCols+` FROM chat_conversations WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*ChatConversation
	for rs.Next() {
		c, err := scanChat(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

// CloseChatConversation closes an open conversation and opens its first
// export round (the caller adds the export job in the same transaction).
// closed is false when the conversation was already closed: nothing
// changes then, and round is its current round.
func (tx *Tx) CloseChatConversation(ctx context.Context, orgID, id, by string) (round int, closed bool, err error) {
	now := micros(tx.db.now())
	err = tx.q.queryRow(ctx, `UPDATE chat_conversations SET state = 'pending', round = round + 1, closed_at = $3, updated_at = $3
		WHERE id = $1 AND org_id = $2 AND state = 'open' RETURNING round`, id, orgID, now).Scan(&round)
	if errors.Is(err, errNoRows) {
		c, gerr := getChat(ctx, tx.q, orgID, id, "", nil)
		if gerr != nil {
			return 0, false, gerr
		}
		return c.Round, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return round, true, tx.insertChatExport(ctx, orgID, id, round, by, now)
}

// ReexportChat opens a new export round for a conversation whose export
// was skipped or failed (the caller adds the export job in the same
// transaction). An exported conversation is never exported again.
func (tx *Tx) ReexportChat(ctx context.Context, orgID, id, by string) (int, error) {
	now := micros(tx.db.now())
	var round int
	err := tx.q.queryRow(ctx, `UPDATE chat_conversations SET state = 'pending', round = round + 1, updated_at = $3
		WHERE id = $1 AND org_id = $2 AND state IN ('skipped', 'failed') AND purged_at IS NULL RETURNING round`, id, orgID, now).Scan(&round)
	if errors.Is(err, errNoRows) {
		c, gerr := getChat(ctx, tx.q, orgID, id, "", nil)
		if gerr != nil {
			return 0, gerr
		}
		switch c.State {
		case ChatOpen:
			return 0, sb.Errorf(sb.EConflict, "chat conversation %s is still open; close it to export it", id)
		case ChatExported:
			return 0, sb.Errorf(sb.EConflict, "chat conversation %s was exported already; a conversation is never exported twice", id)
		case ChatPending, ChatHeld:
			return 0, sb.Errorf(sb.EConflict, "chat conversation %s is being exported (%s)", id, c.State)
		}
		return 0, sb.Errorf(sb.EConflict, "chat conversation %s has no content left to export", id)
	}
	if err != nil {
		return 0, err
	}
	return round, tx.insertChatExport(ctx, orgID, id, round, by, now)
}

func (tx *Tx) insertChatExport(ctx context.Context, orgID, convID string, round int, by string, now int64) error {
	_, err := tx.q.exec(ctx, `INSERT INTO chat_exports (id, org_id, conversation_id, round, status, requested_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6)`, NewID(), orgID, convID, round, by, now)
	return err
}

// ChatExport is one round of the export log.
type ChatExport struct {
	ID             string `json:"id"`
	OrgID          string `json:"org_id"`
	ConversationID string `json:"conversation_id"`
	Round          int    `json:"round"`
	// Status is pending, retrying, held, exported, skipped or failed.
	Status string `json:"status"`
	// Reason says why the round was skipped, failed, held or is retrying.
	Reason string `json:"reason,omitempty"`
	// Note tells how the contact was chosen and other facts of an export.
	Note string `json:"note,omitempty"`
	// ContactID is the CRM contact written; ContactAction "created" or
	// "updated".
	ContactID     string     `json:"contact_id,omitempty"`
	ContactAction string     `json:"contact_action,omitempty"`
	TaskIDs       []string   `json:"task_ids"`
	Attempts      int        `json:"attempts"`
	RequestedBy   string     `json:"requested_by,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
}

const chatExportCols = `id, org_id, conversation_id, round, status, reason, note, contact_id, contact_action, task_ids, attempts,
	requested_by, created_at, updated_at, finished_at`

func scanChatExport(r row) (*ChatExport, error) {
	var e ChatExport
	var tasks string
	var created, updated int64
	var finished sql.NullInt64
	if err := r.Scan(&e.ID, &e.OrgID, &e.ConversationID, &e.Round, &e.Status, &e.Reason, &e.Note, &e.ContactID, &e.ContactAction,
		&tasks, &e.Attempts, &e.RequestedBy, &created, &updated, &finished); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(tasks), &e.TaskIDs)
	if e.TaskIDs == nil {
		e.TaskIDs = []string{}
	}
	e.CreatedAt, e.UpdatedAt, e.FinishedAt = fromMicros(created), fromMicros(updated), timePtr(finished)
	return &e, nil
}

// ChatExportRound returns the export log entry of a conversation's round.
func (db *DB) ChatExportRound(ctx context.Context, orgID, convID string, round int) (*ChatExport, error) {
	e, err := scanChatExport(db.reader().queryRow(ctx, `SELECT `+chatExportCols+` FROM chat_exports
		WHERE org_id = $1 AND conversation_id = $2 AND round = $3`, orgID, convID, round))
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "chat conversation %s has no export round %d", convID, round)
	}
	return e, err
}

// LatestChatExports returns the current export round of each of the org's
// conversations named, by conversation id.
func (db *DB) LatestChatExports(ctx context.Context, orgID string, ids []string) (map[string]*ChatExport, error) {
	out := make(map[string]*ChatExport, len(ids))
	for start := 0; start < len(ids); start += insertChunk {
		part := ids[start:min(start+insertChunk, len(ids))]
		args := []any{orgID}
		for _, id := range part {
			args = append(args, id)
		}
		rs, err := db.reader().query(ctx, `SELECT `+prefixCols("e.", chatExportCols)+` FROM chat_exports e
			JOIN chat_conversations c ON c.id = e.conversation_id AND c.round = e.round
			WHERE e.org_id = $1 AND e.conversation_id IN `+inList(2, len(part)), args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			e, err := scanChatExport(rs)
			if err != nil {
				rs.Close()
				return nil, err
			}
			out[e.ConversationID] = e
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ChatExportFilter selects export log entries.
type ChatExportFilter struct {
	Status         string
	ConversationID string
	Before         time.Time
	Limit          int
}

// ChatExports lists an org's export log, newest first.
func (db *DB) ChatExports(ctx context.Context, orgID string, f ChatExportFilter) ([]*ChatExport, error) {
	where := []string{"org_id = $1"}
	args := []any{orgID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.ConversationID != "" {
		add("conversation_id = ?", f.ConversationID)
	}
	if !f.Before.IsZero() {
		add("created_at < ?", micros(f.Before))
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	args = append(args, f.Limit)
	rs, err := db.reader().query(ctx, `SELECT `+chatExportCols+` FROM chat_exports WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, round DESC, id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*ChatExport
	for rs.Next() {
		e, err := scanChatExport(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rs.Err()
}

// ChatExportOutcome is what one run of an export round ended with.
type ChatExportOutcome struct {
	OrgID          string
	ConversationID string
	Round          int
	// Status is exported, skipped or failed (final), held or retrying.
	Status        string
	Reason        string
	Note          string
	ContactID     string
	ContactAction string
	TaskIDs       []string
	// Attempted counts the run as an attempt in the log.
	Attempted bool
	// PurgeAfter is when the content of an exported conversation is deleted.
	PurgeAfter time.Time
}

// FinishChatExport records an export run's outcome. It changes nothing and
// returns false unless the conversation is still in that round and not
// finished: a stale or repeated job can never mark a conversation twice.
func (tx *Tx) FinishChatExport(ctx context.Context, o ChatExportOutcome) (bool, error) {
	state := o.Status
	switch o.Status {
	case ChatRetrying:
		state = ChatPending
	case ChatExported, ChatSkipped, ChatFailed, ChatHeld:
	default:
		return false, fmt.Errorf("store: unknown chat export status %q", o.Status)
	}
	final := o.Status == ChatExported || o.Status == ChatSkipped || o.Status == ChatFailed
	now := micros(tx.db.now())
	var exported, purge any
	if o.Status == ChatExported {
		exported, purge = now, micros(o.PurgeAfter)
	}
	n, err := tx.q.exec(ctx, `UPDATE chat_conversations SET state = $4, updated_at = $5, exported_at = COALESCE($6, exported_at),
		purge_after = COALESCE($7, purge_after)
		WHERE id = $1 AND org_id = $2 AND round = $3 AND state IN ('pending', 'held')`,
		o.ConversationID, o.OrgID, o.Round, state, now, exported, purge)
	if err != nil || n == 0 {
		return false, err
	}
	tasks, _ := json.Marshal(o.TaskIDs)
	if o.TaskIDs == nil {
		tasks = []byte("[]")
	}
	attempt := 0
	if o.Attempted {
		attempt = 1
	}
	var finished any
	if final {
		finished = now
	}
	_, err = tx.q.exec(ctx, `UPDATE chat_exports SET status = $4, reason = $5, note = $6, contact_id = $7, contact_action = $8, task_ids = $9,
		attempts = attempts + $10, updated_at = $11, finished_at = $12
		WHERE org_id = $1 AND conversation_id = $2 AND round = $3`,
		o.OrgID, o.ConversationID, o.Round, o.Status, o.Reason, o.Note, o.ContactID, o.ContactAction, string(tasks), attempt, now, finished)
	return err == nil, err
}

// PurgeChatContent deletes the content (messages, captured fields, visitor
// secret) of exported conversations whose retention ended at or before
// now. It returns the number of conversations purged; their records and
// export log stay.
func (db *DB) PurgeChatContent(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.Tx(ctx, func(tx *Tx) error {
		at := micros(now)
		if _, err := tx.q.exec(ctx, `DELETE FROM chat_messages WHERE conversation_id IN
			(SELECT id FROM chat_conversations WHERE purge_after IS NOT NULL AND purge_after <= $1 AND purged_at IS NULL)`, at); err != nil {
			return err
		}
		var err error
		n, err = tx.q.exec(ctx, `UPDATE chat_conversations SET sealed_fields = NULL, visitor_secret_hash = NULL, purged_at = $1
			WHERE purge_after IS NOT NULL AND purge_after <= $1 AND purged_at IS NULL`, at)
		return err
	})
	return n, err
}

// ChatVisitorAllowed reports whether secretHash is the visitor secret of
// an open or closed widget conversation whose content is not purged.
func (db *DB) ChatVisitorAllowed(ctx context.Context, orgID, id string, secretHash []byte) (bool, error) {
	var stored []byte
	err := db.reader().queryRow(ctx, `SELECT visitor_secret_hash FROM chat_conversations WHERE id = $1 AND org_id = $2`, id, orgID).Scan(&stored)
	if errors.Is(err, errNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return len(stored) > 0 && subtle.ConstantTimeCompare(stored, secretHash) == 1, nil
}

// ChatSettingsRecord is an org's stored chat export settings.
type ChatSettingsRecord struct {
	// Settings is the settings document (JSON, no secrets).
	Settings []byte
	// PrivateKey is the CRM connection's private key, sealed at rest.
	PrivateKey string
	// WidgetTokenHash is the keyed hash of the public widget token.
	WidgetTokenHash []byte
	UpdatedBy       string
	UpdatedAt       time.Time
}

func chatSettingsContext(orgID string) string { return "chat-settings:" + orgID }

// ChatSettings returns an org's chat settings, or nil when none are stored.
func (db *DB) ChatSettings(ctx context.Context, orgID string) (*ChatSettingsRecord, error) {
	var r ChatSettingsRecord
	var settings string
	var sealed []byte
	var at int64
	err := db.reader().queryRow(ctx, `SELECT settings, sealed_key, widget_token_hash, updated_by, updated_at FROM chat_settings WHERE org_id = $1`, orgID).
		Scan(&settings, &sealed, &r.WidgetTokenHash, &r.UpdatedBy, &at)
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.Settings, r.UpdatedAt = []byte(settings), fromMicros(at)
	if sealed != nil {
		key, err := db.keys.Open(chatSettingsContext(orgID), sealed)
		if err != nil {
			return nil, fmt.Errorf("chat settings of org %s: private key: %w", orgID, err)
		}
		r.PrivateKey = string(key)
	}
	return &r, nil
}

// SaveChatSettings stores an org's chat settings, sealing the private key.
// The widget token is left as it is (SetChatWidgetToken changes it).
func (tx *Tx) SaveChatSettings(ctx context.Context, orgID string, r *ChatSettingsRecord) error {
	var sealed []byte
	if r.PrivateKey != "" {
		sealed = tx.db.keys.Seal(chatSettingsContext(orgID), []byte(r.PrivateKey))
	}
	r.UpdatedAt = tx.db.now().UTC()
	_, err := tx.q.exec(ctx, `INSERT INTO chat_settings (org_id, settings, sealed_key, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (org_id) DO UPDATE SET settings = excluded.settings, sealed_key = excluded.sealed_key,
			updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		orgID, string(r.Settings), sealed, r.UpdatedBy, micros(r.UpdatedAt))
	return err
}

// SetChatWidgetToken stores the hash of an org's public widget token (nil
// turns the widget off).
func (tx *Tx) SetChatWidgetToken(ctx context.Context, orgID string, tokenHash []byte, by string) error {
	_, err := tx.q.exec(ctx, `INSERT INTO chat_settings (org_id, widget_token_hash, updated_by, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (org_id) DO UPDATE SET widget_token_hash = excluded.widget_token_hash, updated_by = excluded.updated_by,
			updated_at = excluded.updated_at`, orgID, tokenHash, by, micros(tx.db.now()))
	return err
}

// ChatOrgByWidgetToken returns the org whose widget token has the hash,
// or "" when none has.
func (db *DB) ChatOrgByWidgetToken(ctx context.Context, tokenHash []byte) (string, error) {
	var orgID string
	err := db.reader().queryRow(ctx, `SELECT org_id FROM chat_settings WHERE widget_token_hash = $1`, tokenHash).Scan(&orgID)
	if errors.Is(err, errNoRows) {
		return "", nil
	}
	return orgID, err
}
