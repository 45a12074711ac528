package switchboard

import (
	"strings"
	"time"
)

// Direction of a message relative to the organisation.
type Direction string

const (
	Outgoing Direction = "outgoing"
	Incoming Direction = "incoming"
)

// Valid reports whether d is a known direction.
func (d Direction) Valid() bool { return d == Outgoing || d == Incoming }

// Status of a message. Outgoing messages move only forward:
// Queued → Sent → Delivered | Undelivered | Failed. Error is set before a
// message reaches a provider (for example "Previous Opt-out"); Received is the
// status of every incoming message.
type Status string

const (
	StatusQueued      Status = "Queued"
	StatusSent        Status = "Sent"
	StatusDelivered   Status = "Delivered"
	StatusUndelivered Status = "Undelivered"
	StatusFailed      Status = "Failed"
	StatusError       Status = "Error"
	StatusReceived    Status = "Received"
)

// Statuses lists every status in forward order.
var Statuses = []Status{StatusQueued, StatusSent, StatusDelivered, StatusUndelivered, StatusFailed, StatusError, StatusReceived}

// Rank orders statuses so that an update is applied only when it moves a
// message forward: a late "Sent" never overwrites "Delivered". Terminal
// statuses share the highest rank, so the first terminal status wins.
func (s Status) Rank() int {
	switch s {
	case StatusQueued:
		return 0
	case StatusSent:
		return 1
	case StatusDelivered, StatusUndelivered, StatusFailed, StatusError, StatusReceived:
		return 2
	}
	return -1
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s.Rank() >= 0 }

// Terminal reports whether no further status change can follow.
func (s Status) Terminal() bool { return s.Rank() == 2 }

// Advances reports whether moving from s to next is a forward move.
func (s Status) Advances(next Status) bool { return next.Rank() > s.Rank() }

// ParseStatus returns the status named by s (case-insensitive).
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if strings.EqualFold(string(st), s) {
			return st, nil
		}
	}
	return "", FieldError("status", "unknown status %q", s)
}

// Debug texts written on messages that never reach a provider.
const (
	DebugPreviousOptOut = "Previous Opt-out"
	DebugNoOptIn        = "No Opt-In"
	DebugGlobalOptOut   = "Global Opt-out"
)

// Message is one SMS or WhatsApp message as Switchboard's operational tables
// keep it. The recipient number and the body are not part of it: they are
// carried encrypted only until the message is processed (see Content).
type Message struct {
	ID                string    `json:"id"`
	OrgID             string    `json:"org_id"`
	GatewayID         string    `json:"gateway_id"`
	Direction         Direction `json:"direction"`
	Status            Status    `json:"status"`
	Debug             string    `json:"debug,omitempty"`
	Segments          int       `json:"segments"`
	ProviderMessageID string    `json:"provider_message_id,omitempty"`
	BatchID           string    `json:"batch_id,omitempty"`
	// RecordID is the CRM record (contact, lead, …) the message belongs to.
	RecordID string `json:"record_id,omitempty"`
	// CRMMessageID is the id of the message's own record in the CRM, once written.
	CRMMessageID string `json:"crm_message_id,omitempty"`
	OwnerID      string `json:"owner_id,omitempty"`
	CreatedByID  string `json:"created_by_id,omitempty"`
	// PhoneHash is the keyed hash of the other party's number.
	PhoneHash      []byte `json:"-"`
	IdempotencyKey string `json:"-"`
	// RequestHash is the keyed hash of the request made with the
	// idempotency key (see Hasher.Request).
	RequestHash []byte `json:"-"`
	ErrorCode   string `json:"error_code,omitempty"`
	// Source tells how an outgoing message was started: "api" (1:1), "bulk",
	// "automation" (including replies of content features, such as an SMS
	// form's next question), "system" (keyword confirmations and HELP
	// answers, the only messages sent to a number that may not be texted).
	Source string `json:"source,omitempty"`

	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	FailedAt    *time.Time `json:"failed_at,omitempty"`
	ReceivedAt  *time.Time `json:"received_at,omitempty"`
}

// Message sources.
const (
	SourceAPI        = "api"
	SourceBulk       = "bulk"
	SourceAutomation = "automation"
	SourceSystem     = "system"
)

// Content is the readable part of a message: the other party's number, the
// body and media. It is kept sealed (AES-GCM) and deleted once the message has
// been sent and written to the CRM.
type Content struct {
	Phone     string   `json:"p"`
	Body      string   `json:"b"`
	MediaURLs []string `json:"m,omitempty"`
	// Template names a provider template (WhatsApp) and its parameters.
	Template       string   `json:"t,omitempty"`
	TemplateLang   string   `json:"tl,omitempty"`
	TemplateParams []string `json:"tp,omitempty"`
}
