package switchboard

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestParsePhone(t *testing.T) {
	tests := []struct {
		in, region, want, err string
	}{
		{"+14155550100", "US", "+14155550100", ""},
		{"(415) 555-0100", "US", "+14155550100", ""},
		{"415.555.0100", "US", "+14155550100", ""},
		{"1 415 555 0100", "US", "+14155550100", ""},
		{"+44 20 7946 0958", "US", "+442079460958", ""},
		{"020 7946 0958", "GB", "+442079460958", ""},
		{"0044 20 7946 0958", "US", "+442079460958", ""},
		{"  +1 (212) 555-0199 ", "", "+12125550199", ""},
		{"", "US", "", "empty"},
		{"   ", "US", "", "empty"},
		{"555-CALL-NOW", "US", "", "contains 'C'"},
		{"12345", "US", "", "too few digits"},
		{"+1234567890123456789", "US", "", "too many digits"},
		{"1+4155550100", "US", "", "misplaced +"},
		{"+999 123 456 789", "US", "", "unknown country code"},
		{"(415) 555-010", "US", "", "region US"},
		{"415 555 0100", "XX", "", "unknown default region"},
	}
	for _, tt := range tests {
		got, err := ParsePhone(tt.in, tt.region)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePhone(%q) error = %v, want it to mention %q", tt.in, err, tt.err)
			}
			if ErrorCode(err) != EInvalid {
				t.Errorf("ParsePhone(%q) code = %s, want invalid", tt.in, ErrorCode(err))
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePhone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParsePhoneErrorDoesNotEchoNumber(t *testing.T) {
	_, err := ParsePhone("(415) 555-010", "US")
	if err == nil || strings.Contains(err.Error(), "555") {
		t.Fatalf("error %v repeats the number", err)
	}
}

func TestMaskPhone(t *testing.T) {
	if got := MaskPhone("+14155550100"); got != "+1********00" {
		t.Fatalf("MaskPhone = %q", got)
	}
}

// TestParsePhoneFastPath: for "+1" numbers of every area code, with valid and
// invalid exchanges, and for near misses that must not take the fast path,
// ParsePhone gives the same result and error as with phonenumbers.Parse, and
// the number the fast path builds is the one Parse builds.
func TestParsePhoneFastPath(t *testing.T) {
	regions := []string{"US", "", "CA", "GB", "de", "XX", "001"}
	var ins []string
	for area := 200; area <= 999; area++ {
		for _, rest := range []string{"2345678", "5550123", "0110000", "1234567", "9110000", "9999999"} {
			ins = append(ins, fmt.Sprintf("+1%d%s", area, rest))
		}
	}
	edges := []struct {
		in   string
		fast bool
	}{
		{"+12025550123", true},
		{"  +12025550123\t", true},
		{"+19999999999", true},
		{"+12000000000", true},
		{"+18005550123", true},
		{"+10025550123", false}, // national numbers never begin with 0 or 1
		{"+11025550123", false},
		{"+11234567890", false},
		{"+10000000000", false},
		{"+1202555012", false},   // 9 digits
		{"+120255501234", false}, // 11 digits
		{"+1202555012345", false},
		{"+1", false},
		{"+2025550123", false},
		{"+44202555012", false},
		{"12025550123", false},
		{"2025550123", false},
		{"0012025550123", true}, // read as "+12025550123"
		{"00112025550123", false},
		{"+1 2025550123", false},
		{"+1 202 555 0123", false},
		{"+1-202-555-0123", false},
		{"+1.202.555.0123", false},
		{"+1(202)5550123", false},
		{"+1 (202) 555-0123", false},
		{"+1/2025550123", false},
		{"+1202555\u00a00123", false},
		{"+12025550123-", false},
		{"+12025550123)", false},
		{"+1202555O123", false},
		{"+1202555012a", false},
		{"+1202555０123", false},
		{"++12025550123", false},
	}
	for _, e := range edges {
		raw := strings.TrimSpace(e.in)
		if strings.HasPrefix(raw, "00") {
			raw = "+" + raw[2:]
		}
		if _, ok := nanpNumber(raw); ok != e.fast {
			t.Errorf("nanpNumber(%q) ok = %v, want %v", raw, ok, e.fast)
		}
		ins = append(ins, e.in)
	}
	fast := 0
	for i, in := range ins {
		rs := regions[i%len(regions) : i%len(regions)+1]
		if i >= len(ins)-len(edges) {
			rs = regions
		}
		for _, region := range rs {
			got, err := parsePhone(in, region, true)
			want, wantErr := parsePhone(in, region, false)
			if got != want || errText(err) != errText(wantErr) {
				t.Errorf("ParsePhone(%q, %q) = %q, %v; with phonenumbers.Parse %q, %v", in, region, got, err, want, wantErr)
			}
		}
		raw := strings.TrimSpace(in)
		if num, ok := nanpNumber(raw); ok {
			fast++
			lib, err := phonenumbers.Parse(raw, "US")
			// Both are printed by the same binary, so equal text is equal fields.
			if err != nil || num.String() != lib.String() {
				t.Errorf("nanpNumber(%q) = %v; phonenumbers.Parse gives %v, %v", raw, num, lib, err)
			}
		}
	}
	if fast < 800*6 {
		t.Errorf("only %d of %d inputs took the fast path", fast, len(ins))
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return ErrorCode(err) + ": " + err.Error()
}

// FuzzParsePhone: any input either fails with an invalid error or yields a
// canonical E.164 number that parses to itself, and the fast path for
// "+1" numbers gives what phonenumbers.Parse gives.
func FuzzParsePhone(f *testing.F) {
	for _, s := range []string{"+14155550100", "(415) 555-0100", "0044 20 7946 0958", "", "+", "00", "++1", "+1 (((", "١٢٣",
		"+12025550123", "+10025550123", "+11025550123", "+19115550123", "+1202555012", "+120255501234", "0012025550123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParsePhone(in, "US")
		slow, slowErr := parsePhone(in, "US", false)
		if got != slow || errText(err) != errText(slowErr) {
			t.Fatalf("%q: fast path gives %q, %v; phonenumbers.Parse gives %q, %v", in, got, err, slow, slowErr)
		}
		if err != nil {
			if ErrorCode(err) != EInvalid {
				t.Fatalf("error code %s for %q", ErrorCode(err), in)
			}
			return
		}
		if !strings.HasPrefix(got, "+") || len(got) > 16 || len(got) < 8 {
			t.Fatalf("%q -> %q is not E.164", in, got)
		}
		again, err := ParsePhone(got, "GB")
		if err != nil || again != got {
			t.Fatalf("%q -> %q does not round-trip: %q %v", in, got, again, err)
		}
	})
}

// BenchmarkParsePhone: the common bulk-send input, a canonical North American
// E.164 number, over 1,000 distinct numbers.
func BenchmarkParsePhone(b *testing.B) {
	nums := make([]string, 1000)
	for i := range nums {
		nums[i] = fmt.Sprintf("+1202555%04d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := ParsePhone(nums[i], "US"); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % len(nums)
	}
}
