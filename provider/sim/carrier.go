// Package sim is Switchboard's simulated carrier: a real HTTP messaging
// partner for local use and tests (Carrier) and the provider adapter that
// talks to it (Provider). The carrier accepts sends with message ids, posts
// signed status callbacks (sent, then delivered — or undelivered / failed for
// handsets configured so), and lets a simulated handset text a gateway.
package sim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SignatureHeader carries base64(HMAC-SHA256(secret, URL + body)) on every
// request the carrier makes.
const SignatureHeader = "X-Sim-Signature"

// Sign returns the signature of a request to url with body.
func Sign(secret, url string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(url))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Handset behaviours.
const (
	Deliver      = "deliver"      // sent, then delivered
	Undeliver    = "undelivered"  // sent, then undelivered (30003)
	Fail         = "fail"         // failed (30008)
	Reject       = "reject"       // the send is refused: invalid number (21211)
	Unsubscribed = "unsubscribed" // the send is refused: unsubscribed (21610)
)

// Handset is a simulated phone's configuration.
type Handset struct {
	Behaviour string `json:"behaviour"`
	// AutoReply, when set, is texted back to the gateway after each message
	// the handset receives.
	AutoReply string `json:"auto_reply,omitempty"`
}

// Received is a message a handset got.
type Received struct {
	ID   string    `json:"id"`
	From string    `json:"from"`
	Body string    `json:"body"`
	At   time.Time `json:"at"`
}

