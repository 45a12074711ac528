package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/switchboard/switchboard"
)

// messageSelect lists the message object's fields read for a thread: the
// mapped message fields, every record lookup (to tell the record a message
// belongs to) and the system fields Id, CreatedDate and LastModifiedDate.
func (m Mapping) messageSelect() []string {
	f := m.Fields
	fields := []string{"Id", "CreatedDate", "LastModifiedDate", f.ExternalID, f.Status, f.Direction, f.Body, f.Media, f.Phone, f.Gateway, f.Debug,
		f.Segments, f.ProviderMessageID, f.BatchID, f.Owner}
	for _, r := range m.Records {
		fields = append(fields, r.LookupField)
	}
	return fieldList(fields...)
}

// Conversation implements switchboard.CRM with one SOQL query on the
// mapped message object: the records whose lookup to the record is
// recordID, or else whose phone field is the number, newest first with
// LIMIT, then turned oldest first.
//
// The phone is matched exactly in E.164: message records are written by
// Switchboard, always with the E.164 number, so the spellings FindByPhones
// tries on people-typed phone fields are not needed here (and an exact
// match keeps the query selective).
func (c *Client) Conversation(ctx context.Context, org *switchboard.Org, recordID, phone string, limit int) ([]switchboard.CRMMessageRecord, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > switchboard.MaxConversation {
		limit = switchboard.MaxConversation
	}
	var where string
	switch {
	case recordID != "":
		if !ValidID(recordID) {
			return nil, switchboard.FieldError("record_id", "%q is not a Salesforce record id", recordID)
		}
		obj, ok := m.recordObjectFor(recordID)
		if !ok {
			return nil, switchboard.FieldError("record_id", "no lookup field is mapped for records with id prefix %s; add the object to the Salesforce mapping", recordID[:3])
		}
		where = obj.LookupField + " = " + quote(recordID)
	case phone != "":
		if m.Fields.Phone == "" {
			return nil, switchboard.Errorf(switchboard.EInvalid, "the Salesforce mapping has no phone field on %s, so a conversation cannot be found by number", m.MessageObject)
		}
		if !strings.HasPrefix(phone, "+") {
			return nil, switchboard.FieldError("phone", "phone must be in E.164 form (+ and country code)")
		}
		e164, err := switchboard.ParsePhone(phone, "")
		if err != nil {
			return nil, err
		}
		where = m.Fields.Phone + " = " + quote(e164)
	default:
		return nil, switchboard.FieldError("phone", "a record id or a phone number is required")
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY CreatedDate DESC, Id DESC LIMIT %d",
		strings.Join(m.messageSelect(), ", "), m.MessageObject, where, limit)
	out, err := queryAll(ctx, c, org.ID, q, func(raw json.RawMessage) (switchboard.CRMMessageRecord, error) { return toMessageRecord(m, raw) })
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}

var _ switchboard.CRMMessageReader = (*Client)(nil)

// MessagesByID implements switchboard.CRMMessageReader: SOQL on the
// message object by its external id, "IN (…)" with up to 100 ids a query
// (one query for a page of the inbox).
func (c *Client) MessagesByID(ctx context.Context, org *switchboard.Org, messageIDs []string) (map[string]switchboard.CRMMessageRecord, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, id := range messageIDs {
		if id != "" && len(id) <= 255 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	out := make(map[string]switchboard.CRMMessageRecord, len(ids))
	for len(ids) > 0 {
		n := min(idsPerQuery, len(ids))
		q := fmt.Sprintf("SELECT %s FROM %s WHERE %s IN (%s)", strings.Join(m.messageSelect(), ", "), m.MessageObject, m.Fields.ExternalID, quoteList(ids[:n]))
		err := c.Query(ctx, org.ID, q, func(raw json.RawMessage) error {
			rec, err := toMessageRecord(m, raw)
			if err != nil {
				return err
			}
			if rec.MessageID != "" {
				out[rec.MessageID] = rec
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	return out, nil
}

// toMessageRecord reads a queried message record. The status time is the
// record's LastModifiedDate: Switchboard changes a message record only to
// move its status on.
func toMessageRecord(m Mapping, raw json.RawMessage) (switchboard.CRMMessageRecord, error) {
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return switchboard.CRMMessageRecord{}, badResponse("query")
	}
	var r switchboard.CRMMessageRecord
	f := m.Fields
	for k, v := range fields {
		if k == "attributes" || v == nil {
			continue
		}
		s := stringValue(v)
		switch {
		case strings.EqualFold(k, "Id"):
			r.ID = s
		case strings.EqualFold(k, "CreatedDate"):
			r.CreatedAt, _ = parseTime(s)
		case strings.EqualFold(k, "LastModifiedDate"):
			r.UpdatedAt, _ = parseTime(s)
		case isField(k, f.ExternalID):
			r.MessageID = s
		case isField(k, f.Status):
			r.Status = switchboard.Status(s)
		case isField(k, f.Direction):
			r.Direction = switchboard.Direction(s)
		case isField(k, f.Body):
			r.Body = s
		case isField(k, f.Media):
			for _, u := range strings.Split(s, "\n") {
				if u = strings.TrimSpace(u); u != "" {
					r.MediaURLs = append(r.MediaURLs, u)
				}
			}
		case isField(k, f.Phone):
			r.Phone = s
		case isField(k, f.Gateway):
			r.GatewayNumber = s
		case isField(k, f.Debug):
			r.Debug = s
		case isField(k, f.Segments):
			if n, ok := v.(float64); ok {
				r.Segments = int(n)
			}
		case isField(k, f.ProviderMessageID):
			r.ProviderMessageID = s
		case isField(k, f.BatchID):
			r.BatchID = s
		case isField(k, f.Owner):
			r.OwnerID = s
		default:
			for _, obj := range m.Records {
				if isField(k, obj.LookupField) && s != "" && r.RecordID == "" {
					r.RecordID = s
				}
			}
		}
	}
	if r.ID == "" {
		return switchboard.CRMMessageRecord{}, badResponse("query")
	}
	r.CRMMessageID = r.ID
	r.StatusAt = r.UpdatedAt
	if r.StatusAt.IsZero() {
		r.StatusAt = r.CreatedAt
	}
	return r, nil
}
