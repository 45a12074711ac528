// Package builtin is Switchboard's own CRM: contacts, message records and
// tasks kept in the store's crm_* tables, apart from the operational tables.
// It implements switchboard.CRM for orgs that have no external CRM.
package builtin

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// CRM is the built-in CRM.
type CRM struct {
	DB *store.DB
	// Calls counts write calls (for the CRM-calls-per-1,000-messages figure).
	Calls func()
}

var (
	_ sb.CRM                = (*CRM)(nil)
	_ sb.ClickWriter        = (*CRM)(nil)
	_ sb.FormResponseWriter = (*CRM)(nil)
)

// New returns the built-in CRM on db.
func New(db *store.DB) *CRM { return &CRM{DB: db} }

// WriteMessages upserts message records by Switchboard message id in one
// transaction.
func (c *CRM) WriteMessages(ctx context.Context, org *sb.Org, msgs []sb.CRMMessage) ([]sb.CRMResult, error) {
	if c.Calls != nil {
		c.Calls()
	}
	return c.writeTx(ctx, org, func(tx *store.Tx) ([]string, error) { return tx.WriteCRMMessages(ctx, org.ID, msgs) })
}

// WriteMessagesTx implements hub.TxCRM: the records are upserted in the
// caller's transaction (the write-back's, which also takes and finishes the
// changes).
func (c *CRM) WriteMessagesTx(ctx context.Context, tx *store.Tx, org *sb.Org, msgs []sb.CRMMessage) ([]sb.CRMResult, error) {
	if c.Calls != nil {
		c.Calls()
	}
	return written(tx.WriteCRMMessages(ctx, org.ID, msgs))
}

// WriteClicks implements sb.ClickWriter: clicks go to the crm_link_clicks
// table in one transaction, keyed by click id, so a repeated write never
// makes a second record. Results hold the click records' ids in order.
// Clicks do not count in Calls (a figure per message).
func (c *CRM) WriteClicks(ctx context.Context, org *sb.Org, clicks []sb.LinkClick) ([]sb.CRMResult, error) {
	return c.writeTx(ctx, org, func(tx *store.Tx) ([]string, error) { return tx.WriteCRMLinkClicks(ctx, org.ID, clicks) })
}

// WriteFormResponses implements sb.FormResponseWriter: form records go to
// the crm_form_responses table in one transaction, created or updated by
// session id. Results hold the form records' ids in order.
func (c *CRM) WriteFormResponses(ctx context.Context, org *sb.Org, rs []sb.FormResponse) ([]sb.CRMResult, error) {
	return c.writeTx(ctx, org, func(tx *store.Tx) ([]string, error) { return tx.WriteCRMFormResponses(ctx, org.ID, rs) })
}

// writeTx runs write in one transaction and turns the record ids it
// returns into results; a failed transaction is a retryable CRMError.
func (c *CRM) writeTx(ctx context.Context, org *sb.Org, write func(tx *store.Tx) ([]string, error)) ([]sb.CRMResult, error) {
	if org == nil {
		return nil, sb.FieldError("org", "org is required")
	}
	var ids []string
	err := c.DB.Tx(ctx, func(tx *store.Tx) error {
		var err error
		ids, err = write(tx)
		return err
	})
	return written(ids, err)
}

// written turns the record ids of a write into results; a failed write is a
// retryable CRMError.
func written(ids []string, err error) ([]sb.CRMResult, error) {
	if err != nil {
		return nil, &sb.CRMError{Message: "built-in CRM write failed: " + err.Error(), Retryable: true}
	}
	out := make([]sb.CRMResult, len(ids))
	for i, id := range ids {
		out[i].CRMMessageID = id
	}
	return out, nil
}

// GetRecords returns contacts by id.
func (c *CRM) GetRecords(ctx context.Context, org *sb.Org, ids []string) ([]sb.CRMRecord, error) {
	recs, err := c.DB.ContactsByIDs(ctx, org.ID, ids)
	return deref(recs), err
}

// FindByPhone returns contacts with the E.164 phone.
func (c *CRM) FindByPhone(ctx context.Context, org *sb.Org, phone string) ([]sb.CRMRecord, error) {
	recs, err := c.DB.ContactsWhere(ctx, org.ID, "phone", phone)
	return deref(recs), err
}