// Stats counts what the carrier did.
type Stats struct {
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`
	Rejected   int64 `json:"rejected"`
	// SendRequests counts the send requests taken (a batch is one).
	SendRequests int64 `json:"send_requests"`
	// CallbacksSent counts the events posted (status reports and incoming
	// messages), CallbackPosts the requests that carried them (fewer when
	// reports are batched).
	CallbacksSent   int64 `json:"callbacks_sent"`
	CallbackPosts   int64 `json:"callback_posts"`
	CallbackRetries int64 `json:"callback_retries"`
	CallbacksQueued int64 `json:"callbacks_queued"`
	Inbound         int64 `json:"inbound"`
	Throttled       int64 `json:"throttled"`
	// Failed counts sends answered with a simulated 5xx (Faults.FailNext).
	Failed int64 `json:"failed"`
	// TimedOut counts sends taken but answered late (Faults.TimeoutNext).
	TimedOut int64 `json:"timed_out"`
}

// Carrier is the simulated carrier's HTTP server side.
type Carrier struct {
	log    *slog.Logger
	client *http.Client
	// RetryFor is how long a failing callback is retried (default 1 hour).
	RetryFor time.Duration
	// KeepPerHandset bounds the messages remembered per handset, and
	// KeepHandsets the handsets remembered (the oldest are forgotten).
	KeepPerHandset int
	KeepHandsets   int
	// KeepArrivals bounds the send arrival times remembered per gateway
	// number (default 100,000).
	KeepArrivals int

	mu       sync.Mutex
	numbers  map[string]registration // gateway number → webhook
	handsets map[string]Handset
	inbox    map[string][]Received
	// inboxOrder lists the handsets in inbox, oldest first.
	inboxOrder []string
	byRef      map[string]string // account+client_ref → message id
	throttle   int               // answer the next sends with 429
	fail       int               // answer the next sends with failStatus
	failCode   int
	timeout    int // take the next sends but answer them after hold
	hold       time.Duration
	arrivals   map[string][]time.Time // gateway number → send arrival times

	// reportBatch is the most events one callback posts (see
	// SetReportBatch).
	reportBatch atomic.Int64
	// posting bounds the batched posts in flight.
	posting chan struct{}

	stats     Stats
	queue     chan callback
	wg        sync.WaitGroup
	quit      chan struct{}
	closeOnce sync.Once
	pending   atomic.Int64
	idle      chan struct{}
}

type registration struct {
	URL    string
	Secret string
}

type callback struct {
	url, secret string
	events      [][]byte
	first       time.Time
	attempt     int
}

// NewCarrier starts a carrier with workers posting callbacks.
func NewCarrier(log *slog.Logger) *Carrier {
	if log == nil {
		log = slog.Default()
	}
	c := &Carrier{
		log: log, RetryFor: time.Hour, KeepPerHandset: 50, KeepHandsets: 10_000, KeepArrivals: 100_000,
		client:  &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256, IdleConnTimeout: 90 * time.Second}},
		numbers: map[string]registration{}, handsets: map[string]Handset{}, inbox: map[string][]Received{},
		byRef: map[string]string{}, arrivals: map[string][]time.Time{},
		queue: make(chan callback, 1<<16), quit: make(chan struct{}), idle: make(chan struct{}, 1),
		posting: make(chan struct{}, 16),
	}
	for range 256 {
		c.wg.Add(1)
		go c.worker()
	}
	return c
}

// Close stops the callback workers; callbacks still queued are dropped.
func (c *Carrier) Close() {
	c.closeOnce.Do(func() { close(c.quit) })
	c.wg.Wait()
}

// SetHandset configures a simulated phone.
func (c *Carrier) SetHandset(number string, h Handset) error {
	switch h.Behaviour {
	case "":
		h.Behaviour = Deliver
	case Deliver, Undeliver, Fail, Reject, Unsubscribed:
	default:
		return fmt.Errorf("unknown handset behaviour %q (deliver, undelivered, fail, reject, unsubscribed)", h.Behaviour)
	}
	c.mu.Lock()
	c.handsets[number] = h
	c.mu.Unlock()
	return nil
}

// ThrottleNext answers the next n sends with 429 Too Many Requests.
func (c *Carrier) ThrottleNext(n int) {
	c.mu.Lock()
	c.throttle = n
	c.mu.Unlock()
}

// Faults are the send failures the carrier simulates. Each count is used
// up one send at a time, in this order: throttled, failed, then timed out.
type Faults struct {
	// ThrottleNext answers the next sends with 429 Too Many Requests and
	// Retry-After: 1 (as ThrottleNext does).
	ThrottleNext int `json:"throttle_next"`
	// FailNext answers the next sends with FailStatus, a 5xx (default 503),
	// without taking them.
	FailNext   int `json:"fail_next"`
	FailStatus int `json:"fail_status,omitempty"`
	// TimeoutNext takes the next sends — the handset gets the message and
	// the status callbacks are posted — but holds each answer for
	// TimeoutMillis (default 60,000) or until the client hangs up, so a
	// sender with a shorter timeout cannot know the message went out.
	TimeoutNext   int   `json:"timeout_next"`
	TimeoutMillis int64 `json:"timeout_ms,omitempty"`
}

// MaxTimeoutMillis bounds Faults.TimeoutMillis (10 minutes).
const MaxTimeoutMillis = 10 * 60 * 1000

// check validates f and fills its defaults.
func (f *Faults) check() error {
	if f.ThrottleNext < 0 || f.FailNext < 0 || f.TimeoutNext < 0 {
		return fmt.Errorf("throttle_next, fail_next and timeout_next must not be negative")
	}
	if f.FailStatus == 0 {
		f.FailStatus = http.StatusServiceUnavailable
	}
	if f.FailStatus < 500 || f.FailStatus > 599 {
		return fmt.Errorf("fail_status must be a 5xx status such as 500 or 503, not %d", f.FailStatus)
	}
	if f.TimeoutMillis == 0 {
		f.TimeoutMillis = 60_000
	}
	if f.TimeoutMillis < 0 || f.TimeoutMillis > MaxTimeoutMillis {
		return fmt.Errorf("timeout_ms must be between 1 and %d, not %d", MaxTimeoutMillis, f.TimeoutMillis)
	}
	return nil
}

// SetFaults replaces the simulated send failures; the zero Faults clears
// them.
func (c *Carrier) SetFaults(f Faults) error {
	if err := f.check(); err != nil {
		return err
	}
	c.mu.Lock()
	c.throttle, c.fail, c.failCode = f.ThrottleNext, f.FailNext, f.FailStatus
	c.timeout, c.hold = f.TimeoutNext, time.Duration(f.TimeoutMillis)*time.Millisecond
	c.mu.Unlock()
	return nil
}

// Faults returns the simulated send failures still to come.
func (c *Carrier) Faults() Faults {
	c.mu.Lock()
	defer c.mu.Unlock()
	status := c.failCode
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	hold := c.hold
	if hold == 0 {
		hold = time.Minute
	}
	return Faults{ThrottleNext: c.throttle, FailNext: c.fail, FailStatus: status, TimeoutNext: c.timeout, TimeoutMillis: hold.Milliseconds()}
}

// FailNext answers the next n sends with status, a 5xx such as 500 or 503
// (anything else means 503); n = 0 ends the failure.
func (c *Carrier) FailNext(n, status int) {
	if status < 500 || status > 599 {
		status = http.StatusServiceUnavailable
	}
	c.mu.Lock()
	c.fail, c.failCode = max(n, 0), status
	c.mu.Unlock()
}

// TimeoutNext takes the next n sends but answers each only after hold, or
// when the client hangs up (see Faults.TimeoutNext); n = 0 ends it.
func (c *Carrier) TimeoutNext(n int, hold time.Duration) {
	if hold <= 0 {
		hold = time.Minute
	}
	c.mu.Lock()
	c.timeout, c.hold = max(n, 0), hold
	c.mu.Unlock()
}

// Arrivals returns when each send request from a gateway number reached
// the carrier (whatever the answer), oldest first: what a partner's rate
// limit is measured on.
func (c *Carrier) Arrivals(number string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.arrivals[number]...)
}

// Stats returns the counters.
func (c *Carrier) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.CallbacksQueued = c.pending.Load()
	return s
}

// Inbox returns what a handset received, oldest first.
func (c *Carrier) Inbox(number string) []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.inbox[number]...)
}

// ServeHTTP routes the carrier's API:
//
//	POST /v1/accounts/{account}/messages   send (basic auth account:secret)
//	POST /v1/accounts/{account}/messages/batch
//	                                       send up to MaxSendBatch messages at once:
//	                                       {"messages": [...]} answered {"results": [...]},
//	                                       one id or error per message, in order
//	POST /v1/accounts/{account}/numbers    register a number's incoming URL
//	POST /v1/inbound                       a handset texts a number
//	PUT  /v1/handsets/{number}             configure a handset
//	GET  /v1/handsets/{number}/messages    what a handset received
//	GET  /v1/stats                         counters
//	PUT  /v1/throttle                      {"next": n}: answer the next n sends with 429
//	GET  /v1/faults                        the simulated send failures still to come
//	PUT  /v1/faults                        set them (a Faults object; {} clears them):
//	                                       {"fail_next": n, "fail_status": 503} answers the next
//	                                       n sends with a 5xx; {"timeout_next": n, "timeout_ms": t}
//	                                       takes the next n sends but answers after t ms (or when
//	                                       the client hangs up); {"throttle_next": n} answers 429
//	GET  /v1/numbers/{number}/arrivals     when each send from a gateway number arrived
//	                                       (RFC 3339 times, oldest first)
func (c *Carrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mux().ServeHTTP(w, r)
}

func (c *Carrier) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/accounts/{account}/messages", c.handleSend)
	m.HandleFunc("POST /v1/accounts/{account}/messages/batch", c.handleSendBatch)
	m.HandleFunc("POST /v1/accounts/{account}/numbers", c.handleRegister)
	m.HandleFunc("POST /v1/inbound", c.handleInbound)
	m.HandleFunc("PUT /v1/handsets/{number}", c.handleHandset)
	m.HandleFunc("GET /v1/handsets/{number}/messages", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Inbox(r.PathValue("number")))
	})
	m.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, c.Stats()) })
	m.HandleFunc("PUT /v1/throttle", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Next int `json:"next"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&req); err != nil || req.Next < 0 {
			writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: "want {\"next\": n}"})
			return
		}
		c.ThrottleNext(req.Next)
		writeJSON(w, http.StatusOK, req)
	})
	m.HandleFunc("GET /v1/faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, c.Faults()) })
	m.HandleFunc("PUT /v1/faults", c.handleFaults)
	m.HandleFunc("GET /v1/numbers/{number}/arrivals", func(w http.ResponseWriter, r *http.Request) {
		at := c.Arrivals(r.PathValue("number"))
		if at == nil {
			at = []time.Time{}
		}
		writeJSON(w, http.StatusOK, at)
	})
	return m
}

