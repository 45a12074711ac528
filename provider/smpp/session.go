package smpp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Reasons a session ends.
var (
	errResponseTimeout = errors.New("SMSC did not answer in time")
	errUnbound         = errors.New("SMSC unbound the session")
	errClosed          = errors.New("session closed")
)

// inboundQueue is how many deliver_sm PDUs wait for the handler before new
// ones are answered "temporary error" so the SMSC redelivers them later.
const inboundQueue = 256

// session is one bound SMPP connection. Requests are numbered and matched
// to responses by sequence number; at most cap(window) requests are
// outstanding. A request unanswered within the response timeout ends the
// session, so the window can never be held by a lost response.
type session struct {
	conn    net.Conn
	timeout time.Duration
	log     *slog.Logger
	// handle answers one deliver_sm or data_sm with a command status.
	handle func(p pdu) uint32
	// windowWait, when set, is called when a request waits for a slot.
	windowWait func()

	window chan struct{}
	wmu    sync.Mutex // serialises writes

	mu      sync.Mutex
	seq     uint32
	pending map[uint32]*call

	inbound   chan pdu
	done      chan struct{}
	closeOnce sync.Once
	err       error // why the session ended; set before done is closed
}

// call is one request waiting for its response.
type call struct {
	resp  chan pdu
	timer *time.Timer
	// onResp, when set, runs in the reader as the response arrives, before
	// any later PDU is read.
	onResp func(pdu)
}

// sessionParams are the settings a session runs with.
type sessionParams struct {
	Timeout      time.Duration
	Window       int
	EnquireEvery time.Duration
	Logger       *slog.Logger
	Handle       func(p pdu) uint32
	WindowWait   func()
}

// dialSession connects to the SMSC, binds as a transceiver and starts the
// session's reader, inbound handler and keep-alive. ctx bounds the connect
// and the bind only; the session outlives it.
func dialSession(ctx context.Context, dial func(context.Context, string) (net.Conn, error), cfg config, sp sessionParams) (*session, error) {
	dctx, cancel := context.WithTimeout(ctx, sp.Timeout)
	conn, err := dial(dctx, cfg.addr())
	cancel()
	if err != nil {
		return nil, fmt.Errorf("connect to SMSC %s: %w", cfg.addr(), err)
	}
	s := &session{
		conn:       conn,
		timeout:    sp.Timeout,
		log:        sp.Logger,
		handle:     sp.Handle,
		windowWait: sp.WindowWait,
		window:     make(chan struct{}, sp.Window),
		pending:    map[uint32]*call{},
		inbound:    make(chan pdu, inboundQueue),
		done:       make(chan struct{}),
	}
	go s.readLoop()
	body := bindBody{
		SystemID:         cfg.SystemID,
		Password:         cfg.Password,
		SystemType:       cfg.SystemType,
		InterfaceVersion: interfaceVersion34,
	}.marshal()
	resp, err := s.request(ctx, cmdBindTransceiver, body, true)
	if err != nil {
		s.close(err)
		return nil, fmt.Errorf("bind to SMSC %s: %w", cfg.addr(), err)
	}
	if resp.ID != cmdBindTransceiver|respBit || resp.Status != statusOK {
		status := resp.Status
		if status == statusOK {
			status = statusBindFail // an answer of the wrong type with no error code
		}
		err := &bindError{Status: status}
		s.close(err)
		return nil, err
	}
	go s.inboundLoop()
	go s.keepAlive(sp.EnquireEvery)
	return s, nil
}

// closed reports whether the session has ended.
func (s *session) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// close ends the session with the reason err (the first reason wins).
func (s *session) close(err error) {
	s.closeOnce.Do(func() {
		s.err = err
		close(s.done)
		_ = s.conn.Close()
		s.mu.Lock()
		for seq, c := range s.pending {
			c.timer.Stop()
			delete(s.pending, seq)
		}
		s.mu.Unlock()
	})
}

// write sends one PDU, bounded by the response timeout.
func (s *session) write(p pdu) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.conn.Write(p.marshal()); err != nil {
		err = fmt.Errorf("write to SMSC: %w", err)
		s.close(err)
		return err
	}
	return nil
}

