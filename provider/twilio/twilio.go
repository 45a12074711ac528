// Package twilio is Switchboard's adapter for Twilio Programmable Messaging:
// it sends SMS and MMS through the Messages API, verifies and parses
// Twilio's incoming-message and status webhooks, and points a number's SMS
// URL at Switchboard.
package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// DefaultBaseURL is the origin of Twilio's REST API.
const DefaultBaseURL = "https://api.twilio.com"

// Gateway config keys.
const (
	ConfigAccountSID          = "account_sid"
	ConfigAuthToken           = "auth_token"
	ConfigMessagingServiceSID = "messaging_service_sid"
	ConfigAPIBaseURL          = "api_base_url"
)

// apiVersion is the path prefix of every Twilio REST resource used here.
const apiVersion = "/2010-04-01"

// maxResponseBytes caps how much of a Twilio answer is read.
const maxResponseBytes = 1 << 20

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSIDPattern = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	numberSIDPattern  = regexp.MustCompile(`^PN[0-9a-fA-F]{32}$`)
)

// Options configure a Provider.
type Options struct {
	// HTTPClient makes the calls to Twilio; nil means a client with a
	// 30-second timeout.
	HTTPClient *http.Client
	// BaseURL is Twilio's API origin; empty means DefaultBaseURL. A gateway's
	// api_base_url setting overrides it.
	BaseURL string
}

// Provider implements switchboard.Provider and switchboard.WebhookRegistrar
// for Twilio.
type Provider struct {
	client  *http.Client
	baseURL string
	now     func() time.Time
}

var (
	_ sb.Provider         = (*Provider)(nil)
	_ sb.WebhookRegistrar = (*Provider)(nil)
)

// New returns a Twilio provider.
func New(opts Options) *Provider {
	p := &Provider{client: opts.HTTPClient, baseURL: strings.TrimRight(opts.BaseURL, "/"), now: time.Now}
	if p.client == nil {
		p.client = &http.Client{Timeout: 30 * time.Second}
	}
	if p.baseURL == "" {
		p.baseURL = DefaultBaseURL
	}
	return p
}

// Name returns switchboard.ProviderTwilio.
func (p *Provider) Name() string { return sb.ProviderTwilio }

// ConfigFields describes the gateway settings a Twilio gateway needs.
func (p *Provider) ConfigFields() []sb.ConfigField {
	return []sb.ConfigField{
		{Key: ConfigAccountSID, Label: "Account SID", Required: true,
			Help: "Starts with AC followed by 32 hexadecimal characters; shown on the Twilio Console dashboard."},
		{Key: ConfigAuthToken, Label: "Auth token", Required: true, Secret: true,
			Help: "The account's auth token; it signs Twilio's webhooks and authenticates Switchboard's API calls."},
		{Key: ConfigMessagingServiceSID, Label: "Messaging Service SID",
			Help: "Optional. Starts with MG; when set, messages are sent through the Messaging Service instead of from the gateway number."},
		{Key: ConfigAPIBaseURL, Label: "API base URL",
			Help: "Optional. Defaults to " + DefaultBaseURL + "; change it only to point the gateway at a test double."},
	}
}

// config is a gateway's validated Twilio settings.
type config struct {
	accountSID string
	authToken  string
	serviceSID string
	baseURL    string
}

// ValidateConfig checks a gateway's Twilio settings; the error names the
// config key at fault ("config.account_sid").
func (p *Provider) ValidateConfig(gw *sb.Gateway) error {
	_, err := p.config(gw)
	return err
}