func (c *Carrier) handleFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: "want a JSON object with throttle_next, fail_next, fail_status, timeout_next, timeout_ms"})
		return
	}
	if err := c.SetFaults(f); err != nil {
		writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, c.Faults())
}

// SendRequest is the carrier's send API body.
type SendRequest struct {
	From           string   `json:"from"`
	To             string   `json:"to"`
	Body           string   `json:"body"`
	MediaURLs      []string `json:"media_urls,omitempty"`
	StatusCallback string   `json:"status_callback"`
	ClientRef      string   `json:"client_ref"`
}

// SendResponse is the carrier's answer to an accepted send.
type SendResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// APIError is the carrier's error body.
type APIError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// MaxSendBatch is the most messages one batch send request may carry.
const MaxSendBatch = 1000

// BatchSendRequest is the body of the batch send API: the messages are
// taken one by one, in order, each with its own answer.
type BatchSendRequest struct {
	Messages []SendRequest `json:"messages"`
}

// BatchSendResponse answers a batch send: one result per message, in the
// order sent.
type BatchSendResponse struct {
	Results []BatchSendResult `json:"results"`
}

// BatchSendResult is the answer for one message of a batch: its id and
// status when taken, otherwise the error it would have had alone.
type BatchSendResult struct {
	ID     string    `json:"id,omitempty"`
	Status string    `json:"status,omitempty"`
	Error  *APIError `json:"error,omitempty"`
}

