package smpp

import (
	"errors"
	"fmt"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// receipt is an SMSC delivery receipt as carried in a deliver_sm's
// short_message (SMPP 3.4 appendix B):
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:…
//
// The format is de facto rather than normative: keys are matched without
// regard to case, fields may come in any order, dates may carry seconds, and
// only id and stat are required.
type receipt struct {
	ID         string
	Sub        string
	Dlvrd      string
	SubmitDate time.Time
	DoneDate   time.Time
	Stat       string
	Err        string
	Text       string
}

// maxReceiptLen bounds the text parsed as a receipt.
const maxReceiptLen = 1024

var receiptKeys = []string{"id:", "sub:", "dlvrd:", "submit date:", "done date:", "stat:", "err:", "text:"}

// parseReceipt reads a delivery receipt text.
func parseReceipt(s string) (receipt, error) {
	if len(s) > maxReceiptLen {
		return receipt{}, fmt.Errorf("delivery receipt is %d bytes, more than %d", len(s), maxReceiptLen)
	}
	lower := asciiLower(s)
	fields := map[string]string{}
	for _, key := range receiptKeys {
		i := findKey(lower, key)
		if i < 0 {
			continue
		}
		v := s[i+len(key):]
		if key != "text:" {
			if j := strings.IndexAny(v, " \t\r\n"); j >= 0 {
				v = v[:j]
			}
		}
		fields[key] = v
	}
	r := receipt{
		ID:    fields["id:"],
		Sub:   fields["sub:"],
		Dlvrd: fields["dlvrd:"],
		Stat:  strings.ToUpper(fields["stat:"]),
		Err:   fields["err:"],
		Text:  fields["text:"],
	}
	r.SubmitDate = parseReceiptDate(fields["submit date:"])
	r.DoneDate = parseReceiptDate(fields["done date:"])
	if r.ID == "" {
		return r, errors.New("delivery receipt has no id")
	}
	if r.Stat == "" {
		return r, errors.New("delivery receipt has no stat")
	}
	return r, nil
}

// findKey returns the index of key in s where it starts s or follows white
// space, so "id:" is not found inside "msgid:" nor "date:" inside "done date:".
func findKey(s, key string) int {
	from := 0
	for {
		i := strings.Index(s[from:], key)
		if i < 0 {
			return -1
		}
		i += from
		if i == 0 || s[i-1] == ' ' || s[i-1] == '\t' || s[i-1] == '\n' || s[i-1] == '\r' {
			return i
		}
		from = i + 1
	}
}

// asciiLower lower-cases ASCII letters only, keeping byte offsets.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// parseReceiptDate reads YYMMDDhhmm or YYMMDDhhmmss. The SMSC's time zone is
// not stated by the format; UTC is assumed. An unreadable date is zero.
func parseReceiptDate(s string) time.Time {
	var layout string
	switch len(s) {
	case 10:
		layout = "0601021504"
	case 12:
		layout = "060102150405"
	default:
		return time.Time{}
	}
	t, err := time.ParseInLocation(layout, s, time.UTC)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Receipt stat values and message_state TLV values (section 5.2.28).
var (
	statStatus = map[string]sb.Status{
		"DELIVRD": sb.StatusDelivered,
		"ACCEPTD": sb.StatusSent,
		"ENROUTE": sb.StatusSent,
		"UNDELIV": sb.StatusUndelivered,
		"EXPIRED": sb.StatusFailed,
		"DELETED": sb.StatusFailed,
		"REJECTD": sb.StatusFailed,
		"UNKNOWN": sb.StatusFailed,
	}
	messageStateStat = map[byte]string{
		1: "ENROUTE",
		2: "DELIVRD",
		3: "EXPIRED",
		4: "DELETED",
		5: "UNDELIV",
		6: "ACCEPTD",
		7: "UNKNOWN",
		8: "REJECTD",
	}
)

// receiptUpdate turns a receipt into a status update. ok is false when the
// stat is not one Switchboard knows.
func receiptUpdate(r receipt, now time.Time) (sb.StatusUpdate, bool) {
	st, ok := statStatus[r.Stat]
	if !ok {
		return sb.StatusUpdate{}, false
	}
	u := sb.StatusUpdate{ProviderMessageID: r.ID, Status: st, At: r.DoneDate}
	if u.At.IsZero() {
		u.At = now
	}
	if strings.Trim(r.Err, "0") != "" {
		u.ErrorCode = r.Err
	}
	if st != sb.StatusDelivered && st != sb.StatusSent {
		u.Debug = "SMPP delivery receipt: " + r.Stat
		if u.ErrorCode != "" {
			u.Debug += " (err " + u.ErrorCode + ")"
		}
	}
	return u, true
}
