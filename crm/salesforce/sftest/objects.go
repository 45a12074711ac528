package sftest

import (
	"fmt"
	"maps"
	"strings"
)

// Field describes a field of an object.
type Field struct {
	Name       string
	Type       string // string, textarea, phone, email, boolean, double, reference, datetime, date, id
	Createable bool
	Updateable bool
	Required   bool
	ExternalID bool
}

type object struct {
	name   string
	prefix string
	fields map[string]*Field // by lower-case name
	order  []string
}

func newObject(name, prefix string, fields ...Field) *object {
	o := &object{name: name, prefix: prefix, fields: map[string]*Field{}}
	o.add(Field{Name: "Id", Type: "id"})
	o.add(Field{Name: "OwnerId", Type: "reference", Createable: true, Updateable: true})
	o.add(Field{Name: "CreatedDate", Type: "datetime"})
	o.add(Field{Name: "LastModifiedDate", Type: "datetime"})
	for _, f := range fields {
		o.add(f)
	}
	return o
}

func (o *object) add(f Field) {
	k := strings.ToLower(f.Name)
	if _, ok := o.fields[k]; !ok {
		o.order = append(o.order, f.Name)
	}
	o.fields[k] = &f
}

func (o *object) remove(name string) {
	k := strings.ToLower(name)
	f, ok := o.fields[k]
	if !ok {
		return
	}
	delete(o.fields, k)
	for i, n := range o.order {
		if n == f.Name {
			o.order = append(o.order[:i], o.order[i+1:]...)
			break
		}
	}
}

func rw(name, typ string) Field {
	return Field{Name: name, Type: typ, Createable: true, Updateable: true}
}

func required(f Field) Field { f.Required = true; return f }

func external(f Field) Field { f.ExternalID = true; return f }

func defaultObjects() []*object {
	return []*object{
		newObject("Contact", "003",
			rw("FirstName", "string"), required(rw("LastName", "string")), rw("Email", "email"),
			rw("Phone", "phone"), rw("MobilePhone", "phone"), rw("Switchboard_Opt_Out__c", "boolean"),
			rw("Description", "textarea"), rw("AccountId", "reference")),
		newObject("Lead", "00Q",
			rw("FirstName", "string"), required(rw("LastName", "string")), required(rw("Company", "string")),
			rw("Email", "email"), rw("Phone", "phone"), rw("MobilePhone", "phone"), rw("Switchboard_Opt_Out__c", "boolean")),
		newObject("Task", "00T",
			rw("Subject", "string"), rw("Status", "picklist"), rw("Priority", "picklist"), rw("ActivityDate", "date"),
			rw("Description", "textarea"), rw("WhoId", "reference"), rw("WhatId", "reference"),
			external(rw("Switchboard_Chat_Id__c", "string"))),
		newObject("User", "005", Field{Name: "Username", Type: "string", Createable: true}),
		newObject("Switchboard_Message__c", "a0S",
			Field{Name: "Name", Type: "string"},
			external(rw("Switchboard_Id__c", "string")), rw("Status__c", "picklist"), rw("Direction__c", "picklist"),
			rw("Body__c", "textarea"), rw("Media_Urls__c", "textarea"), rw("Phone__c", "phone"), rw("Gateway_Number__c", "string"),
			rw("Debug__c", "string"), rw("Segments__c", "double"), rw("Provider_Message_Id__c", "string"),
			rw("Batch_Id__c", "string"), rw("Contact__c", "reference"), rw("Lead__c", "reference")),
		newObject("Switchboard_Link_Click__c", "a0L",
			Field{Name: "Name", Type: "string"},
			external(rw("Switchboard_Id__c", "string")), rw("Message__c", "reference"),
			rw("URL__c", "textarea"), rw("Short_URL__c", "url"), rw("Clicked_At__c", "datetime"),
			rw("IP_Address__c", "string"), rw("Domain__c", "string"), rw("Browser__c", "string"),
			rw("Contact__c", "reference"), rw("Lead__c", "reference")),
		newObject("Switchboard_Form_Response__c", "a0F",
			Field{Name: "Name", Type: "string"},
			external(rw("Switchboard_Session_Id__c", "string")), rw("Form_Name__c", "string"), rw("Form_Id__c", "string"),
			rw("Status__c", "picklist"), rw("Started_At__c", "datetime"), rw("Ended_At__c", "datetime"),
			rw("Answers__c", "textarea"), rw("Contact__c", "reference"), rw("Lead__c", "reference")),
	}
}

type record struct {
	obj  *object
	id   string
	vals map[string]any // by field name as in the schema
	seq  int64
}

func (r *record) copy() Record {
	out := Record{}
	maps.Copy(out, r.vals)
	out["Id"] = r.id
	return out
}

// get returns a field's value, looked up case-insensitively.
func (r *record) get(field string) any {
	if strings.EqualFold(field, "Id") {
		return r.id
	}
	if f, ok := r.obj.fields[strings.ToLower(field)]; ok {
		return r.vals[f.Name]
	}
	return nil
}

// saveErr is a record error in sObject Collections answers.
type saveErr struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID returns an 18-character record id with the key prefix, including
// Salesforce's case-safe checksum suffix.
func (s *Server) newID(prefix string) string {
	s.seq++
	n := s.seq
	body := make([]byte, 10)
	for i := 9; i >= 0; i-- {
		body[i] = base62[n%62]
		n /= 62
	}
	id15 := prefix + "RS" + string(body)
	return id15 + checksum(id15)
}

