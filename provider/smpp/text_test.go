package smpp

import (
	"bytes"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
)

func TestGSM7(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // hex
	}{
		{"ascii", "Hi 1!", "48 69 20 31 21"},
		{"at sign and pound", "@£$", "00 01 02"},
		{"greek and accents", "ΔΩéà", "10 15 05 7F"},
		{"inverted marks", "¡¿§", "40 60 5F"},
		{"newline and cr", "a\nb\rc", "61 0A 62 0D 63"},
		{"extension characters", "{}[]~\\|^€\f", "1B28 1B29 1B3C 1B3E 1B3D 1B2F 1B40 1B14 1B65 1B0A"},
		{"mixed", "Cost: 5€ [ok]", "43 6F 73 74 3A 20 35 1B65 20 1B3C 6F 6B 1B3E"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeGSM7(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("encode %q = %X, want %X", tt.text, got, want)
			}
			if back := decodeGSM7(got); back != tt.text {
				t.Fatalf("decode = %q, want %q", back, tt.text)
			}
		})
	}
}

func TestGSM7AgreesWithSegmentCounter(t *testing.T) {
	// Every character the root package counts as GSM-7 must encode, in as
	// many septets as it counts.
	for r := rune(0); r < 0x2100; r++ {
		cost := sb.GSM7Septets(r)
		got, err := encodeGSM7(string(r))
		switch {
		case cost == 0 && err == nil:
			t.Errorf("%q encodes but is not counted as GSM-7", r)
		case cost > 0 && err != nil:
			t.Errorf("%q is counted as GSM-7 but does not encode: %v", r, err)
		case cost > 0 && len(got) != cost:
			t.Errorf("%q encodes to %d octets, counted as %d septets", r, len(got), cost)
		}
	}
}

func TestEncodeGSM7Rejects(t *testing.T) {
	_, err := encodeGSM7("hello ☃")
	if err == nil || !strings.Contains(err.Error(), "'☃'") {
		t.Fatalf("err = %v, want it to name the character", err)
	}
}

func TestDecodeGSM7Oddities(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"unknown extension reads as basic", "1B 41", "A"},
		{"trailing escape dropped", "41 1B", "A"},
		{"octet above 0x7F", "41 80", "A\uFFFD"},
		{"double escape", "1B 1B 41", "\uFFFDA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeGSM7(unhex(t, tt.in)); got != tt.want {
				t.Fatalf("decode = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUCS2(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string
	}{
		{"bmp", "Привет", "041F 0440 0438 0432 0435 0442"},
		{"surrogate pair", "a😀", "0061 D83D DE00"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeUCS2(tt.text)
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("encode = %X, want %X", got, want)
			}
			if back := decodeUCS2(got); back != tt.text {
				t.Fatalf("decode = %q, want %q", back, tt.text)
			}
		})
	}
	if got := decodeUCS2(unhex(t, "0041 D83D 42")); got != "A\uFFFD" {
		t.Fatalf("odd length with lone surrogate = %q", got)
	}
}

func TestDecodeText(t *testing.T) {
	tests := []struct {
		name   string
		coding byte
		in     string
		want   string
	}{
		{"default is GSM", 0x00, "00 1B65", "@€"},
		{"IA5", 0x01, "48 69", "Hi"},
		{"latin-1", 0x03, "E9 74 E9", "été"},
		{"UCS-2", 0x08, "00E9 20AC", "é€"},
		{"binary as latin-1", 0x04, "41 FF", "Aÿ"},
		{"class 1 default alphabet", 0xF1, "00", "@"},
		{"class 1 8-bit", 0xF5, "E9", "é"},
		{"general group UCS-2", 0x18, "20AC", "€"},
		{"general group GSM", 0x10, "1B65", "€"},
		{"message waiting UCS-2", 0xE0, "20AC", "€"},
		{"unknown", 0x06, "41", "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeText(tt.coding, unhex(t, tt.in)); got != tt.want {
				t.Fatalf("decodeText(0x%02X) = %q, want %q", tt.coding, got, tt.want)
			}
		})
	}
}

func TestUDH(t *testing.T) {
	if got, want := concatUDH(0xAB, 3, 2), unhex(t, "05 00 03 AB 03 02"); !bytes.Equal(got, want) {
		t.Fatalf("concatUDH = %X, want %X", got, want)
	}
	tests := []struct {
		name    string
		in      string
		want    concat
		ok      bool
		text    string
		wantErr string
	}{
		{name: "8-bit reference", in: "050003AB0302 6869", want: concat{Ref: 0xAB, Total: 3, Seq: 2}, ok: true, text: "6869"},
		{name: "16-bit reference", in: "060804ABCD0201 6869", want: concat{Ref: 0xABCD, Total: 2, Seq: 1}, ok: true, text: "6869"},
		{name: "other element only", in: "03 0A01 FF 41", text: "41"},
		{name: "concat after other element", in: "08 0A01FF 000301 0201 41", want: concat{Ref: 1, Total: 2, Seq: 1}, ok: true, text: "41"},
		{name: "empty", in: "", wantErr: "short_message is empty"},
		{name: "header past end", in: "0A 0003", wantErr: "exceeds short_message length"},
		{name: "element past header", in: "03 0005 01 41", wantErr: "longer than the user data header"},
		{name: "truncated element", in: "01 00", wantErr: "truncated information element"},
		{name: "seq zero", in: "05 0003 01 02 00", wantErr: "part 0 of 2"},
		{name: "seq past total", in: "05 0003 01 02 03", wantErr: "part 3 of 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok, text, err := splitUDH(unhex(t, tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c != tt.want || ok != tt.ok || !bytes.Equal(text, unhex(t, tt.text)) {
				t.Fatalf("splitUDH = %+v %v %X, want %+v %v %s", c, ok, text, tt.want, tt.ok, tt.text)
			}
		})
	}
}
