package salesforce

import (
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	tests := []struct{ in, want string }{
		{"duplicate value found: Phone__c duplicates value on record with id: +1 (201) 555-0123", "duplicate value found: Phone__c duplicates value on record with id: +# (###) ###-##23"},
		{"Required fields are missing: [Status__c]", "Required fields are missing: [Status__c]"},
		{"short runs stay: 12345", "short runs stay: 12345"},
		{"dates err on the safe side: 2024-05-20", "dates err on the safe side: ####-##-20"},
		{"number 12015550123.", "number #########23."},
	}
	for _, tt := range tests {
		if got := scrub(tt.in); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseAPIError feeds arbitrary bodies to the error parser: it never
// fails, and what it keeps has no run of seven or more digits.
func FuzzParseAPIError(f *testing.F) {
	for _, s := range []string{
		`[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`,
		`[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]`,
		`{"message":"x","errorCode":"Y"}`, `[]`, `null`, `"text"`, `[{"message":"+12015550123"}]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := parseAPIError(body)
		if e == nil {
			t.Fatal("nil error")
		}
		digits := 0
		for _, r := range e.Message {
			if r >= '0' && r <= '9' {
				digits++
				if digits >= 7 {
					// a masked run keeps only its last two digits
					t.Fatalf("message keeps a digit run: %q", e.Message)
				}
			} else if !strings.ContainsRune(" ().-", r) {
				digits = 0
			}
		}
	})
}
