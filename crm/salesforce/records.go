package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/switchboard/switchboard"
)

// idsPerQuery bounds the ids in one "Id IN (…)" query, to keep URLs short.
const idsPerQuery = 100

// mapping returns the org's validated mapping.
func (c *Client) mapping(ctx context.Context, org *switchboard.Org) (Mapping, error) {
	if org == nil {
		return Mapping{}, switchboard.FieldError("org", "org is required")
	}
	conn, err := c.connection(ctx, org.ID)
	if err != nil {
		return Mapping{}, err
	}
	if err := conn.Mapping.Validate(); err != nil {
		return Mapping{}, err
	}
	return conn.Mapping, nil
}

// GetRecords implements switchboard.CRM. Ids of objects that are not in
// the mapping, and ids not found, are left out.
func (c *Client) GetRecords(ctx context.Context, org *switchboard.Org, ids []string) ([]switchboard.CRMRecord, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	byObject := map[string][]string{}
	var order []string
	for _, id := range ids {
		if !ValidID(id) {
			return nil, switchboard.FieldError("ids", "%q is not a Salesforce record id", id)
		}
		obj, ok := m.recordObjectFor(id)
		if !ok {
			continue
		}
		if _, seen := byObject[obj.Object]; !seen {
			order = append(order, obj.Object)
		}
		if !slices.Contains(byObject[obj.Object], id) {
			byObject[obj.Object] = append(byObject[obj.Object], id)
		}
	}
	var out []switchboard.CRMRecord
	for _, name := range order {
		obj, _ := m.recordObject(name)
		list := byObject[name]
		for len(list) > 0 {
			n := min(idsPerQuery, len(list))
			q := fmt.Sprintf("SELECT %s FROM %s WHERE Id IN (%s)", strings.Join(obj.selectFields(), ", "), obj.Object, quoteList(list[:n]))
			recs, err := c.queryRecords(ctx, org.ID, obj, q)
			if err != nil {
				return nil, err
			}
			out = append(out, recs...)
			list = list[n:]
		}
	}
	return out, nil
}

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = quote(v)
	}
	return strings.Join(q, ", ")
}

func (c *Client) queryRecords(ctx context.Context, orgID string, obj RecordObject, soql string) ([]switchboard.CRMRecord, error) {
	var out []switchboard.CRMRecord
	err := c.Query(ctx, orgID, soql, func(raw json.RawMessage) error {
		rec, err := toRecord(obj, raw)
		if err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	return out, err
}

// toRecord reads a queried record of a mapped object.
func toRecord(obj RecordObject, raw json.RawMessage) (switchboard.CRMRecord, error) {
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return switchboard.CRMRecord{}, badResponse("query")
	}
	rec := switchboard.CRMRecord{Type: obj.Object, Fields: map[string]string{}}
	if attrs, ok := fields["attributes"].(map[string]any); ok {
		if t, ok := attrs["type"].(string); ok && t != "" {
			rec.Type = t
		}
	}
	is := func(k, field string) bool { return field != "" && strings.EqualFold(k, field) }
	for k, v := range fields {
		if k == "attributes" || v == nil {
			continue
		}
		s := stringValue(v)
		switch {
		case strings.EqualFold(k, "Id"):
			rec.ID = s
		case strings.EqualFold(k, "CreatedDate"):
			rec.CreatedAt, _ = parseTime(s)
		case is(k, obj.FirstNameField):
			rec.FirstName = s
		case is(k, obj.LastNameField):
			rec.LastName = s
		case is(k, obj.EmailField):
			rec.Email = s
		case is(k, obj.OwnerField):
			rec.OwnerID = s
		case is(k, obj.OptOutField):
			rec.OptOut = s == "true"
		default:
			rec.Fields[k] = s
		}
	}
	for _, p := range obj.PhoneFields {
		for k, v := range rec.Fields {
			if strings.EqualFold(k, p) && v != "" && rec.Phone == "" {
				rec.Phone = v
			}
		}
	}
	if rec.ID == "" {
		return switchboard.CRMRecord{}, badResponse("query")
	}
	return rec, nil
}

func stringValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// parseTime reads Salesforce's datetime format (2024-05-20T20:49:32.000+0000).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unknown time format")
}

