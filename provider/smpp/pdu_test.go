package smpp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// TestPDUWireBytes pins the exact octets of the PDUs Switchboard sends,
// written out by hand from the SMPP 3.4 field tables.
func TestPDUWireBytes(t *testing.T) {
	tests := []struct {
		name string
		pdu  pdu
		want string
	}{
		{
			name: "bind_transceiver",
			pdu: pdu{ID: cmdBindTransceiver, Seq: 1, Body: bindBody{
				SystemID: "sys", Password: "pw", InterfaceVersion: interfaceVersion34,
			}.marshal()},
			want: "0000001C 00000009 00000000 00000001" +
				"73797300 707700 00 34 00 00 00",
		},
		{
			name: "submit_sm GSM-7",
			pdu: pdu{ID: cmdSubmitSM, Seq: 7, Body: smBody{
				SourceTON: 1, SourceNPI: 1, SourceAddr: "4412",
				DestTON: 1, DestNPI: 1, DestAddr: "3312",
				RegisteredDelivery: 1, DataCoding: codingDefault,
				ShortMessage: []byte("Hi"),
			}.marshal()},
			want: "0000002B 00000004 00000000 00000007" +
				"00" + // service_type
				"01 01 3434313200" + // source
				"01 01 3333313200" + // destination
				"00 00 00" + // esm_class, protocol_id, priority_flag
				"00 00" + // schedule_delivery_time, validity_period
				"01 00 00 00" + // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
				"02 4869", // sm_length, short_message
		},
		{
			name: "deliver_sm_resp",
			pdu:  pdu{ID: cmdDeliverSM | respBit, Seq: 0x7FFFFFFF, Body: []byte{0}},
			want: "00000011 80000005 00000000 7FFFFFFF 00",
		},
		{
			name: "enquire_link",
			pdu:  pdu{ID: cmdEnquireLink, Seq: 2},
			want: "00000010 00000015 00000000 00000002",
		},
		{
			name: "generic_nack",
			pdu:  pdu{ID: cmdGenericNack, Status: statusInvCmdID, Seq: 9},
			want: "00000010 80000000 00000003 00000009",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.pdu.marshal()
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("marshal:\n got %X\nwant %X", got, want)
			}
			back, err := decodePDU(got)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if back.ID != tt.pdu.ID || back.Status != tt.pdu.Status || back.Seq != tt.pdu.Seq || !bytes.Equal(back.Body, tt.pdu.Body) {
				t.Fatalf("decode = %+v, want %+v", back, tt.pdu)
			}
		})
	}
}

