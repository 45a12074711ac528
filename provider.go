package switchboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Provider is the adapter for one messaging partner: it sends messages,
// verifies and parses the partner's webhooks, and maps the partner's errors
// onto SendError. Implementations live in provider/<name>.
type Provider interface {
	// Name is the provider's key in gateway records ("twilio").
	Name() string
	// ConfigFields describes the gateway settings the provider needs.
	ConfigFields() []ConfigField
	// ValidateConfig checks a gateway's provider settings; the error names
	// the field at fault.
	ValidateConfig(gw *Gateway) error
	// Send hands one message to the partner. A failure is a *SendError that
	// says whether trying again can help.
	Send(ctx context.Context, gw *Gateway, m *OutboundMessage) (*SendResult, error)
	// HandleWebhook verifies (signature) and parses one request the partner
	// made to /webhooks/{provider}/{gatewayID}/{action}. A bad signature is an
	// EForbidden *Error, a malformed request an EInvalid one.
	HandleWebhook(ctx context.Context, gw *Gateway, req *WebhookRequest) (*Events, error)
}

// BatchSender is implemented by providers whose partner takes many
// messages in one request (the simulated carrier's batch endpoint, like the
// bulk APIs of Infobip or Sinch). The hub uses it on gateways without a rate
// limit whose MaxBatch is above 1; a paced gateway sends one message per
// slot through Send.
type BatchSender interface {
	// MaxBatch is the most messages one SendBatch call may carry for gw
	// (1: the gateway sends one message per request).
	MaxBatch(gw *Gateway) int
	// SendBatch hands ms to the partner in one request. It returns one
	// BatchResult per message, in order. A failure of the request as a
	// whole (unreachable, throttled, credentials refused) is returned as
	// err, a *SendError, with no results: it applies to every message.
	SendBatch(ctx context.Context, gw *Gateway, ms []*OutboundMessage) ([]BatchResult, error)
}

// BatchResult is the partner's answer for one message of a batch: Result
// when it was taken, otherwise Err (a *SendError).
type BatchResult struct {
	Result *SendResult
	Err    error
}

// WebhookRegistrar is implemented by providers that can point a number's
// incoming and status URLs at Switchboard themselves. RegisterWebhooks
// returns a *RegisterLater error when the registration cannot be made now
// but is certain to be made later without anyone's help.
type WebhookRegistrar interface {
	RegisterWebhooks(ctx context.Context, gw *Gateway, urls WebhookURLs) error
}

// RegisterLater is a webhook registration put off, with why and when it
// will be made (the simulated carrier built into "switchboard serve" learns
// every gateway when serve starts).
type RegisterLater struct{ Reason string }

func (e *RegisterLater) Error() string { return e.Reason }

// ContentChecker is implemented by providers that cannot send some messages
// that are otherwise valid (WhatsApp: one media attachment per message).
// The hub asks it when it accepts a send, so the sender gets a clear invalid
// error at once rather than a message that fails, or loses a part, later.
type ContentChecker interface {
	// CheckContent returns an EInvalid *Error naming the field at fault, or
	// nil. Only the content fields of m are set (Body, MediaURLs,
	// Template…).
	CheckContent(gw *Gateway, m *OutboundMessage) error
}

// WebhookRouter is implemented by providers whose partner calls one URL for
// several gateways (the WhatsApp Cloud API has one callback URL per Meta
// app, shared by all the app's phone numbers). A webhook handled for one
// gateway names, in Events.OtherGateways, the route keys of the other
// gateways it also carries events for; the hub finds those gateways (same
// org, same provider) and hands the request to each of them, so each
// checks the signature with its own secret and takes its own part.
type WebhookRouter interface {
	// RouteKey is the value that names gw in a shared webhook (WhatsApp:
	// its phone_number_id); "" when gw has none.
	RouteKey(gw *Gateway) string
}

// Listener is implemented by providers that hold a connection to the
// partner (SMPP) instead of receiving webhooks. Listen runs until ctx ends,
// reconnecting as needed, and hands every incoming message and receipt to
// sink; it acknowledges them to the partner only after sink returns nil.
type Listener interface {
	Listen(ctx context.Context, gw *Gateway, sink EventSink) error
}

// EventSink stores provider events durably.
type EventSink interface {
	Deliver(ctx context.Context, gw *Gateway, ev *Events) error
}

// ConfigField describes one provider setting of a gateway.
type ConfigField struct {
	Key      string `json:"key"`
	Label    string `json:"label"`
	Secret   bool   `json:"secret"`
	Required bool   `json:"required"`
	Help     string `json:"help,omitempty"`
}

// WebhookURLs are the absolute URLs a partner should call for a gateway.
type WebhookURLs struct {
	Incoming string `json:"incoming"`
	Status   string `json:"status"`
}

