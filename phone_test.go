package switchboard_test

import (
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
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
		got, err := sb.ParsePhone(tt.in, tt.region)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePhone(%q) error = %v, want it to mention %q", tt.in, err, tt.err)
			}
			if sb.ErrorCode(err) != sb.EInvalid {
				t.Errorf("ParsePhone(%q) code = %s, want invalid", tt.in, sb.ErrorCode(err))
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePhone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParsePhoneErrorDoesNotEchoNumber(t *testing.T) {
	_, err := sb.ParsePhone("(415) 555-010", "US")
	if err == nil || strings.Contains(err.Error(), "555") {
		t.Fatalf("error %v repeats the number", err)
	}
}

func TestMaskPhone(t *testing.T) {
	if got := sb.MaskPhone("+14155550100"); got != "+1********00" {
		t.Fatalf("MaskPhone = %q", got)
	}
}

// FuzzParsePhone: any input either fails with an invalid error or yields a
// canonical E.164 number that parses to itself.
func FuzzParsePhone(f *testing.F) {
	for _, s := range []string{"+14155550100", "(415) 555-0100", "0044 20 7946 0958", "", "+", "00", "++1", "+1 (((", "١٢٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := sb.ParsePhone(in, "US")
		if err != nil {
			if sb.ErrorCode(err) != sb.EInvalid {
				t.Fatalf("error code %s for %q", sb.ErrorCode(err), in)
			}
			return
		}
		if !strings.HasPrefix(got, "+") || len(got) > 16 || len(got) < 8 {
			t.Fatalf("%q -> %q is not E.164", in, got)
		}
		again, err := sb.ParsePhone(got, "GB")
		if err != nil || again != got {
			t.Fatalf("%q -> %q does not round-trip: %q %v", in, got, again, err)
		}
	})
}
