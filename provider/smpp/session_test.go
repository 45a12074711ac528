package smpp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
)

// These tests drive the provider against a scripted SMSC on in-memory
// connections, to pin down behaviour a real SMSC cannot be made to show on
// demand: window limits, unanswered requests, redelivery after a failed
// sink. The interoperability tests against a real SMPP server are in
// peer_test.go.

// waitLimit only keeps a broken test from hanging; nothing waits for it.
const waitLimit = 15 * time.Second

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}

// scripted is the SMSC end: every dial hands it a new connection.
type scripted struct {
	t     *testing.T
	conns chan *smscConn
}

func newScripted(t *testing.T) *scripted {
	return &scripted{t: t, conns: make(chan *smscConn, 8)}
}

func (s *scripted) dial(ctx context.Context, addr string) (net.Conn, error) {
	client, server := net.Pipe()
	c := &smscConn{t: s.t, conn: server, pdus: make(chan pdu, 64)}
	go c.readLoop()
	s.t.Cleanup(func() { _ = server.Close() })
	s.conns <- c
	return client, nil
}

func (s *scripted) accept() *smscConn {
	s.t.Helper()
	return recv(s.t, s.conns, "a connection")
}

// smscConn is one connection as the SMSC sees it.
type smscConn struct {
	t    *testing.T
	conn net.Conn
	pdus chan pdu // closed when the provider closes the connection
	wmu  sync.Mutex
}

func (c *smscConn) readLoop() {
	defer close(c.pdus)
	for {
		p, err := readPDU(c.conn)
		if err != nil {
			return
		}
		c.pdus <- p
	}
}

// next returns the next PDU the provider sent.
func (c *smscConn) next(want uint32) pdu {
	c.t.Helper()
	p, ok := <-c.pdusOrTimeout()
	if !ok {
		c.t.Fatalf("connection closed while waiting for command 0x%08X", want)
	}
	if p.ID != want {
		c.t.Fatalf("got command 0x%08X, want 0x%08X", p.ID, want)
	}
	return p
}

func (c *smscConn) pdusOrTimeout() <-chan pdu {
	out := make(chan pdu, 1)
	go func() {
		select {
		case p, ok := <-c.pdus:
			if ok {
				out <- p
			} else {
				close(out)
			}
		case <-time.After(waitLimit):
			close(out)
		}
	}()
	return out
}

// closedByPeer waits until the provider closes the connection.
func (c *smscConn) closedByPeer() {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.pdus:
			if !ok {
				return
			}
		case <-time.After(waitLimit):
			c.t.Fatal("connection was not closed")
		}
	}
}

func (c *smscConn) send(p pdu) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, _ = c.conn.Write(p.marshal())
}

func (c *smscConn) answer(req pdu, status uint32, body []byte) {
	c.send(pdu{ID: req.ID | respBit, Status: status, Seq: req.Seq, Body: body})
}