// authorize checks the basic auth of a send request and returns the
// account's secret; it answers 401 itself when the check fails.
func authorize(w http.ResponseWriter, r *http.Request) (account, secret string, ok bool) {
	account = r.PathValue("account")
	user, secret, ok := r.BasicAuth()
	if !ok || user != account || secret == "" {
		writeJSON(w, http.StatusUnauthorized, APIError{Code: 20003, Message: "authentication required"})
		return "", "", false
	}
	return account, secret, true
}

// refuse answers a send request with the simulated throttling or failure
// due, if any, and records the arrival of its messages (from). A batch is
// throttled or failed as a whole, as one request.
func (c *Carrier) refuse(w http.ResponseWriter, from ...string) bool {
	c.mu.Lock()
	for _, f := range from {
		c.arrived(f)
	}
	if c.throttle > 0 {
		c.throttle--
		c.stats.Throttled++
		c.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, APIError{Code: 20429, Message: "too many requests"})
		return true
	}
	if c.fail > 0 {
		c.fail--
		c.stats.Failed++
		status := c.failCode
		c.mu.Unlock()
		writeJSON(w, status, APIError{Code: 20500, Message: "simulated carrier failure: " + http.StatusText(status)})
		return true
	}
	c.stats.SendRequests++
	c.mu.Unlock()
	return false
}

func (c *Carrier) handleSend(w http.ResponseWriter, r *http.Request) {
	account, secret, ok := authorize(w, r)
	if !ok {
		return
	}
	var req SendRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: "malformed JSON body"})
		return
	}
	if bad := badNumbers(req); bad != nil {
		writeJSON(w, http.StatusBadRequest, bad)
		return
	}
	if c.refuse(w, req.From) {
		return
	}
	res, status, hold := c.take(account, secret, req)
	c.wait(r.Context(), hold)
	if res.Error != nil {
		writeJSON(w, status, res.Error)
		return
	}
	writeJSON(w, status, SendResponse{ID: res.ID, Status: res.Status})
}

// handleSendBatch takes up to MaxSendBatch messages in one request. The
// request as a whole is refused only when it cannot be read (400), its
// credentials are wrong (401), or a simulated throttling or failure is due;
// otherwise every message gets its own answer, as if sent alone.
func (c *Carrier) handleSendBatch(w http.ResponseWriter, r *http.Request) {
	account, secret, ok := authorize(w, r)
	if !ok {
		return
	}
	var req BatchSendRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: "malformed JSON body: want {\"messages\": [...]}"})
		return
	}
	if n := len(req.Messages); n == 0 || n > MaxSendBatch {
		writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: fmt.Sprintf("a batch carries 1 to %d messages, not %d", MaxSendBatch, n)})
		return
	}
	from := make([]string, len(req.Messages))
	for i, m := range req.Messages {
		from[i] = m.From
	}
	if c.refuse(w, from...) {
		return
	}
	out := BatchSendResponse{Results: make([]BatchSendResult, len(req.Messages))}
	var hold time.Duration
	for i, m := range req.Messages {
		if bad := badNumbers(m); bad != nil {
			out.Results[i] = BatchSendResult{Error: bad}
			continue
		}
		var h time.Duration
		out.Results[i], _, h = c.take(account, secret, m)
		hold = max(hold, h)
	}
	c.wait(r.Context(), hold)
	writeJSON(w, http.StatusOK, out)
}

