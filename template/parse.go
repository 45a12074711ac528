// Package template stores an org's SMS templates and renders them for a
// recipient: merge fields such as {Contact.FirstName} are filled from the
// recipient's CRM record, the sending user and the org.
//
// Syntax (see docs/templates.md):
//
//	Hi {Contact.FirstName|there}, this is {User.Name} from {Org.Name}.
//	Your program: {Contact.Fields.Program__c|not chosen yet}
//	Literal braces are doubled: {{ gives {, }} gives }.
//
// A merge field is {Object.Field} or {Object.Field|default}; the default is
// used when the value is empty or missing. Objects are Contact (also
// written Lead or Record: the recipient's CRM record), User (the sender)
// and Org. Custom fields of the record are Contact.Fields.<name>.
package template

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
)

// MaxSourceChars bounds a template's source text.
const MaxSourceChars = 4000

// Template is a parsed template.
type Template struct {
	parts []part
}

type part struct {
	text  string
	field *Field // nil for literal text
}

// Field is one merge field of a template.
type Field struct {
	// Object is Contact, Lead, Record, User or Org.
	Object string
	// Name is the field's name: FirstName, or the custom field's name when
	// Custom is set.
	Name   string
	Custom bool
	// Default is used when the value is empty or missing (HasDefault).
	Default    string
	HasDefault bool
	// Pos is the field's position in the source, in characters from 1.
	Pos int
}

// Key names the field without its default: "Contact.FirstName",
// "Contact.Fields.Program__c".
func (f Field) Key() string {
	if f.Custom {
		return f.Object + ".Fields." + f.Name
	}
	return f.Object + "." + f.Name
}

// String returns the field as written in a template (canonical case).
func (f Field) String() string {
	if f.HasDefault {
		return "{" + f.Key() + "|" + f.Default + "}"
	}
	return "{" + f.Key() + "}"
}

// recordObject reports whether the field reads the recipient's record.
func (f Field) recordObject() bool {
	return f.Object == "Contact" || f.Object == "Lead" || f.Object == "Record"
}

// Known objects and their standard fields, in canonical case.
var knownFields = map[string][]string{
	"Contact": {"Id", "FirstName", "LastName", "Name", "Email", "Phone"},
	"Lead":    {"Id", "FirstName", "LastName", "Name", "Email", "Phone"},
	"Record":  {"Id", "FirstName", "LastName", "Name", "Email", "Phone"},
	"User":    {"Name", "FirstName", "Email"},
	"Org":     {"Name"},
}

var objectOrder = []string{"Contact", "Lead", "Record", "User", "Org"}

// KnownFields lists the standard merge fields ("Contact.FirstName", …);
// custom record fields are written Contact.Fields.<name>.
func KnownFields() []string {
	var out []string
	for _, o := range objectOrder {
		for _, f := range knownFields[o] {
			out = append(out, o+"."+f)
		}
	}
	return out
}

func canonical(list []string, s string) (string, bool) {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return v, true
		}
	}
	return "", false
}

// Parse reads a template's source. Errors are EInvalid, name the field
// "body" and say where the problem is.
func Parse(src string) (*Template, error) {
	if !utf8.ValidString(src) {
		return nil, sb.FieldError("body", "template is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(src); n > MaxSourceChars {
		return nil, sb.FieldError("body", "template is %d characters; the most is %d", n, MaxSourceChars)
	}
	t := &Template{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{text: lit.String()})
			lit.Reset()
		}
	}
	runes := []rune(src)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch r {
		case '}':
			if i+1 < len(runes) && runes[i+1] == '}' {
				lit.WriteRune('}')
				i++
				continue
			}
			return nil, sb.FieldError("body", "lone } at character %d: write }} for a literal brace", i+1)
		case '{':
			if i+1 < len(runes) && runes[i+1] == '{' {
				lit.WriteRune('{')
				i++
				continue
			}
			end := -1
			for j := i + 1; j < len(runes); j++ {
				if runes[j] == '}' {
					end = j
					break
				}
				if runes[j] == '{' {
					return nil, sb.FieldError("body", "merge field at character %d is not closed before the { at character %d (write {{ for a literal brace)", i+1, j+1)
				}
			}
			if end < 0 {
				return nil, sb.FieldError("body", "merge field at character %d is not closed: add } (or write {{ for a literal brace)", i+1)
			}
			f, err := parseField(string(runes[i+1:end]), i+1)
			if err != nil {
				return nil, err
			}
			flush()
			t.parts = append(t.parts, part{field: f})
			i = end
		default:
			lit.WriteRune(r)
		}
	}
	flush()
	return t, nil
}