// FindByPhones returns the contacts of each E.164 number, by number.
func (c *CRM) FindByPhones(ctx context.Context, org *sb.Org, phones []string) (map[string][]sb.CRMRecord, error) {
	recs, err := c.DB.ContactsByPhones(ctx, org.ID, phones)
	if err != nil {
		return nil, err
	}
	out := map[string][]sb.CRMRecord{}
	for _, r := range recs {
		out[r.Phone] = append(out[r.Phone], *r)
	}
	return out, nil
}

// FindByEmail returns contacts with the email: the built-in CRM's only
// records.
func (c *CRM) FindByEmail(ctx context.Context, org *sb.Org, email string) ([]sb.CRMRecord, error) {
	return c.FindContactsByEmail(ctx, org, email)
}

// LastOutgoingOwners returns the owner of the newest outgoing message
// record to each phone on a gateway number.
func (c *CRM) LastOutgoingOwners(ctx context.Context, org *sb.Org, pairs []sb.PhoneOnGateway) (map[sb.PhoneOnGateway]string, error) {
	return c.DB.CRMLastOutgoingOwners(ctx, org.ID, pairs)
}

// Conversation returns the newest limit message records of a contact, or
// of a phone number when recordID is empty, oldest first.
func (c *CRM) Conversation(ctx context.Context, org *sb.Org, recordID, phone string, limit int) ([]sb.CRMMessageRecord, error) {
	if org == nil {
		return nil, sb.FieldError("org", "org is required")
	}
	if recordID == "" && phone == "" {
		return nil, sb.FieldError("phone", "a record id or a phone number is required")
	}
	return c.DB.CRMMessagesFor(ctx, org.ID, recordID, phone, limit)
}

// FindContactsByEmail returns contacts with the email (case-insensitive).
func (c *CRM) FindContactsByEmail(ctx context.Context, org *sb.Org, email string) ([]sb.CRMRecord, error) {
	recs, err := c.DB.ContactsWhere(ctx, org.ID, "email", strings.ToLower(strings.TrimSpace(email)))
	return deref(recs), err
}

// SaveContactAndTask creates or updates the contact and creates the task in
// one transaction; a task with an external id already created is not
// created again.
func (c *CRM) SaveContactAndTask(ctx context.Context, org *sb.Org, rec *sb.CRMRecord, t *sb.CRMTask) (string, string, error) {
	if c.Calls != nil {
		c.Calls()
	}
	var taskID string
	err := c.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.SaveContact(ctx, org.ID, rec); err != nil {
			return err
		}
		t.WhoID = rec.ID
		var err error
		taskID, err = tx.CreateTask(ctx, org.ID, t)
		return err
	})
	if err != nil {
		return "", "", err
	}
	return rec.ID, taskID, nil
}

func deref(recs []*sb.CRMRecord) []sb.CRMRecord {
	out := make([]sb.CRMRecord, len(recs))
	for i, r := range recs {
		out[i] = *r
	}
	return out
}

// ImportResult reports a CSV import.
type ImportResult struct {
	Created int           `json:"created"`
	Updated int           `json:"updated"`
	Errors  []ImportError `json:"errors"`
}

// ImportError names a rejected CSV row.
type ImportError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// MaxImportRows bounds one CSV import.
const MaxImportRows = 100_000

// importRow is one parsed CSV row: the values of its non-empty cells.
type importRow struct {
	line                             int
	first, last, email, phone, owner *string
	optOut                           *bool
	fields                           map[string]string
}

