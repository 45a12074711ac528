package switchboard

import (
	"context"
	"time"
)

// Tracked links and SMS forms write what they collect to the CRM record of
// the recipient. A CRM that can store them implements the optional
// interfaces below; the built-in CRM's tables are crm_link_clicks and
// crm_form_responses.

// LinkClick is one click by a person on a per-recipient tracked link.
type LinkClick struct {
	// ID is Switchboard's click id; a repeated write of the same id must not
	// create a second record.
	ID string `json:"id"`
	// MessageID is the Switchboard message the link was sent in;
	// CRMMessageID its CRM record, when written already.
	MessageID    string `json:"message_id"`
	CRMMessageID string `json:"crm_message_id,omitempty"`
	// RecordID is the recipient's CRM record (contact, lead, …).
	RecordID string    `json:"record_id,omitempty"`
	URL      string    `json:"url"`
	ShortURL string    `json:"short_url"`
	At       time.Time `json:"at"`
	IP       string    `json:"ip,omitempty"`
	// Domain is the host of the referring page, or the short link's host.
	Domain string `json:"domain,omitempty"`
	// Browser is read from the User-Agent ("Chrome 124 on Android").
	Browser string `json:"browser,omitempty"`
}

// ClickWriter is implemented by CRMs that record link clicks. Results are in
// the order of clicks (CRMResult.CRMMessageID holds the click record's id).
type ClickWriter interface {
	WriteClicks(ctx context.Context, org *Org, clicks []LinkClick) ([]CRMResult, error)
}

// Form response statuses.
const (
	FormInProgress = "In Progress"
	FormCompleted  = "Completed"
	FormExpired    = "Expired"
	FormCancelled  = "Cancelled"
)

// FormResponse is the CRM's form record: one run of an SMS form with one
// recipient and the answers given so far. It is written again as answers
// arrive; the SessionID identifies it.
type FormResponse struct {
	SessionID string `json:"session_id"`
	// CRMFormID is the form record's CRM id once created (empty: create).
	CRMFormID string `json:"crm_form_id,omitempty"`
	FormID    string `json:"form_id"`
	FormName  string `json:"form_name"`
	RecordID  string `json:"record_id,omitempty"`
	// Status is FormInProgress, FormCompleted, FormExpired or FormCancelled.
	Status      string       `json:"status"`
	OwnerID     string       `json:"owner_id,omitempty"`
	CreatedByID string       `json:"created_by_id,omitempty"`
	Answers     []FormAnswer `json:"answers"`
	StartedAt   time.Time    `json:"started_at"`
	EndedAt     time.Time    `json:"ended_at,omitzero"`
}

// FormAnswer is one validated answer.
type FormAnswer struct {
	// Question is the question's key in the form; Text the question asked.
	Question string    `json:"question"`
	Text     string    `json:"text"`
	Answer   string    `json:"answer"`
	At       time.Time `json:"at"`
}

// FormResponseWriter is implemented by CRMs that store form records.
// Results are in the order of rs (CRMResult.CRMMessageID holds the form
// record's id).
type FormResponseWriter interface {
	WriteFormResponses(ctx context.Context, org *Org, rs []FormResponse) ([]CRMResult, error)
}