// badNumbers refuses a message without a sender or an international
// recipient number, as the carrier's 21211 error; nil when both are there.
func badNumbers(m SendRequest) *APIError {
	if m.To == "" || m.From == "" || !strings.HasPrefix(m.To, "+") {
		return &APIError{Code: 21211, Message: "invalid 'to' number"}
	}
	return nil
}

// take accepts one message: it answers with the message's id (the one
// already given when its client_ref was seen before) or the refusal its
// handset calls for, and queues its status reports and the handset's
// automatic reply. status is the HTTP status the answer has alone; hold is
// how long a simulated timeout holds it.
func (c *Carrier) take(account, secret string, req SendRequest) (res BatchSendResult, status int, hold time.Duration) {
	c.mu.Lock()
	hs := c.handsets[req.To]
	key := account + "\x00" + req.ClientRef
	if id, dup := c.byRef[key]; dup && req.ClientRef != "" {
		c.stats.Duplicates++
		hold := c.takeHold()
		c.mu.Unlock()
		return BatchSendResult{ID: id, Status: "queued"}, http.StatusOK, hold
	}
	switch hs.Behaviour {
	case Reject:
		c.stats.Rejected++
		c.mu.Unlock()
		return BatchSendResult{Error: &APIError{Code: 21211, Message: "invalid 'to' number"}}, http.StatusBadRequest, 0
	case Unsubscribed:
		c.stats.Rejected++
		c.mu.Unlock()
		return BatchSendResult{Error: &APIError{Code: 21610, Message: "recipient has unsubscribed"}}, http.StatusBadRequest, 0
	}
	id := "SM" + randomHex(16)
	if req.ClientRef != "" {
		c.byRef[key] = id
	}
	c.stats.Accepted++
	hold = c.takeHold()
	box, known := c.inbox[req.To]
	box = append(box, Received{ID: id, From: req.From, Body: req.Body, At: time.Now().UTC()})
	if len(box) > c.KeepPerHandset {
		box = box[len(box)-c.KeepPerHandset:]
	}
	if !known {
		c.inboxOrder = append(c.inboxOrder, req.To)
		if len(c.inboxOrder) > c.KeepHandsets {
			delete(c.inbox, c.inboxOrder[0])
			c.inboxOrder = c.inboxOrder[1:]
		}
	}
	c.inbox[req.To] = box
	reply := hs.AutoReply
	c.mu.Unlock()

	if req.StatusCallback != "" {
		var events [][]byte
		switch hs.Behaviour {
		case Undeliver:
			events = [][]byte{statusEvent(id, req.ClientRef, "sent", ""), statusEvent(id, req.ClientRef, "undelivered", "30003")}
		case Fail:
			events = [][]byte{statusEvent(id, req.ClientRef, "failed", "30008")}
		default:
			events = [][]byte{statusEvent(id, req.ClientRef, "sent", ""), statusEvent(id, req.ClientRef, "delivered", "")}
		}
		c.enqueue(callback{url: req.StatusCallback, secret: secret, events: events, first: time.Now()})
	}
	if reply != "" {
		c.mu.Lock()
		reg, ok := c.numbers[req.From]
		c.mu.Unlock()
		if ok {
			c.enqueue(callback{url: reg.URL, secret: reg.Secret, events: [][]byte{incomingEvent("SM"+randomHex(16), req.To, req.From, reply)}, first: time.Now()})
		}
	}
	return BatchSendResult{ID: id, Status: "queued"}, http.StatusCreated, hold
}

// arrived records a send request from a gateway number; c.mu is held.
func (c *Carrier) arrived(from string) {
	at := append(c.arrivals[from], time.Now())
	if keep := c.KeepArrivals; keep > 0 && len(at) > keep {
		at = at[len(at)-keep:]
	}
	c.arrivals[from] = at
}