// apply sets the row's values on c: a column the file lacks, or an empty
// cell, leaves c's value as it is.
func (r *importRow) apply(c *sb.CRMRecord) {
	for _, f := range []struct{ dst, v *string }{{&c.FirstName, r.first}, {&c.LastName, r.last}, {&c.Email, r.email}, {&c.Phone, r.phone}, {&c.OwnerID, r.owner}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if r.optOut != nil {
		c.OptOut = *r.optOut
	}
	if len(r.fields) > 0 && c.Fields == nil {
		c.Fields = map[string]string{}
	}
	maps.Copy(c.Fields, r.fields)
}

// ImportCSV reads contacts from CSV with a header row. Known columns:
// first_name, last_name, email, phone, owner_id (a user of the org),
// opt_out (true/false/1/0/yes/no); any other column becomes a custom field.
// A row matches an existing contact by email, or by phone when it has no
// email, and updates only the values its non-empty cells give; a new
// contact is owned by owner_id or else by the importing user. Rows with
// errors are skipped and reported by line; the rest are imported in one
// transaction, so an import run twice changes nothing the second time.
func (c *CRM) ImportCSV(ctx context.Context, org *sb.Org, importer *sb.User, r io.Reader) (*ImportResult, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, sb.Errorf(sb.EInvalid, "CSV is empty: a header row is required")
		}
		return nil, sb.Errorf(sb.EInvalid, "CSV header could not be read: %v", err)
	}
	cols := make([]string, len(header))
	hasKey := false
	for i, h := range header {
		cols[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		cols[i] = strings.ReplaceAll(cols[i], " ", "_")
		switch cols[i] {
		case "firstname":
			cols[i] = "first_name"
		case "lastname":
			cols[i] = "last_name"
		case "mobile":
			cols[i] = "phone"
		}
		if cols[i] == "phone" || cols[i] == "email" {
			hasKey = true
		}
	}
	if !hasKey {
		return nil, sb.Errorf(sb.EInvalid, "CSV header must have a phone or an email column (found: %s)", strings.Join(cols, ", "))
	}
	users, err := c.DB.Users(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	isUser := map[string]bool{}
	for _, u := range users {
		isUser[u.ID] = true
	}
	res := &ImportResult{Errors: []ImportError{}}
	var rows []*importRow
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			res.Errors = append(res.Errors, ImportError{Line: line, Message: err.Error()})
			continue
		}
		if len(rows) >= MaxImportRows {
			return nil, sb.Errorf(sb.EInvalid, "CSV has more than %d rows; split it", MaxImportRows)
		}
		ir := &importRow{line: line, fields: map[string]string{}}
		bad := ""
		if len(row) > len(cols) {
			bad = fmt.Sprintf("row has %d columns, header has %d", len(row), len(cols))
		}
		for i, v := range row {
			if bad != "" {
				break
			}
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			switch cols[i] {
			case "first_name":
				ir.first = &v
			case "last_name":
				ir.last = &v
			case "email":
				v = strings.ToLower(v)
				if !strings.Contains(v, "@") {
					bad = fmt.Sprintf("email %q is not an email address", v)
				}
				ir.email = &v
			case "phone":
				p, err := sb.ParsePhone(v, org.Settings.DefaultRegion)
				if err != nil {
					bad = "phone: " + sb.ErrorMessage(err)
				}
				ir.phone = &p
			case "owner_id":
				if !isUser[v] {
					bad = fmt.Sprintf("owner_id %q is not a user of this org", v)
				}
				ir.owner = &v
			case "opt_out":
				var b bool
				switch strings.ToLower(v) {
				case "0", "false", "no", "n":
				case "1", "true", "yes", "y":
					b = true
				default:
					bad = fmt.Sprintf("opt_out must be true or false, not %q", v)
				}
				ir.optOut = &b
			default:
				ir.fields[header[i]] = v
			}
		}
		if bad == "" && ir.phone == nil && ir.email == nil {
			bad = "row has neither phone nor email"
		}
		if bad != "" {
			res.Errors = append(res.Errors, ImportError{Line: line, Message: bad})
			continue
		}
		rows = append(rows, ir)
	}
	err = c.DB.Tx(ctx, func(tx *store.Tx) error {
		res.Created, res.Updated = 0, 0
		for _, ir := range rows {
			// Looked up in the transaction: a contact an earlier row of
			// this file created is found like any other.
			col, key := "email", ir.email
			if key == nil {
				col, key = "phone", ir.phone
			}
			existing, err := tx.ContactsWhere(ctx, org.ID, col, *key)
			if err != nil {
				return err
			}
			rec := &sb.CRMRecord{OwnerID: importer.ID}
			if len(existing) > 0 {
				rec = existing[0]
				res.Updated++
			} else {
				res.Created++
			}
			ir.apply(rec)
			if err := tx.SaveContact(ctx, org.ID, rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// OptedOutRecords calls fn with every contact whose global opt-out flag is
// set.
func (c *CRM) OptedOutRecords(ctx context.Context, org *sb.Org, fn func(sb.CRMRecord) error) error {
	yes := true
	for offset := 0; ; offset += 1000 {
		cs, err := c.DB.Contacts(ctx, org.ID, store.ContactFilter{OptOut: &yes, HasPhone: true, Limit: 1000, Offset: offset})
		if err != nil {
			return err
		}
		for _, r := range cs {
			if err := fn(*r); err != nil {
				return err
			}
		}
		if len(cs) < 1000 {
			return nil
		}
	}
}
