package smpp

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Data coding values (SMPP 3.4 section 5.2.19).
const (
	codingDefault byte = 0x00 // SMSC default alphabet: GSM 03.38 here
	codingIA5     byte = 0x01
	codingBinary  byte = 0x02
	codingLatin1  byte = 0x03
	codingBinary8 byte = 0x04
	codingUCS2    byte = 0x08
)

// gsmEscape introduces a character of the GSM 03.38 extension table.
const gsmEscape = 0x1B

// gsmBasic is the GSM 03.38 default alphabet indexed by code; the escape
// code 0x1B holds a placeholder that is never matched.
var gsmBasic = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', -1, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsmExtension maps the code after an escape to its character.
var gsmExtension = map[byte]rune{
	0x0A: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2F: '\\',
	0x3C: '[', 0x3D: '~', 0x3E: ']', 0x40: '|', 0x65: '€',
}

var gsmEncode = func() map[rune][]byte {
	m := make(map[rune][]byte, 140)
	for code, r := range gsmBasic {
		if r >= 0 {
			m[r] = []byte{byte(code)}
		}
	}
	for code, r := range gsmExtension {
		m[r] = []byte{gsmEscape, code}
	}
	return m
}()

// encodeGSM7 encodes s in the GSM 03.38 default alphabet, unpacked (one
// septet per octet), with extension characters as escape + code.
func encodeGSM7(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i, r := range s {
		b, ok := gsmEncode[r]
		if !ok {
			return nil, fmt.Errorf("character %q at byte %d is not in the GSM 03.38 alphabet", r, i)
		}
		out = append(out, b...)
	}
	return out, nil
}

// decodeGSM7 decodes unpacked GSM 03.38 octets. An unknown extension code
// reads as its basic character, as 3GPP TS 23.038 asks; octets above 0x7F
// (not septets) read as U+FFFD.
func decodeGSM7(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c > 0x7F {
			sb.WriteRune(utf8.RuneError)
			continue
		}
		if c == gsmEscape {
			if i+1 >= len(b) {
				break // a trailing escape carries nothing
			}
			i++
			c = b[i]
			if r, ok := gsmExtension[c]; ok {
				sb.WriteRune(r)
				continue
			}
			if c > 0x7F || c == gsmEscape {
				sb.WriteRune(utf8.RuneError)
				continue
			}
		}
		sb.WriteRune(gsmBasic[c])
	}
	return sb.String()
}

// encodeUCS2 encodes s as UTF-16 big-endian (UCS-2 with surrogate pairs for
// characters outside the Basic Multilingual Plane, as handsets read it).
func encodeUCS2(s string) []byte {
	units := utf16.Encode([]rune(s))
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		out = append(out, byte(u>>8), byte(u))
	}
	return out
}

// decodeUCS2 decodes UTF-16 big-endian; a trailing odd octet is dropped and
// unpaired surrogates read as U+FFFD.
func decodeUCS2(b []byte) string {
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return string(utf16.Decode(units))
}

// decodeLatin1 decodes ISO-8859-1, where every octet is its code point.
func decodeLatin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// decodeText decodes a short message according to its data_coding. The SMSC
// default alphabet is taken to be GSM 03.38; the GSM data coding scheme
// groups (general uncompressed 0x10–0x1F, message waiting 0xC0–0xEF, and
// message class 0xF0–0xFF) are honoured; 8-bit binary and codings without a
// decoder here are read as Latin-1 so nothing is lost silently.
func decodeText(coding byte, b []byte) string {
	switch coding {
	case codingDefault:
		return decodeGSM7(b)
	case codingIA5, codingLatin1, codingBinary, codingBinary8:
		return decodeLatin1(b)
	case codingUCS2:
		return decodeUCS2(b)
	}
	switch {
	case coding&0xF0 == 0x10: // general data coding with a message class, uncompressed
		switch (coding >> 2) & 0x03 {
		case 0:
			return decodeGSM7(b)
		case 2:
			return decodeUCS2(b)
		}
	case coding&0xF0 == 0xC0, coding&0xF0 == 0xD0: // message waiting, default alphabet
		return decodeGSM7(b)
	case coding&0xF0 == 0xE0: // message waiting, UCS-2
		return decodeUCS2(b)
	case coding&0xF0 == 0xF0: // message class
		if coding&0x04 == 0 {
			return decodeGSM7(b)
		}
	}
	return decodeLatin1(b)
}
