package template

import (
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
)

var (
	ada  = &sb.CRMRecord{ID: "003A", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.org", Phone: "+12025550123", Fields: map[string]string{"Program__c": "Nursing", "Empty": ""}}
	user = &sb.User{ID: "u1", Name: "Grace Hopper", Email: "grace@example.org"}
	org  = &sb.Org{ID: "o1", Name: "Test College"}
)

func TestParseAndRender(t *testing.T) {
	cases := []struct {
		name, src string
		rec       *sb.CRMRecord
		want      string
		fields    []string
	}{
		{"plain text", "Hello there", ada, "Hello there", nil},
		{"first name", "Hi {Contact.FirstName}!", ada, "Hi Ada!", []string{"Contact.FirstName"}},
		{"full name and email", "{Contact.Name} <{Contact.Email}>", ada, "Ada Lovelace <ada@example.org>", []string{"Contact.Name", "Contact.Email"}},
		{"any case and spaces", "Hi { contact.firstname }", ada, "Hi Ada", []string{"Contact.FirstName"}},
		{"lead and record aliases", "{Lead.LastName} {Record.Id}", ada, "Lovelace 003A", []string{"Lead.LastName", "Record.Id"}},
		{"default unused", "Hi {Contact.FirstName|there}", ada, "Hi Ada", []string{"Contact.FirstName"}},
		{"default for empty value", "Hi {Contact.FirstName|there}", &sb.CRMRecord{ID: "x"}, "Hi there", []string{"Contact.FirstName"}},
		{"empty value without default", "Hi {Contact.FirstName}.", &sb.CRMRecord{ID: "x"}, "Hi .", []string{"Contact.FirstName"}},
		{"default without record", "Hi {Contact.FirstName|friend}", nil, "Hi friend", []string{"Contact.FirstName"}},
		{"default keeps bars", "{Contact.FirstName|a|b}", nil, "a|b", []string{"Contact.FirstName"}},
		{"custom field", "Program: {Contact.Fields.Program__c}", ada, "Program: Nursing", []string{"Contact.Fields.Program__c"}},
		{"custom field any case", "{Contact.fields.program__C}", ada, "Nursing", []string{"Contact.Fields.program__C"}},
		{"custom empty with default", "{Contact.Fields.Empty|none}", ada, "none", []string{"Contact.Fields.Empty"}},
		{"custom missing with default", "{Contact.Fields.Missing|n/a}", ada, "n/a", []string{"Contact.Fields.Missing"}},
		{"user and org", "{User.FirstName} ({User.Name}, {User.Email}) at {Org.Name}", nil, "Grace (Grace Hopper, grace@example.org) at Test College", []string{"User.FirstName", "User.Name", "User.Email", "Org.Name"}},
		{"escaped braces", "Use {{code}} and }} and {{{Contact.FirstName}}}", ada, "Use {code} and } and {Ada}", []string{"Contact.FirstName"}},
		{"unicode", "¡Hola {Contact.FirstName}! 🎉", ada, "¡Hola Ada! 🎉", []string{"Contact.FirstName"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.src)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := p.Render(Data{Record: c.rec, User: user, Org: org})
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			var keys []string
			for _, f := range p.Fields() {
				keys = append(keys, f.Key())
			}
			if strings.Join(keys, ",") != strings.Join(c.fields, ",") {
				t.Fatalf("fields %v, want %v", keys, c.fields)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string // all must appear in the message
	}{
		{"lone close", "50% off }", []string{"lone }", "character 9", "}}"}},
		{"unclosed", "Hi {Contact.FirstName", []string{"character 4", "not closed"}},
		{"nested open", "Hi {Contact.{FirstName}", []string{"character 4", "character 13"}},
		{"empty field", "Hi {}", []string{"empty merge field", "{}"}},
		{"blank field", "Hi { |x}", []string{"empty merge field"}},
		{"no object", "Hi {FirstName}", []string{"{FirstName}", "must name an object"}},
		{"unknown object", "Hi {Account.Name}", []string{"unknown merge field {Account.Name}", "Contact, Lead, Record, User or Org"}},
		{"unknown field", "Hi {Contact.Nickname}", []string{"unknown merge field {Contact.Nickname}", "character 4", "Contact.FirstName", "Contact.Fields.<custom field>"}},
		{"unknown user field", "{User.Phone}", []string{"unknown merge field {User.Phone}", "User.Name"}},
		{"custom without name", "{Contact.Fields.}", []string{"names no custom field"}},
		{"custom on user", "{User.Fields.X}", []string{"unknown merge field {User.Fields.X}"}},
		{"line break in field", "{Contact.First\nName}", []string{"line break"}},
		{"too long", strings.Repeat("a", MaxSourceChars+1), []string{"the most is 4000"}},
		{"bad utf-8", "Hi \xff", []string{"UTF-8"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.src)
			if err == nil {
				t.Fatal("no error")
			}
			if !sb.IsCode(err, sb.EInvalid) {
				t.Fatalf("code %s: %v", sb.ErrorCode(err), err)
			}
			msg := sb.ErrorMessage(err)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	cases := []struct {
		name, src string
		rec       *sb.CRMRecord
		want      string
	}{
		{"record field without record", "Hi {Contact.FirstName}", nil, "{Contact.FirstName} needs the recipient's CRM record"},
		{"custom field the record lacks", "{Contact.Fields.Major}", ada, `unknown merge field {Contact.Fields.Major}: record 003A has no field "Major"`},
		{"custom field without record", "{Contact.Fields.Major}", nil, "{Contact.Fields.Major} needs the recipient's CRM record"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.src)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Render(Data{Record: c.rec, User: user, Org: org})
			if !sb.IsCode(err, sb.EInvalid) || !strings.Contains(sb.ErrorMessage(err), c.want) {
				t.Fatalf("got %v, want invalid containing %q", err, c.want)
			}
		})
	}
}

func TestSourceRoundTrip(t *testing.T) {
	p, err := Parse("a {{b}} { contact.firstname | x } {User.Name}")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Source(), "a {{b}} {Contact.FirstName|x} {User.Name}"; got != want {
		t.Fatalf("source %q, want %q", got, want)
	}
	if got, want := p.Literal(), "a {b}  "; got != want {
		t.Fatalf("literal %q, want %q", got, want)
	}
}

// FuzzParse: the parser never panics, errors are EInvalid, and a parsed
// template written back in canonical form parses to the same rendering.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "Hi {Contact.FirstName|there}", "{{}}", "}", "{", "{Contact.Fields.a.b|c}", "{User.Name}{Org.Name}", "{{{Contact.Id}}}", "{ Lead . Email }", "\xff{"} {
		f.Add(s)
	}
	data := Data{Record: ada, User: user, Org: org}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Parse(src)
		if err != nil {
			if !sb.IsCode(err, sb.EInvalid) || sb.ErrorMessage(err) == "" {
				t.Fatalf("error %v is not a clear invalid error", err)
			}
			return
		}
		want, werr := p.Render(data)
		q, err := Parse(p.Source())
		if err != nil {
			t.Fatalf("canonical source %q does not parse: %v", p.Source(), err)
		}
		got, gerr := q.Render(data)
		if got != want || (werr == nil) != (gerr == nil) {
			t.Fatalf("round trip of %q: %q (%v) vs %q (%v)", src, want, werr, got, gerr)
		}
		if len(q.Fields()) != len(p.Fields()) {
			t.Fatalf("round trip changed the fields: %v vs %v", p.Fields(), q.Fields())
		}
	})
}
