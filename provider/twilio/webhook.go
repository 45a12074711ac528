package twilio

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	sb "github.com/switchboard/switchboard"
)

// Webhook actions, the last path segment of /webhooks/twilio/{gateway}/{action}.
const (
	ActionIncoming = "incoming"
	ActionStatus   = "status"
)

// SignatureHeader carries Twilio's request signature.
const SignatureHeader = "X-Twilio-Signature"

// MessageIDParam is the query parameter of a status callback URL that names
// Switchboard's message id.
const MessageIDParam = "m"

// maxMedia is the most media items Twilio attaches to one message.
const maxMedia = 10

// emptyTwiML is the answer to an incoming message: no reply from Twilio.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// HandleWebhook verifies the X-Twilio-Signature of a request Twilio made to
// Switchboard and parses it: "incoming" gives one InboundMessage, "status"
// one StatusUpdate. A bad or missing signature is an EForbidden error, a
// malformed request an EInvalid one and an unknown action ENotFound.
func (p *Provider) HandleWebhook(ctx context.Context, gw *sb.Gateway, req *sb.WebhookRequest) (*sb.Events, error) {
	if req == nil {
		return nil, sb.Errorf(sb.EInvalid, "no webhook request given")
	}
	if req.Action != ActionIncoming && req.Action != ActionStatus {
		return nil, sb.Errorf(sb.ENotFound, "unknown Twilio webhook action %q (want %q or %q)", clip(req.Action), ActionIncoming, ActionStatus)
	}
	if req.Method != http.MethodPost {
		return nil, sb.Errorf(sb.EInvalid, "Twilio webhooks must be POST requests, not %s", clip(req.Method))
	}
	if req.URL == nil {
		return nil, sb.Errorf(sb.EInvalid, "webhook request has no URL")
	}
	c, err := p.config(gw)
	if err != nil {
		return nil, sb.Wrap(err, sb.EForbidden, "cannot verify the Twilio signature: the gateway's Twilio settings are invalid")
	}
	if err := verifyRequest(c.authToken, req); err != nil {
		return nil, err
	}
	if len(req.Form) == 0 {
		if len(req.Body) > 0 {
			return nil, sb.Errorf(sb.EInvalid, "Twilio webhook body must be application/x-www-form-urlencoded")
		}
		return nil, sb.Errorf(sb.EInvalid, "Twilio webhook has an empty body")
	}
	if req.Action == ActionIncoming {
		return p.incoming(req.Form)
	}
	return p.status(req)
}

// verifyRequest checks the request's X-Twilio-Signature against the URL
// Twilio called and the POST parameters.
func verifyRequest(authToken string, req *sb.WebhookRequest) error {
	got := req.Header.Get(SignatureHeader)
	if got == "" {
		return sb.Errorf(sb.EForbidden, "Twilio webhook has no %s header", SignatureHeader)
	}
	for _, u := range signedURLs(req.URL) {
		if hmac.Equal([]byte(Signature(authToken, u, req.Form)), []byte(got)) {
			return nil
		}
	}
	return sb.Errorf(sb.EForbidden, "Twilio webhook signature does not match (check the gateway's auth_token and the service's public URL)")
}

// signedURLs returns the forms of u Twilio may have signed: as called, and
// with the default port added or removed, since Twilio's own validators
// accept either.
func signedURLs(u *url.URL) []string {
	urls := []string{u.String()}
	alt := *u
	defPort := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	switch {
	case defPort == "":
	case u.Port() == "":
		alt.Host = u.Host + ":" + defPort
		urls = append(urls, alt.String())
	case u.Port() == defPort:
		alt.Host = u.Hostname()
		if strings.Contains(alt.Host, ":") {
			alt.Host = "[" + alt.Host + "]"
		}
		urls = append(urls, alt.String())
	}
	return urls
}

