// Package smpp connects Switchboard gateways to an SMSC over SMPP 3.4.
//
// One transceiver bind per gateway carries both directions: Send submits
// messages over it (binding on demand) and Listen keeps it up, reconnecting
// with backoff, and hands incoming messages and delivery receipts to the
// event sink, acknowledging each deliver_sm only after the sink stored it.
//
// The PDU codec is written here rather than taken from a library: the
// package needs exact control over when deliver_sm is acknowledged, over the
// request window, and over reconnects, and SMPP's few PDUs are small.
//
// Message ids: a message sent in several parts gets one message_id per
// part from the SMSC. The provider message id Switchboard keeps is the
// message_id of the FIRST part's submit_sm_resp, so a message's status
// follows its first part; receipts for the other parts are acknowledged and
// not reported (the ids of recent later parts are remembered per gateway).
// When a part fails after others were accepted, the send error carries the
// progress (see progress.go); the hub keeps it with the message and the
// retry submits only the missing parts, under the same concatenation
// reference.
package smpp

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboard/switchboard"
)

// Options tune the provider; zero values take the defaults.
type Options struct {
	// Dial opens the TCP connection to the SMSC (default net.Dialer).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// EnquireLinkInterval is how often the link is checked (default 30s).
	EnquireLinkInterval time.Duration
	// WindowSize is the most requests outstanding on one bind (default 10).
	WindowSize int
	// ResponseTimeout bounds the wait for every response (default 10s); a
	// request unanswered in time ends the session.
	ResponseTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between reconnects
	// (defaults 1s and 60s).
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// Logger receives connection events (default slog.Default()). Phone
	// numbers, message text and passwords are never logged.
	Logger *slog.Logger
}

// Provider is the SMPP adapter. It implements switchboard.Provider and
// switchboard.Listener and keeps one session per gateway.
type Provider struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	ref  atomic.Uint32 // concatenation reference counter

	// windowWait is a test hook called when a send waits for a window slot.
	windowWait func()

	mu  sync.Mutex
	gws map[string]*gwState
}

var (
	_ sb.Provider = (*Provider)(nil)
	_ sb.Listener = (*Provider)(nil)
)

