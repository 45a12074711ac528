package smpp

import (
	"encoding/binary"
	"fmt"
)

// esm_class bits (section 5.2.12).
const (
	esmUDHI         byte = 0x40 // short_message starts with a user data header
	esmTypeMask     byte = 0x3C // message type bits
	esmTypeReceipt  byte = 0x04 // SMSC delivery receipt
	esmTypeDefault  byte = 0x00 // a normal message
	iei8BitConcat   byte = 0x00 // concatenated message, 8-bit reference
	iei16BitConcat  byte = 0x08 // concatenated message, 16-bit reference
	concatUDHLength      = 6    // UDHL + IEI + IEDL + ref + total + seq
)

// concatUDH returns the six-octet user data header of part seq (1-based) of
// total parts sharing the 8-bit reference ref.
func concatUDH(ref byte, total, seq int) []byte {
	return []byte{concatUDHLength - 1, iei8BitConcat, 3, ref, byte(total), byte(seq)}
}

// concat identifies one part of a concatenated message.
type concat struct {
	Ref   uint16
	Total int
	Seq   int
}

// splitUDH separates the user data header from the text of a short message
// whose esm_class has the UDHI bit. It returns the concatenation information
// (ok false when the header has none) and the text after the header.
func splitUDH(sm []byte) (c concat, ok bool, text []byte, err error) {
	if len(sm) == 0 {
		return concat{}, false, nil, fmt.Errorf("%w: user data header indicated but short_message is empty", errMalformed)
	}
	udhl := int(sm[0])
	if 1+udhl > len(sm) {
		return concat{}, false, nil, fmt.Errorf("%w: user data header length %d exceeds short_message length %d", errMalformed, udhl, len(sm))
	}
	ies, text := sm[1:1+udhl], sm[1+udhl:]
	for len(ies) > 0 {
		if len(ies) < 2 {
			return concat{}, false, nil, fmt.Errorf("%w: truncated information element in user data header", errMalformed)
		}
		iei, n := ies[0], int(ies[1])
		if 2+n > len(ies) {
			return concat{}, false, nil, fmt.Errorf("%w: information element 0x%02X is longer than the user data header", errMalformed, iei)
		}
		data := ies[2 : 2+n]
		switch {
		case iei == iei8BitConcat && n == 3:
			c, ok = concat{Ref: uint16(data[0]), Total: int(data[1]), Seq: int(data[2])}, true
		case iei == iei16BitConcat && n == 4:
			c, ok = concat{Ref: binary.BigEndian.Uint16(data), Total: int(data[2]), Seq: int(data[3])}, true
		}
		ies = ies[2+n:]
	}
	if ok && (c.Total == 0 || c.Seq == 0 || c.Seq > c.Total) {
		return concat{}, false, nil, fmt.Errorf("%w: concatenation part %d of %d", errMalformed, c.Seq, c.Total)
	}
	return c, ok, text, nil
}
