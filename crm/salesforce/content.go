package salesforce

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard"
)

var (
	_ switchboard.ClickWriter        = (*Client)(nil)
	_ switchboard.FormResponseWriter = (*Client)(nil)
)

// MaxLongText is the length limit of a Salesforce long text area
// (131,072 characters); a longer form transcript is cut at a whole answer.
const MaxLongText = 131072

// sfTime formats a time as a Salesforce datetime.
func sfTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// WriteClicks implements switchboard.ClickWriter: clicks are upserted by
// their id into the click object with sObject Collections (PATCH
// /composite/sobjects/{object}/{external id field}, 200 a call, allOrNone
// false), so a repeated write of a click updates its record instead of
// making a second one. Results are in the order of clicks; CRMMessageID is
// the click record's id.
func (c *Client) WriteClicks(ctx context.Context, org *switchboard.Org, clicks []switchboard.LinkClick) ([]switchboard.CRMResult, error) {
	if org == nil {
		return nil, switchboard.FieldError("org", "org is required")
	}
	results := make([]switchboard.CRMResult, len(clicks))
	if len(clicks) == 0 {
		return results, nil
	}
	m, err := c.writeMapping(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	var ops []*writeOp
	byKey := map[string]*writeOp{}
	for i, cl := range clicks {
		rec, err := clickRecord(m, cl)
		if err != nil {
			results[i].Err = err
			continue
		}
		ops = upsertOp(ops, byKey, i, m.Clicks.Object, m.Clicks.Fields.ExternalID, cl.ID, rec)
	}
	return c.writeResults(ctx, org.ID, ops, results)
}

// WriteFormResponses implements switchboard.FormResponseWriter: form
// records are upserted by session id into the form object, like clicks,
// and written again as answers arrive. Results are in the order of rs;
// CRMMessageID is the form record's id.
func (c *Client) WriteFormResponses(ctx context.Context, org *switchboard.Org, rs []switchboard.FormResponse) ([]switchboard.CRMResult, error) {
	if org == nil {
		return nil, switchboard.FieldError("org", "org is required")
	}
	results := make([]switchboard.CRMResult, len(rs))
	if len(rs) == 0 {
		return results, nil
	}
	m, err := c.writeMapping(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	var ops []*writeOp
	byKey := map[string]*writeOp{}
	for i, r := range rs {
		rec, err := formRecord(m, r)
		if err != nil {
			results[i].Err = err
			continue
		}
		ops = upsertOp(ops, byKey, i, m.Forms.Object, m.Forms.Fields.ExternalID, r.SessionID, rec)
	}
	return c.writeResults(ctx, org.ID, ops, results)
}

// upsertOp adds the record at index i as an upsert, or, when the call
// already has one with the same key (Salesforce refuses a key twice in
// one request), lets the later record replace it and answer for both.
func upsertOp(ops []*writeOp, byKey map[string]*writeOp, i int, object, extField, key string, rec map[string]any) []*writeOp {
	if op, ok := byKey[key]; ok {
		op.record = rec
		op.indexes = append(op.indexes, i)
		return ops
	}
	op := &writeOp{indexes: []int{i}, object: object, extField: extField, key: key, record: rec}
	byKey[key] = op
	return append(ops, op)
}

// checkKey checks an external id value.
func checkKey(what, key string) *switchboard.CRMError {
	switch {
	case key == "":
		return invalidInput("%s without an id cannot be written", what)
	case len(key) > 255:
		return invalidInput("%s id is longer than 255 characters", what)
	}
	return nil
}

// clickRecord maps a click onto the click object; empty values are left
// out.
func clickRecord(m Mapping, cl switchboard.LinkClick) (map[string]any, *switchboard.CRMError) {
	if err := checkKey("click", cl.ID); err != nil {
		return nil, err
	}
	what := "click " + cl.ID
	if cl.CRMMessageID != "" && !ValidID(cl.CRMMessageID) {
		return nil, invalidInput("%s: CRM message id %q is not a Salesforce record id", what, cl.CRMMessageID)
	}
	f := m.Clicks.Fields
	rec := map[string]any{"attributes": map[string]string{"type": m.Clicks.Object}}
	setField(rec, f.ExternalID, cl.ID)
	for _, v := range []struct{ field, value string }{
		{f.Message, cl.CRMMessageID}, {f.URL, cl.URL}, {f.ShortURL, cl.ShortURL},
		{f.IPAddress, cl.IP}, {f.Domain, cl.Domain}, {f.Browser, cl.Browser},
	} {
		if v.value != "" {
			setField(rec, v.field, v.value)
		}
	}
	if !cl.At.IsZero() {
		setField(rec, f.ClickedAt, sfTime(cl.At))
	}
	if cl.RecordID != "" {
		field, err := recordLookup(m, m.Clicks.Lookups, cl.RecordID, what)
		if err != nil {
			return nil, err
		}
		rec[field] = cl.RecordID
	}
	return rec, nil
}

// formRecord maps a form session onto the form object. An owner or
// creator that is not a Salesforce id (a Switchboard user without a CRM
// user id) is left out: the record then belongs to the integration user.
func formRecord(m Mapping, r switchboard.FormResponse) (map[string]any, *switchboard.CRMError) {
	if err := checkKey("form session", r.SessionID); err != nil {
		return nil, err
	}
	what := "form session " + r.SessionID
	switch r.Status {
	case switchboard.FormInProgress, switchboard.FormCompleted, switchboard.FormExpired, switchboard.FormCancelled:
	default:
		return nil, invalidInput("%s: unknown status %q", what, r.Status)
	}
	f := m.Forms.Fields
	rec := map[string]any{"attributes": map[string]string{"type": m.Forms.Object}}
	setField(rec, f.ExternalID, r.SessionID)
	setField(rec, f.Status, r.Status)
	setField(rec, f.Answers, Transcript(r.Answers, MaxLongText))
	for _, v := range []struct{ field, value string }{{f.FormName, r.FormName}, {f.FormID, r.FormID}} {
		if v.value != "" {
			setField(rec, v.field, v.value)
		}
	}
	for _, v := range []struct{ field, value string }{{f.Owner, r.OwnerID}, {f.CreatedBy, r.CreatedByID}} {
		if ValidID(v.value) {
			setField(rec, v.field, v.value)
		}
	}
	if !r.StartedAt.IsZero() {
		setField(rec, f.StartedAt, sfTime(r.StartedAt))
	}
	if !r.EndedAt.IsZero() {
		setField(rec, f.EndedAt, sfTime(r.EndedAt))
	}
	if r.RecordID != "" {
		field, err := recordLookup(m, m.Forms.Lookups, r.RecordID, what)
		if err != nil {
			return nil, err
		}
		rec[field] = r.RecordID
	}
	return rec, nil
}

// Transcript renders answers as the form record's readable text: one line
// per answer, "question: answer", where the question is the text asked
// (its key when the text is unknown) and line breaks inside a question or
// answer become spaces. It keeps to max characters by leaving out whole
// answers at the end and saying how many.
func Transcript(answers []switchboard.FormAnswer, max int) string {
	flat := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")
	lines := make([]string, len(answers))
	for i, a := range answers {
		q := strings.TrimSpace(a.Text)
		if q == "" {
			q = a.Question
		}
		lines[i] = flat.Replace(q) + ": " + flat.Replace(a.Answer)
	}
	full := strings.Join(lines, "\n")
	if utf8.RuneCountInString(full) <= max {
		return full
	}
	// Show the most answers that fit with the note on the rest.
	best, shown := "", 0 // shown: characters of the first k lines
	for k := 0; k < len(lines) && shown <= max; k++ {
		note := notShown(len(lines) - k)
		if k > 0 {
			note = "\n" + note
		}
		if shown+utf8.RuneCountInString(note) <= max {
			best = strings.Join(lines[:k], "\n") + note
		}
		shown += utf8.RuneCountInString(lines[k])
		if k > 0 {
			shown++
		}
	}
	return best
}

func notShown(n int) string {
	if n == 1 {
		return "[1 more answer not shown]"
	}
	return fmt.Sprintf("[%d more answers not shown]", n)
}