func (p *Provider) config(gw *sb.Gateway) (config, error) {
	if gw == nil {
		return config{}, sb.Errorf(sb.EInvalid, "no gateway given")
	}
	get := func(k string) string { return strings.TrimSpace(gw.Config[k]) }
	c := config{
		accountSID: get(ConfigAccountSID),
		authToken:  get(ConfigAuthToken),
		serviceSID: get(ConfigMessagingServiceSID),
		baseURL:    p.baseURL,
	}
	switch {
	case c.accountSID == "":
		return c, fieldError(ConfigAccountSID, "account_sid is required")
	case !accountSIDPattern.MatchString(c.accountSID):
		return c, fieldError(ConfigAccountSID, "account_sid must be AC followed by 32 hexadecimal characters")
	}
	if c.authToken == "" {
		return c, fieldError(ConfigAuthToken, "auth_token is required")
	}
	if c.serviceSID != "" && !serviceSIDPattern.MatchString(c.serviceSID) {
		return c, fieldError(ConfigMessagingServiceSID, "messaging_service_sid must be MG followed by 32 hexadecimal characters")
	}
	if raw := get(ConfigAPIBaseURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return c, fieldError(ConfigAPIBaseURL, "api_base_url must be an absolute http or https URL without credentials, query or fragment")
		}
		c.baseURL = strings.TrimRight(raw, "/")
	}
	return c, nil
}

func fieldError(key, format string, args ...any) *sb.Error {
	return sb.FieldError("config."+key, format, args...)
}

// apiError is the JSON body of a Twilio error answer.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// call makes one authenticated request to Twilio and returns the HTTP status,
// the headers and at most maxResponseBytes of the body.
func (p *Provider) call(ctx context.Context, c config, method, path string, form url.Values) (int, http.Header, []byte, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, body)
	if err != nil {
		return 0, nil, nil, err
	}
	req.SetBasicAuth(c.accountSID, c.authToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "switchboard")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, nil, transportError(err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// transportError strips the request URL from a client error (it is noise in
// a Debug text) and keeps the cause.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// describeTransport names a network failure for a Debug text.
func describeTransport(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "request to Twilio was canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "request to Twilio timed out"
	default:
		return "could not reach Twilio"
	}
}

// parseAPIError reads a Twilio error body; ok is false when the body is not
// one.
func parseAPIError(body []byte) (apiError, bool) {
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Code == 0 {
		return e, false
	}
	return e, true
}

// phoneLike matches runs that may be phone numbers, so Twilio texts that
// echo a number can be kept without it.
var phoneLike = regexp.MustCompile(`\+?[0-9][0-9 ().-]{5,}[0-9]`)

// scrub removes anything phone-like from a partner text and bounds its size.
func scrub(s string) string {
	s = phoneLike.ReplaceAllStringFunc(s, func(m string) string {
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, m)
		if len(digits) < 7 {
			return m
		}
		return sb.MaskPhone("+" + digits)
	})
	s = strings.TrimSpace(strings.ToValidUTF8(s, ""))
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// describeCode returns the Debug text for a Twilio error code: Switchboard's
// wording for codes it knows, else a scrubbed form of Twilio's own message,
// else just the code.
func describeCode(code int, twilioMessage string) string {
	if d, ok := errorTexts[code]; ok {
		return fmt.Sprintf("Twilio %d: %s", code, d)
	}
	if m := scrub(twilioMessage); m != "" {
		return fmt.Sprintf("Twilio %d: %s", code, m)
	}
	return fmt.Sprintf("Twilio error %d", code)
}

// errorTexts are Debug texts for the Twilio error codes Switchboard meets
// most, in Switchboard's words. None of them repeats a number.
var errorTexts = map[int]string{
	14107: "SMS send rate limit exceeded",
	20003: "authentication failed: check the gateway's account SID and auth token",
	20005: "the Twilio account is not active",
	20404: "resource not found in the Twilio account",
	20429: "too many requests",
	21211: "invalid 'To' phone number",
	21408: "sending to this region is not enabled in the Twilio account",
	21602: "message body is required",
	21606: "the 'From' number is not a message-capable Twilio number for this destination",
	21610: "recipient has unsubscribed (replied STOP)",
	21612: "the 'To' number is not reachable via SMS",
	21614: "the 'To' number is not a valid mobile number",
	21617: "message body exceeds the 1600 character limit",
	30001: "Queue overflow",
	30002: "Account suspended",
	30003: "Unreachable destination handset",
	30004: "Message blocked",
	30005: "Unknown destination handset",
	30006: "Landline or unreachable carrier",
	30007: "Message filtered (carrier violation)",
	30008: "Unknown error",
	30009: "Missing segment",
	30010: "Message price exceeds max price",
	30011: "MMS not supported by the receiving phone number in this region",
	30032: "Toll-free number has not been verified",
}
