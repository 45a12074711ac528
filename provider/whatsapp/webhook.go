package whatsapp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// SignatureHeader carries the hex HMAC-SHA256 of the raw body under the
// app secret, as "sha256=<hex>".
const SignatureHeader = "X-Hub-Signature-256"

// maxChallenge bounds the hub.challenge echoed back in the handshake.
const maxChallenge = 256

// HandleWebhook verifies and parses one request Meta made to the gateway's
// callback URL. Meta sends incoming messages and status updates to the same
// URL, so the action ("incoming" or "status") does not change how a body is
// read. A GET is the subscription handshake; a POST must carry a valid
// X-Hub-Signature-256. Meta sends the changes of every phone number of the
// app to the one callback URL: changes for other phone numbers are not
// parsed here but named in Events.OtherGateways (their phone_number_id), so
// the hub hands them to the gateways of those numbers.
func (p *Provider) HandleWebhook(ctx context.Context, gw *sb.Gateway, req *sb.WebhookRequest) (*sb.Events, error) {
	if gw == nil || req == nil {
		return nil, sb.Errorf(sb.EInvalid, "WhatsApp webhook: no gateway or request")
	}
	if req.Action != "incoming" && req.Action != "status" {
		return nil, sb.Errorf(sb.ENotFound, "unknown WhatsApp webhook action %q (incoming or status: Meta sends messages and statuses to the one callback URL)", truncate(req.Action, 32))
	}
	switch req.Method {
	case http.MethodGet:
		return handshake(gw, req)
	case http.MethodPost:
		if err := verifySignature(gw.Config[KeyAppSecret], req); err != nil {
			return nil, err
		}
		return parseNotification(gw, req.Body)
	default:
		return nil, sb.Errorf(sb.EInvalid, "WhatsApp webhook: method %s is not supported (GET for verification, POST for notifications)", req.Method)
	}
}

// handshake answers Meta's subscription check: hub.mode=subscribe and the
// gateway's verify token, answered with hub.challenge.
func handshake(gw *sb.Gateway, req *sb.WebhookRequest) (*sb.Events, error) {
	if req.URL == nil {
		return nil, sb.Errorf(sb.EInvalid, "WhatsApp webhook verification: request has no URL")
	}
	q := req.URL.Query()
	if mode := q.Get("hub.mode"); mode != "subscribe" {
		return nil, sb.Errorf(sb.EInvalid, "WhatsApp webhook verification: hub.mode must be \"subscribe\"")
	}
	want := gw.Config[KeyVerifyToken]
	if want == "" {
		return nil, sb.Errorf(sb.EForbidden, "WhatsApp webhook verification: the gateway has no %s", KeyVerifyToken)
	}
	if !equalSecret(q.Get("hub.verify_token"), want) {
		return nil, sb.Errorf(sb.EForbidden, "WhatsApp webhook verification: hub.verify_token does not match the gateway's %s", KeyVerifyToken)
	}
	challenge := q.Get("hub.challenge")
	if challenge == "" {
		return nil, sb.Errorf(sb.EInvalid, "WhatsApp webhook verification: hub.challenge is missing")
	}
	if len(challenge) > maxChallenge {
		return nil, sb.Errorf(sb.EInvalid, "WhatsApp webhook verification: hub.challenge is longer than %d bytes", maxChallenge)
	}
	return &sb.Events{Response: sb.Response{StatusCode: http.StatusOK, ContentType: "text/plain", Body: []byte(challenge)}}, nil
}

