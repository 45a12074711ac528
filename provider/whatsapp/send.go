package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider"
)

// DebugWindowClosed is the Debug text of a free-form send refused because
// the 24-hour customer service window is closed.
const DebugWindowClosed = "WhatsApp allows free-form messages only within 24 hours of the customer's last message; send an approved template instead"

// Limits WhatsApp puts on text, checked before calling the API so the
// message fails with a clear text.
const (
	maxBodyChars     = 4096
	maxCaptionChars  = 1024
	maxCallbackChars = 512
	maxResponseBytes = 1 << 20
	maxDebugChars    = 500
)

// defaultTemplateLang is the template language when OutboundMessage
// names none.
const defaultTemplateLang = "en_US"

// sendRequest is the body of POST /{version}/{phone_number_id}/messages.
type sendRequest struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	Type             string `json:"type"`
	// BizOpaqueCallbackData is echoed in the message's status webhooks; it
	// carries Switchboard's message id.
	BizOpaqueCallbackData string       `json:"biz_opaque_callback_data,omitempty"`
	Text                  *textObject  `json:"text,omitempty"`
	Image                 *mediaObject `json:"image,omitempty"`
	Document              *mediaObject `json:"document,omitempty"`
	Template              *template    `json:"template,omitempty"`
}

type textObject struct {
	Body       string `json:"body"`
	PreviewURL bool   `json:"preview_url"`
}

