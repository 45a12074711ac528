package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

// zeros is an endless stream, standing in for a peer that keeps sending.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestReadPDUHostileLength checks that a hostile command_length is refused
// before anything is allocated or read for it.
func TestReadPDUHostileLength(t *testing.T) {
	for _, n := range []uint32{0, 15, maxPDULen + 1, 0x7FFFFFFF, 0xFFFFFFFF} {
		var h [16]byte
		binary.BigEndian.PutUint32(h[:], n)
		binary.BigEndian.PutUint32(h[4:], cmdDeliverSM)
		_, err := readPDU(io.MultiReader(bytes.NewReader(h[:]), zeros{}))
		if !errors.Is(err, errMalformed) {
			t.Errorf("length %d: err = %v, want malformed", n, err)
		}
	}
	// The error costs a few small allocations; the claimed body never is.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 100
	for range runs {
		var h [16]byte
		binary.BigEndian.PutUint32(h[:], 0xFFFFFFF0)
		_, _ = readPDU(bytes.NewReader(h[:]))
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 1024 {
		t.Errorf("refusing a hostile length allocated %d bytes", per)
	}
}

func FuzzDecodePDU(f *testing.F) {
	f.Add(pdu{ID: cmdBindTransceiver, Seq: 1, Body: bindBody{SystemID: "sys", Password: "pw", InterfaceVersion: 0x34}.marshal()}.marshal())
	f.Add(pdu{ID: cmdSubmitSM | respBit, Seq: 2, Body: respBody{ID: "abc"}.marshal()}.marshal())
	f.Add(pdu{ID: cmdDeliverSM, Seq: 3, Body: smBody{SourceTON: 1, SourceAddr: "1555", ESMClass: esmUDHI, DataCoding: 8,
		ShortMessage: append(concatUDH(1, 2, 1), encodeUCS2("hé")...)}.marshal()}.marshal())
	f.Add(pdu{ID: cmdDeliverSM, Seq: 4, Body: smBody{ESMClass: esmTypeReceipt, ShortMessage: []byte("id:1 stat:DELIVRD"),
		TLVs: []tlv{{Tag: tagReceiptedMessageID, Value: []byte("1\x00")}, {Tag: tagMessageState, Value: []byte{2}}}}.marshal()}.marshal())
	f.Add(pdu{ID: cmdDataSM, Seq: 5, Body: dataSMBody(smBody{SourceAddr: "1", TLVs: []tlv{{Tag: tagMessagePayload, Value: []byte("x")}}})}.marshal())
	f.Add(pdu{ID: cmdEnquireLink, Seq: 6}.marshal())
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			p, err := readPDU(r)
			if err != nil {
				return
			}
			if len(p.Body) > maxPDULen {
				t.Fatalf("body of %d bytes read", len(p.Body))
			}
			wire := p.marshal()
			if back, err := decodePDU(wire); err != nil || back.ID != p.ID || !bytes.Equal(back.Body, p.Body) {
				t.Fatalf("re-decode: %v", err)
			}
			body, err := parseBody(p)
			if err == nil {
				if sm, ok := body.(smBody); ok && p.ID != cmdDataSM {
					if got := sm.marshal(); !bytes.Equal(got, p.Body) {
						t.Fatalf("submit/deliver_sm does not round-trip:\n got %X\nwant %X", got, p.Body)
					}
				}
			} else if !errors.Is(err, errMalformed) {
				t.Fatalf("body error %v is not a malformed-PDU error", err)
			}
			if p.ID == cmdDeliverSM || p.ID == cmdDataSM {
				in, err := parseInbound(p.ID, p.Body)
				if err == nil {
					if (in.Receipt == nil) == (in.Message == nil) {
						t.Fatalf("inbound is neither or both: %+v", in)
					}
					if m := in.Message; m != nil {
						if s := decodeText(m.Coding, m.Text); !utf8.ValidString(s) {
							t.Fatalf("decoded text is not UTF-8: %q", s)
						}
					}
				}
			}
		}
	})
}

func FuzzParseReceipt(f *testing.F) {
	f.Add("id:0123456789 sub:001 dlvrd:001 submit date:2401021504 done date:2401021506 stat:DELIVRD err:000 text:Hello")
	f.Add("stat:UNDELIV id:x Text:")
	f.Add("id: stat:")
	f.Add("id:id:id: stat:stat:")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseReceipt(s)
		if err != nil {
			return
		}
		if r.ID == "" || r.Stat == "" {
			t.Fatalf("accepted receipt without id or stat: %+v", r)
		}
		if strings.ContainsAny(r.ID, " \t\r\n") || strings.ContainsAny(r.Stat, " \t\r\n") {
			t.Fatalf("id or stat holds white space: %+v", r)
		}
		if len(r.ID) > len(s) {
			t.Fatalf("id longer than input")
		}
	})
}

func FuzzSplitUDH(f *testing.F) {
	f.Add([]byte{5, 0, 3, 1, 2, 1, 'a'})
	f.Add([]byte{6, 8, 4, 1, 2, 2, 2, 'b'})
	f.Add([]byte{0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok, text, err := splitUDH(b)
		if err != nil {
			return
		}
		if len(text) >= len(b) {
			t.Fatalf("text %d octets from %d", len(text), len(b))
		}
		if ok && (c.Seq < 1 || c.Seq > c.Total) {
			t.Fatalf("accepted part %d of %d", c.Seq, c.Total)
		}
	})
}

func FuzzDecodeText(f *testing.F) {
	f.Add(byte(0), []byte{0x1B, 0x65, 0x00})
	f.Add(byte(8), []byte{0xD8, 0x3D})
	f.Add(byte(3), []byte{0xE9})
	f.Fuzz(func(t *testing.T, coding byte, b []byte) {
		s := decodeText(coding, b)
		if !utf8.ValidString(s) {
			t.Fatalf("decodeText(0x%02X) is not UTF-8", coding)
		}
		if coding == codingDefault {
			// What decodes from GSM-7 without replacement characters must
			// encode back to the same characters.
			if strings.ContainsRune(s, utf8.RuneError) {
				return
			}
			enc, err := encodeGSM7(s)
			if err != nil {
				t.Fatalf("decoded GSM-7 %q does not encode: %v", s, err)
			}
			if decodeGSM7(enc) != s {
				t.Fatalf("GSM-7 round trip changed %q", s)
			}
		}
	})
}
