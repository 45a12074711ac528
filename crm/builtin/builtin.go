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

// ImportCSV reads contacts from CSV with a header row. Known columns:
// first_name, last_name, email, phone, owner_id, opt_out (true/false/1/0/yes/no);
// any other column becomes a custom field. A row whose email matches an
// existing contact updates it. Rows with errors are skipped and reported by
// line; the rest are imported in one transaction.
func (c *CRM) ImportCSV(ctx context.Context, org *sb.Org, r io.Reader) (*ImportResult, error) {
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
	hasPhone := false
	for i, h := range header {
		cols[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		cols[i] = strings.ReplaceAll(cols[i], " ", "_")
		if cols[i] == "phone" || cols[i] == "email" {
			hasPhone = true
		}
	}
	if !hasPhone {
		return nil, sb.Errorf(sb.EInvalid, "CSV header must have a phone or an email column (found: %s)", strings.Join(cols, ", "))
	}
	res := &ImportResult{Errors: []ImportError{}}
	var recs []*sb.CRMRecord
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
		if len(recs) >= MaxImportRows {
			return nil, sb.Errorf(sb.EInvalid, "CSV has more than %d rows; split it", MaxImportRows)
		}
		rec := &sb.CRMRecord{Fields: map[string]string{}}
		bad := ""
		for i, v := range row {
			if i >= len(cols) {
				bad = fmt.Sprintf("row has %d columns, header has %d", len(row), len(cols))
				break
			}
			v = strings.TrimSpace(v)
			switch cols[i] {
			case "first_name", "firstname":
				rec.FirstName = v
			case "last_name", "lastname":
				rec.LastName = v
			case "email":
				rec.Email = strings.ToLower(v)
			case "phone", "mobile":
				if v == "" {
					continue
				}
				p, err := sb.ParsePhone(v, org.Settings.DefaultRegion)
				if err != nil {
					bad = sb.ErrorMessage(err)
					continue
				}
				rec.Phone = p
			case "owner_id":
				rec.OwnerID = v
			case "opt_out":
				switch strings.ToLower(v) {
				case "", "0", "false", "no", "n":
				case "1", "true", "yes", "y":
					rec.OptOut = true
				default:
					bad = fmt.Sprintf("opt_out must be true or false, not %q", v)
				}
			default:
				if v != "" {
					rec.Fields[header[i]] = v
				}
			}
		}
		if bad == "" && rec.Phone == "" && rec.Email == "" {
			bad = "row has neither phone nor email"
		}
		if bad != "" {
			res.Errors = append(res.Errors, ImportError{Line: line, Message: bad})
			continue
		}
		recs = append(recs, rec)
	}
	err = c.DB.Tx(ctx, func(tx *store.Tx) error {
		res.Created, res.Updated = 0, 0
		for _, rec := range recs {
			rec.ID = ""
			if rec.Email != "" {
				existing, err := c.DB.ContactsWhere(ctx, org.ID, "email", rec.Email)
				if err != nil {
					return err
				}
				if len(existing) > 0 {
					rec.ID = existing[0].ID
					res.Updated++
				}
			}
			if rec.ID == "" {
				res.Created++
			}
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
