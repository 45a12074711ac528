package switchboard_test

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
)

func TestCountSegments(t *testing.T) {
	emoji := "😀" // one rune, two UTF-16 code units
	tests := []struct {
		name     string
		body     string
		encoding string
		segments int
		units    int
	}{
		{"empty", "", sb.EncodingGSM7, 1, 0},
		{"plain", "Hello", sb.EncodingGSM7, 1, 5},
		{"gsm 160", strings.Repeat("a", 160), sb.EncodingGSM7, 1, 160},
		{"gsm 161", strings.Repeat("a", 161), sb.EncodingGSM7, 2, 161},
		{"gsm 306", strings.Repeat("a", 306), sb.EncodingGSM7, 2, 306},
		{"gsm 307", strings.Repeat("a", 307), sb.EncodingGSM7, 3, 307},
		{"gsm basic accents", "àèéùìòÇØøÅåÆæßÉÄÖÑÜ§¿äöñü¡£¥", sb.EncodingGSM7, 1, 28},
		{"gsm greek", "ΔΦΓΛΩΠΨΣΘΞ", sb.EncodingGSM7, 1, 10},
		{"extension costs two", "€", sb.EncodingGSM7, 1, 2},
		{"extension all", "^{}\\[~]|€\f", sb.EncodingGSM7, 1, 20},
		{"80 extension = 160 septets", strings.Repeat("{", 80), sb.EncodingGSM7, 1, 160},
		{"extension pushes over", strings.Repeat("a", 159) + "{", sb.EncodingGSM7, 2, 161},
		// 152 septets then an escape pair: the pair would straddle 153, so it moves.
		{"extension never split", strings.Repeat("a", 152) + "[" + strings.Repeat("a", 10), sb.EncodingGSM7, 2, 164},
		{"extension split fills part", strings.Repeat("a", 152) + "[" + strings.Repeat("a", 152), sb.EncodingGSM7, 3, 306},
		{"ucs2 single", "Привет", sb.EncodingUCS2, 1, 6},
		{"ucs2 70", strings.Repeat("ж", 70), sb.EncodingUCS2, 1, 70},
		{"ucs2 71", strings.Repeat("ж", 71), sb.EncodingUCS2, 2, 71},
		{"ucs2 134", strings.Repeat("ж", 134), sb.EncodingUCS2, 2, 134},
		{"ucs2 135", strings.Repeat("ж", 135), sb.EncodingUCS2, 3, 135},
		{"one non-gsm char makes all ucs2", strings.Repeat("a", 69) + "ж", sb.EncodingUCS2, 1, 70},
		{"emoji counts two", emoji, sb.EncodingUCS2, 1, 2},
		{"35 emoji = 70 units", strings.Repeat(emoji, 35), sb.EncodingUCS2, 1, 70},
		{"36 emoji", strings.Repeat(emoji, 36), sb.EncodingUCS2, 2, 72},
		// 66 units then a pair: the pair would straddle 67, so it moves.
		{"surrogate never split", strings.Repeat("a", 66) + emoji + "aaaaa", sb.EncodingUCS2, 2, 73},
		{"curly quote is ucs2", "it’s", sb.EncodingUCS2, 1, 4},
		{"backtick is ucs2", "`", sb.EncodingUCS2, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sb.CountSegments(tt.body)
			if got.Encoding != tt.encoding || got.Segments != tt.segments || got.Units != tt.units {
				t.Fatalf("CountSegments = %+v, want %s %d segments %d units", got, tt.encoding, tt.segments, tt.units)
			}
		})
	}
}

func TestCountSegmentsRemaining(t *testing.T) {
	got := sb.CountSegments(strings.Repeat("a", 200))
	if got.PerSegment != 153 || got.Remaining != 153-47 {
		t.Fatalf("got %+v, want per segment 153, remaining 106", got)
	}
	got = sb.CountSegments("hi")
	if got.PerSegment != 160 || got.Remaining != 158 {
		t.Fatalf("got %+v", got)
	}
}

func TestSplitSegments(t *testing.T) {
	_, parts := sb.SplitSegments(strings.Repeat("a", 66) + "😀" + "aaaaa")
	if len(parts) != 2 || parts[0] != strings.Repeat("a", 66) || parts[1] != "😀aaaaa" {
		t.Fatalf("surrogate pair split: %q", parts)
	}
	body := strings.Repeat("a", 152) + "[" + strings.Repeat("b", 10)
	enc, parts := sb.SplitSegments(body)
	if enc != sb.EncodingGSM7 || len(parts) != 2 {
		t.Fatalf("got %s %d parts", enc, len(parts))
	}
	if parts[0] != strings.Repeat("a", 152) || parts[1] != "["+strings.Repeat("b", 10) {
		t.Fatalf("parts split the escape pair: %q", parts)
	}
}

// FuzzCountSegments checks the invariants of segment counting on any input:
// parts concatenate back to the body, no part exceeds its capacity, a
// surrogate pair or escape pair is never split, and the count agrees with
// the split.
func FuzzCountSegments(f *testing.F) {
	for _, s := range []string{"", "hello", "€€€", "😀😀", strings.Repeat("a", 161), strings.Repeat("ж", 71), "a\xffb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		info := sb.CountSegments(body)
		enc, parts := sb.SplitSegments(body)
		if enc != info.Encoding || len(parts) != info.Segments {
			t.Fatalf("split %s/%d disagrees with count %+v", enc, len(parts), info)
		}
		if strings.Join(parts, "") != strings.ToValidUTF8(body, "\uFFFD") && utf8.ValidString(body) {
			t.Fatalf("parts do not join back to the body")
		}
		limit := sb.UCS2Single
		if info.Encoding == sb.EncodingGSM7 {
			limit = sb.GSM7Single
		}
		if info.Segments > 1 {
			limit = sb.UCS2Part
			if info.Encoding == sb.EncodingGSM7 {
				limit = sb.GSM7Part
			}
		}
		total := 0
		for _, p := range parts {
			n := 0
			for _, r := range p {
				if info.Encoding == sb.EncodingGSM7 {
					c := sb.GSM7Septets(r)
					if c == 0 {
						t.Fatalf("GSM-7 part holds non-GSM rune %U", r)
					}
					n += c
				} else {
					n += len(utf16.Encode([]rune{r}))
				}
			}
			if n > limit {
				t.Fatalf("part of %d units exceeds %d", n, limit)
			}
			total += n
		}
		if total != info.Units {
			t.Fatalf("units %d, parts add up to %d", info.Units, total)
		}
		if info.Remaining < 0 || info.Remaining > info.PerSegment {
			t.Fatalf("remaining %d out of range", info.Remaining)
		}
	})
}
