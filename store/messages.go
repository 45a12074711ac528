package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard/switchboard"
)

const msgCols = `id, org_id, gateway_id, direction, status, debug, error_code, segments, COALESCE(provider_message_id, ''),
	COALESCE(batch_id, ''), COALESCE(record_id, ''), COALESCE(crm_message_id, ''), COALESCE(owner_id, ''), COALESCE(created_by_id, ''),
	phone_hash, source, created_at, updated_at, sent_at, delivered_at, failed_at, received_at`

func scanMessage(r row, extra ...any) (*sb.Message, error) {
	var m sb.Message
	var created, updated int64
	var sent, delivered, failed, received sql.NullInt64
	dest := []any{&m.ID, &m.OrgID, &m.GatewayID, &m.Direction, &m.Status, &m.Debug, &m.ErrorCode, &m.Segments, &m.ProviderMessageID,
		&m.BatchID, &m.RecordID, &m.CRMMessageID, &m.OwnerID, &m.CreatedByID, &m.PhoneHash, &m.Source, &created, &updated,
		&sent, &delivered, &failed, &received}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	m.CreatedAt, m.UpdatedAt = fromMicros(created), fromMicros(updated)
	m.SentAt, m.DeliveredAt, m.FailedAt, m.ReceivedAt = timePtr(sent), timePtr(delivered), timePtr(failed), timePtr(received)
	return &m, nil
}

// sealContent seals a message's readable part, bound to the message id.
func (db *DB) sealContent(id string, c *sb.Content) []byte {
	b, _ := json.Marshal(c)
	return db.keys.Seal("msg:"+id, b)
}