// New returns an SMPP provider.
func New(opts Options) *Provider {
	if opts.Dial == nil {
		var d net.Dialer
		opts.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	if opts.EnquireLinkInterval <= 0 {
		opts.EnquireLinkInterval = 30 * time.Second
	}
	if opts.WindowSize <= 0 {
		opts.WindowSize = 10
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = 10 * time.Second
	}
	if opts.ReconnectMin <= 0 {
		opts.ReconnectMin = time.Second
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = 60 * time.Second
	}
	if opts.ReconnectMax < opts.ReconnectMin {
		opts.ReconnectMax = opts.ReconnectMin
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Provider{opts: opts, log: opts.Logger, now: time.Now, gws: map[string]*gwState{}}
	p.ref.Store(rand.Uint32())
	return p
}

// Name returns "smpp".
func (p *Provider) Name() string { return sb.ProviderSMPP }

// ConfigFields describes an SMPP gateway's settings: host, port, system_id,
// password (secret, at most 8 characters), system_type, and the TON/NPI of
// source and destination addresses.
func (p *Provider) ConfigFields() []sb.ConfigField { return configFields() }

// ValidateConfig checks the gateway's SMPP settings and sender.
func (p *Provider) ValidateConfig(gw *sb.Gateway) error {
	_, err := parseConfig(gw)
	return err
}

// HandleWebhook always fails: SMPP gateways have no webhooks.
func (p *Provider) HandleWebhook(ctx context.Context, gw *sb.Gateway, req *sb.WebhookRequest) (*sb.Events, error) {
	return nil, sb.Errorf(sb.ENotFound, "SMPP gateways receive messages over their SMPP bind, not webhooks")
}

// Send submits m over the gateway's bind, binding first if no session is
// up. A body longer than one SMS goes as several submit_sm sharing one
// concatenation reference. The returned ProviderMessageID is the SMSC's
// message_id for the first part. At most WindowSize requests are
// outstanding per bind; a send waits for a slot as long as ctx allows.
// Media URLs cannot travel over SMPP and are refused.
func (p *Provider) Send(ctx context.Context, gw *sb.Gateway, m *sb.OutboundMessage) (*sb.SendResult, error) {
	cfg, err := parseConfig(gw)
	if err != nil {
		return nil, sendError(err)
	}
	if len(m.MediaURLs) > 0 {
		return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "SMPP cannot send media; put links in the message body"}
	}
	dest := strings.TrimPrefix(strings.TrimSpace(m.To), "+")
	if err := checkCString("to", "recipient", dest, maxAddr, true); err != nil {
		return nil, &sb.SendError{Kind: sb.SendInvalidNumber, Debug: "SMPP: the recipient number is not a valid destination address", Err: err}
	}
	// A retry of a multipart message continues where the last attempt
	// stopped: same concatenation reference, only the parts not accepted.
	_, segs := sb.SplitSegments(m.Body)
	prog, resumed := parseProgress(m.Progress, len(segs))
	if !resumed {
		if m.Progress != "" {
			p.log.Warn("SMPP: the progress of an earlier attempt does not fit the message; sending every part", "gateway", gw.ID, "message", m.ID)
		}
		prog = progress{Ref: byte(p.ref.Add(1)), Parts: make([]part, len(segs))}
	}
	bodies, err := p.submitBodies(cfg, dest, m.Body, prog.Ref)
	if err != nil {
		return nil, err
	}
	if len(bodies) != len(prog.Parts) {
		return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "SMPP: the message's parts could not be counted"}
	}
	g := p.gateway(gw.ID)
	s, err := g.session(ctx, &cfg)
	if err != nil {
		return nil, prog.failed(sendError(err))
	}

	// Send every part before waiting, so the parts use the window together.
	// The ids of later parts are noted as their responses arrive, before
	// the reader can see the receipts the SMSC sends after them.
	notePart := func(r pdu) {
		if r.ID != cmdSubmitSM|respBit || r.Status != statusOK {
			return
		}
		if rb, err := parseResp(r.Body); err == nil && rb.ID != "" {
			g.partIDs.add(rb.ID)
		}
	}
	for i, pt := range prog.Parts {
		if i > 0 && pt.OK && pt.ID != "" {
			g.partIDs.add(pt.ID) // accepted by an earlier attempt
		}
	}
	type started struct {
		i int
		c *call
	}
	var (
		calls   []started
		failure *sb.SendError
	)
	for i, b := range bodies {
		if prog.Parts[i].OK {
			continue
		}
		var onResp func(pdu)
		if i > 0 {
			onResp = notePart
		}
		c, err := s.start(ctx, cmdSubmitSM, b.marshal(), true, onResp)
		if err != nil {
			failure = sendError(err)
			break
		}
		calls = append(calls, started{i, c})
	}
	// Every answer is awaited, so that the parts accepted are known even
	// when another part fails.
	for _, sc := range calls {
		resp, err := s.wait(ctx, sc.c)
		var fail *sb.SendError
		switch {
		case err != nil:
			fail = sendError(err)
		case resp.Status != statusOK || resp.ID != cmdSubmitSM|respBit:
			status := resp.Status
			if status == statusOK {
				status = statusSysErr // a generic_nack without a code
			}
			fail = submitError(status)
		default:
			r, err := parseResp(resp.Body)
			if err != nil {
				fail = &sb.SendError{Kind: sb.SendTransient, Debug: "SMPP: unreadable submit_sm_resp", Err: err}
				break
			}
			prog.Parts[sc.i] = part{OK: true, ID: r.ID}
		}
		if fail != nil && failure == nil {
			failure = fail
		}
	}
	if failure != nil {
		return nil, prog.failed(failure)
	}
	id := prog.Parts[0].ID
	p.log.Debug("SMPP message submitted", "gateway", gw.ID, "to", sb.MaskPhone(m.To), "parts", len(bodies), "resumed", resumed, "message_id", id)
	return &sb.SendResult{ProviderMessageID: id, Status: sb.StatusSent}, nil
}

// submitBodies builds the submit_sm of every part of body; a message of
// several parts carries the concatenation reference ref in each.
func (p *Provider) submitBodies(cfg config, dest, body string, ref byte) ([]smBody, error) {
	encoding, parts := sb.SplitSegments(body)
	if len(parts) > 255 {
		return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "SMPP: the message needs more than 255 parts"}
	}
	coding := codingDefault
	if encoding != sb.EncodingGSM7 {
		coding = codingUCS2
	}
	out := make([]smBody, 0, len(parts))
	for i, part := range parts {
		var ud []byte
		if coding == codingUCS2 {
			ud = encodeUCS2(part)
		} else {
			var err error
			if ud, err = encodeGSM7(part); err != nil {
				return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "SMPP: " + err.Error()}
			}
		}
		sm := smBody{
			SourceTON:          cfg.SourceTON,
			SourceNPI:          cfg.SourceNPI,
			SourceAddr:         cfg.Source,
			DestTON:            cfg.DestTON,
			DestNPI:            cfg.DestNPI,
			DestAddr:           dest,
			RegisteredDelivery: 1,
			DataCoding:         coding,
			ShortMessage:       ud,
		}
		if len(parts) > 1 {
			sm.ESMClass = esmUDHI
			sm.ShortMessage = append(concatUDH(ref, len(parts), i+1), ud...)
		}
		if len(sm.ShortMessage) > maxShortMessage {
			return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "SMPP: a message part is longer than 254 octets"}
		}
		out = append(out, sm)
	}
	return out, nil
}