// parseField reads the inside of {…} at position pos.
func parseField(inner string, pos int) (*Field, error) {
	name, def, hasDef := strings.Cut(inner, "|")
	name = strings.TrimSpace(name)
	shown := "{" + inner + "}"
	if name == "" {
		return nil, sb.FieldError("body", "empty merge field %s at character %d", shown, pos)
	}
	for _, r := range inner {
		if unicode.IsControl(r) {
			return nil, sb.FieldError("body", "merge field at character %d contains a line break or control character", pos)
		}
	}
	obj, rest, ok := strings.Cut(name, ".")
	if !ok {
		return nil, sb.FieldError("body", "merge field %s at character %d must name an object and a field, e.g. {Contact.FirstName}", shown, pos)
	}
	f := &Field{Pos: pos, HasDefault: hasDef, Default: strings.TrimSpace(def)}
	canonObj, ok := canonical(objectOrder, strings.TrimSpace(obj))
	if !ok {
		return nil, sb.FieldError("body", "unknown merge field %s at character %d: the object must be Contact, Lead, Record, User or Org", shown, pos)
	}
	f.Object = canonObj
	rest = strings.TrimSpace(rest)
	if prefix, custom, ok := strings.Cut(rest, "."); ok && strings.EqualFold(strings.TrimSpace(prefix), "Fields") && f.recordObject() {
		custom = strings.TrimSpace(custom)
		if custom == "" {
			return nil, sb.FieldError("body", "merge field %s at character %d names no custom field after %s.Fields.", shown, pos, canonObj)
		}
		f.Name, f.Custom = custom, true
		return f, nil
	}
	canonName, ok := canonical(knownFields[canonObj], rest)
	if !ok {
		known := make([]string, 0, 8)
		for _, k := range knownFields[canonObj] {
			known = append(known, canonObj+"."+k)
		}
		if f.recordObject() {
			known = append(known, canonObj+".Fields.<custom field>")
		}
		return nil, sb.FieldError("body", "unknown merge field %s at character %d; %s fields are %s", shown, pos, canonObj, strings.Join(known, ", "))
	}
	f.Name = canonName
	return f, nil
}

// Fields returns the template's merge fields in order of appearance.
func (t *Template) Fields() []Field {
	var out []Field
	for _, p := range t.parts {
		if p.field != nil {
			out = append(out, *p.field)
		}
	}
	return out
}

// Source writes the template back in canonical form; Parse(t.Source())
// renders the same as t.
func (t *Template) Source() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.field != nil {
			b.WriteString(p.field.String())
			continue
		}
		b.WriteString(strings.NewReplacer("{", "{{", "}", "}}").Replace(p.text))
	}
	return b.String()
}

// Literal returns the template's text without its merge fields (their
// defaults stand in), to size a template before any recipient is known.
func (t *Template) Literal() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.field == nil {
			b.WriteString(p.text)
		}
	}
	return b.String()
}

// Data is what a template is rendered with.
type Data struct {
	// Record is the recipient's CRM record; nil when the recipient is a bare
	// number.
	Record *sb.CRMRecord
	// User is the sending user, Org the sending org.
	User *sb.User
	Org  *sb.Org
}

// Render fills the merge fields. A record field with no record to read, or
// a custom field the record does not have, is an EInvalid error naming the
// field unless the field has a default.
func (t *Template) Render(d Data) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.field == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := p.field.value(d)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func (f *Field) value(d Data) (string, error) {
	var v string
	switch {
	case f.recordObject():
		if d.Record == nil {
			if f.HasDefault {
				return f.Default, nil
			}
			return "", sb.FieldError("template_id", "merge field {%s} needs the recipient's CRM record: send with a record, or give the field a default ({%s|…})", f.Key(), f.Key())
		}
		if f.Custom {
			val, ok := customField(d.Record.Fields, f.Name)
			if !ok && !f.HasDefault {
				return "", sb.FieldError("template_id", "unknown merge field {%s}: record %s has no field %q", f.Key(), d.Record.ID, f.Name)
			}
			v = val
			break
		}
		v = recordField(d.Record, f.Name)
	case f.Object == "User":
		if d.User != nil {
			switch f.Name {
			case "Name":
				v = d.User.Name
			case "FirstName":
				v, _, _ = strings.Cut(strings.TrimSpace(d.User.Name), " ")
			case "Email":
				v = d.User.Email
			}
		}
	case f.Object == "Org":
		if d.Org != nil {
			v = d.Org.Name
		}
	default:
		return "", sb.FieldError("template_id", "unknown merge field {%s}", f.Key())
	}
	if strings.TrimSpace(v) == "" && f.HasDefault {
		return f.Default, nil
	}
	return v, nil
}

func recordField(r *sb.CRMRecord, name string) string {
	switch name {
	case "Id":
		return r.ID
	case "FirstName":
		return r.FirstName
	case "LastName":
		return r.LastName
	case "Name":
		return strings.TrimSpace(r.FirstName + " " + r.LastName)
	case "Email":
		return r.Email
	case "Phone":
		return r.Phone
	}
	return ""
}

// customField finds a custom field by exact name, then ignoring case (CRM
// field names are case-insensitive).
func customField(fields map[string]string, name string) (string, bool) {
	if v, ok := fields[name]; ok {
		return v, true
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic when two keys differ only in case
	for _, k := range keys {
		if strings.EqualFold(k, name) {
			return fields[k], true
		}
	}
	return "", false
}

// String is for debugging.
func (t *Template) String() string { return fmt.Sprintf("template(%q)", t.Source()) }