func (db *DB) openContent(id string, sealed []byte) (*sb.Content, error) {
	b, err := db.keys.Open("msg:"+id, sealed)
	if err != nil {
		return nil, fmt.Errorf("message %s content: %w", id, err)
	}
	var c sb.Content
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// NewMessage is a message to insert with its content.
type NewMessage struct {
	Msg     *sb.Message
	Content *sb.Content
}

const insertChunk = 400

// InsertMessages stores messages and their sealed content. IDs, times and
// phone hashes must be set. An idempotency-key clash is an EConflict error.
func (tx *Tx) InsertMessages(ctx context.Context, ms []NewMessage) error {
	if tx.pg != nil {
		return tx.copyMessages(ctx, ms)
	}
	for start := 0; start < len(ms); start += insertChunk {
		part := ms[start:min(start+insertChunk, len(ms))]
		var q strings.Builder
		q.WriteString(`INSERT INTO messages (` + strings.Join(newMessageCols, ", ") + `) VALUES `)
		args := make([]any, 0, len(part)*len(newMessageCols))
		for i, nm := range part {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString(placeholders(len(args)+1, len(newMessageCols)))
			args = append(args, newMessageRow(nm.Msg)...)
		}
		if _, err := tx.q.exec(ctx, q.String(), args...); err != nil {
			return insertConflict(err)
		}
		q.Reset()
		q.WriteString(`INSERT INTO message_contents (` + strings.Join(contentCols, ", ") + `) VALUES `)
		args = args[:0]
		for _, nm := range part {
			if nm.Content == nil {
				continue
			}
			if len(args) > 0 {
				q.WriteString(",")
			}
			q.WriteString(placeholders(len(args)+1, len(contentCols)))
			args = append(args, tx.contentRow(nm)...)
		}
		if len(args) > 0 {
			if _, err := tx.q.exec(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		for _, nm := range part {
			tx.TouchCRM(nm.Msg.OrgID)
		}
	}
	return nil
}

// copyMessages is InsertMessages on PostgreSQL: the rows go with COPY, which
// neither parses nor plans a statement and writes a page's rows at once
// (a bulk send's 1,000 messages were three INSERTs of up to 9,200
// parameters each).
func (tx *Tx) copyMessages(ctx context.Context, ms []NewMessage) error {
	msgRows := make([][]any, len(ms))
	var contentRows [][]any
	for i, nm := range ms {
		msgRows[i] = newMessageRow(nm.Msg)
		if nm.Content != nil {
			contentRows = append(contentRows, tx.contentRow(nm))
		}
	}
	if err := tx.copyRows(ctx, "messages", newMessageCols, msgRows); err != nil {
		return insertConflict(err)
	}
	if len(contentRows) > 0 {
		if err := tx.copyRows(ctx, "message_contents", contentCols, contentRows); err != nil {
			return err
		}
	}
	for _, nm := range ms {
		tx.TouchCRM(nm.Msg.OrgID)
	}
	return nil
}

// copyRows copies rows into a table on PostgreSQL, observed like a
// statement.
func (tx *Tx) copyRows(ctx context.Context, table string, cols []string, rows [][]any) error {
	if tx.db.onQuery != nil {
		tx.db.onQuery("COPY " + table)
	}
	_, err := tx.pg.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
	return mapErr(err)
}

// newMessageCols are the columns InsertMessages writes, in newMessageRow's
// order; contentCols those of a message's content (contentRow).
var (
	newMessageCols = []string{"id", "org_id", "gateway_id", "direction", "status", "status_rank", "debug", "error_code", "segments",
		"provider_message_id", "batch_id", "record_id", "crm_message_id", "owner_id", "created_by_id", "phone_hash", "idempotency_key",
		"request_hash", "source", "created_at", "updated_at", "failed_at", "received_at"}
	contentCols = []string{"message_id", "org_id", "sealed", "created_at"}
)

// newMessageRow is a new message's values for newMessageCols.
func newMessageRow(m *sb.Message) []any {
	var failedAt, receivedAt any
	if m.Status == sb.StatusError || m.Status == sb.StatusFailed {
		failedAt = micros(m.CreatedAt)
	}
	if m.Direction == sb.Incoming {
		receivedAt = micros(m.CreatedAt)
		if m.ReceivedAt != nil {
			receivedAt = micros(*m.ReceivedAt)
		}
	}
	return []any{m.ID, m.OrgID, m.GatewayID, string(m.Direction), string(m.Status), m.Status.Rank(), m.Debug, m.ErrorCode,
		m.Segments, nullStr(m.ProviderMessageID), nullStr(m.BatchID), nullStr(m.RecordID), nullStr(m.CRMMessageID),
		nullStr(m.OwnerID), nullStr(m.CreatedByID), m.PhoneHash, nullStr(m.IdempotencyKey), nullBytes(m.RequestHash), m.Source,
		micros(m.CreatedAt), micros(m.UpdatedAt), failedAt, receivedAt}
}

// contentRow is a new message's sealed content for contentCols.
func (tx *Tx) contentRow(nm NewMessage) []any {
	return []any{nm.Msg.ID, nm.Msg.OrgID, tx.db.sealContent(nm.Msg.ID, nm.Content), micros(nm.Msg.CreatedAt)}
}

// insertConflict names the conflict of a message insert a unique index
// refused.
func insertConflict(err error) error {
	if errors.Is(err, errUnique) {
		return sb.Errorf(sb.EConflict, "a message with this idempotency key or provider message id exists")
	}
	return err
}

// InsertIncoming stores an incoming message unless the same provider
// message id was already stored for the gateway; it reports whether it was
// new.
func (tx *Tx) InsertIncoming(ctx context.Context, m *sb.Message, c *sb.Content) (bool, error) {
	var receivedAt int64
	if m.ReceivedAt != nil {
		receivedAt = micros(*m.ReceivedAt)
	} else {
		receivedAt = micros(m.CreatedAt)
	}
	n, err := tx.q.exec(ctx, `INSERT INTO messages (id, org_id, gateway_id, direction, status, status_rank, segments, provider_message_id,
		record_id, owner_id, created_by_id, phone_hash, source, created_at, updated_at, received_at)
		VALUES ($1, $2, $3, 'incoming', 'Received', 2, $4, $5, $6, $7, $8, $9, '', $10, $10, $11)
		ON CONFLICT (gateway_id, provider_message_id) WHERE direction = 'incoming' AND provider_message_id IS NOT NULL DO NOTHING`,
		m.ID, m.OrgID, m.GatewayID, m.Segments, nullStr(m.ProviderMessageID), nullStr(m.RecordID), nullStr(m.OwnerID),
		nullStr(m.CreatedByID), m.PhoneHash, micros(m.CreatedAt), receivedAt)
	if err != nil || n == 0 {
		return false, err
	}
	if _, err := tx.q.exec(ctx, `INSERT INTO message_contents (message_id, org_id, sealed, created_at) VALUES ($1, $2, $3, $4)`,
		m.ID, m.OrgID, tx.db.sealContent(m.ID, c), micros(m.CreatedAt)); err != nil {
		return false, err
	}
	tx.TouchCRM(m.OrgID)
	return true, nil
}

func placeholders(from, n int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	b.WriteByte(')')
	return b.String()
}

// inList returns "($from,…)" for n values.
func inList(from, n int) string { return placeholders(from, n) }

func anyStrings(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Message returns a message of an org.
func (db *DB) Message(ctx context.Context, orgID, id string) (*sb.Message, error) {
	m, err := scanMessage(db.reader().queryRow(ctx, `SELECT `+msgCols+` FROM messages WHERE id = $1 AND org_id = $2`, id, orgID))
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "message %s not found", id)
	}
	return m, err
}

// MessageRef is the gateway and creation time of a message.
type MessageRef struct {
	GatewayID string
	CreatedAt time.Time
}

// MessageRefs returns the gateway and creation time of each of an org's
// messages by message id; ids of no message of the org (past retention, or
// not Switchboard's) are left out.
func (db *DB) MessageRefs(ctx context.Context, orgID string, ids []string) (map[string]MessageRef, error) {
	out := make(map[string]MessageRef, len(ids))
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		rs, err := db.reader().query(ctx, `SELECT id, gateway_id, created_at FROM messages WHERE org_id = $1 AND id IN `+inList(2, len(part)),
			append([]any{orgID}, anyStrings(part)...)...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var id string
			var ref MessageRef
			var created int64
			if err := rs.Scan(&id, &ref.GatewayID, &created); err != nil {
				rs.Close()
				return nil, err
			}
			ref.CreatedAt = fromMicros(created)
			out[id] = ref
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// MessageByIdempotencyKey returns the message created with the key (with
// its RequestHash), or nil.
func (tx *Tx) MessageByIdempotencyKey(ctx context.Context, orgID, key string) (*sb.Message, error) {
	var hash []byte
	m, err := scanMessage(tx.q.queryRow(ctx, `SELECT `+msgCols+`, request_hash FROM messages WHERE org_id = $1 AND idempotency_key = $2`, orgID, key), &hash)
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	if m != nil {
		m.RequestHash = hash
	}
	return m, err
}

// MessageFilter selects messages to list.
type MessageFilter struct {
	RecordID  string
	PhoneHash []byte
	GatewayID string
	// GatewayIDs, when not nil, keeps the messages of these gateways only
	// (a user limited to some gateways; empty: none).
	GatewayIDs []string
	BatchID    string
	Direction  sb.Direction
	// Before lists messages created before this id's time (paging).
	Before time.Time
	Limit  int
}

// Messages lists an org's messages, newest first.
func (db *DB) Messages(ctx context.Context, orgID string, f MessageFilter) ([]*sb.Message, error) {
	where := []string{"org_id = $1"}
	args := []any{orgID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.RecordID != "" {
		add("record_id = ?", f.RecordID)
	}
	if f.PhoneHash != nil {
		add("phone_hash = ?", f.PhoneHash)
	}
	if f.GatewayID != "" {
		add("gateway_id = ?", f.GatewayID)
	}
	if f.GatewayIDs != nil {
		if len(f.GatewayIDs) == 0 {
			return nil, nil
		}
		where = append(where, "gateway_id IN "+inList(len(args)+1, len(f.GatewayIDs)))
		args = append(args, anyStrings(f.GatewayIDs)...)
	}
	if f.BatchID != "" {
		add("batch_id = ?", f.BatchID)
	}
	if f.Direction != "" {
		add("direction = ?", string(f.Direction))
	}
	if !f.Before.IsZero() {
		add("created_at < ?", micros(f.Before))
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	args = append(args, f.Limit)
	q := `SELECT ` + msgCols + ` FROM messages WHERE ` + strings.Join(where, " AND ") + ` ORDER BY created_at DESC, id DESC LIMIT $` + strconv.Itoa(len(args))
	rs, err := db.reader().query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*sb.Message
	for rs.Next() {
		m, err := scanMessage(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rs.Err()
}

// LastOutgoing returns the owner and record of the newest outgoing message
// to a phone on a gateway ("" when there is none).
func (tx *Tx) LastOutgoing(ctx context.Context, orgID, gatewayID string, phoneHash []byte) (ownerID, recordID string, err error) {
	err = tx.q.queryRow(ctx, `SELECT COALESCE(owner_id, ''), COALESCE(record_id, '') FROM messages
		WHERE org_id = $1 AND phone_hash = $2 AND gateway_id = $3 AND direction = 'outgoing' AND source <> 'system'
		ORDER BY created_at DESC LIMIT 1`, orgID, phoneHash, gatewayID).Scan(&ownerID, &recordID)
	if errors.Is(err, errNoRows) {
		return "", "", nil
	}
	return ownerID, recordID, err
}

// SetMessageOwner changes the owner and CRM record of a message stored in
// the same transaction (an incoming message a content feature took as
// its own: an answer to an SMS form belongs to the form's owner).
func (tx *Tx) SetMessageOwner(ctx context.Context, id, ownerID, recordID string) error {
	_, err := tx.q.exec(ctx, `UPDATE messages SET owner_id = $2, record_id = $3 WHERE id = $1`, id, nullStr(ownerID), nullStr(recordID))
	return err
}

// PhoneOnGatewayHash is a phone (by its keyed hash) on a gateway.
type PhoneOnGatewayHash struct {
	GatewayID string
	PhoneHash []byte
}

// Key is the pair as a map key.
func (k PhoneOnGatewayHash) Key() string { return k.GatewayID + "\x00" + string(k.PhoneHash) }

// TextedBefore reports, for each phone on a gateway (by Key), whether the
// org has an outgoing message to it from that gateway that a person or an
// automation sent (as LastOutgoing looks for).
func (db *DB) TextedBefore(ctx context.Context, orgID string, keys []PhoneOnGatewayHash) (map[string]bool, error) {
	want := map[string]bool{}
	var hashes []any
	seen := map[string]bool{}
	for _, k := range keys {
		want[k.Key()] = true
		if !seen[string(k.PhoneHash)] {
			seen[string(k.PhoneHash)] = true
			hashes = append(hashes, k.PhoneHash)
		}
	}
	out := map[string]bool{}
	for start := 0; start < len(hashes); start += 500 {
		part := hashes[start:min(start+500, len(hashes))]
		rs, err := db.reader().query(ctx, `SELECT DISTINCT gateway_id, phone_hash FROM messages
			WHERE org_id = $1 AND phone_hash IN `+inList(2, len(part))+` AND direction = 'outgoing' AND source <> 'system'`,
			append([]any{orgID}, part...)...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var k PhoneOnGatewayHash
			if err := rs.Scan(&k.GatewayID, &k.PhoneHash); err != nil {
				rs.Close()
				return nil, err
			}
			if want[k.Key()] {
				out[k.Key()] = true
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LastIncomingAt returns when the phone last texted the gateway (zero if never).
func (db *DB) LastIncomingAt(ctx context.Context, gatewayID string, phoneHash []byte) (time.Time, error) {
	var at sql.NullInt64
	err := db.reader().queryRow(ctx, `SELECT MAX(created_at) FROM messages WHERE gateway_id = $1 AND phone_hash = $2 AND direction = 'incoming'`,
		gatewayID, phoneHash).Scan(&at)
	if err != nil || !at.Valid {
		return time.Time{}, err
	}
	return fromMicros(at.Int64), nil
}

// SendItem is an outgoing message ready to hand to a provider.
type SendItem struct {
	Msg     *sb.Message
	Content *sb.Content
	// Progress is what the provider accepted of the message in an earlier,
	// failed attempt (see SaveSendProgress).
	Progress string
}

// MessagesToSend loads the messages among ids that still await sending
// (Queued, not yet accepted by the provider), with their content.
func (db *DB) MessagesToSend(ctx context.Context, ids []string) ([]SendItem, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	q := `SELECT ` + msgCols + `, (SELECT sealed FROM message_contents c WHERE c.message_id = messages.id), send_progress FROM messages
		WHERE id IN ` + inList(1, len(ids)) + ` AND status = 'Queued' AND provider_message_id IS NULL ORDER BY created_at, id`
	rs, err := db.reader().query(ctx, q, anyStrings(ids)...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []SendItem
	for rs.Next() {
		var sealed []byte
		var progress string
		m, err := scanMessage(rs, &sealed, &progress)
		if err != nil {
			return nil, err
		}
		if sealed == nil {
			return nil, fmt.Errorf("message %s is queued but its content is missing", m.ID)
		}
		c, err := db.openContent(m.ID, sealed)
		if err != nil {
			return nil, err
		}
		out = append(out, SendItem{Msg: m, Content: c, Progress: progress})
	}
	return out, rs.Err()
}

// SaveSendProgress keeps, for a message still waiting to be sent, what the
// provider accepted of it in a failed attempt (switchboard.SendError
// Progress), for the next attempt to continue from.
func (tx *Tx) SaveSendProgress(ctx context.Context, messageID, progress string) error {
	_, err := tx.q.exec(ctx, `UPDATE messages SET send_progress = $2 WHERE id = $1 AND status = 'Queued' AND provider_message_id IS NULL`, messageID, progress)
	return err
}

// SendOutcome is the result of handing one message to a provider.
type SendOutcome struct {
	MessageID         string
	ProviderMessageID string
	// Status is the status to record: Queued or Sent on success, Failed or
	// Error when the provider refused the message.
	Status    sb.Status
	ErrorCode string
	Debug     string
	// OptOut marks the recipient opted out on the gateway (the provider
	// said the recipient unsubscribed), in the same transaction.
	OptOut bool
}

// LockIDs implements RowLocker.
func (o SendOutcome) LockIDs() []string { return []string{o.MessageID} }

// RecordSend stores a send outcome, applies status reports that arrived
// before it, and releases the content once nothing needs it. It returns the
// message's org and phone hash.
func (tx *Tx) RecordSend(ctx context.Context, o SendOutcome) (orgID string, phoneHash []byte, err error) {
	now := micros(tx.db.now())
	var gatewayID string
	var q string
	if o.ProviderMessageID != "" {
		// Accepted: keep the provider id even when a status callback (which
		// names our id) already moved the message on; never move it back.
		q = `UPDATE messages SET provider_message_id = $2,
			status = CASE WHEN status_rank < $4 THEN $3 ELSE status END,
			status_rank = CASE WHEN status_rank < $4 THEN $4 ELSE status_rank END,
			error_code = CASE WHEN $5 <> '' THEN $5 ELSE error_code END, debug = CASE WHEN $6 <> '' THEN $6 ELSE debug END,
			updated_at = $7, version = version + 1,
			sent_at = CASE WHEN $3 = 'Sent' AND sent_at IS NULL THEN $7 ELSE sent_at END
			WHERE id = $1 AND provider_message_id IS NULL RETURNING org_id, gateway_id, phone_hash`
	} else {
		q = `UPDATE messages SET status = $3, status_rank = $4, error_code = $5, debug = $6, updated_at = $7, version = version + 1,
			failed_at = CASE WHEN $3 IN ('Failed', 'Error') THEN $7 ELSE failed_at END, provider_message_id = $2
			WHERE id = $1 AND status = 'Queued' AND provider_message_id IS NULL RETURNING org_id, gateway_id, phone_hash`
	}
	err = tx.q.queryRow(ctx, q, o.MessageID, nullStr(o.ProviderMessageID), string(o.Status), o.Status.Rank(), o.ErrorCode, o.Debug, now).Scan(&orgID, &gatewayID, &phoneHash)
	if errors.Is(err, errNoRows) {
		return "", nil, nil // already recorded (a retried send)
	}
	if err != nil {
		return "", nil, err
	}
	tx.TouchCRM(orgID)
	if o.OptOut {
		if err := tx.ProviderOptOut(ctx, orgID, gatewayID, phoneHash, o.ErrorCode, o.Debug); err != nil {
			return "", nil, err
		}
	}
	if o.ProviderMessageID != "" {
		if err := tx.applyUnmatched(ctx, gatewayID, o.ProviderMessageID); err != nil {
			return "", nil, err
		}
	}
	return orgID, phoneHash, tx.ReleaseContents(ctx, []string{o.MessageID})
}

func (tx *Tx) applyUnmatched(ctx context.Context, gatewayID, pid string) error {
	rs, err := tx.q.query(ctx, `SELECT status, error_code, debug, opted_out, at FROM unmatched_statuses WHERE gateway_id = $1 AND provider_message_id = $2`, gatewayID, pid)
	if err != nil {
		return err
	}
	var ups []sb.StatusUpdate
	for rs.Next() {
		var u sb.StatusUpdate
		var at int64
		if err := rs.Scan(&u.Status, &u.ErrorCode, &u.Debug, &u.OptedOut, &at); err != nil {
			rs.Close()
			return err
		}
		u.ProviderMessageID, u.At = pid, fromMicros(at)
		ups = append(ups, u)
	}
	rs.Close()
	if err := rs.Err(); err != nil || len(ups) == 0 {
		return err
	}
	if _, err := tx.q.exec(ctx, `DELETE FROM unmatched_statuses WHERE gateway_id = $1 AND provider_message_id = $2`, gatewayID, pid); err != nil {
		return err
	}
	for _, u := range ups {
		if _, err := tx.ApplyStatus(ctx, gatewayID, u); err != nil {
			return err
		}
	}
	return nil
}

// StatusResult tells what ApplyStatus did.
type StatusResult struct {
	Applied   bool
	OrgID     string
	MessageID string
	PhoneHash []byte
}

// ApplyStatus moves an outgoing message's status forward (never back: a
// late "Sent" does not overwrite "Delivered", and a repeated callback
// changes nothing). A report for a provider message id not recorded yet is
// kept and applied when the send is recorded. A report that says the
// recipient unsubscribed opts the number out on the gateway (ProviderOptOut).
func (tx *Tx) ApplyStatus(ctx context.Context, gatewayID string, u sb.StatusUpdate) (StatusResult, error) {
	if !u.Status.Valid() || u.Status == sb.StatusReceived {
		return StatusResult{}, sb.FieldError("status", "status %q cannot be reported for an outgoing message", u.Status)
	}
	at := u.At
	if at.IsZero() {
		at = tx.db.now()
	}
	set := `status = $3, status_rank = $4, updated_at = $5, version = version + 1,
		sent_at = CASE WHEN $3 = 'Sent' THEN COALESCE(sent_at, $6) ELSE sent_at END,
		delivered_at = CASE WHEN $3 = 'Delivered' THEN $6 ELSE delivered_at END,
		failed_at = CASE WHEN $3 IN ('Failed', 'Undelivered') THEN $6 ELSE failed_at END,
		error_code = CASE WHEN $7 <> '' THEN $7 ELSE error_code END,
		debug = CASE WHEN $8 <> '' THEN $8 ELSE debug END`
	args := []any{"", gatewayID, string(u.Status), u.Status.Rank(), micros(tx.db.now()), micros(at), u.ErrorCode, u.Debug}
	var q string
	if u.MessageID != "" {
		// A report by our id that overtakes its send's outcome also records
		// the provider's id (as ApplyStatuses does).
		args[0] = u.MessageID
		args = append(args, u.ProviderMessageID)
		q = `UPDATE messages SET ` + set + `, provider_message_id = COALESCE(provider_message_id, NULLIF($9, ''))
			WHERE id = $1 AND gateway_id = $2 AND direction = 'outgoing' AND status_rank < $4
			RETURNING org_id, id, phone_hash, ` + crmWritten
	} else {
		args[0] = u.ProviderMessageID
		q = `UPDATE messages SET ` + set + ` WHERE provider_message_id = $1 AND gateway_id = $2 AND direction = 'outgoing' AND status_rank < $4
			RETURNING org_id, id, phone_hash, ` + crmWritten
	}
	var r StatusResult
	var written bool
	err := tx.q.queryRow(ctx, q, args...).Scan(&r.OrgID, &r.MessageID, &r.PhoneHash, &written)
	if err == nil {
		r.Applied = true
		tx.TouchCRM(r.OrgID)
		if u.OptedOut {
			if err := tx.ProviderOptOut(ctx, r.OrgID, gatewayID, r.PhoneHash, u.ErrorCode, u.Debug); err != nil {
				return r, err
			}
		}
		if written && u.MessageID != "" && u.ProviderMessageID != "" {
			// Written to the CRM already, and now known sent: its sealed
			// content is no longer needed.
			err = tx.ReleaseContents(ctx, []string{r.MessageID})
		}
		return r, err
	}
	if !errors.Is(err, errNoRows) {
		return r, err
	}
	// Not applied: a repeat, a backward move, or a message not known yet.
	var exists int
	if u.MessageID != "" {
		err = tx.q.queryRow(ctx, `SELECT 1 FROM messages WHERE id = $1 AND gateway_id = $2`, u.MessageID, gatewayID).Scan(&exists)
		if errors.Is(err, errNoRows) {
			return r, sb.Errorf(sb.ENotFound, "status for unknown message %s on this gateway", u.MessageID)
		}
		return r, err
	}
	if u.ProviderMessageID == "" {
		return r, sb.FieldError("provider_message_id", "status report names no message")
	}
	err = tx.q.queryRow(ctx, `SELECT 1 FROM messages WHERE provider_message_id = $1 AND gateway_id = $2 AND direction = 'outgoing' LIMIT 1`, u.ProviderMessageID, gatewayID).Scan(&exists)
	if errors.Is(err, errNoRows) {
		_, err = tx.q.exec(ctx, `INSERT INTO unmatched_statuses (gateway_id, provider_message_id, status, error_code, debug, opted_out, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			gatewayID, u.ProviderMessageID, string(u.Status), u.ErrorCode, u.Debug, u.OptedOut, micros(at))
	}
	return r, err
}

// FailQueued marks messages that are still Queued and unsent as failed
// (for example after the last send attempt) and returns how many changed.
func (tx *Tx) FailQueued(ctx context.Context, ids []string, status sb.Status, code, debug string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	now := micros(tx.db.now())
	args := append([]any{string(status), status.Rank(), code, debug, now}, anyStrings(ids)...)
	rs, err := tx.q.query(ctx, `UPDATE messages SET status = $1, status_rank = $2, error_code = $3, debug = $4, updated_at = $5, failed_at = $5,
		version = version + 1 WHERE status = 'Queued' AND provider_message_id IS NULL AND id IN `+inList(6, len(ids))+` RETURNING org_id`, args...)
	if err != nil {
		return 0, err
	}
	orgs, err := scanStrings(rs)
	for _, o := range orgs {
		tx.TouchCRM(o)
	}
	return int64(len(orgs)), err
}

// crmWritten holds for a message row written to the CRM, or failed there
// for good.
const crmWritten = `(crm_message_id IS NOT NULL OR crm_error <> '')`

// contentDone holds for a message row whose sealed content is no longer
// needed: handed to the provider (or failed) and written to the CRM (or
// failed there for good).
const contentDone = crmWritten + ` AND (direction = 'incoming' OR status <> 'Queued' OR provider_message_id IS NOT NULL)`

// ReleaseContents deletes the sealed content of messages that no longer need
// it: handed to the provider (or failed) and written to the CRM (or failed
// there for good).
func (tx *Tx) ReleaseContents(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.q.exec(ctx, `DELETE FROM message_contents WHERE message_id IN (SELECT id FROM messages WHERE id IN `+inList(1, len(ids))+`
		AND `+contentDone+`)`, anyStrings(ids)...)
	return err
}

// deleteContents deletes the sealed content of the messages named, which the
// caller knows no longer need it.
func (tx *Tx) deleteContents(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if tx.db.dialect == Postgres {
		// One statement shape, whatever the number of ids.
		_, err := tx.q.exec(ctx, `DELETE FROM message_contents WHERE message_id = ANY($1)`, ids)
		return err
	}
	for start := 0; start < len(ids); start += 900 {
		part := ids[start:min(start+900, len(ids))]
		if _, err := tx.q.exec(ctx, `DELETE FROM message_contents WHERE message_id IN `+inList(1, len(part)), anyStrings(part)...); err != nil {
			return err
		}
	}
	return nil
}

// MarkRead marks unread incoming messages read (inbox); with gatewayIDs (a
// user limited to some gateways) only those of these gateways. It returns
// how many it marked.
func (tx *Tx) MarkRead(ctx context.Context, orgID string, gatewayIDs, ids []string) (int, error) {
	if len(ids) == 0 || (gatewayIDs != nil && len(gatewayIDs) == 0) {
		return 0, nil
	}
	args := append([]any{orgID, micros(tx.db.now())}, anyStrings(ids)...)
	q := `UPDATE messages SET read_at = $2 WHERE org_id = $1 AND direction = 'incoming' AND read_at IS NULL AND id IN ` + inList(3, len(ids))
	if gatewayIDs != nil {
		q += ` AND gateway_id IN ` + inList(3+len(ids), len(gatewayIDs))
		args = append(args, anyStrings(gatewayIDs)...)
	}
	n, err := tx.q.exec(ctx, q, args...)
	return int(n), err
}

// BatchCounts returns a bulk send's message counts by status.
func (db *DB) BatchCounts(ctx context.Context, orgID, batchID string) (map[sb.Status]int, error) {
	rs, err := db.reader().query(ctx, `SELECT status, COUNT(*) FROM messages WHERE org_id = $1 AND batch_id = $2 GROUP BY status`, orgID, batchID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[sb.Status]int{}
	for rs.Next() {
		var s string
		var n int
		if err := rs.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[sb.Status(s)] = n
	}
	return out, rs.Err()
}

// CountDelivered returns how many of an org's outgoing messages are
// Delivered (benchmarks, diagnostics).
func (db *DB) CountDelivered(ctx context.Context, orgID string) (int, error) {
	var n int
	err := db.reader().queryRow(ctx, `SELECT COUNT(*) FROM messages WHERE org_id = $1 AND status = 'Delivered'`, orgID).Scan(&n)
	return n, err
}

// DeliveryLatencies returns, for each delivered outgoing message of an
// org, microseconds from acceptance to delivery.
func (db *DB) DeliveryLatencies(ctx context.Context, orgID string) ([]int64, error) {
	rs, err := db.reader().query(ctx, `SELECT delivered_at - created_at FROM messages WHERE org_id = $1 AND delivered_at IS NOT NULL`, orgID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []int64
	for rs.Next() {
		var v int64
		if err := rs.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// ProviderOptOut opts a number out on a gateway because the provider said
// the recipient unsubscribed at the carrier (e.g. replied STOP there): a
// locked opt-out, like an opt-out keyword, that only an opt-in keyword from
// the phone lifts. code and debug are the provider's error, named in the
// detail.
func (tx *Tx) ProviderOptOut(ctx context.Context, orgID, gatewayID string, phoneHash []byte, code, debug string) error {
	_, err := tx.SetSubscription(ctx, &sb.Subscription{OrgID: orgID, GatewayID: gatewayID, PhoneHash: phoneHash,
		Status: sb.OptedOut, Detail: sb.DetailProviderOptOut(code, debug), Via: sb.ViaProvider, Locked: true})
	return err
}
