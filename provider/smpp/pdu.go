package smpp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Command ids (SMPP 3.4 section 5.1.2). A response id is the request id with
// the high bit set.
const (
	cmdGenericNack     uint32 = 0x80000000
	cmdBindTransceiver uint32 = 0x00000009
	cmdSubmitSM        uint32 = 0x00000004
	cmdDeliverSM       uint32 = 0x00000005
	cmdUnbind          uint32 = 0x00000006
	cmdEnquireLink     uint32 = 0x00000015
	cmdAlertNotify     uint32 = 0x00000102
	cmdDataSM          uint32 = 0x00000103
	respBit            uint32 = 0x80000000
)

// isResponse reports whether a command id names a response PDU.
func isResponse(id uint32) bool { return id&respBit != 0 }

// Optional parameter (TLV) tags used by Switchboard (section 5.3.2).
const (
	tagReceiptedMessageID uint16 = 0x001E
	tagSARMsgRefNum       uint16 = 0x020C
	tagSARTotalSegments   uint16 = 0x020E
	tagSARSegmentSeqnum   uint16 = 0x020F
	tagMessagePayload     uint16 = 0x0424
	tagMessageState       uint16 = 0x0427
)

// Field limits in octets, including the terminating NUL of C-Octet strings.
const (
	maxSystemID     = 16
	maxPassword     = 9
	maxSystemType   = 13
	maxAddressRange = 41
	maxServiceType  = 6
	maxAddr         = 21
	maxTime         = 17
	maxMessageID    = 65
	maxShortMessage = 254
)

const (
	headerLen = 16
	// maxPDULen bounds what is read from the wire: a short message is at most
	// 254 octets, and a message_payload TLV at most 64 KiB, so anything above
	// this is a broken or hostile peer.
	maxPDULen = 70 * 1024
	// interfaceVersion34 is sent in bind PDUs.
	interfaceVersion34 = 0x34
)

// errMalformed is wrapped by every decoding error.
var errMalformed = errors.New("malformed SMPP PDU")

// pdu is one SMPP protocol data unit: the header and the raw body. Typed
// bodies are marshalled into Body and parsed from it.
type pdu struct {
	ID     uint32
	Status uint32
	Seq    uint32
	Body   []byte
}

// marshal returns the PDU's wire form.
func (p pdu) marshal() []byte {
	b := make([]byte, headerLen, headerLen+len(p.Body))
	binary.BigEndian.PutUint32(b[0:], uint32(headerLen+len(p.Body)))
	binary.BigEndian.PutUint32(b[4:], p.ID)
	binary.BigEndian.PutUint32(b[8:], p.Status)
	binary.BigEndian.PutUint32(b[12:], p.Seq)
	return append(b, p.Body...)
}

// readPDU reads one PDU from r. The command_length is checked before any
// body is allocated, so a hostile length costs at most maxPDULen bytes.
func readPDU(r io.Reader) (pdu, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return pdu{}, err
	}
	n := binary.BigEndian.Uint32(h[0:])
	if n < headerLen || n > maxPDULen {
		return pdu{}, fmt.Errorf("%w: command_length %d is outside %d..%d", errMalformed, n, headerLen, maxPDULen)
	}
	p := pdu{
		ID:     binary.BigEndian.Uint32(h[4:]),
		Status: binary.BigEndian.Uint32(h[8:]),
		Seq:    binary.BigEndian.Uint32(h[12:]),
	}
	if n > headerLen {
		p.Body = make([]byte, n-headerLen)
		if _, err := io.ReadFull(r, p.Body); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return pdu{}, err
		}
	}
	return p, nil
}

// decodePDU parses one complete PDU held in b (exactly command_length bytes).
func decodePDU(b []byte) (pdu, error) {
	if len(b) < headerLen {
		return pdu{}, fmt.Errorf("%w: %d bytes is shorter than the header", errMalformed, len(b))
	}
	if n := binary.BigEndian.Uint32(b); int64(n) != int64(len(b)) {
		return pdu{}, fmt.Errorf("%w: command_length %d but %d bytes", errMalformed, n, len(b))
	}
	return readPDU(bytes.NewReader(b))
}

// encoder appends SMPP fields to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) u8(v byte) { e.b = append(e.b, v) }

func (e *encoder) cstring(s string) {
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
}

func (e *encoder) octets(v []byte) { e.b = append(e.b, v...) }

