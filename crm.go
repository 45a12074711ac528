package switchboard

import (
	"context"
	"errors"
	"time"
)

// CRM is where client data lives: the built-in CRM (crm/builtin) or
// Salesforce (crm/salesforce). Every call takes the org it acts for.
type CRM interface {
	// WriteMessages creates message records (CRMMessageID empty) and updates
	// existing ones, as few calls as the CRM allows. Results are in the order
	// of msgs. A non-nil error means nothing is known to have been written
	// (for example the CRM is down or the authorization was revoked: a
	// *CRMError with Offline set).
	WriteMessages(ctx context.Context, org *Org, msgs []CRMMessage) ([]CRMResult, error)
	// GetRecords returns the records with the given ids; missing ids are left
	// out.
	GetRecords(ctx context.Context, org *Org, ids []string) ([]CRMRecord, error)
	// FindByPhone returns records (contacts, leads) whose phone is the E.164
	// number.
	FindByPhone(ctx context.Context, org *Org, phone string) ([]CRMRecord, error)
	// FindByPhones looks many E.164 numbers up at once, in as few calls as
	// the CRM allows, and returns each number's records (as FindByPhone
	// would) by number. Numbers without records, and numbers that are not
	// E.164, are left out.
	FindByPhones(ctx context.Context, org *Org, phones []string) (map[string][]CRMRecord, error)
	// FindContactsByEmail returns contacts with the email address.
	FindContactsByEmail(ctx context.Context, org *Org, email string) ([]CRMRecord, error)
	// FindByEmail returns the records of every record object that has an
	// email (contacts, leads, …) with the email address.
	FindByEmail(ctx context.Context, org *Org, email string) ([]CRMRecord, error)
	// LastOutgoingOwners returns, for each phone on a gateway, the owner (a
	// CRM user id) of the newest outgoing message record to the phone from
	// the gateway number; pairs the CRM has no such record of are left out.
	// It is how an incoming message finds its owner when Switchboard itself
	// has no earlier outgoing message (history from before Switchboard, or
	// past its retention).
	LastOutgoingOwners(ctx context.Context, org *Org, pairs []PhoneOnGateway) (map[PhoneOnGateway]string, error)
	// Conversation returns the newest limit message records of a CRM
	// record (recordID set) or else of an E.164 phone number, oldest first:
	// the thread of messages Switchboard wrote to the CRM. limit <= 0 means
	// MaxConversation. Errors of a CRM that cannot be reached are
	// *CRMError.
	Conversation(ctx context.Context, org *Org, recordID, phone string, limit int) ([]CRMMessageRecord, error)
	// SaveContactAndTask creates (ID empty) or updates the contact, then
	// creates the task for it (the task's WhoID is set to the contact). A CRM
	// that can, does both in one request.
	SaveContactAndTask(ctx context.Context, org *Org, c *CRMRecord, t *CRMTask) (contactID, taskID string, err error)
}

// PhoneOnGateway is a phone number on a gateway number (both E.164).
type PhoneOnGateway struct {
	GatewayNumber string
	Phone         string
}