// bind answers the bind_transceiver with ok.
func (c *smscConn) bind() bindBody {
	c.t.Helper()
	req := c.next(cmdBindTransceiver)
	b, err := parseBind(req.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.answer(req, statusOK, respBody{ID: "SMSC"}.marshal())
	return b
}

// testSink records deliveries; queued errors fail the next deliveries.
type testSink struct {
	events chan *sb.Events
	errs   chan error
}

func newTestSink() *testSink {
	return &testSink{events: make(chan *sb.Events, 16), errs: make(chan error, 16)}
}

func (s *testSink) Deliver(ctx context.Context, gw *sb.Gateway, ev *sb.Events) error {
	s.events <- ev
	select {
	case err := <-s.errs:
		return err
	default:
		return nil
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newScriptedProvider(t *testing.T, opts Options) (*Provider, *scripted) {
	s := newScripted(t)
	opts.Dial = s.dial
	if opts.EnquireLinkInterval == 0 {
		opts.EnquireLinkInterval = time.Hour
	}
	if opts.ResponseTimeout == 0 {
		opts.ResponseTimeout = time.Minute
	}
	opts.ReconnectMin, opts.ReconnectMax = time.Millisecond, 2*time.Millisecond
	opts.Logger = quietLogger()
	p := New(opts)
	t.Cleanup(func() { _ = p.Close() })
	return p, s
}

type sendResult struct {
	res *sb.SendResult
	err error
}

func goSend(ctx context.Context, p *Provider, gw *sb.Gateway, body string) <-chan sendResult {
	ch := make(chan sendResult, 1)
	go func() {
		res, err := p.Send(ctx, gw, &sb.OutboundMessage{To: "+447700900123", Body: body})
		ch <- sendResult{res, err}
	}()
	return ch
}

func TestWindowLimitsOutstandingRequests(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{WindowSize: 2})
	waiting := make(chan struct{}, 8)
	p.windowWait = func() { waiting <- struct{}{} }
	gw := testGateway("+15550001", nil)

	a := goSend(context.Background(), p, gw, "a")
	c := smsc.accept()
	c.bind()
	first := c.next(cmdSubmitSM)
	b := goSend(context.Background(), p, gw, "b")
	second := c.next(cmdSubmitSM)

	// The window is full: a third send waits for a slot and sends nothing.
	third := goSend(context.Background(), p, gw, "c")
	recv(t, waiting, "the third send to wait")
	if n := len(c.pdus); n != 0 {
		t.Fatalf("%d PDUs sent while the window was full", n)
	}

	// A send waiting for a slot gives up when its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := goSend(ctx, p, gw, "d")
	recv(t, waiting, "the fourth send to wait")
	cancel()
	r := recv(t, cancelled, "the cancelled send")
	var se *sb.SendError
	if !errors.As(r.err, &se) || se.Kind != sb.SendTransient || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled send: %v, want transient context.Canceled", r.err)
	}

	// Answering one frees one slot, and the waiting send goes out.
	c.answer(first, statusOK, respBody{ID: "id-a"}.marshal())
	thirdReq := c.next(cmdSubmitSM)
	c.answer(second, statusOK, respBody{ID: "id-b"}.marshal())
	c.answer(thirdReq, statusOK, respBody{ID: "id-c"}.marshal())
	for _, want := range []struct {
		ch <-chan sendResult
		id string
	}{{a, "id-a"}, {b, "id-b"}, {third, "id-c"}} {
		r := recv(t, want.ch, "a send")
		if r.err != nil || r.res.ProviderMessageID != want.id || r.res.Status != sb.StatusSent {
			t.Fatalf("send = %+v, %v; want %s", r.res, r.err, want.id)
		}
	}
}

func TestUnansweredEnquireLinkReconnects(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{EnquireLinkInterval: time.Millisecond, ResponseTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Listen(ctx, testGateway("+15550001", nil), newTestSink()) }()

	c1 := smsc.accept()
	c1.bind()
	c1.next(cmdEnquireLink) // never answered
	c1.closedByPeer()

	c2 := smsc.accept()
	c2.bind()
	// The new session's enquire_link is answered, and it asks again.
	c2.answer(c2.next(cmdEnquireLink), statusOK, nil)
	c2.next(cmdEnquireLink)

	cancel()
	if err := recv(t, done, "Listen to return"); err != nil {
		t.Fatalf("Listen = %v", err)
	}
}

func TestListenAnswersSMSCAndUnbindsOnCancel(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	gw := testGateway("+15550001", nil)
	go func() { done <- p.Listen(ctx, gw, newTestSink()) }()
	c := smsc.accept()
	if b := c.bind(); b.SystemID != "acct" || b.Password != "secret" || b.InterfaceVersion != 0x34 {
		t.Fatalf("bind = %+v", b)
	}

	// A second listener for the same gateway is refused.
	if err := p.Listen(ctx, gw, newTestSink()); sb.ErrorCode(err) != sb.EConflict {
		t.Fatalf("second Listen = %v, want conflict", err)
	}

	c.send(pdu{ID: cmdEnquireLink, Seq: 41})
	if r := c.next(cmdEnquireLink | respBit); r.Seq != 41 || r.Status != statusOK {
		t.Fatalf("enquire_link_resp = %+v", r)
	}
	c.send(pdu{ID: 0x00000999, Seq: 42})
	if r := c.next(cmdGenericNack); r.Seq != 42 || r.Status != statusInvCmdID {
		t.Fatalf("generic_nack = %+v", r)
	}

	cancel()
	u := c.next(cmdUnbind)
	c.answer(u, statusOK, nil)
	c.closedByPeer()
	if err := recv(t, done, "Listen to return"); err != nil {
		t.Fatalf("Listen = %v", err)
	}
}

func TestSMSCUnbindReconnects(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Listen(ctx, testGateway("+15550001", nil), newTestSink()) }()
	c1 := smsc.accept()
	c1.bind()
	c1.send(pdu{ID: cmdUnbind, Seq: 5})
	if r := c1.next(cmdUnbind | respBit); r.Seq != 5 {
		t.Fatalf("unbind_resp = %+v", r)
	}
	c1.closedByPeer()
	smsc.accept().bind()
}

