package rules

import (
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
)

func TestFilterMatch(t *testing.T) {
	future := Fields{"first_name": "Ada", "email": "ada@example.org", "Student Type": "Future Student"}
	alumni := Fields{"first_name": "Bob", "Student Type": "Alumni", "phone": "+12025550123"}
	none := Fields{}
	tests := []struct {
		filter string
		fields Fields
		want   bool
	}{
		{"", none, true},
		{"   ", alumni, true},
		{`student_type = 'Future Student'`, future, true},
		{`student_type = 'Future Student'`, alumni, false},
		{`student_type = 'Future Student'`, none, false},
		{`"Student Type" = "future student"`, future, true},                         // case-insensitive value, quoted field
		{`'STUDENT-TYPE' == '  Future Student '`, future, true},                     // field key, spaces around values
		{`student_type equals 'Alumni'`, alumni, true},                              // word form
		{`student_type != 'Alumni'`, future, true},                                  // not equals
		{`student_type != 'Alumni'`, none, true},                                    // not captured is ""
		{`student_type not equals 'Alumni'`, alumni, false},                         // word form
		{`student_type contains 'student'`, future, true},                           // contains, case-insensitive
		{`student_type contains 'stud'`, alumni, false},                             //
		{`student_type contains ''`, none, false},                                   // unset never contains
		{`phone is set`, alumni, true},                                              //
		{`phone is set`, future, false},                                             //
		{`phone IS NOT SET`, future, true},                                          // keywords ignore case
		{`email is set and phone is set`, future, false},                            // and
		{`email is set or phone is set`, alumni, true},                              // or
		{`email is set or phone is set`, none, false},                               //
		{`first_name = 'Ada' or first_name = 'Bob' and phone is set`, future, true}, // and binds tighter
		{`(first_name = 'Ada' or first_name = 'Bob') and phone is set`, future, false},
		{`(first_name = 'Ada' or first_name = 'Bob') and phone is set`, alumni, true},
		{`((email is set))`, future, true},
		{`first_name = 'it\'s' or first_name = "a \"b\" \\"`, Fields{"first_name": `a "b" \`}, true}, // escapes
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.filter)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tt.filter, err)
			continue
		}
		if got := f.Match(tt.fields); got != tt.want {
			t.Errorf("%q on %v = %v, want %v", tt.filter, tt.fields, got, tt.want)
		}
		// The canonical form is a fixed point and means the same.
		g, err := ParseFilter(f.String())
		if err != nil {
			t.Errorf("canonical %q of %q does not parse: %v", f.String(), tt.filter, err)
			continue
		}
		if g.String() != f.String() || g.Match(tt.fields) != tt.want {
			t.Errorf("canonical form of %q changed: %q → %q", tt.filter, f.String(), g.String())
		}
	}
}

func TestFilterCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{`student_type = "Future Student"`, `student_type = 'Future Student'`},
		{`a = 'x' AND (b IS SET AND c is not set)`, `a = 'x' and b is set and c is not set`},
		{`(a = 'x' or b = 'y') and c != 'z'`, `(a = 'x' or b = 'y') and c != 'z'`},
		{`a = 'x' or (b = 'y' or c contains 'z')`, `a = 'x' or b = 'y' or c contains 'z'`},
		{`"Student Type" not equals 'x'`, `'Student Type' != 'x'`},
		{`"and" is set`, `'and' is set`},
	}
	for _, tt := range tests {
		if got := MustParseFilter(tt.in).String(); got != tt.want {
			t.Errorf("%q → %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`student_type`, `expected =, !=, contains, is set or is not set after field 'student_type', found end of filter (at character 13)`},
		{`student_type = Future`, `expected a quoted value such as 'Future Student', found "Future" (at character 16)`},
		{`a = 'x' and`, `expected a field name, found end of filter (at character 12)`},
		{`(a = 'x'`, `expected ")" to close the "(" at character 1, found end of filter (at character 9)`},
		{`a = 'x')`, `unexpected ")"; expected and, or or the end (at character 8)`},
		{`a = 'x`, `quoted text is not closed (at character 5)`},
		{`a = 'x\n'`, `unknown escape "\n" in quoted text; only \', \" and \\ are escapes (at character 7)`},
		{`a ! 'x'`, `"!" must be followed by "=" (not equals) (at character 3)`},
		{`a is 'x'`, `expected "set" after "is", found quoted text 'x' (at character 6)`},
		{`a not 'x'`, `expected "equals" after "not", found quoted text 'x' (at character 7)`},
		{`a = 'x' $ b`, `unexpected '$'; quote field names and values that have it (at character 9)`},
		{`and = 'x'`, `expected a field name, found "and" (at character 1)`},
		{`"" is set`, `a field name must not be empty (at character 1)`},
		{`é = 'x' or = 'y'`, `expected a field name, found "=" (at character 12)`},
		{strings.Repeat("(", 12) + "a is set" + strings.Repeat(")", 12), `parentheses are nested more than 10 deep (at character 12)`},
		{strings.Repeat("a is set or ", 50) + "a is set", `a filter may have at most 50 conditions (at character 601)`},
		{strings.Repeat("a", MaxFilterLen+1), `filter is longer than 2000 characters`},
		{"a = '\xff'", `filter is not valid UTF-8`},
	}
	for _, tt := range tests {
		_, err := ParseFilter(tt.in)
		var e *sb.Error
		if err == nil {
			t.Errorf("ParseFilter(%.40q) = nil error, want %q", tt.in, tt.want)
			continue
		}
		if !asError(err, &e) || e.Code != sb.EInvalid || e.Field != "filter" {
			t.Errorf("ParseFilter(%.40q): error %#v is not an invalid error naming filter", tt.in, err)
			continue
		}
		if got := strings.TrimPrefix(e.Message, "filter: "); got != tt.want {
			t.Errorf("ParseFilter(%.40q):\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestFilterExplain(t *testing.T) {
	f := MustParseFilter(`student_type = 'Future Student' and email is set and (phone is set or first_name is set)`)
	if got := f.Explain(Fields{"Student Type": "Future Student", "email": "a@b.c", "first_name": "A"}); got != "" {
		t.Errorf("passing fields explained as %q", got)
	}
	got := f.Explain(Fields{"Student Type": "Alumni", "email": "a@b.c"})
	if want := `student_type = 'Future Student' and (phone is set or first_name is set)`; got != want {
		t.Errorf("explain = %q, want %q", got, want)
	}
	or := MustParseFilter(`a is set or b is set`)
	if got := or.Explain(Fields{}); got != `a is set or b is set` {
		t.Errorf("explain of or = %q", got)
	}
	var none *Filter
	if none.Explain(Fields{}) != "" || !none.Match(nil) || none.String() != "" {
		t.Error("a nil filter must pass everything")
	}
}

// FuzzFilter checks the parser never panics, errors are invalid-input
// errors naming the filter, and the canonical form parses to itself and
// means the same.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`student_type = 'Future Student'`, `a is set or (b != "x" and c contains 'y')`, `"x y" is not set`,
		`((a = 'b'))`, `a = 'it\'s'`, `a not equals 'b' AND c equals 'd'`, `é = 'ü'`, `a = '`, `(`, `!`,
	} {
		f.Add(s, "Future Student", "x")
	}
	f.Fuzz(func(t *testing.T, expr, v1, v2 string) {
		flt, err := ParseFilter(expr)
		if err != nil {
			var e *sb.Error
			if !asError(err, &e) || e.Code != sb.EInvalid || e.Field != "filter" || e.Message == "" {
				t.Fatalf("ParseFilter(%q): bad error %#v", expr, err)
			}
			return
		}
		canon := flt.String()
		again, err := ParseFilter(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, expr, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical form is not a fixed point: %q → %q", canon, again.String())
		}
		for _, fields := range []Fields{{}, {"a": v1, "Student Type": v2}, {"first_name": v1, "x y": v2, "b": v1}} {
			if flt.Match(fields) != again.Match(fields) {
				t.Fatalf("%q and its canonical form %q disagree on %v", expr, canon, fields)
			}
			if (flt.Explain(fields) == "") != flt.Match(fields) {
				t.Fatalf("Explain and Match disagree for %q on %v", expr, fields)
			}
		}
	})
}
