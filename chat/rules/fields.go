package rules

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
)

// Standard captured fields: they become the contact's first name, last name,
// email and phone. Any other captured field is a custom field ("Student
// Type"), written to a CRM field when the export settings map it and shown
// in the transcript either way.
const (
	FieldFirstName = "first_name"
	FieldLastName  = "last_name"
	FieldEmail     = "email"
	FieldPhone     = "phone"
)

// StandardFields lists the standard captured fields in transcript order.
var StandardFields = []string{FieldFirstName, FieldLastName, FieldEmail, FieldPhone}

var standardLabels = map[string]string{
	FieldFirstName: "First name",
	FieldLastName:  "Last name",
	FieldEmail:     "Email",
	FieldPhone:     "Phone",
}

// Limits of captured fields.
const (
	MaxFields          = 50
	MaxFieldNameLen    = 64
	MaxFieldValueLen   = 1000
	maxFirstNameLen    = 40
	maxLastNameLen     = 80
	maxEmailLen        = 254
	defaultPhoneRegion = "US"
)

// FieldKey returns the key a captured field name is matched by: lower case,
// with every run of spaces, hyphens and underscores as one underscore. So
// "Student Type", "student_type" and "STUDENT-TYPE" name the same field,
// and "First Name" is the standard field first_name.
func FieldKey(name string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.TrimSpace(name) {
		if r == ' ' || r == '_' || r == '-' || unicode.IsSpace(r) {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('_')
		}
		sep = false
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// IsStandard reports whether key is a standard field's key.
func IsStandard(key string) bool {
	_, ok := standardLabels[key]
	return ok
}

// CheckFieldName checks a captured field name; at names the input for the
// error.
func CheckFieldName(at, name string) error {
	n := strings.TrimSpace(name)
	switch {
	case n == "":
		return sb.FieldError(at, "a field name must not be empty")
	case !utf8.ValidString(n):
		return sb.FieldError(at, "field name is not valid UTF-8")
	case utf8.RuneCountInString(n) > MaxFieldNameLen:
		return sb.FieldError(at, "field name %q is longer than %d characters", Clip(n, 20), MaxFieldNameLen)
	}
	for _, r := range n {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(" _-.()/&'#?", r)) {
			return sb.FieldError(at, "field name %q contains %q; use letters, digits, spaces and _-.()/&'#?", Clip(n, 20), r)
		}
	}
	if FieldKey(n) == "" {
		return sb.FieldError(at, "field name %q has no letters or digits", n)
	}
	return nil
}

// Clip shortens s to n runes for error messages.
func Clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// Fields are a conversation's captured fields by name: the standard ones
// under their keys (first_name, …), custom ones under the name they were
// captured with.
type Fields map[string]string

// Get returns the value of the field named name (matched by FieldKey).
func (f Fields) Get(name string) string {
	key := FieldKey(name)
	if v, ok := f[key]; ok && IsStandard(key) {
		return v
	}
	for n, v := range f {
		if FieldKey(n) == key {
			return v
		}
	}
	return ""
}

// set stores value under name, replacing any field with the same key; an
// empty value removes the field.
func (f Fields) set(name, value string) {
	key := FieldKey(name)
	for n := range f {
		if FieldKey(n) == key {
			delete(f, n)
		}
	}
	if value == "" {
		return
	}
	if IsStandard(key) {
		name = key
	}
	f[strings.TrimSpace(name)] = value
}

// Custom returns the names of the custom fields, sorted by key.
func (f Fields) Custom() []string {
	var out []string
	for n := range f {
		if !IsStandard(FieldKey(n)) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return FieldKey(out[i]) < FieldKey(out[j]) || (FieldKey(out[i]) == FieldKey(out[j]) && out[i] < out[j])
	})
	return out
}

// Label returns a field's name as the transcript shows it.
func Label(name string) string {
	if l, ok := standardLabels[FieldKey(name)]; ok {
		return l
	}
	return strings.TrimSpace(name)
}

// normalizeValue checks and normalizes a captured value: emails are
// lower-cased, phones read into E.164 (in region), names and custom values
// trimmed and bounded. "" is returned as is (it removes the field).
func normalizeValue(at, name, value, region string) (string, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return "", nil
	}
	if !utf8.ValidString(v) {
		return "", sb.FieldError(at, "%s is not valid UTF-8", Label(name))
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' }) {
		return "", sb.FieldError(at, "%s must be one line without control characters", Label(name))
	}
	switch FieldKey(name) {
	case FieldEmail:
		v = strings.ToLower(v)
		local, domain, ok := strings.Cut(v, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(v, " \t,;<>\"") || strings.Count(v, "@") != 1 || len(v) > maxEmailLen {
			return "", sb.FieldError(at, "email must be an email address such as ada@example.org")
		}
	case FieldPhone:
		if region == "" {
			region = defaultPhoneRegion
		}
		p, err := sb.ParsePhone(v, region)
		if err != nil {
			return "", &sb.Error{Code: sb.EInvalid, Field: at, Message: sb.ErrorMessage(err)}
		}
		v = p
	case FieldFirstName:
		if utf8.RuneCountInString(v) > maxFirstNameLen {
			return "", sb.FieldError(at, "first name is longer than %d characters", maxFirstNameLen)
		}
	case FieldLastName:
		if utf8.RuneCountInString(v) > maxLastNameLen {
			return "", sb.FieldError(at, "last name is longer than %d characters", maxLastNameLen)
		}
	default:
		if utf8.RuneCountInString(v) > MaxFieldValueLen {
			return "", sb.FieldError(at, "%s is longer than %d characters", Label(name), MaxFieldValueLen)
		}
	}
	return v, nil
}

// merge applies changes (name → value, "" removes) to a copy of f after
// checking them, and returns the result.
func (f Fields) Merge(changes map[string]string, region string) (Fields, error) {
	out := Fields{}
	for n, v := range f {
		out[n] = v
	}
	names := make([]string, 0, len(changes))
	for n := range changes {
		names = append(names, n)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, n := range names {
		at := "fields." + n
		if err := CheckFieldName(at, n); err != nil {
			return nil, err
		}
		key := FieldKey(n)
		if other, dup := seen[key]; dup {
			return nil, sb.FieldError(at, "fields %q and %q name the same field", other, n)
		}
		seen[key] = n
		v, err := normalizeValue(at, n, changes[n], region)
		if err != nil {
			return nil, err
		}
		out.set(n, v)
	}
	if len(out) > MaxFields {
		return nil, sb.FieldError("fields", "a conversation may capture at most %d fields", MaxFields)
	}
	return out, nil
}