func TestBindRefused(t *testing.T) {
	tests := []struct {
		status uint32
		kind   sb.SendErrorKind
	}{
		{statusInvPaswd, sb.SendAuth},
		{statusInvSysID, sb.SendAuth},
		{0x05, sb.SendTransient},
	}
	for _, tt := range tests {
		t.Run(statusCode(tt.status), func(t *testing.T) {
			p, smsc := newScriptedProvider(t, Options{})
			res := goSend(context.Background(), p, testGateway("+15550001", nil), "hi")
			c := smsc.accept()
			c.answer(c.next(cmdBindTransceiver), tt.status, nil)
			r := recv(t, res, "the send")
			var se *sb.SendError
			if !errors.As(r.err, &se) || se.Kind != tt.kind || se.Code != statusCode(tt.status) {
				t.Fatalf("send = %v, want %s with code %s", r.err, tt.kind, statusCode(tt.status))
			}
			if strings.Contains(r.err.Error(), "secret") {
				t.Fatalf("error reveals the password: %v", r.err)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	tests := []struct {
		name  string
		react func(c *smscConn, req pdu)
		kind  sb.SendErrorKind
		code  string
	}{
		{"invalid destination", func(c *smscConn, req pdu) { c.answer(req, statusInvDstAdr, nil) }, sb.SendInvalidNumber, "0x0000000B"},
		{"throttled", func(c *smscConn, req pdu) { c.answer(req, statusThrottled, nil) }, sb.SendThrottled, "0x00000058"},
		{"queue full", func(c *smscConn, req pdu) { c.answer(req, statusMsgQFul, nil) }, sb.SendThrottled, "0x00000014"},
		{"system error", func(c *smscConn, req pdu) { c.answer(req, statusSysErr, nil) }, sb.SendTransient, "0x00000008"},
		{"other refusal", func(c *smscConn, req pdu) { c.answer(req, 0x45, nil) }, sb.SendPermanent, "0x00000045"},
		{"generic_nack", func(c *smscConn, req pdu) {
			c.send(pdu{ID: cmdGenericNack, Status: 0x02, Seq: req.Seq})
		}, sb.SendPermanent, "0x00000002"},
		{"connection dropped", func(c *smscConn, req pdu) { _ = c.conn.Close() }, sb.SendTransient, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, smsc := newScriptedProvider(t, Options{})
			res := goSend(context.Background(), p, testGateway("+15550001", nil), "hi")
			c := smsc.accept()
			c.bind()
			tt.react(c, c.next(cmdSubmitSM))
			r := recv(t, res, "the send")
			var se *sb.SendError
			if !errors.As(r.err, &se) || se.Kind != tt.kind || se.Code != tt.code {
				t.Fatalf("send = %v, want %s code %q", r.err, tt.kind, tt.code)
			}
		})
	}
}

func TestSendUnansweredTimesOut(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{ResponseTimeout: 200 * time.Millisecond})
	res := goSend(context.Background(), p, testGateway("+15550001", nil), "hi")
	c := smsc.accept()
	c.bind()
	c.next(cmdSubmitSM) // never answered
	r := recv(t, res, "the send")
	var se *sb.SendError
	if !errors.As(r.err, &se) || se.Kind != sb.SendTransient || !errors.Is(r.err, errResponseTimeout) {
		t.Fatalf("send = %v, want transient timeout", r.err)
	}
	c.closedByPeer()
}

func TestConfigChangeRebinds(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{})
	gw := testGateway("+15550001", nil)
	res := goSend(context.Background(), p, gw, "one")
	c1 := smsc.accept()
	c1.bind()
	c1.answer(c1.next(cmdSubmitSM), statusOK, respBody{ID: "1"}.marshal())
	if r := recv(t, res, "first send"); r.err != nil {
		t.Fatal(r.err)
	}

	// Same settings: the bind is reused.
	res = goSend(context.Background(), p, gw, "two")
	c1.answer(c1.next(cmdSubmitSM), statusOK, respBody{ID: "2"}.marshal())
	if r := recv(t, res, "second send"); r.err != nil {
		t.Fatal(r.err)
	}

	// New password: the old bind is unbound, a new one made.
	gw2 := testGateway("+15550001", map[string]string{"password": "newpass"})
	res = goSend(context.Background(), p, gw2, "three")
	c1.answer(c1.next(cmdUnbind), statusOK, nil)
	c2 := smsc.accept()
	if b := c2.bind(); b.Password != "newpass" {
		t.Fatalf("rebind with password %q", b.Password)
	}
	c2.answer(c2.next(cmdSubmitSM), statusOK, respBody{ID: "3"}.marshal())
	if r := recv(t, res, "third send"); r.err != nil || r.res.ProviderMessageID != "3" {
		t.Fatalf("third send = %+v, %v", r.res, r.err)
	}
	c1.closedByPeer()
}

func TestSendRejectsBadInput(t *testing.T) {
	p, _ := newScriptedProvider(t, Options{})
	tests := []struct {
		name  string
		gw    *sb.Gateway
		to    string
		media []string
		kind  sb.SendErrorKind
	}{
		{"no recipient", testGateway("+1555", nil), "", nil, sb.SendInvalidNumber},
		{"recipient too long", testGateway("+1555", nil), "+" + strings.Repeat("1", 21), nil, sb.SendInvalidNumber},
		{"bad settings", testGateway("+1555", map[string]string{"password": "-"}), "+1555", nil, sb.SendAuth},
		{"media", testGateway("+1555", nil), "+1555", []string{"https://example.com/a.png"}, sb.SendPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Send(context.Background(), tt.gw, &sb.OutboundMessage{To: tt.to, Body: "x", MediaURLs: tt.media})
			var se *sb.SendError
			if !errors.As(err, &se) || se.Kind != tt.kind {
				t.Fatalf("send = %v, want %s", err, tt.kind)
			}
		})
	}
}