func (e *encoder) tlv(t tlv) {
	e.b = binary.BigEndian.AppendUint16(e.b, t.Tag)
	e.b = binary.BigEndian.AppendUint16(e.b, uint16(len(t.Value)))
	e.b = append(e.b, t.Value...)
}

// decoder reads SMPP fields from a body; the first error sticks and every
// later read returns zero values, so parsers check err once at the end.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errMalformed}, args...)...)
	}
}

func (d *decoder) u8(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("%s is missing", field)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

// cstring reads a NUL-terminated string of at most max octets (NUL included).
func (d *decoder) cstring(field string, max int) string {
	if d.err != nil {
		return ""
	}
	rest := d.b[d.off:]
	for i := 0; i < len(rest) && i < max; i++ {
		if rest[i] == 0 {
			d.off += i + 1
			return string(rest[:i])
		}
	}
	if len(rest) < max {
		d.fail("%s is not NUL-terminated", field)
	} else {
		d.fail("%s is longer than %d octets", field, max-1)
	}
	return ""
}

func (d *decoder) octets(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b)-d.off {
		d.fail("%s needs %d octets, %d left", field, n, len(d.b)-d.off)
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

// tlvs reads optional parameters up to the end of the body.
func (d *decoder) tlvs() []tlv {
	var out []tlv
	for d.err == nil && d.off < len(d.b) {
		if len(d.b)-d.off < 4 {
			d.fail("truncated optional parameter header")
			return out
		}
		tag := binary.BigEndian.Uint16(d.b[d.off:])
		n := int(binary.BigEndian.Uint16(d.b[d.off+2:]))
		d.off += 4
		v := d.octets(fmt.Sprintf("optional parameter 0x%04X", tag), n)
		if d.err != nil {
			return out
		}
		out = append(out, tlv{Tag: tag, Value: v})
	}
	return out
}

// tlv is one optional parameter.
type tlv struct {
	Tag   uint16
	Value []byte
}

// findTLV returns the value of the first parameter with the tag.
func findTLV(ts []tlv, tag uint16) ([]byte, bool) {
	for _, t := range ts {
		if t.Tag == tag {
			return t.Value, true
		}
	}
	return nil, false
}

// bindBody is the body of a bind_transceiver (section 4.1.5).
type bindBody struct {
	SystemID         string
	Password         string
	SystemType       string
	InterfaceVersion byte
	AddrTON          byte
	AddrNPI          byte
	AddressRange     string
}

func (b bindBody) marshal() []byte {
	var e encoder
	e.cstring(b.SystemID)
	e.cstring(b.Password)
	e.cstring(b.SystemType)
	e.u8(b.InterfaceVersion)
	e.u8(b.AddrTON)
	e.u8(b.AddrNPI)
	e.cstring(b.AddressRange)
	return e.b
}

func parseBind(body []byte) (bindBody, error) {
	d := decoder{b: body}
	b := bindBody{
		SystemID:         d.cstring("system_id", maxSystemID),
		Password:         d.cstring("password", maxPassword),
		SystemType:       d.cstring("system_type", maxSystemType),
		InterfaceVersion: d.u8("interface_version"),
		AddrTON:          d.u8("addr_ton"),
		AddrNPI:          d.u8("addr_npi"),
		AddressRange:     d.cstring("address_range", maxAddressRange),
	}
	return b, d.err
}

// respBody is the body of bind_*_resp, submit_sm_resp, deliver_sm_resp and
// data_sm_resp: one C-Octet string (system_id or message_id) and optional
// parameters. SMSCs leave the body out of error responses, so an empty body
// parses as an empty string.
type respBody struct {
	ID   string
	TLVs []tlv
}

func (r respBody) marshal() []byte {
	var e encoder
	e.cstring(r.ID)
	for _, t := range r.TLVs {
		e.tlv(t)
	}
	return e.b
}

func parseResp(body []byte) (respBody, error) {
	if len(body) == 0 {
		return respBody{}, nil
	}
	d := decoder{b: body}
	r := respBody{ID: d.cstring("message_id", maxMessageID)}
	r.TLVs = d.tlvs()
	return r, d.err
}

// smBody is the body shared by submit_sm and deliver_sm (sections 4.4.1 and
// 4.6.1); data_sm is parsed into it too, without the fields it lacks.
type smBody struct {
	ServiceType          string
	SourceTON            byte
	SourceNPI            byte
	SourceAddr           string
	DestTON              byte
	DestNPI              byte
	DestAddr             string
	ESMClass             byte
	ProtocolID           byte
	PriorityFlag         byte
	ScheduleDeliveryTime string
	ValidityPeriod       string
	RegisteredDelivery   byte
	ReplaceIfPresent     byte
	DataCoding           byte
	SMDefaultMsgID       byte
	ShortMessage         []byte
	TLVs                 []tlv
}

func (s smBody) marshal() []byte {
	var e encoder
	e.cstring(s.ServiceType)
	e.u8(s.SourceTON)
	e.u8(s.SourceNPI)
	e.cstring(s.SourceAddr)
	e.u8(s.DestTON)
	e.u8(s.DestNPI)
	e.cstring(s.DestAddr)
	e.u8(s.ESMClass)
	e.u8(s.ProtocolID)
	e.u8(s.PriorityFlag)
	e.cstring(s.ScheduleDeliveryTime)
	e.cstring(s.ValidityPeriod)
	e.u8(s.RegisteredDelivery)
	e.u8(s.ReplaceIfPresent)
	e.u8(s.DataCoding)
	e.u8(s.SMDefaultMsgID)
	e.u8(byte(len(s.ShortMessage)))
	e.octets(s.ShortMessage)
	for _, t := range s.TLVs {
		e.tlv(t)
	}
	return e.b
}

func parseSM(body []byte) (smBody, error) {
	d := decoder{b: body}
	s := smBody{
		ServiceType:          d.cstring("service_type", maxServiceType),
		SourceTON:            d.u8("source_addr_ton"),
		SourceNPI:            d.u8("source_addr_npi"),
		SourceAddr:           d.cstring("source_addr", maxAddr),
		DestTON:              d.u8("dest_addr_ton"),
		DestNPI:              d.u8("dest_addr_npi"),
		DestAddr:             d.cstring("destination_addr", maxAddr),
		ESMClass:             d.u8("esm_class"),
		ProtocolID:           d.u8("protocol_id"),
		PriorityFlag:         d.u8("priority_flag"),
		ScheduleDeliveryTime: d.cstring("schedule_delivery_time", maxTime),
		ValidityPeriod:       d.cstring("validity_period", maxTime),
		RegisteredDelivery:   d.u8("registered_delivery"),
		ReplaceIfPresent:     d.u8("replace_if_present_flag"),
		DataCoding:           d.u8("data_coding"),
		SMDefaultMsgID:       d.u8("sm_default_msg_id"),
	}
	n := d.u8("sm_length")
	if d.err == nil && n > maxShortMessage {
		d.fail("sm_length %d is over %d", n, maxShortMessage)
	}
	s.ShortMessage = d.octets("short_message", int(n))
	s.TLVs = d.tlvs()
	return s, d.err
}

// parseDataSM reads a data_sm body (section 4.7.1) into an smBody; its text
// travels in the message_payload parameter.
func parseDataSM(body []byte) (smBody, error) {
	d := decoder{b: body}
	s := smBody{
		ServiceType:        d.cstring("service_type", maxServiceType),
		SourceTON:          d.u8("source_addr_ton"),
		SourceNPI:          d.u8("source_addr_npi"),
		SourceAddr:         d.cstring("source_addr", maxAddr),
		DestTON:            d.u8("dest_addr_ton"),
		DestNPI:            d.u8("dest_addr_npi"),
		DestAddr:           d.cstring("destination_addr", maxAddr),
		ESMClass:           d.u8("esm_class"),
		RegisteredDelivery: d.u8("registered_delivery"),
		DataCoding:         d.u8("data_coding"),
	}
	s.TLVs = d.tlvs()
	return s, d.err
}

// parseBody parses the body of the PDU types Switchboard understands and
// returns it as bindBody, respBody or smBody; other types return nil.
func parseBody(p pdu) (any, error) {
	switch p.ID {
	case cmdBindTransceiver:
		return parseBind(p.Body)
	case cmdSubmitSM, cmdDeliverSM:
		return parseSM(p.Body)
	case cmdDataSM:
		return parseDataSM(p.Body)
	case cmdBindTransceiver | respBit, cmdSubmitSM | respBit, cmdDeliverSM | respBit, cmdDataSM | respBit:
		return parseResp(p.Body)
	}
	return nil, nil
}
