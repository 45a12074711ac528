package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	sb "github.com/switchboard/switchboard"
)

// The built-in CRM's tables (crm_*) hold client data: contacts with their
// readable numbers, message records with bodies, tasks. They are the CRM, not
// Switchboard's operational state, and are kept apart from it.

const contactCols = `id, org_id, first_name, last_name, email, phone, owner_id, opt_out, fields, created_at`

func scanContact(r row) (*sb.CRMRecord, error) {
	var c sb.CRMRecord
	var org, fields string
	var created int64
	if err := r.Scan(&c.ID, &org, &c.FirstName, &c.LastName, &c.Email, &c.Phone, &c.OwnerID, &c.OptOut, &fields, &created); err != nil {
		return nil, err
	}
	c.Type = "Contact"
	c.CreatedAt = fromMicros(created)
	if fields != "" && fields != "{}" {
		_ = json.Unmarshal([]byte(fields), &c.Fields)
	}
	return &c, nil
}

// SaveContact creates (ID empty) or updates a built-in CRM contact.
func (tx *Tx) SaveContact(ctx context.Context, orgID string, c *sb.CRMRecord) error {
	fields, _ := json.Marshal(c.Fields)
	if c.Fields == nil {
		fields = []byte("{}")
	}
	now := micros(tx.db.now())
	if c.ID == "" {
		c.ID = crmID("003")
		c.Type = "Contact"
		c.CreatedAt = fromMicros(now)
		_, err := tx.q.exec(ctx, `INSERT INTO crm_contacts (id, org_id, first_name, last_name, email, phone, owner_id, opt_out, fields, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
			c.ID, orgID, c.FirstName, c.LastName, strings.ToLower(c.Email), c.Phone, c.OwnerID, c.OptOut, string(fields), now)
		return err
	}
	n, err := tx.q.exec(ctx, `UPDATE crm_contacts SET first_name = $3, last_name = $4, email = $5, phone = $6, owner_id = $7, opt_out = $8, fields = $9, updated_at = $10
		WHERE id = $1 AND org_id = $2`, c.ID, orgID, c.FirstName, c.LastName, strings.ToLower(c.Email), c.Phone, c.OwnerID, c.OptOut, string(fields), now)
	if err != nil {
		return err
	}
	if n == 0 {
		return sb.Errorf(sb.ENotFound, "contact %s not found", c.ID)
	}
	return nil
}

// ContactFilter selects built-in CRM contacts.
type ContactFilter struct {
	// Search matches names and email (case-insensitive substring).
	Search string
	// OptOut, when set, selects contacts by their global opt-out flag.
	OptOut *bool
	// HasPhone selects contacts with a phone number.
	HasPhone bool
	// Field selects contacts whose custom field equals a value ("Student_Type=Future").
	FieldName, FieldValue string
	Limit, Offset         int
}

// Contacts lists built-in CRM contacts.
func (db *DB) Contacts(ctx context.Context, orgID string, f ContactFilter) ([]*sb.CRMRecord, error) {
	where := []string{"org_id = $1"}
	args := []any{orgID}
	if f.Search != "" {
		args = append(args, "%"+strings.ToLower(f.Search)+"%")
		n := strconv.Itoa(len(args))
		where = append(where, "(LOWER(first_name) LIKE $"+n+" OR LOWER(last_name) LIKE $"+n+" OR email LIKE $"+n+")")
	}
	if f.OptOut != nil {
		args = append(args, *f.OptOut)
		where = append(where, "opt_out = $"+strconv.Itoa(len(args)))
	}
	if f.HasPhone {
		where = append(where, "phone <> ''")
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	args = append(args, f.Limit, f.Offset)
	q := `SELECT ` + contactCols + ` FROM crm_contacts WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY last_name, first_name, id LIMIT $` + strconv.Itoa(len(args)-1) + ` OFFSET $` + strconv.Itoa(len(args))
	rs, err := db.reader().query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out, err := collectContacts(rs)
	if err != nil || f.FieldName == "" {
		return out, err
	}
	kept := out[:0]
	for _, c := range out {
		if c.Fields[f.FieldName] == f.FieldValue {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

func collectContacts(rs rows) ([]*sb.CRMRecord, error) {
	defer rs.Close()
	var out []*sb.CRMRecord
	for rs.Next() {
		c, err := scanContact(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

// ContactsByIDs returns the contacts with the ids.
func (db *DB) ContactsByIDs(ctx context.Context, orgID string, ids []string) ([]*sb.CRMRecord, error) {
	var out []*sb.CRMRecord
	for start := 0; start < len(ids); start += 900 {
		part := ids[start:min(start+900, len(ids))]
		rs, err := db.reader().query(ctx, `SELECT `+contactCols+` FROM crm_contacts WHERE org_id = $1 AND id IN `+inList(2, len(part)),
			append([]any{orgID}, anyStrings(part)...)...)
		if err != nil {
			return nil, err
		}
		cs, err := collectContacts(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// CRMLastOutgoingOwners returns, for each phone on a gateway number, the
// owner of the newest outgoing built-in CRM message record to it; pairs
// without one are left out.
func (db *DB) CRMLastOutgoingOwners(ctx context.Context, orgID string, pairs []sb.PhoneOnGateway) (map[sb.PhoneOnGateway]string, error) {
	out := map[sb.PhoneOnGateway]string{}
	for _, p := range pairs {
		if _, done := out[p]; done {
			continue
		}
		var owner string
		err := db.reader().queryRow(ctx, `SELECT owner_id FROM crm_messages WHERE org_id = $1 AND phone = $2 AND gateway_number = $3 AND direction = 'outgoing'
			ORDER BY created_at DESC, id DESC LIMIT 1`, orgID, p.Phone, p.GatewayNumber).Scan(&owner)
		if errors.Is(err, errNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if owner != "" {
			out[p] = owner
		}
	}
	return out, nil
}

// ContactsWhere returns contacts whose column equals value (phone or email).
func (db *DB) ContactsWhere(ctx context.Context, orgID, column, value string) ([]*sb.CRMRecord, error) {
	return contactsWhere(ctx, db.reader(), orgID, column, value)
}

// ContactsWhere returns contacts whose column equals value (phone or
// email), as this transaction sees them (its own writes included).
func (tx *Tx) ContactsWhere(ctx context.Context, orgID, column, value string) ([]*sb.CRMRecord, error) {
	return contactsWhere(ctx, tx.q, orgID, column, value)
}

func contactsWhere(ctx context.Context, q querier, orgID, column, value string) ([]*sb.CRMRecord, error) {
	if column != "phone" && column != "email" {
		return nil, errors.New("store: contacts can be looked up by phone or email only")
	}
	rs, err := q.query(ctx, `SELECT `+contactCols+` FROM crm_contacts WHERE org_id = $1 AND `+column+` = $2 ORDER BY created_at, id`, orgID, value)
	if err != nil {
		return nil, err
	}
	return collectContacts(rs)
}

// ContactsByPhones returns the contacts whose phone is one of the E.164
// numbers, in ONE set-based query however many numbers (the numbers travel
// as one array parameter).
func (db *DB) ContactsByPhones(ctx context.Context, orgID string, phones []string) ([]*sb.CRMRecord, error) {
	if len(phones) == 0 {
		return nil, nil
	}
	in, list := db.inStrings("phone", 2, phones)
	rs, err := db.reader().query(ctx, `SELECT `+contactCols+` FROM crm_contacts WHERE org_id = $1 AND `+in+` ORDER BY created_at, id`, orgID, list)
	if err != nil {
		return nil, err
	}
	return collectContacts(rs)
}

// DeleteContact removes a contact.
func (tx *Tx) DeleteContact(ctx context.Context, orgID, id string) error {
	n, err := tx.q.exec(ctx, `DELETE FROM crm_contacts WHERE id = $1 AND org_id = $2`, id, orgID)
	if err == nil && n == 0 {
		return sb.Errorf(sb.ENotFound, "contact %s not found", id)
	}
	return err
}

// WriteCRMMessages creates or updates built-in CRM message records, keyed
// by Switchboard's message id so a repeated write never makes a second
// record, in multi-row statements. It returns the record ids in order.
func (tx *Tx) WriteCRMMessages(ctx context.Context, orgID string, msgs []sb.CRMMessage) ([]string, error) {
	byMsg := make(map[string]string, len(msgs))
	now := micros(tx.db.now())
	const cols = 20
	const chunk = 200
	for start := 0; start < len(msgs); start += chunk {
		part := msgs[start:min(start+chunk, len(msgs))]
		seen := make(map[string]bool, len(part))
		var q strings.Builder
		q.WriteString(`INSERT INTO crm_messages (id, org_id, message_id, record_id, direction, status, debug, body, phone, media_urls,
			gateway_id, gateway_number, owner_id, created_by_id, segments, provider_message_id, batch_id, created_at, status_at, updated_at) VALUES `)
		args := make([]any, 0, len(part)*cols)
		for i := len(part) - 1; i >= 0; i-- { // the last write of a message wins
			m := part[i]
			if seen[m.MessageID] {
				continue
			}
			seen[m.MessageID] = true
			media, _ := json.Marshal(m.MediaURLs)
			if m.MediaURLs == nil {
				media = []byte("[]")
			}
			id := m.CRMMessageID
			if id == "" {
				id = crmID("a0S")
			}
			if len(args) > 0 {
				q.WriteString(",")
			}
			q.WriteString(placeholders(len(args)+1, cols))
			args = append(args, id, orgID, m.MessageID, m.RecordID, string(m.Direction), string(m.Status), m.Debug, m.Body, m.Phone, string(media),
				m.GatewayID, m.GatewayNumber, m.OwnerID, m.CreatedByID, m.Segments, m.ProviderMessageID, m.BatchID,
				micros(m.CreatedAt), micros(m.StatusAt), now)
		}
		q.WriteString(` ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, debug = excluded.debug, segments = excluded.segments,
				provider_message_id = excluded.provider_message_id, status_at = excluded.status_at, updated_at = excluded.updated_at,
				record_id = CASE WHEN crm_messages.record_id = '' THEN excluded.record_id ELSE crm_messages.record_id END
			RETURNING message_id, id`)
		rs, err := tx.q.query(ctx, q.String(), args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var mid, id string
			if err := rs.Scan(&mid, &id); err != nil {
				rs.Close()
				return nil, err
			}
			byMsg[mid] = id
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = byMsg[m.MessageID]
	}
	return ids, nil
}

// CRMMessageRecord is a built-in CRM message record.
type CRMMessageRecord = sb.CRMMessageRecord

// CRMMessagesFor lists built-in CRM message records of a record or phone,
// oldest first (a conversation).
func (db *DB) CRMMessagesFor(ctx context.Context, orgID, recordID, phone string, limit int) ([]CRMMessageRecord, error) {
	if limit <= 0 || limit > sb.MaxConversation {
		limit = sb.MaxConversation
	}
	col, val := "record_id", recordID
	if recordID == "" {
		col, val = "phone", phone
	}
	rs, err := db.reader().query(ctx, `SELECT * FROM (SELECT id, message_id, record_id, direction, status, debug, body, phone, media_urls, gateway_id, gateway_number,
		owner_id, created_by_id, segments, provider_message_id, batch_id, created_at, status_at, updated_at
		FROM crm_messages WHERE org_id = $1 AND `+col+` = $2 ORDER BY created_at DESC, id DESC LIMIT $3) t ORDER BY created_at, id`, orgID, val, limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []CRMMessageRecord
	for rs.Next() {
		var r CRMMessageRecord
		var media string
		var created, statusAt, updated int64
		if err := rs.Scan(&r.ID, &r.MessageID, &r.RecordID, &r.Direction, &r.Status, &r.Debug, &r.Body, &r.Phone, &media, &r.GatewayID,
			&r.GatewayNumber, &r.OwnerID, &r.CreatedByID, &r.Segments, &r.ProviderMessageID, &r.BatchID, &created, &statusAt, &updated); err != nil {
			return nil, err
		}
		r.CRMMessageID = r.ID
		_ = json.Unmarshal([]byte(media), &r.MediaURLs)
		r.CreatedAt, r.StatusAt, r.UpdatedAt = fromMicros(created), fromMicros(statusAt), fromMicros(updated)
		out = append(out, r)
	}
	return out, rs.Err()
}

// CreateTask creates a built-in CRM task; with an external id a repeated
// create returns the first task's id.
func (tx *Tx) CreateTask(ctx context.Context, orgID string, t *sb.CRMTask) (string, error) {
	if t.ExternalID != "" {
		var id string
		err := tx.q.queryRow(ctx, `SELECT id FROM crm_tasks WHERE org_id = $1 AND external_id = $2`, orgID, t.ExternalID).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, errNoRows) {
			return "", err
		}
	}
	id := crmID("00T")
	_, err := tx.q.exec(ctx, `INSERT INTO crm_tasks (id, org_id, who_id, owner_id, subject, status, activity_date, description, external_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		id, orgID, t.WhoID, t.OwnerID, t.Subject, t.Status, t.ActivityDate, t.Description, nullStr(t.ExternalID), micros(tx.db.now()))
	return id, err
}

// Tasks lists the built-in CRM tasks of a record.
func (db *DB) Tasks(ctx context.Context, orgID, whoID string) ([]sb.CRMTask, error) {
	rs, err := db.reader().query(ctx, `SELECT id, who_id, owner_id, subject, status, activity_date, description, COALESCE(external_id, '')
		FROM crm_tasks WHERE org_id = $1 AND who_id = $2 ORDER BY created_at`, orgID, whoID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []sb.CRMTask
	for rs.Next() {
		var t sb.CRMTask
		if err := rs.Scan(&t.ID, &t.WhoID, &t.OwnerID, &t.Subject, &t.Status, &t.ActivityDate, &t.Description, &t.ExternalID); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rs.Err()
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// crmID returns an 18-character record id in the CRM's style: a 3-character
// key prefix naming the object, then 15 random base-62 characters (about 89
// bits, so ids made in the same instant never collide).
func crmID(prefix string) string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = base62[int(b[i])%len(base62)]
	}
	return prefix + string(b)
}

// CRMMessagesWithStatus counts an org's built-in CRM message records with a
// status (diagnostics, tests).
func (db *DB) CRMMessagesWithStatus(ctx context.Context, orgID string, status sb.Status) (int, error) {
	var n int
	err := db.reader().queryRow(ctx, `SELECT COUNT(*) FROM crm_messages WHERE org_id = $1 AND status = $2`, orgID, string(status)).Scan(&n)
	return n, err
}
