package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// Twilio error codes with a meaning of their own for Switchboard.
const (
	codeUnsubscribed = 21610
	codeTooMany      = 20429
	codeRateLimit    = 14107
)

// Send posts one message to Twilio's Messages resource. A failure is a
// *switchboard.SendError whose Kind says whether to retry; its Debug never
// holds the auth token or the recipient number.
func (p *Provider) Send(ctx context.Context, gw *sb.Gateway, m *sb.OutboundMessage) (*sb.SendResult, error) {
	c, err := p.config(gw)
	if err != nil {
		// An admin must fix the gateway; held like rejected credentials.
		return nil, &sb.SendError{Kind: sb.SendAuth, Debug: "Twilio gateway is misconfigured: " + sb.ErrorMessage(err), Err: err}
	}
	form, serr := p.messageForm(c, gw, m)
	if serr != nil {
		return nil, serr
	}
	status, header, body, err := p.call(ctx, c, http.MethodPost, apiVersion+"/Accounts/"+c.accountSID+"/Messages.json", form)
	if err != nil {
		return nil, &sb.SendError{Kind: sb.SendTransient, Debug: describeTransport(err), Err: err}
	}
	if status < 200 || status > 299 {
		return nil, p.sendError(status, header, body)
	}
	var ans struct {
		SID    string `json:"sid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.SID == "" {
		// Twilio took the message; failing it now would be wrong and sending
		// it again would deliver it twice. Status callbacks still name it by
		// Switchboard's id.
		slog.WarnContext(ctx, "twilio accepted a message but its answer has no sid", "gateway", gw.ID, "http_status", status)
		return &sb.SendResult{Status: sb.StatusQueued}, nil
	}
	res := &sb.SendResult{ProviderMessageID: ans.SID, Status: sb.StatusQueued}
	if ans.Status == "sent" {
		res.Status = sb.StatusSent
	}
	return res, nil
}

// messageForm builds the Messages form for m, or a permanent error when m
// cannot be sent through Twilio at all.
func (p *Provider) messageForm(c config, gw *sb.Gateway, m *sb.OutboundMessage) (url.Values, *sb.SendError) {
	if m == nil {
		return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "no message given"}
	}
	if strings.TrimSpace(m.To) == "" {
		return nil, &sb.SendError{Kind: sb.SendInvalidNumber, Debug: "recipient number is empty"}
	}
	if m.Template != "" {
		return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "templates are not supported on Twilio SMS gateways"}
	}
	if m.Body == "" && len(m.MediaURLs) == 0 {
		return nil, &sb.SendError{Kind: sb.SendPermanent, Debug: "message has neither body nor media"}
	}
	form := url.Values{"To": {m.To}}
	switch {
	case c.serviceSID != "":
		form.Set("MessagingServiceSid", c.serviceSID)
	case m.From != "":
		form.Set("From", m.From)
	case gw.Number != "":
		form.Set("From", gw.Number)
	default:
		return nil, &sb.SendError{Kind: sb.SendAuth, Debug: "Twilio gateway has neither a number nor a messaging_service_sid"}
	}
	if m.Body != "" {
		form.Set("Body", m.Body)
	}
	for _, u := range m.MediaURLs {
		form.Add("MediaUrl", u)
	}
	if m.StatusCallback != "" {
		form.Set("StatusCallback", m.StatusCallback)
	}
	return form, nil
}

// sendError maps a non-2xx Twilio answer onto a *SendError.
func (p *Provider) sendError(status int, header http.Header, body []byte) *sb.SendError {
	e, ok := parseAPIError(body)
	se := &sb.SendError{Err: fmt.Errorf("twilio answered HTTP %d", status)}
	if ok {
		se.Code = strconv.Itoa(e.Code)
		se.Debug = describeCode(e.Code, e.Message)
	} else {
		se.Debug = fmt.Sprintf("Twilio answered HTTP %d", status)
	}
	switch {
	case ok && e.Code == codeUnsubscribed:
		se.Kind = sb.SendOptedOut
	case ok && (e.Code == 21211 || e.Code == 21612 || e.Code == 21614):
		se.Kind = sb.SendInvalidNumber
	case ok && (e.Code == 20003 || e.Code == 20005):
		se.Kind = sb.SendAuth
	case status == http.StatusTooManyRequests || (ok && (e.Code == codeTooMany || e.Code == codeRateLimit)):
		se.Kind = sb.SendThrottled
		se.RetryAfter = p.retryAfter(header.Get("Retry-After"))
	case status >= 500:
		se.Kind = sb.SendTransient
	case status == http.StatusUnauthorized:
		se.Kind = sb.SendAuth
	case status == http.StatusRequestTimeout:
		se.Kind = sb.SendTransient
	default:
		se.Kind = sb.SendPermanent
	}
	return se
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// Anything else, or a time already past, gives 0.
func (p *Provider) retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		const maxSecs = 24 * 60 * 60
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(p.now()); d > 0 {
			return d
		}
	}
	return 0
}