// start takes a window slot (waiting for one, bounded by ctx, when block is
// set; giving up at once otherwise), then sends the request. onResp, if not
// nil, sees the response before the reader goes on to the next PDU.
func (s *session) start(ctx context.Context, id uint32, body []byte, block bool, onResp func(pdu)) (*call, error) {
	select {
	case s.window <- struct{}{}:
	default:
		if !block {
			return nil, errWindowFull
		}
		if s.windowWait != nil {
			s.windowWait()
		}
		select {
		case s.window <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, s.err
		}
	}
	c := &call{resp: make(chan pdu, 1), onResp: onResp}
	s.mu.Lock()
	if s.closed() {
		s.mu.Unlock()
		return nil, s.err
	}
	s.seq++
	if s.seq > 0x7FFFFFFF {
		s.seq = 1
	}
	seq := s.seq
	c.timer = time.AfterFunc(s.timeout, func() { s.close(errResponseTimeout) })
	s.pending[seq] = c
	s.mu.Unlock()
	if err := s.write(pdu{ID: id, Seq: seq, Body: body}); err != nil {
		return nil, err
	}
	return c, nil
}

var errWindowFull = errors.New("window full")

// wait returns the response to c, or why there is none.
func (s *session) wait(ctx context.Context, c *call) (pdu, error) {
	select {
	case r := <-c.resp:
		return r, nil
	case <-s.done:
		// The response may have raced the close.
		select {
		case r := <-c.resp:
			return r, nil
		default:
		}
		return pdu{}, s.err
	case <-ctx.Done():
		return pdu{}, ctx.Err()
	}
}

// request sends a request and waits for its response.
func (s *session) request(ctx context.Context, id uint32, body []byte, block bool) (pdu, error) {
	c, err := s.start(ctx, id, body, block, nil)
	if err != nil {
		return pdu{}, err
	}
	return s.wait(ctx, c)
}

// resolve hands a response to the request waiting for it and frees its slot.
func (s *session) resolve(p pdu) {
	s.mu.Lock()
	c, ok := s.pending[p.Seq]
	if ok {
		delete(s.pending, p.Seq)
		c.timer.Stop()
	}
	s.mu.Unlock()
	if !ok {
		s.log.Debug("SMPP response without a request", "command_id", fmt.Sprintf("0x%08X", p.ID), "sequence", p.Seq)
		return
	}
	if c.onResp != nil {
		c.onResp(p)
	}
	c.resp <- p
	<-s.window
}

// respond answers a request from the SMSC.
func (s *session) respond(req pdu, status uint32, body []byte) {
	id := req.ID | respBit
	if status == statusInvCmdID {
		id = cmdGenericNack
	}
	_ = s.write(pdu{ID: id, Status: status, Seq: req.Seq, Body: body})
}

// readLoop reads PDUs until the connection fails.
func (s *session) readLoop() {
	r := bufio.NewReader(s.conn)
	for {
		p, err := readPDU(r)
		if err != nil {
			if !s.closed() {
				s.close(fmt.Errorf("read from SMSC: %w", err))
			}
			return
		}
		switch {
		case isResponse(p.ID):
			s.resolve(p)
		case p.ID == cmdEnquireLink:
			s.respond(p, statusOK, nil)
		case p.ID == cmdUnbind:
			s.respond(p, statusOK, nil)
			s.close(errUnbound)
			return
		case p.ID == cmdDeliverSM, p.ID == cmdDataSM:
			select {
			case s.inbound <- p:
			default:
				s.respond(p, statusTempAppError, []byte{0})
			}
		case p.ID == cmdAlertNotify:
			// alert_notification has no response; nothing to do.
		default:
			s.respond(p, statusInvCmdID, nil)
		}
	}
}

// inboundLoop answers deliver_sm and data_sm in arrival order, each only
// once the handler has decided (after the sink has stored it).
func (s *session) inboundLoop() {
	for {
		select {
		case p := <-s.inbound:
			status := s.handle(p)
			s.respond(p, status, []byte{0}) // message_id: unused, NULL
		case <-s.done:
			return
		}
	}
}

// keepAlive sends enquire_link every interval. When the window is full the
// tick is skipped: the outstanding requests' own timeouts watch the link.
func (s *session) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c, err := s.start(context.Background(), cmdEnquireLink, nil, false, nil)
			if errors.Is(err, errWindowFull) {
				continue
			}
			if err != nil {
				return
			}
			if _, err := s.wait(context.Background(), c); err != nil {
				return
			}
		case <-s.done:
			return
		}
	}
}

// unbind asks the SMSC to end the session and closes it once answered, or
// after the response timeout.
func (s *session) unbind() {
	if s.closed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	_, _ = s.request(ctx, cmdUnbind, nil, true)
	s.close(errClosed)
}
