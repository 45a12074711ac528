package twilio

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	sb "github.com/switchboard/switchboard"
)

// RegisterWebhooks points the gateway number's SMS URL at urls.Incoming
// (SmsUrl, SmsMethod POST). It finds the number among the account's
// IncomingPhoneNumbers; a number the account does not hold is an ENotFound
// error. The IncomingPhoneNumber resource has no messaging status callback
// (its StatusCallback is for voice calls), so urls.Status is not stored on
// the number: every message is sent with its own StatusCallback. Sandbox
// gateways are the caller's business.
func (p *Provider) RegisterWebhooks(ctx context.Context, gw *sb.Gateway, urls sb.WebhookURLs) error {
	c, err := p.config(gw)
	if err != nil {
		return err
	}
	if !isE164(gw.Number) {
		return sb.FieldError("number", "a Twilio gateway number must be in E.164 form (+ and 7 to 15 digits) to register webhooks")
	}
	u, err := url.Parse(urls.Incoming)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return sb.Errorf(sb.EInvalid, "incoming webhook URL must be an absolute http(s) URL")
	}

	sid, err := p.findNumber(ctx, c, gw.Number)
	if err != nil {
		return err
	}
	form := url.Values{"SmsUrl": {urls.Incoming}, "SmsMethod": {http.MethodPost}}
	status, _, body, err := p.call(ctx, c, http.MethodPost, apiVersion+"/Accounts/"+c.accountSID+"/IncomingPhoneNumbers/"+sid+".json", form)
	if err != nil {
		return sb.Wrap(err, sb.EUnavailable, "updating the Twilio number's SMS URL failed: %s", describeTransport(err))
	}
	if status < 200 || status > 299 {
		return registerError("updating the Twilio number's SMS URL", status, body)
	}
	return nil
}

// findNumber returns the SID (PN…) of number in the account.
func (p *Provider) findNumber(ctx context.Context, c config, number string) (string, error) {
	q := url.Values{"PhoneNumber": {number}}
	status, _, body, err := p.call(ctx, c, http.MethodGet, apiVersion+"/Accounts/"+c.accountSID+"/IncomingPhoneNumbers.json?"+q.Encode(), nil)
	if err != nil {
		return "", sb.Wrap(err, sb.EUnavailable, "looking up the number at Twilio failed: %s", describeTransport(err))
	}
	if status < 200 || status > 299 {
		return "", registerError("looking up the number at Twilio", status, body)
	}
	var page struct {
		Numbers []struct {
			SID         string `json:"sid"`
			PhoneNumber string `json:"phone_number"`
		} `json:"incoming_phone_numbers"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return "", sb.Wrap(err, sb.EUnavailable, "Twilio's list of incoming phone numbers could not be read")
	}
	for _, n := range page.Numbers {
		if n.PhoneNumber != number {
			continue
		}
		if !numberSIDPattern.MatchString(n.SID) {
			return "", sb.Errorf(sb.EUnavailable, "Twilio listed the number with an unexpected SID")
		}
		return n.SID, nil
	}
	return "", sb.Errorf(sb.ENotFound, "number %s is not in Twilio account %s: buy or port it there, or check account_sid", sb.MaskPhone(number), c.accountSID)
}

// registerError maps a failed Twilio answer during registration onto a
// domain error naming what to fix.
func registerError(what string, status int, body []byte) error {
	text := "HTTP " + http.StatusText(status)
	e, ok := parseAPIError(body)
	if ok {
		text = describeCode(e.Code, e.Message)
	}
	switch {
	case status == http.StatusUnauthorized || (ok && (e.Code == 20003 || e.Code == 20005)):
		return sb.FieldError("config."+ConfigAuthToken, "%s: Twilio rejected the account SID and auth token (%s)", what, text)
	case status == http.StatusTooManyRequests || status >= 500:
		return sb.Errorf(sb.EUnavailable, "%s: Twilio is unavailable, try again later (%s)", what, text)
	case status == http.StatusNotFound:
		return sb.Errorf(sb.ENotFound, "%s: Twilio answered not found (%s)", what, text)
	default:
		return sb.Errorf(sb.EInvalid, "%s: Twilio refused the request (%s)", what, text)
	}
}

// isE164 reports whether s is + followed by 7 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	return strings.IndexFunc(s[1:], func(r rune) bool { return r < '0' || r > '9' }) < 0
}