// Listen keeps the gateway's bind up until ctx ends, handing incoming
// messages and delivery receipts to sink. After any failure (bind refused,
// connection lost, enquire_link unanswered) it reconnects with exponential
// backoff and jitter between ReconnectMin and ReconnectMax. When ctx ends it
// unbinds and returns nil. Only one Listen may run per gateway.
func (p *Provider) Listen(ctx context.Context, gw *sb.Gateway, sink sb.EventSink) error {
	cfg, err := parseConfig(gw)
	if err != nil {
		return err
	}
	if sink == nil {
		return sb.Errorf(sb.EInvalid, "SMPP listener needs an event sink")
	}
	g := p.gateway(gw.ID)
	if !g.setListener(&listener{ctx: ctx, gw: gw, sink: sink}) {
		return sb.Errorf(sb.EConflict, "gateway %s already has an SMPP listener", gw.ID)
	}
	defer func() {
		g.clearListener()
		g.closeSession()
	}()

	want := &cfg
	attempt := 0
	for {
		s, err := g.session(ctx, want)
		want = nil // reconnects use the newest settings the gateway was seen with
		if err == nil {
			attempt = 0
			p.log.Info("SMPP bound", "gateway", gw.ID)
			select {
			case <-ctx.Done():
				return nil
			case <-s.done:
				p.log.Warn("SMPP session ended", "gateway", gw.ID, "err", s.err)
			}
		} else {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("SMPP bind failed", "gateway", gw.ID, "err", err)
		}
		if !sleep(ctx, p.backoff(attempt)) {
			return nil
		}
		attempt++
	}
}

// Close unbinds every session. Listeners reconnect unless their context
// has ended first.
func (p *Provider) Close() error {
	p.mu.Lock()
	gws := make([]*gwState, 0, len(p.gws))
	for _, g := range p.gws {
		gws = append(gws, g)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.closeSession()
		}()
	}
	wg.Wait()
	return nil
}

// backoff returns the pause before reconnect attempt n (0-based): the
// ReconnectMin doubled n times, capped at ReconnectMax, with jitter taking
// up to half of it away but never going below ReconnectMin.
func (p *Provider) backoff(n int) time.Duration {
	lo, hi := p.opts.ReconnectMin, p.opts.ReconnectMax
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	j := d/2 + rand.N(d/2+1)
	return max(j, lo)
}

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// gateway returns the state kept for a gateway id.
func (p *Provider) gateway(id string) *gwState {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.gws[id]
	if !ok {
		g = &gwState{id: id, p: p}
		p.gws[id] = g
	}
	return g
}

// listener is a running Listen call.
type listener struct {
	ctx  context.Context
	gw   *sb.Gateway
	sink sb.EventSink
}

// gwState is the session manager's entry for one gateway: its settings, its
// session, the bind in progress, the listener, and inbound bookkeeping that
// outlives sessions.
type gwState struct {
	id string
	p  *Provider

	mu       sync.Mutex
	cfg      config
	gen      int // bumped on every settings change
	sess     *session
	binding  chan struct{} // closed when the bind in progress ends
	bindErr  error
	listener *listener

	parts   reassembler
	partIDs idSet
}

func (g *gwState) setListener(l *listener) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.listener != nil {
		return false
	}
	g.listener = l
	return true
}

func (g *gwState) clearListener() {
	g.mu.Lock()
	g.listener = nil
	g.mu.Unlock()
}

func (g *gwState) currentListener() *listener {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.listener
}

// closeSession unbinds the current session, if any.
func (g *gwState) closeSession() {
	g.mu.Lock()
	s := g.sess
	g.sess = nil
	g.mu.Unlock()
	if s != nil {
		s.unbind()
	}
}

// session returns the gateway's live session, binding one if needed. want,
// when not nil, is the settings the caller read from the gateway: if they
// differ from the session's, the old session is unbound and a new one bound.
// Concurrent callers share one bind attempt.
func (g *gwState) session(ctx context.Context, want *config) (*session, error) {
	for {
		g.mu.Lock()
		if want != nil && *want != g.cfg {
			g.cfg = *want
			g.gen++
			if old := g.sess; old != nil {
				g.sess = nil
				go old.unbind()
			}
		}
		if s := g.sess; s != nil && !s.closed() {
			g.mu.Unlock()
			return s, nil
		}
		if ch := g.binding; ch != nil {
			g.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			g.mu.Lock()
			s, err := g.sess, g.bindErr
			g.mu.Unlock()
			if s != nil && !s.closed() {
				return s, nil
			}
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			continue // the binder gave up on its own context; try ourselves
		}
		ch := make(chan struct{})
		g.binding, g.bindErr = ch, nil
		cfg, gen := g.cfg, g.gen
		g.mu.Unlock()

		s, err := dialSession(ctx, g.p.opts.Dial, cfg, sessionParams{
			Timeout:      g.p.opts.ResponseTimeout,
			Window:       g.p.opts.WindowSize,
			EnquireEvery: g.p.opts.EnquireLinkInterval,
			Logger:       g.p.log,
			WindowWait:   g.p.windowWait,
			Handle:       func(req pdu) uint32 { return g.p.handleInbound(g, req) },
		})

		g.mu.Lock()
		g.binding, g.bindErr = nil, err
		close(ch)
		stale := err == nil && gen != g.gen
		if err == nil && !stale {
			g.sess = s
		}
		g.mu.Unlock()
		if stale {
			go s.unbind() // settings changed while binding
			continue
		}
		return s, err
	}
}