// OutboundMessage is what a provider needs to send one message.
type OutboundMessage struct {
	// ID is Switchboard's message id; providers that accept an idempotency
	// key or client reference send it, so a retried send is not delivered twice.
	ID        string
	From      string
	To        string
	Body      string
	MediaURLs []string
	// Template (WhatsApp) names an approved template; Body is then ignored.
	Template       string
	TemplateLang   string
	TemplateParams []string
	// StatusCallback is the absolute URL for status callbacks of this message.
	StatusCallback string
	Segments       SegmentInfo
	// LastInboundAt is when the recipient last texted this gateway (zero if
	// never); WhatsApp allows free-form messages only within 24 hours of it.
	LastInboundAt time.Time
	// Progress is the SendError.Progress of the last failed attempt to send
	// this message ("" for a first attempt).
	Progress string
}

// SendResult is the partner's answer to an accepted send.
type SendResult struct {
	ProviderMessageID string
	// Status is the status the partner reports at once (Queued or Sent).
	Status Status
}

// SendErrorKind classifies a failed send.
type SendErrorKind string

const (
	// SendTransient: network failure, timeout, 5xx; try again later.
	SendTransient SendErrorKind = "transient"
	// SendThrottled: the partner asks to slow down; try again after RetryAfter.
	SendThrottled SendErrorKind = "throttled"
	// SendAuth: the partner rejected the gateway's credentials; held and
	// retried so nothing is lost once an admin fixes them.
	SendAuth SendErrorKind = "auth"
	// SendPermanent: the partner refused this message; retrying cannot help.
	SendPermanent SendErrorKind = "permanent"
	// SendInvalidNumber: the recipient number is not valid for the partner.
	SendInvalidNumber SendErrorKind = "invalid_number"
	// SendOptedOut: the recipient has unsubscribed at the partner (Twilio
	// 21610); the subscription is marked Opt-Out.
	SendOptedOut SendErrorKind = "opted_out"
	// SendWindowClosed: WhatsApp's 24-hour window is closed; only templates.
	SendWindowClosed SendErrorKind = "window_closed"
)

// SendError is a failed send with the partner's code and a clear Debug text.
type SendError struct {
	Kind SendErrorKind
	// Code is the partner's error code ("21610", "130429", "0x00000058").
	Code string
	// Debug is the text written to the message's Debug field.
	Debug      string
	RetryAfter time.Duration
	// Progress, when set, records what the partner accepted of the message
	// before the failure (SMPP: the parts of a multipart message already
	// submitted). The hub keeps it with the message and hands it back in
	// OutboundMessage.Progress on the next attempt, so that nothing is sent
	// twice. It is opaque to the hub and holds no phone number or text.
	Progress string
	Err      error
}

func (e *SendError) Error() string {
	s := fmt.Sprintf("send %s", e.Kind)
	if e.Code != "" {
		s += " (code " + e.Code + ")"
	}
	if e.Debug != "" {
		s += ": " + e.Debug
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SendError) Unwrap() error { return e.Err }

// Retryable reports whether the same send may succeed later.
func (e *SendError) Retryable() bool {
	switch e.Kind {
	case SendTransient, SendThrottled, SendAuth:
		return true
	}
	return false
}

// WebhookRequest is one HTTP request from a partner, read and size-limited.
type WebhookRequest struct {
	Method string
	// URL is the full URL the partner called as the partner saw it (scheme,
	// public host, path and query), which signatures are computed over.
	URL *url.URL
	// Action is the last path segment: "incoming", "status", …
	Action string
	Header http.Header
	Body   []byte
	// Form holds the parsed body for form-encoded requests.
	Form url.Values
}

// Events is what a webhook (or a listener) delivers: incoming messages and
// status updates, and the reply the partner expects.
type Events struct {
	Incoming []InboundMessage
	Statuses []StatusUpdate
	// OtherGateways are the route keys (see WebhookRouter) of other
	// gateways this request also carries events for; they are not in
	// Incoming or Statuses.
	OtherGateways []string
	// Response is written back to the partner once the events are stored;
	// the zero value is 200 with an empty body.
	Response Response
}

// Response is an HTTP answer to a partner.
type Response struct {
	StatusCode  int
	ContentType string
	Body        []byte
}

// InboundMessage is a message a handset sent to a gateway.
type InboundMessage struct {
	ProviderMessageID string
	From              string
	To                string
	Body              string
	MediaURLs         []string
	ReceivedAt        time.Time
}

// StatusUpdate reports the fate of an outgoing message.
type StatusUpdate struct {
	// MessageID is Switchboard's id when the callback carries it (the status
	// callback URL names it); otherwise the message is found by
	// ProviderMessageID.
	MessageID         string
	ProviderMessageID string
	Status            Status
	ErrorCode         string
	Debug             string
	// OptedOut is set when the partner reports the recipient unsubscribed.
	OptedOut bool
	At       time.Time
}
