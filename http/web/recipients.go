package web

import (
	"bufio"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
)

// CSV columns read as a recipient's phone number or CRM record id (header
// names compared lower-cased, with spaces and dashes as underscores).
var (
	phoneColumns  = []string{"phone", "phone_number", "mobile", "mobile_phone", "mobilephone", "number", "to"}
	recordColumns = []string{"id", "record_id", "recordid", "contact_id", "contactid"}
)

// csvRow is one recipient read from a CSV upload.
type csvRow struct {
	// Line is the line number in the file (1-based), for messages.
	Line      int
	Recipient hub.Recipient
}

// parseRecipientsCSV reads recipients from a CSV upload: either rows of
// contacts with a header naming a phone and/or a record id column (other
// columns are ignored), or bare phone numbers, one per line, without a
// header. Blank lines are skipped. It returns at most maxRows recipients;
// more is an error.
func parseRecipientsCSV(r io.Reader, maxRows int) ([]csvRow, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3) // byte order mark
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	phoneCol, recordCol := -1, -1
	header := false
	var out []csvRow
	for first := true; ; {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, sb.FieldError("csv", "the CSV file is malformed at line %d: %v", pe.StartLine, pe.Err)
			}
			return nil, sb.FieldError("csv", "the CSV file could not be read")
		}
		line, _ := cr.FieldPos(0)
		if first {
			first = false
			if !utf8.ValidString(strings.Join(rec, "")) {
				return nil, sb.FieldError("csv", "the CSV file is not UTF-8 text")
			}
			phoneCol, recordCol = headerColumns(rec)
			if phoneCol >= 0 || recordCol >= 0 {
				header = true
				continue
			}
			if looksLikeHeader(rec) {
				return nil, sb.FieldError("csv", "the CSV header names no phone or record id column (use one of: %s; or %s)",
					strings.Join(phoneColumns, ", "), strings.Join(recordColumns, ", "))
			}
			phoneCol = 0
		}
		var rc hub.Recipient
		if phoneCol >= 0 && phoneCol < len(rec) {
			rc.To = strings.TrimSpace(rec[phoneCol])
		}
		if recordCol >= 0 && recordCol < len(rec) {
			rc.RecordID = strings.TrimSpace(rec[recordCol])
		}
		if rc.To == "" && rc.RecordID == "" {
			if blank(rec) {
				continue
			}
			if header {
				return nil, sb.FieldError("csv", "line %d has no phone number or record id", line)
			}
			return nil, sb.FieldError("csv", "line %d has no phone number in its first column", line)
		}
		if len(rc.To) > 64 || len(rc.RecordID) > 64 {
			return nil, sb.FieldError("csv", "line %d has a phone number or record id longer than 64 characters", line)
		}
		if !utf8.ValidString(rc.To) || !utf8.ValidString(rc.RecordID) {
			return nil, sb.FieldError("csv", "line %d is not UTF-8 text", line)
		}
		if len(out) == maxRows {
			return nil, sb.FieldError("csv", "the CSV file has more than %d recipients", maxRows)
		}
		out = append(out, csvRow{Line: line, Recipient: rc})
	}
	if len(out) == 0 {
		return nil, sb.FieldError("csv", "the CSV file has no recipients")
	}
	return out, nil
}

// headerColumns finds the phone and record id columns of a header row.
func headerColumns(rec []string) (phone, record int) {
	phone, record = -1, -1
	for i, cell := range rec {
		name := strings.ToLower(strings.TrimSpace(cell))
		name = strings.NewReplacer(" ", "_", "-", "_").Replace(name)
		for _, c := range phoneColumns {
			if name == c && phone < 0 {
				phone = i
			}
		}
		for _, c := range recordColumns {
			if name == c && record < 0 {
				record = i
			}
		}
	}
	return phone, record
}

// looksLikeHeader reports whether a first row is a header rather than a
// number: its first cell has letters.
func looksLikeHeader(rec []string) bool {
	if len(rec) == 0 {
		return false
	}
	for _, r := range rec[0] {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return true
		}
	}
	return false
}

func blank(rec []string) bool {
	for _, c := range rec {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}