// TestBodyRoundTrip encodes and parses every body type in use.
func TestBodyRoundTrip(t *testing.T) {
	sm := smBody{
		ServiceType: "CMT", SourceTON: 5, SourceNPI: 0, SourceAddr: "Switchbrd",
		DestTON: 1, DestNPI: 1, DestAddr: "447700900123",
		ESMClass: esmUDHI, ProtocolID: 0, PriorityFlag: 1,
		ScheduleDeliveryTime: "", ValidityPeriod: "000001000000000R",
		RegisteredDelivery: 1, DataCoding: codingUCS2,
		ShortMessage: append(concatUDH(0x42, 3, 2), encodeUCS2("héllo")...),
		TLVs:         []tlv{{Tag: tagReceiptedMessageID, Value: []byte("abc\x00")}, {Tag: tagMessageState, Value: []byte{2}}},
	}
	tests := []struct {
		name string
		id   uint32
		body []byte
		want any
	}{
		{"bind_transceiver", cmdBindTransceiver, bindBody{SystemID: "acct", Password: "secret12", SystemType: "VMA", InterfaceVersion: 0x34, AddrTON: 1, AddrNPI: 1, AddressRange: "^44"}.marshal(),
			bindBody{SystemID: "acct", Password: "secret12", SystemType: "VMA", InterfaceVersion: 0x34, AddrTON: 1, AddrNPI: 1, AddressRange: "^44"}},
		{"bind_transceiver_resp", cmdBindTransceiver | respBit, respBody{ID: "SMSC"}.marshal(), respBody{ID: "SMSC"}},
		{"bind_transceiver_resp with TLV", cmdBindTransceiver | respBit, respBody{ID: "SMSC", TLVs: []tlv{{Tag: 0x0210, Value: []byte{0x34}}}}.marshal(),
			respBody{ID: "SMSC", TLVs: []tlv{{Tag: 0x0210, Value: []byte{0x34}}}}},
		{"submit_sm", cmdSubmitSM, sm.marshal(), sm},
		{"submit_sm_resp", cmdSubmitSM | respBit, respBody{ID: "0123456789abcdef"}.marshal(), respBody{ID: "0123456789abcdef"}},
		{"submit_sm_resp error without body", cmdSubmitSM | respBit, nil, respBody{}},
		{"deliver_sm", cmdDeliverSM, sm.marshal(), sm},
		{"deliver_sm_resp", cmdDeliverSM | respBit, []byte{0}, respBody{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBody(pdu{ID: tt.id, Body: tt.body})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parse = %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseDataSM(t *testing.T) {
	var e encoder
	e.cstring("")
	e.u8(1)
	e.u8(1)
	e.cstring("447700900123")
	e.u8(0)
	e.u8(0)
	e.cstring("Switchboard")
	e.u8(0)    // esm_class
	e.u8(0)    // registered_delivery
	e.u8(0x08) // data_coding
	e.tlv(tlv{Tag: tagMessagePayload, Value: encodeUCS2("ok")})
	got, err := parseDataSM(e.b)
	if err != nil {
		t.Fatal(err)
	}
	if got.SourceAddr != "447700900123" || got.DestAddr != "Switchboard" || got.DataCoding != 0x08 {
		t.Fatalf("parsed %+v", got)
	}
	if v, ok := findTLV(got.TLVs, tagMessagePayload); !ok || decodeUCS2(v) != "ok" {
		t.Fatalf("message_payload = %q, %v", v, ok)
	}
}

func TestDecodeErrors(t *testing.T) {
	okSM := smBody{SourceAddr: "1", DestAddr: "2", ShortMessage: []byte("abc")}.marshal()
	tests := []struct {
		name  string
		frame []byte
		body  bool // error expected from parseBody rather than decodePDU
		want  string
	}{
		{name: "short header", frame: unhex(t, "00000010 00000015"), want: "shorter than the header"},
		{name: "length below header", frame: unhex(t, "0000000F 00000015 00000000 00000001"), want: "command_length 15"},
		{name: "length mismatch", frame: unhex(t, "00000014 00000015 00000000 00000001"), want: "command_length 20 but 16 bytes"},
		{name: "length huge", frame: unhex(t, "FFFFFFFF 00000015 00000000 00000001"), want: "command_length 4294967295"},
		{name: "system_id not terminated", frame: pdu{ID: cmdBindTransceiver, Body: []byte("abc")}.marshal(), body: true, want: "system_id is not NUL-terminated"},
		{name: "system_id too long", frame: pdu{ID: cmdBindTransceiver, Body: []byte("0123456789abcdefXYZ\x00")}.marshal(), body: true, want: "system_id is longer than 15 octets"},
		{name: "bind missing fields", frame: pdu{ID: cmdBindTransceiver, Body: []byte("a\x00b\x00")}.marshal(), body: true, want: "system_type is not NUL-terminated"},
		{name: "sm_length past end", frame: pdu{ID: cmdSubmitSM, Body: okSM[:len(okSM)-1]}.marshal(), body: true, want: "short_message needs 3 octets, 2 left"},
		{name: "truncated TLV header", frame: pdu{ID: cmdDeliverSM, Body: append(append([]byte{}, okSM...), 0x04, 0x24, 0x00)}.marshal(), body: true, want: "truncated optional parameter header"},
		{name: "TLV longer than body", frame: pdu{ID: cmdDeliverSM, Body: append(append([]byte{}, okSM...), 0x04, 0x24, 0xFF, 0xFF, 1)}.marshal(), body: true, want: "optional parameter 0x0424 needs 65535 octets, 1 left"},
		{name: "message_id too long", frame: pdu{ID: cmdSubmitSM | respBit, Body: bytes.Repeat([]byte("a"), 70)}.marshal(), body: true, want: "message_id is longer than 64 octets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decodePDU(tt.frame)
			if tt.body {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				_, err = parseBody(p)
			}
			if err == nil || !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want malformed error containing %q", err, tt.want)
			}
		})
	}
}

func TestReadPDUStream(t *testing.T) {
	var stream []byte
	stream = append(stream, pdu{ID: cmdEnquireLink, Seq: 1}.marshal()...)
	stream = append(stream, pdu{ID: cmdSubmitSM | respBit, Seq: 2, Body: []byte("id1\x00")}.marshal()...)
	r := bytes.NewReader(stream)
	for _, want := range []pdu{{ID: cmdEnquireLink, Seq: 1}, {ID: cmdSubmitSM | respBit, Seq: 2, Body: []byte("id1\x00")}} {
		got, err := readPDU(r)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read %+v, want %+v", got, want)
		}
	}
	if _, err := readPDU(r); err != io.EOF {
		t.Fatalf("at end: err = %v, want EOF", err)
	}
	// A body cut short by the connection closing.
	cut := pdu{ID: cmdSubmitSM | respBit, Seq: 3, Body: []byte("id1\x00")}.marshal()
	if _, err := readPDU(bytes.NewReader(cut[:len(cut)-2])); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut body: err = %v, want unexpected EOF", err)
	}
}