// phoneVariants returns the ways an E.164 number is commonly written in
// Salesforce phone fields, and the digit strings that count as a match.
func phoneVariants(e164 string) (variants, digits []string) {
	add := func(list *[]string, s string) {
		if s != "" && !slices.Contains(*list, s) {
			*list = append(*list, s)
		}
	}
	add(&variants, e164)
	add(&variants, strings.TrimPrefix(e164, "+"))
	add(&digits, strings.TrimPrefix(e164, "+"))
	if num, err := phonenumbers.Parse(e164, ""); err == nil {
		national := phonenumbers.GetNationalSignificantNumber(num)
		add(&variants, national)
		add(&variants, phonenumbers.Format(num, phonenumbers.NATIONAL))
		add(&variants, phonenumbers.Format(num, phonenumbers.INTERNATIONAL))
		add(&digits, national)
		if num.GetCountryCode() == 1 && len(national) == 10 {
			add(&variants, national[:3]+"-"+national[3:6]+"-"+national[6:])
			add(&variants, national[:3]+"."+national[3:6]+"."+national[6:])
			add(&variants, "+1 ("+national[:3]+") "+national[3:6]+"-"+national[6:])
		}
	}
	return variants, digits
}

func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// FindByPhone implements switchboard.CRM: a SOQL query over the phone
// fields of every mapped object, matching the number as E.164 and in the
// national and international formats people type.
func (c *Client) FindByPhone(ctx context.Context, org *switchboard.Org, phone string) ([]switchboard.CRMRecord, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(phone, "+") {
		return nil, switchboard.FieldError("phone", "phone must be in E.164 form (+ and country code)")
	}
	e164, err := switchboard.ParsePhone(phone, "")
	if err != nil {
		return nil, err
	}
	variants, digits := phoneVariants(e164)
	var out []switchboard.CRMRecord
	for _, obj := range m.Records {
		if len(obj.PhoneFields) == 0 {
			continue
		}
		conds := make([]string, len(obj.PhoneFields))
		for i, f := range obj.PhoneFields {
			conds[i] = fmt.Sprintf("%s IN (%s)", f, quoteList(variants))
		}
		where := strings.Join(conds, " OR ")
		if len(conds) > 1 {
			where = "(" + where + ")"
		}
		q := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY CreatedDate ASC LIMIT 200", strings.Join(obj.selectFields(), ", "), obj.Object, where)
		recs, err := c.queryRecords(ctx, org.ID, obj, q)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if matchesPhone(r, obj, digits) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// soqlBudget bounds the URL-escaped length of one FindByPhones query, so
// the GET stays inside Salesforce's URI limit (16,384 bytes).
const soqlBudget = 14000

// FindByPhones implements switchboard.CRM: FindByPhone for many numbers in
// batched SOQL queries, as many numbers per query as the URI limit allows
// (about thirty US numbers with two phone fields, each in the eight formats
// FindByPhone matches), per mapped object with phone fields.
func (c *Client) FindByPhones(ctx context.Context, org *switchboard.Org, phones []string) (map[string][]switchboard.CRMRecord, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	type asked struct {
		phone            string
		variants, digits []string
	}
	var all []asked
	seen := map[string]bool{}
	for _, p := range phones {
		if !strings.HasPrefix(p, "+") {
			return nil, switchboard.FieldError("phone", "phone must be in E.164 form (+ and country code)")
		}
		e164, err := switchboard.ParsePhone(p, "")
		if err != nil {
			return nil, err
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		v, d := phoneVariants(e164)
		all = append(all, asked{p, v, d})
	}
	out := map[string][]switchboard.CRMRecord{}
	for _, obj := range m.Records {
		if len(obj.PhoneFields) == 0 {
			continue
		}
		query := func(batch []asked) string {
			var vals []string
			for _, a := range batch {
				vals = append(vals, a.variants...)
			}
			list := quoteList(vals)
			conds := make([]string, len(obj.PhoneFields))
			for i, f := range obj.PhoneFields {
				conds[i] = fmt.Sprintf("%s IN (%s)", f, list)
			}
			return fmt.Sprintf("SELECT %s FROM %s WHERE (%s) ORDER BY CreatedDate ASC", strings.Join(obj.selectFields(), ", "), obj.Object, strings.Join(conds, " OR "))
		}
		// Each number adds its escaped variants once per phone field.
		cost := func(a asked) int { return len(obj.PhoneFields) * len(url.QueryEscape(quoteList(a.variants)+", ")) }
		for start := 0; start < len(all); {
			end, size := start+1, len(url.QueryEscape(query(all[start:start+1])))
			for end < len(all) && size+cost(all[end]) <= soqlBudget {
				size += cost(all[end])
				end++
			}
			batch := all[start:end]
			start = end
			byDigits := map[string][]string{}
			for _, a := range batch {
				for _, d := range a.digits {
					byDigits[d] = append(byDigits[d], a.phone)
				}
			}
			recs, err := c.queryRecords(ctx, org.ID, obj, query(batch))
			if err != nil {
				return nil, err
			}
			for _, r := range recs {
				matched := map[string]bool{}
				for _, p := range obj.PhoneFields {
					for k, v := range r.Fields {
						if !strings.EqualFold(k, p) {
							continue
						}
						for _, phone := range byDigits[digitsOf(v)] {
							if !matched[phone] {
								matched[phone] = true
								out[phone] = append(out[phone], r)
							}
						}
					}
				}
			}
		}
	}
	return out, nil
}

func matchesPhone(r switchboard.CRMRecord, obj RecordObject, digits []string) bool {
	for _, p := range obj.PhoneFields {
		for k, v := range r.Fields {
			if strings.EqualFold(k, p) && slices.Contains(digits, digitsOf(v)) {
				return true
			}
		}
	}
	return false
}

// FindContactsByEmail implements switchboard.CRM.
func (c *Client) FindContactsByEmail(ctx context.Context, org *switchboard.Org, email string) ([]switchboard.CRMRecord, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	email = strings.TrimSpace(email)
	if email == "" || len(email) > 254 || !strings.Contains(email, "@") || strings.ContainsFunc(email, func(r rune) bool { return r < 0x20 }) {
		return nil, switchboard.FieldError("email", "email address is not valid")
	}
	obj, ok := m.recordObject(ObjectContact)
	if !ok || obj.EmailField == "" {
		return nil, switchboard.Errorf(switchboard.EInvalid, "the Salesforce mapping has no Contact object with an email field")
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s = %s ORDER BY CreatedDate ASC LIMIT 200", strings.Join(obj.selectFields(), ", "), obj.Object, obj.EmailField, quote(email))
	return c.queryRecords(ctx, org.ID, obj, q)
}

// LastOutgoingOwner returns the owner of the newest outgoing message to
// phone from the gateway number, or "" when there is none; incoming
// messages take that owner (and the integration user otherwise).
func (c *Client) LastOutgoingOwner(ctx context.Context, org *switchboard.Org, gatewayNumber, phone string) (string, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return "", err
	}
	f := m.Fields
	if f.Owner == "" || f.Phone == "" || f.Gateway == "" {
		return "", switchboard.Errorf(switchboard.EInvalid, "the Salesforce mapping needs owner, phone and gateway fields to find the last outgoing message's owner")
	}
	if gatewayNumber == "" || phone == "" {
		return "", switchboard.FieldError("phone", "gateway number and phone are required")
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s = %s AND %s = %s AND %s = %s ORDER BY CreatedDate DESC LIMIT 1",
		f.Owner, m.MessageObject, f.Direction, quote(string(switchboard.Outgoing)), f.Gateway, quote(gatewayNumber), f.Phone, quote(phone))
	owner := ""
	err = c.Query(ctx, org.ID, q, func(raw json.RawMessage) error {
		var rec map[string]any
		if err := json.Unmarshal(raw, &rec); err != nil {
			return badResponse("query")
		}
		for k, v := range rec {
			if strings.EqualFold(k, f.Owner) {
				owner, _ = v.(string)
			}
		}
		return nil
	})
	return owner, err
}

// SaveContactAndTask implements switchboard.CRM in one /composite request
// with allOrNone: the contact is created (POST) or updated (PATCH), and
// the task is created with WhoId = the contact — "@{refContact.id}" for a
// new contact — and Status "Completed" unless given. With
// Mapping.TaskExternalIDField and a task ExternalID, the task is upserted
// by that field instead, so a repeated export returns the first task.
func (c *Client) SaveContactAndTask(ctx context.Context, org *switchboard.Org, ct *switchboard.CRMRecord, t *switchboard.CRMTask) (string, string, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return "", "", err
	}
	if ct == nil || t == nil {
		return "", "", switchboard.FieldError("contact", "contact and task are required")
	}
	obj, ok := m.recordObject(ObjectContact)
	if !ok {
		return "", "", switchboard.Errorf(switchboard.EInvalid, "the Salesforce mapping has no Contact object")
	}
	contact, err := contactBody(obj, ct)
	if err != nil {
		return "", "", err
	}
	task, err := taskBody(t)
	if err != nil {
		return "", "", err
	}
	var subs []map[string]any
	if ct.ID == "" {
		subs = append(subs, map[string]any{"method": http.MethodPost, "url": c.dataPath("/sobjects/%s", obj.Object), "referenceId": "refContact", "body": contact})
		task["WhoId"] = "@{refContact.id}"
	} else {
		subs = append(subs, map[string]any{"method": http.MethodPatch, "url": c.dataPath("/sobjects/%s/%s", obj.Object, ct.ID), "referenceId": "refContact", "body": contact})
		task["WhoId"] = ct.ID
	}
	if m.TaskExternalIDField != "" && t.ExternalID != "" {
		subs = append(subs, map[string]any{"method": http.MethodPatch, "url": c.dataPath("/sobjects/%s/%s/%s", m.TaskObject, m.TaskExternalIDField, url.PathEscape(t.ExternalID)), "referenceId": "refTask", "body": task})
	} else {
		subs = append(subs, map[string]any{"method": http.MethodPost, "url": c.dataPath("/sobjects/%s", m.TaskObject), "referenceId": "refTask", "body": task})
	}
	resp, err := c.do(ctx, org.ID, apiRequest{method: http.MethodPost, url: c.dataPath("/composite"), body: map[string]any{"allOrNone": true, "compositeRequest": subs}})
	if err != nil {
		return "", "", err
	}
	var cr compositeResponse
	if err := json.Unmarshal(resp.body, &cr); err != nil || len(cr.CompositeResponse) != 2 {
		return "", "", badResponse("composite")
	}
	var failed *switchboard.CRMError
	for _, sub := range cr.CompositeResponse {
		if sub.HTTPStatusCode < 300 {
			continue
		}
		e := parseAPIError(sub.Body)
		e.Retryable = sub.HTTPStatusCode >= 500 || retryableCode(e.Code)
		if failed == nil || (failed.Code == codeProcessingHalted && e.Code != codeProcessingHalted) {
			failed = e
		}
	}
	if failed != nil {
		return "", "", failed
	}
	contactID := ct.ID
	if contactID == "" {
		contactID = savedID(cr.CompositeResponse[0].Body)
	}
	taskID := savedID(cr.CompositeResponse[1].Body)
	if contactID == "" || taskID == "" {
		return "", "", badResponse("composite")
	}
	return contactID, taskID, nil
}

func savedID(body json.RawMessage) string {
	var r saveResult
	_ = json.Unmarshal(body, &r)
	return r.ID
}

func contactBody(obj RecordObject, ct *switchboard.CRMRecord) (map[string]any, error) {
	body := map[string]any{}
	if ct.ID != "" && !ValidID(ct.ID) {
		return nil, switchboard.FieldError("contact.id", "contact id %q is not a Salesforce record id", ct.ID)
	}
	if ct.ID == "" && strings.TrimSpace(ct.LastName) == "" {
		return nil, switchboard.FieldError("contact.last_name", "a new Salesforce contact needs a last name")
	}
	set := func(field, v string) {
		if field != "" && v != "" {
			body[field] = v
		}
	}
	set(obj.FirstNameField, ct.FirstName)
	set(obj.LastNameField, ct.LastName)
	set(obj.EmailField, ct.Email)
	if len(obj.PhoneFields) > 0 {
		set(obj.PhoneFields[0], ct.Phone)
	}
	if ct.OwnerID != "" {
		if !ValidID(ct.OwnerID) {
			return nil, switchboard.FieldError("contact.owner_id", "owner %q is not a Salesforce user id", ct.OwnerID)
		}
		set(obj.OwnerField, ct.OwnerID)
	}
	keys := make([]string, 0, len(ct.Fields))
	for k := range ct.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !validAPIName(k) {
			return nil, switchboard.FieldError("contact.fields", "%q is not a Salesforce field API name", k)
		}
		body[k] = ct.Fields[k]
	}
	return body, nil
}

func taskBody(t *switchboard.CRMTask) (map[string]any, error) {
	if strings.TrimSpace(t.Subject) == "" {
		return nil, switchboard.FieldError("task.subject", "task subject is required")
	}
	status := t.Status
	if status == "" {
		status = "Completed"
	}
	body := map[string]any{"Subject": t.Subject, "Status": status, "Description": t.Description}
	if t.ActivityDate != "" {
		if _, err := time.Parse("2006-01-02", t.ActivityDate); err != nil {
			return nil, switchboard.FieldError("task.activity_date", "activity date must be YYYY-MM-DD, not %q", t.ActivityDate)
		}
		body["ActivityDate"] = t.ActivityDate
	}
	if t.OwnerID != "" {
		if !ValidID(t.OwnerID) {
			return nil, switchboard.FieldError("task.owner_id", "owner %q is not a Salesforce user id", t.OwnerID)
		}
		body["OwnerId"] = t.OwnerID
	}
	return body, nil
}

// OptedOutRecords calls fn with every record of the mapped objects whose
// global opt-out field is set (paged through nextRecordsUrl), for the import
// of legacy opt-out flags into gateway subscriptions.
func (c *Client) OptedOutRecords(ctx context.Context, org *switchboard.Org, fn func(switchboard.CRMRecord) error) error {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return err
	}
	for _, obj := range m.Records {
		if obj.OptOutField == "" || len(obj.PhoneFields) == 0 {
			continue
		}
		q := fmt.Sprintf("SELECT %s FROM %s WHERE %s = true ORDER BY CreatedDate ASC", strings.Join(obj.selectFields(), ", "), obj.Object, obj.OptOutField)
		err := c.Query(ctx, org.ID, q, func(raw json.RawMessage) error {
			rec, err := toRecord(obj, raw)
			if err != nil {
				return err
			}
			return fn(rec)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