func TestInboundDelivery(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{})
	p.now = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	sink := newTestSink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw := testGateway("+15550001", nil)
	go func() { _ = p.Listen(ctx, gw, sink) }()
	c := smsc.accept()
	c.bind()

	deliver := func(seq uint32, sm smBody) pdu {
		c.send(pdu{ID: cmdDeliverSM, Seq: seq, Body: sm.marshal()})
		r := c.next(cmdDeliverSM | respBit)
		if r.Seq != seq {
			t.Fatalf("deliver_sm_resp for %d, want %d", r.Seq, seq)
		}
		return r
	}
	part := func(seq int, text string) smBody {
		return smBody{SourceTON: 1, SourceAddr: "447700900123", DestTON: 1, DestAddr: "15550001", ESMClass: esmUDHI, DataCoding: codingUCS2,
			ShortMessage: append(concatUDH(7, 2, seq), encodeUCS2(text)...)}
	}

	// A plain message; the sink fails once, so the first answer asks for
	// redelivery and the second acknowledges.
	msg := smBody{SourceTON: 1, SourceAddr: "447700900123", DestTON: 1, DestAddr: "15550001", ShortMessage: []byte{0x48, 0x69, 0x1B, 0x65}}
	sink.errs <- errors.New("store down")
	if r := deliver(1, msg); r.Status != statusTempAppError {
		t.Fatalf("status with failing sink = %s", statusCode(r.Status))
	}
	recv(t, sink.events, "the failed delivery")
	if r := deliver(2, msg); r.Status != statusOK {
		t.Fatalf("status = %s", statusCode(r.Status))
	}
	ev := recv(t, sink.events, "the delivery")
	want := sb.InboundMessage{From: "+447700900123", To: "+15550001", Body: "Hi€", ReceivedAt: p.now()}
	if len(ev.Incoming) != 1 || len(ev.Statuses) != 0 || !reflect.DeepEqual(ev.Incoming[0], want) {
		t.Fatalf("events = %+v, want %+v", ev, want)
	}

	// A two-part message, last part first; the sink fails on completion,
	// and redelivery of that part completes it again.
	if r := deliver(3, part(2, " world")); r.Status != statusOK {
		t.Fatalf("held part: status %s", statusCode(r.Status))
	}
	sink.errs <- errors.New("store down")
	if r := deliver(4, part(1, "héllo")); r.Status != statusTempAppError {
		t.Fatalf("completing part with failing sink: status %s", statusCode(r.Status))
	}
	recv(t, sink.events, "the failed delivery")
	if r := deliver(5, part(1, "héllo")); r.Status != statusOK {
		t.Fatalf("redelivered part: status %s", statusCode(r.Status))
	}
	ev = recv(t, sink.events, "the reassembled message")
	if len(ev.Incoming) != 1 || ev.Incoming[0].Body != "héllo world" {
		t.Fatalf("reassembled = %+v", ev.Incoming)
	}

	// A malformed deliver_sm is refused for good, not redelivered forever.
	c.send(pdu{ID: cmdDeliverSM, Seq: 6, Body: []byte{1, 2, 3}})
	if r := c.next(cmdDeliverSM | respBit); r.Status != statusPermAppError {
		t.Fatalf("malformed deliver_sm: status %s", statusCode(r.Status))
	}
	if n := len(sink.events); n != 0 {
		t.Fatalf("%d unexpected deliveries", n)
	}
}

