package smpp

import (
	"errors"
	"strings"
	"sync"
	"time"

	sb "github.com/switchboard/switchboard"
)

// Status answered to a deliver_sm that cannot be parsed: a permanent
// application error, so the SMSC does not redeliver it forever.
const statusPermAppError uint32 = 0x00000065

// inbound is what one deliver_sm (or data_sm) amounts to.
type inbound struct {
	// Receipt is set for delivery receipts.
	Receipt *receipt
	// Message is set for an incoming message, or one part of one.
	Message *incomingPart
}

// incomingPart is an incoming short message, possibly one part of a
// concatenated message.
type incomingPart struct {
	From, To string
	Coding   byte
	Text     []byte // user data without its header
	Concat   concat
	IsPart   bool
}

// parseInbound reads a deliver_sm or data_sm body.
func parseInbound(id uint32, body []byte) (inbound, error) {
	var sm smBody
	var err error
	if id == cmdDataSM {
		sm, err = parseDataSM(body)
	} else {
		sm, err = parseSM(body)
	}
	if err != nil {
		return inbound{}, err
	}
	ud := sm.ShortMessage
	if len(ud) == 0 {
		if v, ok := findTLV(sm.TLVs, tagMessagePayload); ok {
			ud = v
		}
	}
	// Every message type other than a normal message (SMSC delivery
	// receipt, SME acknowledgements, intermediate notifications) carries a
	// receipt, never text from a handset.
	if t := sm.ESMClass & esmTypeMask; t != esmTypeDefault {
		r, err := parseReceiptPDU(sm, ud)
		if err != nil {
			return inbound{}, err
		}
		return inbound{Receipt: &r}, nil
	}
	part := &incomingPart{
		From:   normalizeAddr(sm.SourceAddr, sm.SourceTON),
		To:     normalizeAddr(sm.DestAddr, sm.DestTON),
		Coding: sm.DataCoding,
		Text:   ud,
	}
	if sm.ESMClass&esmUDHI != 0 {
		c, ok, text, err := splitUDH(ud)
		if err != nil {
			return inbound{}, err
		}
		part.Text = text
		part.Concat, part.IsPart = c, ok && c.Total > 1
	} else if c, ok := sarConcat(sm.TLVs); ok {
		part.Concat, part.IsPart = c, c.Total > 1
	}
	return inbound{Message: part}, nil
}

// sarConcat reads the sar_* optional parameters of a concatenated message.
func sarConcat(ts []tlv) (concat, bool) {
	ref, ok1 := findTLV(ts, tagSARMsgRefNum)
	total, ok2 := findTLV(ts, tagSARTotalSegments)
	seq, ok3 := findTLV(ts, tagSARSegmentSeqnum)
	if !ok1 || !ok2 || !ok3 || len(ref) != 2 || len(total) != 1 || len(seq) != 1 {
		return concat{}, false
	}
	c := concat{Ref: uint16(ref[0])<<8 | uint16(ref[1]), Total: int(total[0]), Seq: int(seq[0])}
	if c.Total == 0 || c.Seq == 0 || c.Seq > c.Total {
		return concat{}, false
	}
	return c, true
}

// parseReceiptPDU reads a delivery receipt from its text, preferring the
// receipted_message_id and message_state parameters when present.
func parseReceiptPDU(sm smBody, ud []byte) (receipt, error) {
	var text string
	if sm.DataCoding == codingUCS2 {
		text = decodeUCS2(ud)
	} else {
		text = decodeLatin1(ud) // receipt texts are ASCII
	}
	r, err := parseReceipt(text)
	if v, ok := findTLV(sm.TLVs, tagReceiptedMessageID); ok {
		if id := strings.TrimRight(string(v), "\x00"); id != "" && validID(id) {
			r.ID = id
		}
	}
	if v, ok := findTLV(sm.TLVs, tagMessageState); ok && len(v) == 1 {
		if st, ok := messageStateStat[v[0]]; ok {
			r.Stat = st
		}
	}
	if r.ID != "" && r.Stat != "" {
		if !validID(r.ID) {
			return r, errors.New("delivery receipt id is not a valid SMPP message id")
		}
		return r, nil
	}
	if err == nil {
		err = errors.New("delivery receipt has no id or stat")
	}
	return r, err
}

// validID reports whether a message id is printable ASCII of SMPP length.
func validID(id string) bool {
	if len(id) >= maxMessageID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7E {
			return false
		}
	}
	return true
}

// normalizeAddr returns an address as Switchboard stores it: E.164 with "+"
// for international numbers, otherwise as sent.
func normalizeAddr(addr string, ton byte) string {
	addr = strings.TrimSpace(addr)
	if ton == tonInternational && isDigits(addr) {
		return "+" + addr
	}
	return addr
}