// equalSecret compares two secrets in constant time, lengths included.
func equalSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// verifySignature checks X-Hub-Signature-256 against the raw body.
func verifySignature(secret string, req *sb.WebhookRequest) error {
	if secret == "" {
		return sb.Errorf(sb.EForbidden, "WhatsApp webhook: the gateway has no %s to check signatures with", KeyAppSecret)
	}
	h := strings.TrimSpace(req.Header.Get(SignatureHeader))
	if h == "" {
		return sb.Errorf(sb.EForbidden, "WhatsApp webhook: %s header is missing", SignatureHeader)
	}
	hexSig, ok := strings.CutPrefix(h, "sha256=")
	if !ok {
		return sb.Errorf(sb.EForbidden, "WhatsApp webhook: %s must start with \"sha256=\"", SignatureHeader)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return sb.Errorf(sb.EForbidden, "WhatsApp webhook: %s is not a hex SHA-256 digest", SignatureHeader)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(req.Body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return sb.Errorf(sb.EForbidden, "WhatsApp webhook: %s does not match the body signed with the gateway's %s", SignatureHeader, KeyAppSecret)
	}
	return nil
}

// Sign returns the X-Hub-Signature-256 value Meta sends for body; tests and
// tools use it to build signed requests.
func Sign(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// notification is the webhook body Meta posts.
type notification struct {
	Object *string `json:"object"`
	Entry  []entry `json:"entry"`
}

type entry struct {
	ID      string   `json:"id"`
	Changes []change `json:"changes"`
}

type change struct {
	Field string `json:"field"`
	// Value is decoded only for the "messages" field; other fields have
	// other shapes.
	Value json.RawMessage `json:"value"`
}

type messagesValue struct {
	MessagingProduct string            `json:"messaging_product"`
	Metadata         *metadata         `json:"metadata"`
	Messages         []incomingMessage `json:"messages"`
	Statuses         []statusItem      `json:"statuses"`
}

type metadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

type incomingMessage struct {
	From      string          `json:"from"`
	ID        string          `json:"id"`
	Timestamp json.RawMessage `json:"timestamp"`
	Type      string          `json:"type"`
	Text      *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image    *media `json:"image"`
	Document *media `json:"document"`
	Audio    *media `json:"audio"`
	Video    *media `json:"video"`
	Sticker  *media `json:"sticker"`
	Voice    *media `json:"voice"`
	Button   *struct {
		Text    string `json:"text"`
		Payload string `json:"payload"`
	} `json:"button"`
	Interactive *struct {
		Type        string `json:"type"`
		ButtonReply *reply `json:"button_reply"`
		ListReply   *reply `json:"list_reply"`
	} `json:"interactive"`
	Location *struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Name      string  `json:"name"`
		Address   string  `json:"address"`
	} `json:"location"`
	Reaction *struct {
		Emoji string `json:"emoji"`
	} `json:"reaction"`
}

type media struct {
	ID       string `json:"id"`
	Caption  string `json:"caption"`
	MimeType string `json:"mime_type"`
	Filename string `json:"filename"`
}

type reply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type statusItem struct {
	ID                    string          `json:"id"`
	Status                string          `json:"status"`
	Timestamp             json.RawMessage `json:"timestamp"`
	RecipientID           string          `json:"recipient_id"`
	BizOpaqueCallbackData string          `json:"biz_opaque_callback_data"`
	Errors                []statusErr     `json:"errors"`
}

type statusErr struct {
	Code      int    `json:"code"`
	Title     string `json:"title"`
	Message   string `json:"message"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

// parseTimestamp reads a Unix time that Meta sends as a string of digits
// (and, on some payloads, as a number or in milliseconds).
func parseTimestamp(raw json.RawMessage) (time.Time, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s == "null" || s == `""` {
		return time.Time{}, errors.New("timestamp is missing")
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1e15 {
		return time.Time{}, errors.New("timestamp is not a Unix time in seconds")
	}
	if n >= 1e12 { // milliseconds
		return time.UnixMilli(n).UTC(), nil
	}
	return time.Unix(n, 0).UTC(), nil
}

// parseNotification reads a signed webhook body into events.
func parseNotification(gw *sb.Gateway, body []byte) (*sb.Events, error) {
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, jsonError("body", err)
	}
	if n.Object == nil {
		return nil, invalid("object is missing")
	}
	if *n.Object != "whatsapp_business_account" {
		return nil, invalid("object is %q, want \"whatsapp_business_account\"", truncate(*n.Object, 40))
	}
	if n.Entry == nil {
		return nil, invalid("entry is missing")
	}
	phoneID := strings.TrimSpace(gw.Config[KeyPhoneNumberID])
	ev := &sb.Events{}
	for i, e := range n.Entry {
		for j, c := range e.Changes {
			where := fmt.Sprintf("entry[%d].changes[%d]", i, j)
			if c.Field == "" {
				return nil, invalid("%s.field is missing", where)
			}
			if c.Field != "messages" {
				continue // account, template and other updates are not ours
			}
			if len(c.Value) == 0 || string(c.Value) == "null" {
				return nil, invalid("%s.value is missing", where)
			}
			var v messagesValue
			if err := json.Unmarshal(c.Value, &v); err != nil {
				return nil, jsonError(where+".value", err)
			}
			if v.Metadata == nil || v.Metadata.PhoneNumberID == "" {
				return nil, invalid("%s.value.metadata.phone_number_id is missing", where)
			}
			if other := v.Metadata.PhoneNumberID; phoneID == "" || other != phoneID {
				// Another number of the same Meta app: its gateway takes it.
				if !slices.Contains(ev.OtherGateways, other) {
					ev.OtherGateways = append(ev.OtherGateways, other)
				}
				continue
			}
			for k, m := range v.Messages {
				in, ok, err := inbound(gw, m)
				if err != nil {
					return nil, invalid("%s.value.messages[%d]: %s", where, k, err)
				}
				if ok {
					ev.Incoming = append(ev.Incoming, in)
				}
			}
			for k, s := range v.Statuses {
				st, ok, err := statusUpdate(s)
				if err != nil {
					return nil, invalid("%s.value.statuses[%d]: %s", where, k, err)
				}
				if ok {
					ev.Statuses = append(ev.Statuses, st)
				}
			}
		}
	}
	return ev, nil
}

// inbound turns one incoming message into an InboundMessage; ok is false
// for notices that are not something the customer wrote (a "system" notice
// of a number change, a removed reaction).
func inbound(gw *sb.Gateway, m incomingMessage) (in sb.InboundMessage, ok bool, err error) {
	if m.ID == "" {
		return in, false, errors.New("id is missing")
	}
	if m.From == "" {
		return in, false, errors.New("from is missing")
	}
	if !isDigits(m.From) || len(m.From) < 6 || len(m.From) > 15 || m.From[0] == '0' {
		return in, false, errors.New("from is not a phone number in international form")
	}
	at, err := parseTimestamp(m.Timestamp)
	if err != nil {
		return in, false, err
	}
	if m.Type == "system" || (m.Type == "reaction" && (m.Reaction == nil || m.Reaction.Emoji == "")) {
		return in, false, nil
	}
	in = sb.InboundMessage{
		ProviderMessageID: m.ID,
		From:              "+" + m.From,
		To:                gw.Number,
		ReceivedAt:        at,
	}
	in.Body, in.MediaURLs = content(m)
	return in, true, nil
}

// content returns the text a person would read and the media ids of a
// message: the text body, a caption, the chosen button or list row.
func content(m incomingMessage) (string, []string) {
	var md *media
	switch m.Type {
	case "text":
		if m.Text != nil {
			return m.Text.Body, nil
		}
	case "image":
		md = m.Image
	case "document":
		md = m.Document
	case "audio":
		md = m.Audio
	case "video":
		md = m.Video
	case "sticker":
		md = m.Sticker
	case "voice":
		md = m.Voice
	case "button":
		if m.Button != nil {
			return m.Button.Text, nil
		}
	case "interactive":
		if it := m.Interactive; it != nil {
			switch {
			case it.ButtonReply != nil:
				return it.ButtonReply.Title, nil
			case it.ListReply != nil:
				return it.ListReply.Title, nil
			}
		}
	case "location":
		if l := m.Location; l != nil {
			s := strconv.FormatFloat(l.Latitude, 'f', -1, 64) + "," + strconv.FormatFloat(l.Longitude, 'f', -1, 64)
			for _, part := range []string{l.Name, l.Address} {
				if part != "" {
					s += " " + part
				}
			}
			return s, nil
		}
	case "reaction":
		if m.Reaction != nil {
			return m.Reaction.Emoji, nil
		}
	}
	if md == nil {
		return "", nil
	}
	var urls []string
	if md.ID != "" {
		urls = []string{MediaScheme + md.ID}
	}
	return md.Caption, urls
}

// statusUpdate turns one status item into a StatusUpdate; ok is false for
// statuses Switchboard does not track (for example "deleted").
func statusUpdate(s statusItem) (sb.StatusUpdate, bool, error) {
	if s.ID == "" {
		return sb.StatusUpdate{}, false, errors.New("id is missing")
	}
	if s.Status == "" {
		return sb.StatusUpdate{}, false, errors.New("status is missing")
	}
	at, err := parseTimestamp(s.Timestamp)
	if err != nil {
		return sb.StatusUpdate{}, false, err
	}
	u := sb.StatusUpdate{ProviderMessageID: s.ID, At: at}
	if len(s.BizOpaqueCallbackData) <= maxCallbackChars {
		u.MessageID = s.BizOpaqueCallbackData
	}
	switch s.Status {
	case "sent":
		u.Status = sb.StatusSent
	case "delivered", "read", "played":
		u.Status = sb.StatusDelivered
	case "failed":
		u.Status = sb.StatusFailed
		u.Debug = "WhatsApp reported the message as failed"
		if len(s.Errors) > 0 {
			e := s.Errors[0]
			u.ErrorCode = strconv.Itoa(e.Code)
			u.Debug = failureDebug(e, s.RecipientID)
			u.OptedOut = e.Code == 131050
		}
	default:
		return sb.StatusUpdate{}, false, nil
	}
	return u, true, nil
}

// failureDebug writes "WhatsApp <code>: <title>: <details>" from a status
// error, with the recipient number masked should Meta's text carry it.
func failureDebug(e statusErr, recipient string) string {
	title := e.Title
	if title == "" {
		title = e.Message
	}
	if title == "" {
		if r, ok := codeRules[e.Code]; ok {
			title = r.title
		} else {
			title = "failed"
		}
	}
	d := fmt.Sprintf("WhatsApp %d: %s", e.Code, title)
	if det := e.ErrorData.Details; det != "" && !strings.EqualFold(det, title) {
		d += ": " + det
	}
	to := ""
	if isDigits(recipient) {
		to = recipient
	}
	return truncate(redactor{to: to}.clean(d), maxDebugChars)
}

func invalid(format string, args ...any) *sb.Error {
	return sb.Errorf(sb.EInvalid, "WhatsApp webhook: "+format, args...)
}

// jsonError names what is wrong with a body that does not decode.
func jsonError(where string, err error) *sb.Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalid("%s is not valid JSON (at byte %d)", where, syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = where
		}
		return invalid("%s: %s must not be a JSON %s", where, field, typ.Value)
	}
	return invalid("%s could not be read as a WhatsApp notification", where)
}