func TestReceiptsOfLaterPartsAreNotReported(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{})
	sink := newTestSink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw := testGateway("+15550001", nil)
	go func() { _ = p.Listen(ctx, gw, sink) }()
	c := smsc.accept()
	c.bind()

	res := goSend(ctx, p, gw, strings.Repeat("x", 200)) // two parts
	c.answer(c.next(cmdSubmitSM), statusOK, respBody{ID: "first"}.marshal())
	c.answer(c.next(cmdSubmitSM), statusOK, respBody{ID: "second"}.marshal())
	if r := recv(t, res, "the send"); r.err != nil || r.res.ProviderMessageID != "first" {
		t.Fatalf("send = %+v, %v", r.res, r.err)
	}

	receipt := func(seq uint32, id string) {
		c.send(pdu{ID: cmdDeliverSM, Seq: seq, Body: smBody{ESMClass: esmTypeReceipt,
			ShortMessage: []byte("id:" + id + " sub:001 dlvrd:001 submit date:2501020304 done date:2501020305 stat:DELIVRD err:000 text:x")}.marshal()})
		if r := c.next(cmdDeliverSM | respBit); r.Status != statusOK {
			t.Fatalf("receipt %s: status %s", id, statusCode(r.Status))
		}
	}
	receipt(1, "second")
	receipt(2, "first")
	ev := recv(t, sink.events, "the receipt")
	want := sb.StatusUpdate{ProviderMessageID: "first", Status: sb.StatusDelivered, At: time.Date(2025, 1, 2, 3, 5, 0, 0, time.UTC)}
	if len(ev.Statuses) != 1 || ev.Statuses[0] != want {
		t.Fatalf("statuses = %+v, want %+v", ev.Statuses, want)
	}
	if n := len(sink.events); n != 0 {
		t.Fatalf("the second part's receipt was reported too")
	}
}

func TestDeliverWithoutListenerAsksForRedelivery(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{})
	res := goSend(context.Background(), p, testGateway("+15550001", nil), "hi")
	c := smsc.accept()
	c.bind()
	c.answer(c.next(cmdSubmitSM), statusOK, respBody{ID: "1"}.marshal())
	recv(t, res, "the send")
	c.send(pdu{ID: cmdDeliverSM, Seq: 9, Body: smBody{SourceAddr: "1", ShortMessage: []byte("x")}.marshal()})
	if r := c.next(cmdDeliverSM | respBit); r.Status != statusTempAppError {
		t.Fatalf("status = %s, want temporary error", statusCode(r.Status))
	}
}

func TestSessionReadStopsOnGarbage(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{})
	res := goSend(context.Background(), p, testGateway("+15550001", nil), "hi")
	c := smsc.accept()
	c.bind()
	c.next(cmdSubmitSM)
	_, _ = c.conn.Write([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1})
	r := recv(t, res, "the send")
	if !errors.Is(r.err, errMalformed) {
		t.Fatalf("send = %v, want the malformed PDU named", r.err)
	}
	c.closedByPeer()
}