// Reassembly limits: parts of a concatenated message wait at most partTTL
// for their siblings, and at most maxPendingMessages messages wait at once
// per gateway (the oldest is dropped first).
const (
	partTTL            = time.Hour
	maxPendingMessages = 1000
)

// reassembler collects the parts of concatenated incoming messages.
type reassembler struct {
	mu      sync.Mutex
	pending map[partKey]*partial
}

type partKey struct {
	From, To string
	Ref      uint16
	Total    int
}

type partial struct {
	first  time.Time
	coding byte
	parts  map[int][]byte
}

// add stores a part and, when every part is there, returns the whole user
// data and its data coding. The parts stay stored until done is called, so
// a message whose delivery failed is completed again when the SMSC
// redelivers its last part.
func (r *reassembler) add(p *incomingPart, now time.Time) (text []byte, coding byte, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[partKey]*partial{}
	}
	for k, m := range r.pending {
		if now.Sub(m.first) > partTTL {
			delete(r.pending, k)
		}
	}
	key := partKey{From: p.From, To: p.To, Ref: p.Concat.Ref, Total: p.Concat.Total}
	m, ok := r.pending[key]
	if !ok {
		if len(r.pending) >= maxPendingMessages {
			r.dropOldest()
		}
		m = &partial{first: now, parts: map[int][]byte{}}
		r.pending[key] = m
	}
	m.parts[p.Concat.Seq] = append([]byte(nil), p.Text...)
	if p.Concat.Seq == 1 {
		m.coding = p.Coding
	} else if len(m.parts) == 1 {
		m.coding = p.Coding
	}
	if len(m.parts) < p.Concat.Total {
		return nil, 0, false
	}
	for i := 1; i <= p.Concat.Total; i++ {
		text = append(text, m.parts[i]...)
	}
	return text, m.coding, true
}

// done forgets a message once it has been delivered.
func (r *reassembler) done(p *incomingPart) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, partKey{From: p.From, To: p.To, Ref: p.Concat.Ref, Total: p.Concat.Total})
}

func (r *reassembler) dropOldest() {
	var oldest partKey
	var at time.Time
	for k, m := range r.pending {
		if at.IsZero() || m.first.Before(at) {
			oldest, at = k, m.first
		}
	}
	delete(r.pending, oldest)
}

// maxPartIDs bounds how many message ids of second and later parts are
// remembered per gateway.
const maxPartIDs = 50000

// idSet is a bounded set of message ids; the oldest is forgotten first.
type idSet struct {
	mu    sync.Mutex
	ids   map[string]struct{}
	order []string
	next  int
}

func (s *idSet) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]struct{}{}
	}
	if _, ok := s.ids[id]; ok {
		return
	}
	if len(s.order) < maxPartIDs {
		s.order = append(s.order, id)
	} else {
		delete(s.ids, s.order[s.next])
		s.order[s.next] = id
		s.next = (s.next + 1) % maxPartIDs
	}
	s.ids[id] = struct{}{}
}

func (s *idSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

// handleInbound answers one deliver_sm or data_sm for gateway g: receipts
// and complete messages go to the listener's sink, and the command status
// returned is ESME_ROK only once the sink has stored them.
func (p *Provider) handleInbound(g *gwState, req pdu) uint32 {
	in, err := parseInbound(req.ID, req.Body)
	if err != nil {
		p.log.Warn("SMPP deliver_sm could not be read", "gateway", g.id, "err", err)
		return statusPermAppError
	}
	l := g.currentListener()
	if l == nil {
		// Nobody stores events now (only Send holds the bind): ask the SMSC
		// to deliver again later, when Listen runs.
		return statusTempAppError
	}
	now := p.now()
	var ev sb.Events
	var whole *incomingPart
	switch {
	case in.Receipt != nil:
		r := *in.Receipt
		if g.partIDs.has(r.ID) {
			// A receipt for a second or later part: the message's status
			// follows its first part.
			return statusOK
		}
		u, ok := receiptUpdate(r, now)
		if !ok {
			p.log.Warn("SMPP delivery receipt with an unknown stat", "gateway", g.id, "stat", r.Stat)
			return statusOK
		}
		ev.Statuses = append(ev.Statuses, u)
	default:
		m := in.Message
		text, coding := m.Text, m.Coding
		if m.IsPart {
			var complete bool
			text, coding, complete = g.parts.add(m, now)
			if !complete {
				// The part is held in memory until its siblings arrive.
				return statusOK
			}
			whole = m
		}
		ev.Incoming = append(ev.Incoming, sb.InboundMessage{
			From:       m.From,
			To:         m.To,
			Body:       decodeText(coding, text),
			ReceivedAt: now,
		})
	}
	if err := l.sink.Deliver(l.ctx, l.gw, &ev); err != nil {
		p.log.Warn("SMPP event not stored; the SMSC will redeliver it", "gateway", g.id, "err", err)
		return statusTempAppError
	}
	if whole != nil {
		g.parts.done(whole)
	}
	return statusOK
}
