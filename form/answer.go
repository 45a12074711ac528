package form

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxAnswerChars bounds a stored answer.
const MaxAnswerChars = 1000

// Check validates a reply to q. It returns the answer as stored — a
// choice's own text, a number in plain form, a date as YYYY-MM-DD, trimmed
// text — or, when the reply does not fit, a hint to send before asking
// again ("Please answer 1, 2 or 3."). region (ISO 3166, e.g. "US") decides
// whether 3/4/2025 is March 4 or 3 April.
func (q *Question) Check(reply, region string) (answer, hint string) {
	reply = strings.TrimSpace(strings.ToValidUTF8(reply, ""))
	switch q.Type {
	case TypeChoice:
		for _, c := range q.Choices {
			if strings.EqualFold(c, reply) || strings.EqualFold(c, strings.TrimRight(reply, ".!")) {
				return c, ""
			}
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(reply, "."), ")"))
		if err == nil && n >= 1 && n <= len(q.Choices) {
			return q.Choices[n-1], ""
		}
		return "", "Please answer " + numberList(len(q.Choices)) + "."
	case TypeNumber:
		f, ok := parseNumber(reply)
		if ok && (q.Min == nil || f >= *q.Min) && (q.Max == nil || f <= *q.Max) {
			return fmtNumber(f), ""
		}
		switch {
		case q.Min != nil && q.Max != nil:
			return "", "Please answer with a number from " + fmtNumber(*q.Min) + " to " + fmtNumber(*q.Max) + "."
		case q.Min != nil:
			return "", "Please answer with a number of at least " + fmtNumber(*q.Min) + "."
		case q.Max != nil:
			return "", "Please answer with a number of at most " + fmtNumber(*q.Max) + "."
		}
		return "", "Please answer with a number."
	case TypeDate:
		if d, ok := parseDate(reply, region); ok {
			return d.Format(time.DateOnly), ""
		}
		return "", "Please answer with a date, e.g. " + dateExample(region) + "."
	default:
		if reply == "" {
			return "", "Please answer with a few words."
		}
		if utf8.RuneCountInString(reply) > MaxAnswerChars {
			reply = string([]rune(reply)[:MaxAnswerChars])
		}
		return reply, ""
	}
}

// numberList returns "1 or 2", "1, 2 or 3".
func numberList(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		switch {
		case i == 1:
		case i == n:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

var (
	plainNumber     = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)$`)
	thousandsNumber = regexp.MustCompile(`^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$`)
)

// parseNumber reads "12", "-3.5", "1,250" (thousands), "1,5" (a decimal
// comma). Hex, exponents, NaN and infinities are not numbers here.
func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 40 {
		return 0, false
	}
	switch {
	case thousandsNumber.MatchString(s):
		s = strings.ReplaceAll(s, ",", "")
	case strings.Count(s, ",") == 1 && !strings.Contains(s, "."):
		s = strings.Replace(s, ",", ".", 1)
	}
	if !plainNumber.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func fmtNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// monthFirst reports whether numeric dates put the month first in region.
func monthFirst(region string) bool {
	switch strings.ToUpper(region) {
	case "US", "PH", "FM", "MH", "PW", "AS", "GU", "MP", "PR", "VI", "UM":
		return true
	}
	return false
}

func dateExample(region string) string {
	if monthFirst(region) {
		return "12/31/2025"
	}
	return "31/12/2025"
}

var (
	dateSpaces = regexp.MustCompile(`[\s,]+`)
	ordinal    = regexp.MustCompile(`(?i)\b(\d{1,2})(st|nd|rd|th)\b`)
)

// parseDate reads ISO dates (2025-12-31), numeric dates in the region's
// order (12/31/2025, 12-31-25 or 31/12/2025) and dates with month names
// (Dec 31 2025, 31 December 2025, December 31st, 2025).
func parseDate(s, region string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 40 {
		return time.Time{}, false
	}
	s = ordinal.ReplaceAllString(s, "$1")
	s = strings.TrimSpace(dateSpaces.ReplaceAllString(s, " "))
	s = strings.ReplaceAll(s, ".", "/")
	layouts := []string{"2006-01-02", "2006/01/02", "Jan 2 2006", "January 2 2006", "2 Jan 2006", "2 January 2006"}
	if monthFirst(region) {
		layouts = append(layouts, "1/2/2006", "1-2-2006", "1/2/06", "1-2-06")
	} else {
		layouts = append(layouts, "2/1/2006", "2-1-2006", "2/1/06", "2-1-06")
	}
	for _, l := range layouts {
		t, err := time.Parse(l, s)
		if err == nil && t.Year() >= 1900 && t.Year() <= 2200 {
			return t, true
		}
		// Month names in any case: time.Parse wants "Jan", so title-case.
		if strings.Contains(l, "Jan") {
			if t, err := time.Parse(l, titleWords(s)); err == nil && t.Year() >= 1900 && t.Year() <= 2200 {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func titleWords(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		if w == "" {
			continue
		}
		r, size := utf8.DecodeRuneInString(w)
		words[i] = strings.ToUpper(string(r)) + strings.ToLower(w[size:])
	}
	return strings.Join(words, " ")
}