// TestMultipartRetrySendsOnlyMissingParts: when a later part of a
// multipart message fails after others were accepted, the error carries
// the progress and says how many parts went out; the retry with that
// progress submits only the missing part, under the same concatenation
// reference, and the message keeps the first part's message_id.
func TestMultipartRetrySendsOnlyMissingParts(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{})
	gw := testGateway("+15550001", nil)
	body := strings.Repeat("Registration closes Friday at noon. ", 11) // 396 GSM-7 characters: 3 parts
	send := func(progress string) <-chan sendResult {
		ch := make(chan sendResult, 1)
		go func() {
			res, err := p.Send(context.Background(), gw, &sb.OutboundMessage{ID: "msg-1", To: "+447700900123", Body: body, Progress: progress})
			ch <- sendResult{res, err}
		}()
		return ch
	}
	part := func(req pdu) concat {
		t.Helper()
		sm, err := parseSM(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		c, ok, _, err := splitUDH(sm.ShortMessage)
		if err != nil || !ok {
			t.Fatalf("submit_sm without a concatenation header: %v", err)
		}
		return c
	}

	res := send("")
	c := smsc.accept()
	c.bind()
	var first [3]pdu
	for i := range first {
		first[i] = c.next(cmdSubmitSM)
	}
	ref := part(first[0]).Ref
	c.answer(first[0], statusOK, respBody{ID: "part-1"}.marshal())
	c.answer(first[1], statusSysErr, nil)
	c.answer(first[2], statusOK, respBody{ID: "part-3"}.marshal())
	r := recv(t, res, "the first attempt")
	var se *sb.SendError
	if !errors.As(r.err, &se) || !se.Retryable() || se.Progress == "" || !strings.Contains(se.Debug, "2 of 3 parts accepted by the SMSC; the others are sent on retry") {
		t.Fatalf("first attempt = %+v, %v; want a retryable error with the progress", r.res, r.err)
	}

	res = send(se.Progress)
	again := c.next(cmdSubmitSM)
	if got := part(again); got != (concat{Ref: ref, Total: 3, Seq: 2}) {
		t.Fatalf("retry submitted part %+v, want part 2 of 3 with reference %d", got, ref)
	}
	c.answer(again, statusOK, respBody{ID: "part-2"}.marshal())
	if r := recv(t, res, "the retry"); r.err != nil || r.res.ProviderMessageID != "part-1" {
		t.Fatalf("retry = %+v, %v; want the first part's id", r.res, r.err)
	}

	// Nothing else was submitted: the next submit_sm is the next message's.
	res = goSend(context.Background(), p, gw, "next")
	next := c.next(cmdSubmitSM)
	if sm, err := parseSM(next.Body); err != nil || string(sm.ShortMessage) != "next" {
		t.Fatalf("after the retry the SMSC got %+v (%v), want the next message", sm, err)
	}
	c.answer(next, statusOK, respBody{ID: "next-1"}.marshal())
	recv(t, res, "the next message")
}

// TestMultipartPermanentFailureSaysWhatWentOut: a part refused for good
// fails the message, and the Debug text tells that other parts went out.
func TestMultipartPermanentFailureSaysWhatWentOut(t *testing.T) {
	p, smsc := newScriptedProvider(t, Options{})
	res := goSend(context.Background(), p, testGateway("+15550001", nil), strings.Repeat("x", 200)) // two parts
	c := smsc.accept()
	c.bind()
	a, b := c.next(cmdSubmitSM), c.next(cmdSubmitSM)
	c.answer(a, statusOK, respBody{ID: "part-1"}.marshal())
	c.answer(b, 0x45, nil)
	r := recv(t, res, "the send")
	var se *sb.SendError
	if !errors.As(r.err, &se) || se.Retryable() || !strings.HasSuffix(se.Debug, "(1 of 2 parts accepted by the SMSC)") {
		t.Fatalf("send = %v, want a permanent error saying 1 of 2 parts went out", r.err)
	}
}

func TestParseProgress(t *testing.T) {
	good := progress{Ref: 7, Parts: []part{{OK: true, ID: "a"}, {}, {OK: true, ID: "c"}}}
	for _, tt := range []struct {
		name string
		in   string
		n    int
		ok   bool
	}{
		{"none", "", 3, false},
		{"fits", `{"ref":7,"parts":[{"ok":true,"id":"a"},{},{"ok":true,"id":"c"}]}`, 3, true},
		{"other part count", `{"ref":7,"parts":[{"ok":true,"id":"a"},{},{"ok":true,"id":"c"}]}`, 2, false},
		{"single part", `{"ref":7,"parts":[{"ok":true,"id":"a"}]}`, 1, false},
		{"not JSON", `ref=7`, 3, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseProgress(tt.in, tt.n)
			if ok != tt.ok || (ok && (got.Ref != good.Ref || !slices.Equal(got.Parts, good.Parts))) {
				t.Fatalf("parseProgress = %+v, %v", got, ok)
			}
		})
	}
}
