package switchboard

import (
	"net/mail"
	"net/url"
	"time"
)

// OptInMode decides what a phone number with no subscription record means.
type OptInMode string

const (
	// OptInDefault: every number is opted in until it opts out.
	OptInDefault OptInMode = "default"
	// OptInMandatory: every number is "No Opt-In" until it opts in.
	OptInMandatory OptInMode = "mandatory"
)

// CRM kinds an org can be connected to.
const (
	CRMBuiltin    = "builtin"
	CRMSalesforce = "salesforce"
)

// Org is one tenant: its CRM connection, gateways, users and settings.
type Org struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Settings  OrgSettings `json:"settings"`
	CreatedAt time.Time   `json:"created_at"`
}

// OrgSettings are the org's application settings.
type OrgSettings struct {
	OptInMode OptInMode `json:"opt_in_mode"`
	// CreateOptInOnIncoming ("Create Opt-in for Incoming SMS") is an option
	// of mandatory opt-in mode: a number in No Opt-In that texts a gateway
	// is opted in on it. A number with an explicit opt-out of any kind is
	// left as it is. It cannot be set in default opt-in mode.
	CreateOptInOnIncoming bool `json:"create_opt_in_on_incoming"`
	// CRM is "builtin" or "salesforce".
	CRM string `json:"crm"`
	// DefaultRegion is the ISO 3166 region used to read numbers written
	// without a country code (e.g. "US").
	DefaultRegion string `json:"default_region"`
	// IntegrationUserID is the user the CRM connection acts as (the user who
	// authorized most recently); it owns incoming messages with no previous
	// outgoing message.
	IntegrationUserID string `json:"integration_user_id,omitempty"`
	// One-way toggles: an org admin may enable them; only a service operator
	// may disable them.
	MessagingAPIForBulk     bool `json:"messaging_api_for_bulk"`
	ConnectedAppForIncoming bool `json:"connected_app_for_incoming"`
	// AlertWebhookURL receives a POST when the CRM health check starts
	// failing, fails differently, or recovers.
	AlertWebhookURL string `json:"alert_webhook_url,omitempty"`
	// AlertEmail receives the same alerts by email (the service's SMTP
	// server, SWITCHBOARD_SMTP_URL).
	AlertEmail string `json:"alert_email,omitempty"`
}

// Normalize fills defaults and checks the settings.
func (s *OrgSettings) Normalize() error {
	if s.OptInMode == "" {
		s.OptInMode = OptInDefault
	}
	if s.OptInMode != OptInDefault && s.OptInMode != OptInMandatory {
		return FieldError("opt_in_mode", "opt_in_mode must be %q or %q, not %q", OptInDefault, OptInMandatory, s.OptInMode)
	}
	if s.CreateOptInOnIncoming && s.OptInMode != OptInMandatory {
		return FieldError("create_opt_in_on_incoming", "create_opt_in_on_incoming (Create Opt-in for Incoming SMS) is an option of mandatory opt-in mode: set opt_in_mode to %q with it, or turn it off", OptInMandatory)
	}
	if s.CRM == "" {
		s.CRM = CRMBuiltin
	}
	if s.CRM != CRMBuiltin && s.CRM != CRMSalesforce {
		return FieldError("crm", "crm must be %q or %q, not %q", CRMBuiltin, CRMSalesforce, s.CRM)
	}
	if s.DefaultRegion == "" {
		s.DefaultRegion = "US"
	}
	if s.AlertWebhookURL != "" {
		if u, err := url.Parse(s.AlertWebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return FieldError("alert_webhook_url", "alert_webhook_url must be an http(s) URL")
		}
	}
	if s.AlertEmail != "" {
		if a, err := mail.ParseAddress(s.AlertEmail); err != nil || a.Address != s.AlertEmail {
			return FieldError("alert_email", "alert_email must be one email address such as admin@example.org, not %q", s.AlertEmail)
		}
	}
	if len(s.DefaultRegion) != 2 {
		return FieldError("default_region", "default_region must be a two-letter region code such as US, not %q", s.DefaultRegion)
	}
	return nil
}
