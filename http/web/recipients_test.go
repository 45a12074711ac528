package web

import (
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
)

func TestParseRecipientsCSV(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want []csvRow
		err  string
	}{
		{name: "numbers without a header", in: "+12025550141\n(202) 555-0142\r\n\n  +12025550143  \n",
			want: []csvRow{{1, hub.Recipient{To: "+12025550141"}}, {2, hub.Recipient{To: "(202) 555-0142"}}, {4, hub.Recipient{To: "+12025550143"}}}},
		{name: "byte order mark", in: "\xef\xbb\xbf+12025550141\n", want: []csvRow{{1, hub.Recipient{To: "+12025550141"}}}},
		{name: "contact rows", in: "First Name,Mobile Phone,Id\nAna,,003A\nEve,+12025550150,\n\"Lee, Jr\",+12025550151,003B\n",
			want: []csvRow{{2, hub.Recipient{RecordID: "003A"}}, {3, hub.Recipient{To: "+12025550150"}}, {4, hub.Recipient{To: "+12025550151", RecordID: "003B"}}}},
		{name: "record ids only", in: "record_id\n003A\n003B\n", want: []csvRow{{2, hub.Recipient{RecordID: "003A"}}, {3, hub.Recipient{RecordID: "003B"}}}},
		{name: "header with only a phone column", in: "phone,note\n+12025550141,x\n", want: []csvRow{{2, hub.Recipient{To: "+12025550141"}}}},
		{name: "short row", in: "name,phone\nAna\n", err: "line 2 has no phone number or record id"},
		{name: "unknown header", in: "name,email\nAna,a@example.org\n", err: "names no phone or record id column"},
		{name: "empty", in: "", err: "has no recipients"},
		{name: "header only", in: "phone\n", err: "has no recipients"},
		{name: "blank first column", in: "+12025550141\n,x\n", err: "line 2 has no phone number in its first column"},
		{name: "bad quoting", in: "phone\n\"+1202\"555\n", err: "malformed at line 2"},
		{name: "too many", in: "+12025550141\n+12025550142\n+12025550143\n", max: 2, err: "more than 2 recipients"},
		{name: "overlong cell", in: strings.Repeat("9", 65) + "\n", err: "longer than 64 characters"},
		{name: "not UTF-8", in: "phone\n\xff\xfe\n", err: "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = 100
			}
			got, err := parseRecipientsCSV(strings.NewReader(tc.in), max)
			if tc.err != "" {
				if err == nil || !strings.Contains(sb.ErrorMessage(err), tc.err) || !sb.IsCode(err, sb.EInvalid) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("row %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// FuzzParseRecipientsCSV: any upload gives recipients or a clear invalid
// error, never a panic; every recipient has a phone or a record id of
// bounded length.
func FuzzParseRecipientsCSV(f *testing.F) {
	for _, s := range []string{"+12025550141\n", "phone,id\n+1202,003A\n", "\"a\nb\",c\n", "\xef\xbb\xbf", "id\n,\n003\n", "a,\"b\"\"c\"\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := parseRecipientsCSV(strings.NewReader(in), 50)
		if err != nil {
			if !sb.IsCode(err, sb.EInvalid) || sb.ErrorMessage(err) == "" {
				t.Fatalf("error without a clear invalid code: %v", err)
			}
			return
		}
		if len(rows) == 0 || len(rows) > 50 {
			t.Fatalf("%d rows", len(rows))
		}
		for _, r := range rows {
			if r.Recipient.To == "" && r.Recipient.RecordID == "" || len(r.Recipient.To) > 64 || len(r.Recipient.RecordID) > 64 || r.Line < 1 {
				t.Fatalf("bad row %+v", r)
			}
		}
	})
}
