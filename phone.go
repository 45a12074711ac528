package switchboard

import (
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// ParsePhone reads a phone number as people write it ("(415) 555-0100",
// "+44 20 7946 0958", "0044…") and returns it in E.164 form ("+14155550100").
// Numbers without a country code are read in region (ISO 3166, e.g. "US").
// The error names what is wrong without repeating the number.
func ParsePhone(s, region string) (string, error) {
	return parsePhone(s, region, true)
}

// parsePhone is ParsePhone; with fast false it reads every number with
// phonenumbers.Parse, so that tests can compare the two ways.
func parsePhone(s, region string, fast bool) (string, error) {
	raw := strings.TrimSpace(s)
	if raw == "" {
		return "", FieldError("phone", "phone number is empty")
	}
	if len(raw) > 64 {
		return "", FieldError("phone", "phone number is too long (%d characters)", len(raw))
	}
	digits := 0
	for _, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' || r == '(' || r == ')' || r == '-' || r == '.' || r == '/' || unicode.IsSpace(r):
		default:
			return "", FieldError("phone", "phone number contains %q; only digits, spaces, +, -, ., / and parentheses are allowed", r)
		}
	}
	if strings.Count(raw, "+") > 1 || (strings.Contains(raw, "+") && !strings.HasPrefix(raw, "+")) {
		return "", FieldError("phone", "phone number has a misplaced +")
	}
	if digits < 7 {
		return "", FieldError("phone", "phone number has too few digits (%d); E.164 numbers have 7 to 15", digits)
	}
	if digits > 17 {
		return "", FieldError("phone", "phone number has too many digits (%d); E.164 numbers have at most 15", digits)
	}
	if strings.HasPrefix(raw, "00") {
		raw = "+" + raw[2:]
	}
	if region == "" {
		region = "US"
	}
	region = strings.ToUpper(region)
	if !strings.HasPrefix(raw, "+") && phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return "", FieldError("phone", "unknown default region %q for a number without country code", region)
	}
	num, ok := nanpNumber(raw)
	var err error
	if !fast || !ok {
		num, err = phonenumbers.Parse(raw, region)
	}
	if err != nil {
		switch err {
		case phonenumbers.ErrInvalidCountryCode:
			return "", FieldError("phone", "phone number has an unknown country code")
		case phonenumbers.ErrTooShortNSN, phonenumbers.ErrTooShortAfterIDD:
			return "", FieldError("phone", "phone number is too short")
		case phonenumbers.ErrNumTooLong:
			return "", FieldError("phone", "phone number is too long")
		}
		return "", FieldError("phone", "phone number is not a number")
	}
	if !phonenumbers.IsValidNumber(num) {
		if phonenumbers.IsPossibleNumber(num) {
			return "", FieldError("phone", "phone number is not a valid number in region %s", regionOf(num, region))
		}
		return "", FieldError("phone", "phone number has the wrong length for region %s", regionOf(num, region))
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// nanpNumber reads raw without phonenumbers.Parse (about half the cost of
// ParsePhone) when it is exactly "+1" and ten ASCII digits, the first 2–9: a
// North American number in E.164 form, the usual input in bulk sends. The
// result is exactly what Parse gives for such input, whatever the region:
// after the "+" Parse takes 1 as the country code (the codes are prefix-free)
// and reads the rest with the metadata of US, the main region of +1, whose
// only national prefix is "1", which cannot begin digits that start with 2–9;
// so the ten digits stay the national number, unchanged. Without letters
// there is no extension, and with no leading 0 no Italian leading zero.
// TestParsePhoneFastPath and FuzzParsePhone compare the two.
func nanpNumber(raw string) (*phonenumbers.PhoneNumber, bool) {
	if len(raw) != 12 || raw[0] != '+' || raw[1] != '1' || raw[2] < '2' || raw[2] > '9' {
		return nil, false
	}
	var national uint64
	for _, c := range []byte(raw[2:]) {
		if c < '0' || c > '9' {
			return nil, false
		}
		national = national*10 + uint64(c-'0')
	}
	return &phonenumbers.PhoneNumber{CountryCode: new(int32(1)), NationalNumber: new(national)}, true
}

func regionOf(num *phonenumbers.PhoneNumber, fallback string) string {
	if r := phonenumbers.GetRegionCodeForNumber(num); r != "" && r != "ZZ" {
		return r
	}
	if r := phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode())); r != "" && r != "ZZ" {
		return r
	}
	return fallback
}

// MaskPhone returns a form of an E.164 number safe for logs: country code and
// last two digits only ("+1*******00").
func MaskPhone(p string) string {
	if len(p) <= 4 {
		return strings.Repeat("*", len(p))
	}
	return p[:2] + strings.Repeat("*", len(p)-4) + p[len(p)-2:]
}
