package switchboard

import (
	"unicode/utf16"
)

// Encodings an SMS body can be sent in.
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// Segment limits, in septets (GSM-7) or UTF-16 code units (UCS-2).
const (
	GSM7Single = 160
	GSM7Part   = 153
	UCS2Single = 70
	UCS2Part   = 67
)

// gsm7Basic is the GSM 03.38 default alphabet (one septet each).
const gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsm7Extension holds the characters reached through the escape code; each
// costs two septets.
const gsm7Extension = "\f^{}\\[~]|€"

var gsm7Cost = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsm7Basic {
		m[r] = 1
	}
	for _, r := range gsm7Extension {
		m[r] = 2
	}
	return m
}()

// GSM7Septets returns the number of septets r costs in GSM-7: 1 for the basic
// alphabet, 2 for the extension table, 0 when r cannot be sent in GSM-7.
func GSM7Septets(r rune) int { return gsm7Cost[r] }

// IsGSM7 reports whether every character of s is in the GSM-7 alphabet or
// its extension table.
func IsGSM7(s string) bool {
	for _, r := range s {
		if gsm7Cost[r] == 0 {
			return false
		}
	}
	return true
}

// SegmentInfo describes how a body is split into SMS segments.
type SegmentInfo struct {
	Encoding string `json:"encoding"`
	// Segments is the number of SMS parts; an empty body is one.
	Segments int `json:"segments"`
	// Units is the length in septets (GSM-7) or UTF-16 code units (UCS-2).
	Units int `json:"units"`
	// PerSegment is the capacity of one part at this length: 160/153 or 70/67.
	PerSegment int `json:"per_segment"`
	// Remaining is how many units fit in the last part before another part
	// is needed.
	Remaining int `json:"remaining"`
}

// CountSegments returns the encoding and number of segments of body.
// GSM-7 is used when every character is in the GSM-7 alphabet; extension
// characters cost two septets and are never split between parts. Otherwise
// UCS-2 is counted in UTF-16 code units and a surrogate pair is never split.
func CountSegments(body string) SegmentInfo {
	parts := splitUnits(body)
	info := SegmentInfo{Segments: len(parts.sizes)}
	if parts.gsm {
		info.Encoding, info.PerSegment = EncodingGSM7, GSM7Single
	} else {
		info.Encoding, info.PerSegment = EncodingUCS2, UCS2Single
	}
	for _, n := range parts.sizes {
		info.Units += n
	}
	if info.Segments > 1 {
		if parts.gsm {
			info.PerSegment = GSM7Part
		} else {
			info.PerSegment = UCS2Part
		}
	}
	info.Remaining = info.PerSegment - parts.sizes[len(parts.sizes)-1]
	return info
}

// SplitSegments splits body into the texts of its SMS parts, on the same
// boundaries CountSegments counts, for providers that concatenate parts
// themselves (SMPP user data headers).
func SplitSegments(body string) (encoding string, parts []string) {
	p := splitUnits(body)
	encoding = EncodingUCS2
	if p.gsm {
		encoding = EncodingGSM7
	}
	runes := []rune(body)
	start := 0
	for _, n := range p.runes {
		parts = append(parts, string(runes[start:start+n]))
		start += n
	}
	return encoding, parts
}

type unitSplit struct {
	gsm   bool
	sizes []int // units per part
	runes []int // runes per part
}

func splitUnits(body string) unitSplit {
	gsm := IsGSM7(body)
	single, part := UCS2Single, UCS2Part
	if gsm {
		single, part = GSM7Single, GSM7Part
	}
	cost := func(r rune) int {
		if gsm {
			return gsm7Cost[r]
		}
		return utf16.RuneLen(r)
	}
	total := 0
	for _, r := range body {
		total += cost(r)
	}
	if total <= single {
		return unitSplit{gsm: gsm, sizes: []int{total}, runes: []int{len([]rune(body))}}
	}
	s := unitSplit{gsm: gsm}
	size, count := 0, 0
	for _, r := range body {
		c := cost(r)
		if size+c > part {
			s.sizes = append(s.sizes, size)
			s.runes = append(s.runes, count)
			size, count = 0, 0
		}
		size += c
		count++
	}
	s.sizes = append(s.sizes, size)
	s.runes = append(s.runes, count)
	return s
}