func checksum(id15 string) string {
	const m = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	out := make([]byte, 3)
	for i := range 3 {
		bits := 0
		for j := range 5 {
			if c := id15[i*5+j]; c >= 'A' && c <= 'Z' {
				bits |= 1 << j
			}
		}
		out[i] = m[bits]
	}
	return string(out)
}

// canonical checks values against an object's schema and returns them by
// schema field name.
func canonical(obj *object, fields map[string]any, create bool) (map[string]any, []saveErr) {
	out := map[string]any{}
	var errs []saveErr
	var readOnly []string
	for k, v := range fields {
		if k == "attributes" || strings.EqualFold(k, "id") {
			continue
		}
		f, ok := obj.fields[strings.ToLower(k)]
		if !ok {
			errs = append(errs, saveErr{StatusCode: "INVALID_FIELD", Message: fmt.Sprintf("No such column '%s' on sobject of type %s", k, obj.name), Fields: []string{k}})
			continue
		}
		if (create && !f.Createable) || (!create && !f.Updateable) {
			readOnly = append(readOnly, f.Name)
			continue
		}
		switch v.(type) {
		case nil, string, bool, float64:
		default:
			errs = append(errs, saveErr{StatusCode: "JSON_PARSER_ERROR", Message: fmt.Sprintf("Cannot deserialize instance of %s from value of %s", f.Type, k), Fields: []string{f.Name}})
			continue
		}
		out[f.Name] = v
	}
	if len(readOnly) > 0 {
		errs = append(errs, saveErr{StatusCode: "INVALID_FIELD_FOR_INSERT_UPDATE", Message: fmt.Sprintf("Unable to create/update fields: %s. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", strings.Join(readOnly, ", ")), Fields: readOnly})
	}
	return out, errs
}

// fault returns the first record fault matching the id or a value.
func (s *Server) fault(id string, vals ...map[string]any) *saveErr {
	for _, f := range s.recordFaults {
		if f.Times > 0 && f.fired >= f.Times {
			continue
		}
		hit := id != "" && f.Match == id
		for _, m := range vals {
			for _, v := range m {
				if sv, ok := v.(string); ok && sv == f.Match {
					hit = true
				}
			}
		}
		if hit {
			f.fired++
			return &saveErr{StatusCode: f.Code, Message: f.Message, Fields: append([]string{}, f.Fields...)}
		}
	}
	return nil
}

// insertLocked creates a record; id is chosen unless given.
func (s *Server) insertLocked(obj *object, fields map[string]any, id string) (string, []saveErr) {
	vals, errs := canonical(obj, fields, true)
	if len(errs) > 0 {
		return "", errs
	}
	var missing []string
	for _, name := range obj.order {
		f := obj.fields[strings.ToLower(name)]
		if f.Required {
			if v, ok := vals[f.Name]; !ok || v == nil || v == "" {
				missing = append(missing, f.Name)
			}
		}
	}
	if len(missing) > 0 {
		return "", []saveErr{{StatusCode: "REQUIRED_FIELD_MISSING", Message: "Required fields are missing: [" + strings.Join(missing, ", ") + "]", Fields: missing}}
	}
	if e := s.fault("", vals); e != nil {
		return "", []saveErr{*e}
	}
	if id == "" {
		id = s.newID(obj.prefix)
	}
	if _, ok := vals["OwnerId"]; !ok {
		if u, ok := s.usernames[DefaultUsername]; ok {
			vals["OwnerId"] = u
		}
	}
	vals["CreatedDate"] = s.now().UTC().Format("2006-01-02T15:04:05.000+0000")
	vals["LastModifiedDate"] = vals["CreatedDate"]
	s.seq++
	s.records[id] = &record{obj: obj, id: id, vals: vals, seq: s.seq}
	return id, nil
}

// updateLocked updates a record.
func (s *Server) updateLocked(rec *record, fields map[string]any) []saveErr {
	vals, errs := canonical(rec.obj, fields, false)
	if len(errs) > 0 {
		return errs
	}
	if e := s.fault(rec.id, rec.vals, vals); e != nil {
		return []saveErr{*e}
	}
	maps.Copy(rec.vals, vals)
	rec.vals["LastModifiedDate"] = s.now().UTC().Format("2006-01-02T15:04:05.000+0000")
	return nil
}

// lookupRecord finds a record of obj by id: the errors are those
// Salesforce gives for malformed and unknown ids.
func (s *Server) lookupRecord(obj *object, id string) (*record, *saveErr) {
	if len(id) != 15 && len(id) != 18 {
		return nil, &saveErr{StatusCode: "MALFORMED_ID", Message: fmt.Sprintf("%s ID: id value of incorrect type: %s", obj.name, id), Fields: []string{"Id"}}
	}
	if r, ok := s.records[id]; ok && r.obj == obj {
		return r, nil
	}
	if len(id) == 15 {
		for _, r := range s.records {
			if r.obj == obj && r.id[:15] == id {
				return r, nil
			}
		}
	}
	return nil, &saveErr{StatusCode: "INVALID_CROSS_REFERENCE_KEY", Message: "invalid cross reference id", Fields: []string{}}
}

// snapshot returns a function that restores all records as they are now.
func (s *Server) snapshot() func() {
	saved := make(map[string]*record, len(s.records))
	for id, r := range s.records {
		cp := *r
		cp.vals = maps.Clone(r.vals)
		saved[id] = &cp
	}
	return func() { s.records = saved }
}