// takeHold uses up one timed-out send, if any are due, and returns how
// long to hold its answer; c.mu is held.
func (c *Carrier) takeHold() time.Duration {
	if c.timeout == 0 {
		return 0
	}
	c.timeout--
	c.stats.TimedOut++
	if c.hold <= 0 {
		return time.Minute
	}
	return c.hold
}

// wait holds a send's answer for d, or until the client hangs up or the
// carrier closes.
func (c *Carrier) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-c.quit:
	}
}

// Event is a callback the carrier posts: a status report or an incoming
// message.
type Event struct {
	Type      string   `json:"type"` // "status" or "incoming"
	ID        string   `json:"id"`
	ClientRef string   `json:"client_ref,omitempty"`
	Status    string   `json:"status,omitempty"`
	ErrorCode string   `json:"error_code,omitempty"`
	From      string   `json:"from,omitempty"`
	To        string   `json:"to,omitempty"`
	Body      string   `json:"body,omitempty"`
	MediaURLs []string `json:"media_urls,omitempty"`
	At        string   `json:"at"`
}

func statusEvent(id, ref, status, code string) []byte {
	b, _ := json.Marshal(Event{Type: "status", ID: id, ClientRef: ref, Status: status, ErrorCode: code, At: time.Now().UTC().Format(time.RFC3339Nano)})
	return b
}

func incomingEvent(id, from, to, body string) []byte {
	b, _ := json.Marshal(Event{Type: "incoming", ID: id, From: from, To: to, Body: body, At: time.Now().UTC().Format(time.RFC3339Nano)})
	return b
}

// RegisterRequest points a number's incoming messages at a URL.
type RegisterRequest struct {
	Number      string `json:"number"`
	IncomingURL string `json:"incoming_url"`
}

func (c *Carrier) handleRegister(w http.ResponseWriter, r *http.Request) {
	account := r.PathValue("account")
	user, secret, ok := r.BasicAuth()
	if !ok || user != account || secret == "" {
		writeJSON(w, http.StatusUnauthorized, APIError{Code: 20003, Message: "authentication required"})
		return
	}
	var req RegisterRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.Number == "" || !strings.HasPrefix(req.IncomingURL, "http") {
		writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: "number and incoming_url are required"})
		return
	}
	c.mu.Lock()
	c.numbers[req.Number] = registration{URL: req.IncomingURL, Secret: secret}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, req)
}

// InboundRequest is a handset texting a number.
type InboundRequest struct {
	From      string   `json:"from"`
	To        string   `json:"to"`
	Body      string   `json:"body"`
	MediaURLs []string `json:"media_urls,omitempty"`
}

func (c *Carrier) handleInbound(w http.ResponseWriter, r *http.Request) {
	var req InboundRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.From == "" || req.To == "" {
		writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: "from, to and body are required"})
		return
	}
	c.mu.Lock()
	reg, ok := c.numbers[req.To]
	c.stats.Inbound++
	c.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, APIError{Code: 21606, Message: "no gateway is registered for that number"})
		return
	}
	id := "SM" + randomHex(16)
	ev, _ := json.Marshal(Event{Type: "incoming", ID: id, From: req.From, To: req.To, Body: req.Body, MediaURLs: req.MediaURLs, At: time.Now().UTC().Format(time.RFC3339Nano)})
	// Delivered at once so the caller learns whether the gateway took it;
	// on failure it is retried in the background like any callback.
	if err := c.post(r.Context(), reg.URL, reg.Secret, ev); err != nil {
		c.enqueue(callback{url: reg.URL, secret: reg.Secret, events: [][]byte{ev}, first: time.Now(), attempt: 1})
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "status": "queued", "delivery": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": "delivered"})
}