type mediaObject struct {
	Link     string `json:"link"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

type template struct {
	Name       string      `json:"name"`
	Language   language    `json:"language"`
	Components []component `json:"components,omitempty"`
}

type language struct {
	Code string `json:"code"`
}

type component struct {
	Type       string      `json:"type"`
	Parameters []parameter `json:"parameters"`
}

type parameter struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// sendResponse is the API's answer to an accepted send.
type sendResponse struct {
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
}

// graphError is the Graph API's error envelope.
type graphError struct {
	Error *struct {
		Message      string `json:"message"`
		Type         string `json:"type"`
		Code         int    `json:"code"`
		ErrorSubcode int    `json:"error_subcode"`
		ErrorData    struct {
			Details string `json:"details"`
		} `json:"error_data"`
		FBTraceID string `json:"fbtrace_id"`
	} `json:"error"`
}

// APIError is the Graph API error kept as the cause of a *SendError, for
// logs. Its texts are scrubbed of the recipient number and the token.
type APIError struct {
	HTTPStatus int
	Code       int
	Subcode    int
	Type       string
	Message    string
	Details    string
	FBTraceID  string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("WhatsApp API HTTP %d", e.HTTPStatus)
	if e.Code != 0 {
		s += fmt.Sprintf(", code %d", e.Code)
	}
	if e.Subcode != 0 {
		s += fmt.Sprintf(" (subcode %d)", e.Subcode)
	}
	if e.Type != "" {
		s += ", " + e.Type
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Details != "" {
		s += " (" + e.Details + ")"
	}
	if e.FBTraceID != "" {
		s += " [fbtrace_id " + e.FBTraceID + "]"
	}
	return s
}

// Send hands one message to the WhatsApp Cloud API. Free-form messages are
// refused without calling the API when the customer's 24-hour window is
// closed; templates go out regardless.
func (p *Provider) Send(ctx context.Context, gw *sb.Gateway, m *sb.OutboundMessage) (*sb.SendResult, error) {
	if gw == nil || m == nil {
		return nil, provider.SendErrorf(sb.SendPermanent, "", "WhatsApp send needs a gateway and a message")
	}
	cfg := gw.Config
	phoneID := strings.TrimSpace(cfg[KeyPhoneNumberID])
	token := cfg[KeyAccessToken]
	if !isDigits(phoneID) {
		return nil, provider.SendErrorf(sb.SendAuth, "", "WhatsApp gateway has no valid %s; fix the gateway settings", KeyPhoneNumberID)
	}
	if strings.TrimSpace(token) == "" {
		return nil, provider.SendErrorf(sb.SendAuth, "", "WhatsApp gateway has no %s; fix the gateway settings", KeyAccessToken)
	}
	base := p.baseURL
	if raw := cfg[KeyAPIBaseURL]; raw != "" {
		b, err := parseBaseURL(raw)
		if err != nil {
			return nil, provider.SendErrorf(sb.SendAuth, "", "WhatsApp gateway's %s %v; fix the gateway settings", KeyAPIBaseURL, err)
		}
		base = b
	}

	to := strings.TrimPrefix(strings.TrimSpace(m.To), "+")
	if !isDigits(to) || len(to) < 7 || len(to) > 15 {
		return nil, provider.SendErrorf(sb.SendInvalidNumber, "", "recipient is not an E.164 phone number")
	}

	if m.Template == "" && !p.windowOpen(m.LastInboundAt) {
		return nil, &sb.SendError{Kind: sb.SendWindowClosed, Debug: DebugWindowClosed}
	}

	if err := p.CheckContent(gw, m); err != nil {
		// Accepted before the check existed, or by a path that skips it.
		return nil, provider.SendErrorf(sb.SendPermanent, "", "%s", sb.ErrorMessage(err))
	}
	req, err := buildRequest(to, m)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "WhatsApp request could not be encoded", Err: err}
	}

	endpoint := strings.TrimSuffix(base, "/") + "/" + APIVersion + "/" + url.PathEscape(phoneID) + "/messages"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "WhatsApp request could not be built", Err: err}
	}
	hreq.Header.Set("Authorization", "Bearer "+token)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")

	resp, err := p.client.Do(hreq)
	if err != nil {
		return nil, &sb.SendError{Kind: sb.SendTransient, Debug: "WhatsApp API could not be reached", Err: scrubErr(err, token)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, &sb.SendError{Kind: sb.SendTransient, Debug: "WhatsApp API answer could not be read", Err: scrubErr(err, token)}
	}

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var ok sendResponse
		if err := json.Unmarshal(raw, &ok); err != nil || len(ok.Messages) == 0 || ok.Messages[0].ID == "" {
			// The API took the request; sending again could deliver twice.
			return nil, provider.SendErrorf(sb.SendPermanent, "", "WhatsApp API accepted the message (HTTP %d) but returned no message id", resp.StatusCode)
		}
		return &sb.SendResult{ProviderMessageID: ok.Messages[0].ID, Status: sb.StatusQueued}, nil
	}
	return nil, p.mapError(resp, raw, redactor{to: to, token: token})
}

// windowOpen reports whether a free-form message may go out: the customer
// wrote less than 24 hours ago.
func (p *Provider) windowOpen(last time.Time) bool {
	if last.IsZero() {
		return false
	}
	return p.now().Sub(last) <= Window
}

// CheckContent refuses content the Cloud API cannot carry in one message
// (switchboard.ContentChecker): more than one media attachment, or media
// with a template; they would otherwise be dropped.
func (p *Provider) CheckContent(_ *sb.Gateway, m *sb.OutboundMessage) error {
	switch {
	case m == nil:
		return nil
	case m.Template != "" && len(m.MediaURLs) > 0:
		return sb.FieldError("media_urls", "WhatsApp template messages are sent without media_urls; send the media as a message of its own")
	case len(m.MediaURLs) > 1:
		return sb.FieldError("media_urls", "WhatsApp sends one media attachment per message; this message has %d media URLs, send each as a message of its own", len(m.MediaURLs))
	}
	return nil
}

// buildRequest turns the message into the API's JSON shape.
func buildRequest(to string, m *sb.OutboundMessage) (*sendRequest, error) {
	req := &sendRequest{MessagingProduct: "whatsapp", RecipientType: "individual", To: to}
	if utf8.RuneCountInString(m.ID) <= maxCallbackChars {
		req.BizOpaqueCallbackData = m.ID
	}
	switch {
	case m.Template != "":
		lang := m.TemplateLang
		if lang == "" {
			lang = defaultTemplateLang
		}
		t := &template{Name: m.Template, Language: language{Code: lang}}
		if len(m.TemplateParams) > 0 {
			params := make([]parameter, len(m.TemplateParams))
			for i, v := range m.TemplateParams {
				params[i] = parameter{Type: "text", Text: v}
			}
			t.Components = []component{{Type: "body", Parameters: params}}
		}
		req.Type, req.Template = "template", t
	case len(m.MediaURLs) > 0:
		link := m.MediaURLs[0]
		u, err := url.Parse(link)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, provider.SendErrorf(sb.SendPermanent, "", "WhatsApp media must be an absolute http or https URL")
		}
		if utf8.RuneCountInString(m.Body) > maxCaptionChars {
			return nil, provider.SendErrorf(sb.SendPermanent, "", "WhatsApp media captions are limited to %d characters", maxCaptionChars)
		}
		media := &mediaObject{Link: link, Caption: m.Body}
		if isImage(u.Path) {
			req.Type, req.Image = "image", media
		} else {
			if name := path.Base(u.Path); name != "/" && name != "." && strings.Contains(name, ".") {
				media.Filename = name
			}
			req.Type, req.Document = "document", media
		}
	default:
		if strings.TrimSpace(m.Body) == "" {
			return nil, provider.SendErrorf(sb.SendPermanent, "", "message body is empty")
		}
		if n := utf8.RuneCountInString(m.Body); n > maxBodyChars {
			return nil, provider.SendErrorf(sb.SendPermanent, "", "WhatsApp text messages are limited to %d characters, this one has %d", maxBodyChars, n)
		}
		req.Type, req.Text = "text", &textObject{Body: m.Body}
	}
	return req, nil
}

// isImage reports whether a media path names a picture WhatsApp shows
// inline (JPEG or PNG); anything else goes out as a document.
func isImage(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// codeRule says how one Graph API error code is classified.
type codeRule struct {
	kind  sb.SendErrorKind
	title string
}

// codeRules classify the error codes the Cloud API documents for sends.
var codeRules = map[int]codeRule{
	2:      {sb.SendTransient, "API service temporarily unavailable"},
	4:      {sb.SendThrottled, "API call rate limit reached"},
	10:     {sb.SendAuth, "permission denied"},
	190:    {sb.SendAuth, "access token expired or invalid"},
	80007:  {sb.SendThrottled, "WhatsApp Business Account rate limit reached"},
	130429: {sb.SendThrottled, "throughput rate limit reached"},
	131000: {sb.SendTransient, "something went wrong at WhatsApp"},
	131005: {sb.SendAuth, "access denied"},
	131016: {sb.SendTransient, "WhatsApp service unavailable"},
	131021: {sb.SendInvalidNumber, "recipient cannot be the sender"},
	131026: {sb.SendInvalidNumber, "message undeliverable (the number may not be on WhatsApp, or its app is out of date)"},
	131030: {sb.SendPermanent, "recipient is not in the test number's allowed list"},
	131031: {sb.SendPermanent, "business account is locked"},
	131042: {sb.SendPermanent, "business payment issue"},
	131047: {sb.SendWindowClosed, "more than 24 hours since the customer's last message; send an approved template instead"},
	131048: {sb.SendThrottled, "spam rate limit reached"},
	131049: {sb.SendPermanent, "WhatsApp chose not to deliver this message (per-user marketing limit)"},
	131050: {sb.SendOptedOut, "the recipient stopped marketing messages"},
	131051: {sb.SendPermanent, "unsupported message type"},
	131053: {sb.SendTransient, "media could not be downloaded or uploaded"},
	131056: {sb.SendThrottled, "too many messages to this recipient (pair rate limit)"},
	132000: {sb.SendPermanent, "template parameter count does not match"},
	132001: {sb.SendPermanent, "template does not exist in this language"},
	133004: {sb.SendTransient, "WhatsApp server temporarily unavailable"},
	368:    {sb.SendPermanent, "account temporarily blocked for policy violations"},
}

// mapError classifies a non-2xx answer.
func (p *Provider) mapError(resp *http.Response, raw []byte, red redactor) *sb.SendError {
	var ge graphError
	if err := json.Unmarshal(raw, &ge); err != nil || ge.Error == nil {
		kind := provider.ClassifyHTTPStatus(resp.StatusCode)
		se := provider.SendErrorf(kind, "", "WhatsApp API answered HTTP %d", resp.StatusCode)
		se.Err = &APIError{HTTPStatus: resp.StatusCode}
		if kind == sb.SendThrottled {
			se.RetryAfter = p.retryAfter(resp.Header)
		}
		return se
	}
	e := ge.Error
	apiErr := &APIError{
		HTTPStatus: resp.StatusCode, Code: e.Code, Subcode: e.ErrorSubcode, Type: e.Type,
		Message: red.clean(e.Message), Details: red.clean(e.ErrorData.Details), FBTraceID: e.FBTraceID,
	}
	rule, known := codeRules[e.Code]
	switch {
	case known:
	case e.Code >= 200 && e.Code <= 299:
		rule = codeRule{sb.SendAuth, "API permission missing"}
	case (e.Code == 100 || e.Code == 131008 || e.Code == 131009) && mentionsRecipient(e.Message+" "+e.ErrorData.Details):
		rule = codeRule{sb.SendInvalidNumber, "invalid recipient phone number"}
	case e.Code == 100:
		rule = codeRule{provider.ClassifyHTTPStatus(resp.StatusCode), "invalid parameter"}
	default:
		rule = codeRule{provider.ClassifyHTTPStatus(resp.StatusCode), apiErr.Message}
	}
	if resp.StatusCode == http.StatusUnauthorized && !known {
		rule.kind = sb.SendAuth
	}
	debug := fmt.Sprintf("WhatsApp %d: %s", e.Code, rule.title)
	if rule.title == "" {
		debug = fmt.Sprintf("WhatsApp %d: HTTP %d", e.Code, resp.StatusCode)
	}
	if d := apiErr.Details; d != "" && !strings.EqualFold(d, rule.title) && rule.kind != sb.SendWindowClosed {
		debug += ": " + d
	}
	se := &sb.SendError{Kind: rule.kind, Code: strconv.Itoa(e.Code), Debug: truncate(debug, maxDebugChars), Err: apiErr}
	if se.Kind == sb.SendThrottled {
		se.RetryAfter = p.retryAfter(resp.Header)
	}
	return se
}

// mentionsRecipient reports whether an invalid-parameter text is about the
// "to" field.
func mentionsRecipient(s string) bool {
	s = strings.ToLower(s)
	for _, w := range []string{"'to'", `"to"`, "parameter to ", "recipient", "phone number"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func (p *Provider) retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, 24*3600)) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(p.now()); d > 0 {
			return min(d, 24*time.Hour)
		}
	}
	return 0
}

// redactor removes the recipient number and the access token from texts
// the partner sends back, so neither reaches a Debug field or a log.
type redactor struct {
	to    string // digits, no +
	token string
}

func (r redactor) clean(s string) string {
	if r.token != "" {
		s = strings.ReplaceAll(s, r.token, "[redacted]")
	}
	if r.to != "" {
		masked := sb.MaskPhone("+" + r.to)
		s = strings.ReplaceAll(s, "+"+r.to, masked)
		s = strings.ReplaceAll(s, r.to, masked)
	}
	return s
}

// scrubErr keeps a transport error as cause while making sure the token
// cannot leak through its text.
func scrubErr(err error, token string) error {
	if token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), token, "[redacted]"))
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
