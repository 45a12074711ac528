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
	return queryAll(ctx, c, orgID, soql, func(raw json.RawMessage) (switchboard.CRMRecord, error) { return toRecord(obj, raw) })
}

// queryAll runs a SOQL query through every page and reads each record
// with read, in the order Salesforce gives them.
func queryAll[T any](ctx context.Context, c *Client, orgID, soql string, read func(json.RawMessage) (T, error)) ([]T, error) {
	var out []T
	err := c.Query(ctx, orgID, soql, func(raw json.RawMessage) error {
		rec, err := read(raw)
		if err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	return out, err
}

// isField reports whether k, a field name Salesforce answered with, is the
// mapped field (case-insensitive; an unmapped, empty field matches nothing).
func isField(k, field string) bool { return field != "" && strings.EqualFold(k, field) }

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
		case isField(k, obj.FirstNameField):
			rec.FirstName = s
		case isField(k, obj.LastNameField):
			rec.LastName = s
		case isField(k, obj.EmailField):
			rec.Email = s
		case isField(k, obj.OwnerField):
			rec.OwnerID = s
		case isField(k, obj.OptOutField):
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
// national and international formats people type (see FindByPhones).
func (c *Client) FindByPhone(ctx context.Context, org *switchboard.Org, phone string) ([]switchboard.CRMRecord, error) {
	if _, err := c.mapping(ctx, org); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(phone, "+") {
		return nil, switchboard.FieldError("phone", "phone must be in E.164 form (+ and country code)")
	}
	e164, err := switchboard.ParsePhone(phone, "")
	if err != nil {
		return nil, err
	}
	found, err := c.FindByPhones(ctx, org, []string{e164})
	if err != nil {
		return nil, err
	}
	return found[e164], nil
}

// FindByPhones implements switchboard.CRM. For each mapped object with
// phone fields it queries all the numbers at once — "MobilePhone IN (…) OR
// Phone IN (…)" over every way each number is commonly written — cut into
// statements of at most maxSOQL characters, and runs the statements five to
// a /composite request: 200 numbers on the two default objects cost one API
// call (plus one per further batch of 2,000 records). Records are matched
// back to the numbers by their digits, oldest first per object.
func (c *Client) FindByPhones(ctx context.Context, org *switchboard.Org, phones []string) (map[string][]switchboard.CRMRecord, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	byDigits := map[string][]string{} // digits as stored → the numbers they can be
	variants := map[string][]string{}
	var numbers []string
	for _, p := range phones {
		if !strings.HasPrefix(p, "+") {
			continue
		}
		e164, err := switchboard.ParsePhone(p, "")
		if err != nil || variants[e164] != nil {
			continue
		}
		v, digits := phoneVariants(e164)
		variants[e164] = v
		numbers = append(numbers, e164)
		for _, d := range digits {
			byDigits[d] = append(byDigits[d], e164)
		}
	}
	out := map[string][]switchboard.CRMRecord{}
	if len(numbers) == 0 {
		return out, nil
	}
	var soqls []string
	var objs []RecordObject
	for _, obj := range m.Records {
		if len(obj.PhoneFields) == 0 {
			continue
		}
		head := fmt.Sprintf("SELECT %s FROM %s WHERE (", strings.Join(obj.selectFields(), ", "), obj.Object)
		tail := ") ORDER BY CreatedDate ASC"
		fixed := len(head) + len(tail)
		for _, f := range obj.PhoneFields {
			fixed += len(f) + len(" IN () OR ")
		}
		chunks := inChunks(numbers, fixed, func(n string) int {
			size := 0
			for _, v := range variants[n] {
				size += len(quote(v)) + 2
			}
			return size * len(obj.PhoneFields)
		})
		for _, chunk := range chunks {
			var vals []string
			for _, n := range chunk {
				vals = append(vals, variants[n]...)
			}
			list := quoteList(vals)
			conds := make([]string, len(obj.PhoneFields))
			for i, f := range obj.PhoneFields {
				conds[i] = fmt.Sprintf("%s IN (%s)", f, list)
			}
			soqls = append(soqls, head+strings.Join(conds, " OR ")+tail)
			objs = append(objs, obj)
		}
	}
	seen := map[string]map[string]bool{} // number → record ids
	err = c.QueryMany(ctx, org.ID, soqls, func(i int, raw json.RawMessage) error {
		obj := objs[i]
		rec, err := toRecord(obj, raw)
		if err != nil {
			return err
		}
		for _, p := range obj.PhoneFields {
			for k, v := range rec.Fields {
				if !strings.EqualFold(k, p) {
					continue
				}
				for _, n := range byDigits[digitsOf(v)] {
					if seen[n] == nil {
						seen[n] = map[string]bool{}
					}
					if !seen[n][rec.ID] {
						seen[n][rec.ID] = true
						out[n] = append(out[n], rec)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func validEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" || len(email) > 254 || !strings.Contains(email, "@") || strings.ContainsFunc(email, func(r rune) bool { return r < 0x20 }) {
		return "", switchboard.FieldError("email", "email address is not valid")
	}
	return email, nil
}

// FindContactsByEmail implements switchboard.CRM.
func (c *Client) FindContactsByEmail(ctx context.Context, org *switchboard.Org, email string) ([]switchboard.CRMRecord, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	if email, err = validEmail(email); err != nil {
		return nil, err
	}
	obj, ok := m.recordObject(ObjectContact)
	if !ok || obj.EmailField == "" {
		return nil, switchboard.Errorf(switchboard.EInvalid, "the Salesforce mapping has no Contact object with an email field")
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s = %s ORDER BY CreatedDate ASC LIMIT 200", strings.Join(obj.selectFields(), ", "), obj.Object, obj.EmailField, quote(email))
	return c.queryRecords(ctx, org.ID, obj, q)
}

// FindByEmail implements switchboard.CRM: one SOQL statement per mapped
// object with an email field (Contact and Lead by default), all in one
// /composite request; records come object by object, oldest first.
func (c *Client) FindByEmail(ctx context.Context, org *switchboard.Org, email string) ([]switchboard.CRMRecord, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	if email, err = validEmail(email); err != nil {
		return nil, err
	}
	var soqls []string
	var objs []RecordObject
	for _, obj := range m.Records {
		if obj.EmailField == "" {
			continue
		}
		soqls = append(soqls, fmt.Sprintf("SELECT %s FROM %s WHERE %s = %s ORDER BY CreatedDate ASC LIMIT 200", strings.Join(obj.selectFields(), ", "), obj.Object, obj.EmailField, quote(email)))
		objs = append(objs, obj)
	}
	if len(soqls) == 0 {
		return nil, switchboard.Errorf(switchboard.EInvalid, "the Salesforce mapping has no record object with an email field")
	}
	byObj := make([][]switchboard.CRMRecord, len(soqls))
	err = c.QueryMany(ctx, org.ID, soqls, func(i int, raw json.RawMessage) error {
		rec, err := toRecord(objs[i], raw)
		if err != nil {
			return err
		}
		byObj[i] = append(byObj[i], rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []switchboard.CRMRecord
	for _, recs := range byObj {
		out = append(out, recs...)
	}
	return out, nil
}

// LastOutgoingOwner returns the owner of the newest outgoing message to
// phone from the gateway number, or "" when there is none (see
// LastOutgoingOwners).
func (c *Client) LastOutgoingOwner(ctx context.Context, org *switchboard.Org, gatewayNumber, phone string) (string, error) {
	if gatewayNumber == "" || phone == "" {
		return "", switchboard.FieldError("phone", "gateway number and phone are required")
	}
	key := switchboard.PhoneOnGateway{GatewayNumber: gatewayNumber, Phone: phone}
	owners, err := c.LastOutgoingOwners(ctx, org, []switchboard.PhoneOnGateway{key})
	return owners[key], err
}

// LastOutgoingOwners implements switchboard.CRM with SOQL over the message
// object: outgoing records whose gateway number and phone are among the
// pairs', newest first, cut into statements of at most maxSOQL characters
// and run five to a /composite request. Each pair takes the owner of its
// newest record.
func (c *Client) LastOutgoingOwners(ctx context.Context, org *switchboard.Org, pairs []switchboard.PhoneOnGateway) (map[switchboard.PhoneOnGateway]string, error) {
	m, err := c.mapping(ctx, org)
	if err != nil {
		return nil, err
	}
	f := m.Fields
	if f.Owner == "" || f.Phone == "" || f.Gateway == "" || f.Direction == "" {
		return nil, switchboard.Errorf(switchboard.EInvalid, "the Salesforce mapping needs owner, phone, gateway and direction fields to find the last outgoing message's owner")
	}
	want := map[switchboard.PhoneOnGateway]bool{}
	byGateway := map[string][]string{}
	var gateways []string
	for _, p := range pairs {
		if p.GatewayNumber == "" || p.Phone == "" || want[p] {
			continue
		}
		want[p] = true
		if byGateway[p.GatewayNumber] == nil {
			gateways = append(gateways, p.GatewayNumber)
		}
		byGateway[p.GatewayNumber] = append(byGateway[p.GatewayNumber], p.Phone)
	}
	out := map[switchboard.PhoneOnGateway]string{}
	var soqls []string
	for _, gw := range gateways {
		head := fmt.Sprintf("SELECT %s, %s, %s, CreatedDate FROM %s WHERE %s = %s AND %s = %s AND %s IN (",
			f.Owner, f.Phone, f.Gateway, m.MessageObject, f.Direction, quote(string(switchboard.Outgoing)), f.Gateway, quote(gw), f.Phone)
		tail := ") ORDER BY CreatedDate DESC"
		for _, chunk := range inChunks(byGateway[gw], len(head)+len(tail), func(p string) int { return len(quote(p)) + 2 }) {
			soqls = append(soqls, head+quoteList(chunk)+tail)
		}
	}
	err = c.QueryMany(ctx, org.ID, soqls, func(_ int, raw json.RawMessage) error {
		var rec map[string]any
		if err := json.Unmarshal(raw, &rec); err != nil {
			return badResponse("query")
		}
		var key switchboard.PhoneOnGateway
		owner := ""
		for k, v := range rec {
			s, _ := v.(string)
			switch {
			case strings.EqualFold(k, f.Owner):
				owner = s
			case strings.EqualFold(k, f.Phone):
				key.Phone = s
			case strings.EqualFold(k, f.Gateway):
				key.GatewayNumber = s
			}
		}
		if _, done := out[key]; want[key] && !done && owner != "" {
			out[key] = owner // the newest comes first
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