// CRMMessage is one message as written to the CRM.
type CRMMessage struct {
	MessageID         string    `json:"message_id"`
	CRMMessageID      string    `json:"crm_message_id,omitempty"`
	Direction         Direction `json:"direction"`
	Status            Status    `json:"status"`
	Debug             string    `json:"debug,omitempty"`
	Segments          int       `json:"segments"`
	ProviderMessageID string    `json:"provider_message_id,omitempty"`
	BatchID           string    `json:"batch_id,omitempty"`
	GatewayID         string    `json:"gateway_id"`
	GatewayNumber     string    `json:"gateway_number"`
	RecordID          string    `json:"record_id,omitempty"`
	OwnerID           string    `json:"owner_id,omitempty"`
	CreatedByID       string    `json:"created_by_id,omitempty"`
	// Phone and Body are set when the record is created, never on updates.
	Phone     string    `json:"phone,omitempty"`
	Body      string    `json:"body,omitempty"`
	MediaURLs []string  `json:"media_urls,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	StatusAt  time.Time `json:"status_at"`
}

// CRMMessageReader is implemented by CRMs that keep message records apart
// from Switchboard's store (Salesforce): it reads message records back by
// Switchboard message id, in as few calls as the CRM allows. Ids the CRM
// has no record of are left out.
type CRMMessageReader interface {
	MessagesByID(ctx context.Context, org *Org, messageIDs []string) (map[string]CRMMessageRecord, error)
}

// MaxConversation is the most message records CRM.Conversation returns.
const MaxConversation = 200

// CRMMessageRecord is a message record read back from the CRM: the message
// as written, with the record's id (also in CRMMessageID) and when it last
// changed. Fields the CRM does not map are empty.
type CRMMessageRecord struct {
	CRMMessage
	ID        string    `json:"id"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CRMResult is the outcome of writing one record.
type CRMResult struct {
	CRMMessageID string
	// Err is nil on success, else a *CRMError.
	Err error
}

// CRMError is an error from the CRM with the CRM's own code.
type CRMError struct {
	Code    string // e.g. REQUIRED_FIELD_MISSING, UNABLE_TO_LOCK_ROW, invalid_grant
	Message string
	Fields  []string
	// Retryable: lock errors, 5xx, timeouts, limits.
	Retryable bool
	// Offline: the authorization is gone (revoked, expired refresh token);
	// write-backs are held until an admin authorizes again.
	Offline bool
	// RetryAfter asks callers to wait before the next call (limits).
	RetryAfter time.Duration
}

func (e *CRMError) Error() string {
	if e.Code != "" {
		return "crm: " + e.Code + ": " + e.Message
	}
	return "crm: " + e.Message
}

// CRMRecord is a contact, lead or any integrated record with a phone.
type CRMRecord struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"` // Contact, Lead, …
	FirstName string            `json:"first_name,omitempty"`
	LastName  string            `json:"last_name,omitempty"`
	Email     string            `json:"email,omitempty"`
	Phone     string            `json:"phone,omitempty"`
	OwnerID   string            `json:"owner_id,omitempty"`
	OptOut    bool              `json:"opt_out"`
	Fields    map[string]string `json:"fields,omitempty"`
	CreatedAt time.Time         `json:"created_at,omitzero"`
}

// CRMTask is an activity on a record (the chat transcript).
type CRMTask struct {
	ID           string `json:"id,omitempty"`
	Subject      string `json:"subject"`
	Status       string `json:"status"`
	ActivityDate string `json:"activity_date"` // YYYY-MM-DD
	WhoID        string `json:"who_id"`
	OwnerID      string `json:"owner_id,omitempty"`
	Description  string `json:"description"`
	// ExternalID makes the create idempotent: a second create with the same
	// id returns the first task.
	ExternalID string `json:"external_id,omitempty"`
}

// CRMOffline reports whether err says the CRM authorization is gone (the
// write is held until an admin authorizes again).
func CRMOffline(err error) bool {
	var ce *CRMError
	return errors.As(err, &ce) && ce.Offline
}

// CRMRetryable reports whether a failed CRM write may succeed later.
func CRMRetryable(err error) bool {
	var ce *CRMError
	return errors.As(err, &ce) && (ce.Retryable || ce.Offline)
}

// CRMRetryAfter is the pause a CRM asked for with err, or def.
func CRMRetryAfter(err error, def time.Duration) time.Duration {
	var ce *CRMError
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		return ce.RetryAfter
	}
	return def
}

// CRMOutcome is what to do with one record after a batched CRM write.
type CRMOutcome struct {
	// CRMID is the record's CRM id when the write succeeded.
	CRMID string
	// Retry leaves the record pending until RetryAt.
	Retry   bool
	RetryAt time.Time
	// Err is a permanent failure: the record is not retried.
	Err string
}

// CRMOutcomes reads the results of writing n records in one call (werr is
// the call's own error): success, retry later, or failed for good. retry
// reports whether any record is to be retried.
func CRMOutcomes(now time.Time, n int, results []CRMResult, werr error) (outs []CRMOutcome, retry bool) {
	const pause = 5 * time.Second
	outs = make([]CRMOutcome, n)
	for i := range outs {
		o := &outs[i]
		switch {
		case werr != nil:
			o.Retry, o.RetryAt = true, now.Add(CRMRetryAfter(werr, pause))
		case i >= len(results):
			o.Retry, o.RetryAt = true, now.Add(pause)
		case results[i].Err == nil:
			o.CRMID = results[i].CRMMessageID
		case CRMRetryable(results[i].Err):
			o.Retry, o.RetryAt = true, now.Add(pause)
		default:
			o.Err = results[i].Err.Error()
		}
		retry = retry || o.Retry
	}
	return outs, retry
}
