// Package whatsapp is Switchboard's adapter for Meta's WhatsApp Cloud API
// (the Graph API messages endpoint and the "messages" webhook field).
//
// One gateway is one WhatsApp business phone number, named by its Graph API
// phone number id. Sends go to POST /{version}/{phone_number_id}/messages with
// the gateway's access token; incoming messages and status updates arrive on
// one callback URL per Meta app, signed with the app secret.
package whatsapp

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// DefaultBaseURL is the Graph API origin used when neither Options.BaseURL
// nor the gateway's api_base_url is set.
const DefaultBaseURL = "https://graph.facebook.com"

// APIVersion is the Graph API version every request is made against.
const APIVersion = "v21.0"

// Gateway config keys.
const (
	KeyPhoneNumberID = "phone_number_id"
	KeyAccessToken   = "access_token"
	KeyAppSecret     = "app_secret"
	KeyVerifyToken   = "verify_token"
	KeyAPIBaseURL    = "api_base_url"
)

// MediaScheme prefixes the media ids of incoming messages in
// InboundMessage.MediaURLs ("whatsapp-media:<id>"); the media itself is
// fetched from the Graph API with the gateway's token.
const MediaScheme = "whatsapp-media:"

// Window is how long after the customer's last message WhatsApp accepts
// free-form (non-template) messages.
const Window = 24 * time.Hour

// defaultTimeout bounds one API call when Options.HTTPClient is nil.
const defaultTimeout = 30 * time.Second

// Options configure a Provider.
type Options struct {
	// HTTPClient makes the API calls; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// BaseURL is the Graph API origin; empty means DefaultBaseURL. A
	// gateway's api_base_url overrides it.
	BaseURL string
	// Now tells the time for the 24-hour window; nil means time.Now.
	Now func() time.Time
}

// Provider implements switchboard.Provider for the WhatsApp Cloud API.
type Provider struct {
	client  *http.Client
	baseURL string
	now     func() time.Time
}

// New returns a WhatsApp provider.
func New(opts Options) *Provider {
	p := &Provider{client: opts.HTTPClient, baseURL: opts.BaseURL, now: opts.Now}
	if p.client == nil {
		p.client = &http.Client{Timeout: defaultTimeout}
	}
	if p.baseURL == "" {
		p.baseURL = DefaultBaseURL
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Name returns switchboard.ProviderWhatsApp.
func (p *Provider) Name() string { return sb.ProviderWhatsApp }

// ConfigFields lists the gateway settings a WhatsApp gateway needs.
func (p *Provider) ConfigFields() []sb.ConfigField {
	return []sb.ConfigField{
		{Key: KeyPhoneNumberID, Label: "Phone number ID", Required: true,
			Help: "The Graph API id of the business phone number (digits), shown in WhatsApp Manager under API setup."},
		{Key: KeyAccessToken, Label: "Access token", Secret: true, Required: true,
			Help: "A system user access token with the whatsapp_business_messaging permission."},
		{Key: KeyAppSecret, Label: "App secret", Secret: true, Required: true,
			Help: "The Meta app's secret; it signs every webhook (X-Hub-Signature-256)."},
		{Key: KeyVerifyToken, Label: "Verify token", Secret: true, Required: true,
			Help: "Any string you choose; enter the same one as the webhook's verify token in the Meta app dashboard."},
		{Key: KeyAPIBaseURL, Label: "API base URL",
			Help: "Leave empty for " + DefaultBaseURL + "; set only to route calls through a proxy or a test server."},
	}
}

// ValidateConfig checks a gateway's WhatsApp settings; the error names the
// key at fault.
func (p *Provider) ValidateConfig(gw *sb.Gateway) error {
	if gw == nil {
		return sb.Errorf(sb.EInvalid, "gateway is missing")
	}
	c := gw.Config
	id := strings.TrimSpace(c[KeyPhoneNumberID])
	switch {
	case id == "":
		return sb.FieldError(KeyPhoneNumberID, "%s is required", KeyPhoneNumberID)
	case !isDigits(id) || len(id) > 32:
		return sb.FieldError(KeyPhoneNumberID, "%s must be the numeric Graph API id of the phone number (digits only, at most 32)", KeyPhoneNumberID)
	}
	for _, k := range []string{KeyAccessToken, KeyAppSecret, KeyVerifyToken} {
		v := c[k]
		if strings.TrimSpace(v) == "" {
			return sb.FieldError(k, "%s is required", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return sb.FieldError(k, "%s must be a single line", k)
		}
	}
	if raw := c[KeyAPIBaseURL]; raw != "" {
		if _, err := parseBaseURL(raw); err != nil {
			return sb.FieldError(KeyAPIBaseURL, "%s %s", KeyAPIBaseURL, err.Error())
		}
	}
	return nil
}

// RouteKey returns the gateway's phone_number_id, which names it in the
// webhooks Meta sends for all the phone numbers of an app
// (switchboard.WebhookRouter).
func (p *Provider) RouteKey(gw *sb.Gateway) string {
	if gw == nil {
		return ""
	}
	return strings.TrimSpace(gw.Config[KeyPhoneNumberID])
}

// parseBaseURL checks that raw is an absolute http(s) origin (with an
// optional path prefix) and returns it without a trailing slash.
func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errString("must be an absolute http or https URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errString("must not carry a query, a fragment or credentials")
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

type errString string

func (e errString) Error() string { return string(e) }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