func (c *Carrier) handleHandset(w http.ResponseWriter, r *http.Request) {
	var h Handset
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&h); err != nil {
		writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: "malformed JSON body"})
		return
	}
	if err := c.SetHandset(r.PathValue("number"), h); err != nil {
		writeJSON(w, http.StatusBadRequest, APIError{Code: 21000, Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (c *Carrier) enqueue(cb callback) {
	c.pending.Add(1)
	select {
	case c.queue <- cb:
	case <-c.quit:
		c.pending.Add(-1)
	}
}

// Idle returns when no callback is queued or in flight, or ctx ends.
func (c *Carrier) Idle(ctx context.Context) error {
	for c.pending.Load() > 0 {
		select {
		case <-c.idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// SetReportBatch sets the most events one callback carries. With n of 1
// (the default) every event is posted alone, as a JSON object. With n above
// 1 the events waiting for the same callback URL are posted together, up to
// n at a time, as a JSON array in order — as partners that batch their
// delivery reports do. n is at most MaxReportBatch.
func (c *Carrier) SetReportBatch(n int) error {
	if n < 1 || n > MaxReportBatch {
		return fmt.Errorf("report batch must be between 1 and %d, not %d", MaxReportBatch, n)
	}
	c.reportBatch.Store(int64(n))
	return nil
}

func (c *Carrier) worker() {
	defer c.wg.Done()
	for {
		// Batching: few posts at a time, so that the reports made while
		// they are answered wait in the queue and go together in the next
		// post.
		batching := c.reportBatch.Load() > 1
		if batching {
			select {
			case c.posting <- struct{}{}:
			case <-c.quit:
				return
			}
		}
		select {
		case cb := <-c.queue:
			// Read again: batching may have been turned on while this
			// worker waited.
			if n := int(c.reportBatch.Load()); n > 1 {
				c.deliverBatch(cb, n)
			} else {
				c.deliver(cb, false)
			}
		case <-c.quit:
			return
		}
		if batching {
			<-c.posting
		}
	}
}

// deliverBatch posts cb together with the callbacks queued behind it (those
// already waiting; none is waited for), as few requests as the batch size
// allows: the events of the callbacks for one URL and secret go together,
// in order.
func (c *Carrier) deliverBatch(first callback, n int) {
	groups := []callback{first}
	count := len(first.events)
more:
	for count < n {
		select {
		case cb := <-c.queue:
			count += len(cb.events)
			c.pending.Add(-1) // counted again below, as part of its group
			merged := false
			for i := range groups {
				g := &groups[i]
				if g.url == cb.url && g.secret == cb.secret {
					g.events = append(g.events, cb.events...)
					merged = true
					break
				}
			}
			if !merged {
				c.pending.Add(1)
				groups = append(groups, cb)
			}
		default:
			break more
		}
	}
	for _, g := range groups {
		for len(g.events) > n {
			// A group over the batch size is cut; its parts go in order.
			part := g
			part.events = g.events[:n]
			c.pending.Add(1)
			c.deliver(part, true)
			g.events = g.events[n:]
		}
		c.deliver(g, true)
	}
}

// deliver posts a callback's events in order, each alone — or, asArray,
// all together as one JSON array; a failed post is retried with backoff (the
// rest wait behind it) until RetryFor has passed.
func (c *Carrier) deliver(cb callback, asArray bool) {
	for len(cb.events) > 0 {
		body, count := cb.events[0], 1
		if asArray {
			body, count = eventArray(cb.events), len(cb.events)
		}
		err := c.post(context.Background(), cb.url, cb.secret, body)
		if err == nil {
			c.mu.Lock()
			c.stats.CallbacksSent += int64(count)
			c.stats.CallbackPosts++
			c.mu.Unlock()
			cb.events = cb.events[count:]
			cb.attempt = 0
			continue
		}
		cb.attempt++
		if time.Since(cb.first) > c.RetryFor {
			c.log.Warn("sim: callback given up", "err", err)
			break
		}
		c.mu.Lock()
		c.stats.CallbackRetries++
		c.mu.Unlock()
		delay := min(time.Duration(1<<min(cb.attempt, 6))*100*time.Millisecond, 5*time.Second)
		select {
		case <-time.After(delay):
		case <-c.quit:
			return
		}
	}
	if c.pending.Add(-1) == 0 {
		select {
		case c.idle <- struct{}{}:
		default:
		}
	}
}

func (c *Carrier) post(ctx context.Context, url, secret string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(secret, url, body))
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// eventArray joins encoded events into one JSON array.
func eventArray(events [][]byte) []byte {
	size := 2 + len(events)
	for _, e := range events {
		size += len(e)
	}
	b := make([]byte, 0, size)
	b = append(b, '[')
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']')
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