// Signature computes Twilio's request signature: the base64 HMAC-SHA1, keyed
// with the auth token, of the full URL followed by every POST parameter,
// sorted by name, as name then value.
func Signature(authToken, fullURL string, form url.Values) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vals := slices.Clone(form[k])
		slices.Sort(vals)
		for _, v := range vals {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// incoming parses an incoming SMS or MMS.
func (p *Provider) incoming(form url.Values) (*sb.Events, error) {
	sid, err := messageSID(form)
	if err != nil {
		return nil, err
	}
	in := sb.InboundMessage{
		ProviderMessageID: sid,
		From:              strings.TrimSpace(form.Get("From")),
		To:                strings.TrimSpace(form.Get("To")),
		Body:              form.Get("Body"),
		ReceivedAt:        p.now(),
	}
	if in.From == "" {
		return nil, sb.Errorf(sb.EInvalid, "Twilio incoming message has no From")
	}
	if in.To == "" {
		return nil, sb.Errorf(sb.EInvalid, "Twilio incoming message has no To")
	}
	n := 0
	if raw := strings.TrimSpace(form.Get("NumMedia")); raw != "" {
		n, err = strconv.Atoi(raw)
		if err != nil || n < 0 || n > maxMedia {
			return nil, sb.Errorf(sb.EInvalid, "Twilio NumMedia must be a whole number from 0 to %d, not %q", maxMedia, clip(raw))
		}
	}
	for i := range n {
		key := fmt.Sprintf("MediaUrl%d", i)
		raw := strings.TrimSpace(form.Get(key))
		if raw == "" {
			return nil, sb.Errorf(sb.EInvalid, "Twilio incoming message has NumMedia %d but no %s", n, key)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, sb.Errorf(sb.EInvalid, "Twilio %s is not an absolute http(s) URL", key)
		}
		in.MediaURLs = append(in.MediaURLs, raw)
	}
	return &sb.Events{
		Incoming: []sb.InboundMessage{in},
		Response: sb.Response{StatusCode: http.StatusOK, ContentType: "text/xml", Body: []byte(emptyTwiML)},
	}, nil
}

// statusMap maps every MessageStatus Twilio documents onto Switchboard's
// statuses. Intermediate states are Queued; the hub applies only forward
// moves, so a late or out-of-order callback changes nothing.
var statusMap = map[string]sb.Status{
	"accepted":            sb.StatusQueued,
	"scheduled":           sb.StatusQueued,
	"queued":              sb.StatusQueued,
	"sending":             sb.StatusQueued,
	"receiving":           sb.StatusQueued,
	"received":            sb.StatusQueued,
	"partially_delivered": sb.StatusQueued,
	"sent":                sb.StatusSent,
	"delivered":           sb.StatusDelivered,
	"read":                sb.StatusDelivered,
	"undelivered":         sb.StatusUndelivered,
	"failed":              sb.StatusFailed,
	"canceled":            sb.StatusFailed,
}

// status parses a message status callback.
func (p *Provider) status(req *sb.WebhookRequest) (*sb.Events, error) {
	form := req.Form
	sid, err := messageSID(form)
	if err != nil {
		return nil, err
	}
	raw := strings.TrimSpace(form.Get("MessageStatus"))
	if raw == "" {
		return nil, sb.Errorf(sb.EInvalid, "Twilio status callback has no MessageStatus")
	}
	st, ok := statusMap[strings.ToLower(raw)]
	if !ok {
		return nil, sb.Errorf(sb.EInvalid, "Twilio status callback has unknown MessageStatus %q", clip(raw))
	}
	up := sb.StatusUpdate{
		MessageID:         req.URL.Query().Get(MessageIDParam),
		ProviderMessageID: sid,
		Status:            st,
		At:                p.now(),
	}
	if code := strings.TrimSpace(form.Get("ErrorCode")); code != "" && code != "0" {
		n, err := strconv.Atoi(code)
		if err != nil || n < 0 {
			return nil, sb.Errorf(sb.EInvalid, "Twilio ErrorCode must be a number, not %q", clip(code))
		}
		up.ErrorCode = strconv.Itoa(n)
		up.Debug = describeCode(n, "")
		up.OptedOut = n == codeUnsubscribed
	}
	return &sb.Events{Statuses: []sb.StatusUpdate{up}}, nil
}

// messageSID returns the form's MessageSid, checked to look like a Twilio SID.
func messageSID(form url.Values) (string, error) {
	sid := strings.TrimSpace(form.Get("MessageSid"))
	if sid == "" {
		return "", sb.Errorf(sb.EInvalid, "Twilio webhook has no MessageSid")
	}
	if len(sid) > 64 || strings.IndexFunc(sid, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return "", sb.Errorf(sb.EInvalid, "Twilio MessageSid must be at most 64 letters and digits")
	}
	return sid, nil
}

// clip bounds a value echoed in an error message.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) > 32 {
		return strings.ToValidUTF8(s[:32], "") + "…"
	}
	return s
}
