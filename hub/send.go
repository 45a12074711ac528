package hub

import (
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// MaxBodyChars is the longest message body accepted (ten GSM-7 parts).
const MaxBodyChars = 1600

// Send modes: a 1:1 send to a number that may not be texted is refused
// before it is queued; an automation send creates the message with Status
// Error and a Debug text saying why.
const (
	ModeOneToOne   = "one_to_one"
	ModeAutomation = "automation"
)

// SendRequest is one outgoing message.
type SendRequest struct {
	GatewayID string   `json:"gateway_id"`
	To        string   `json:"to"`
	Body      string   `json:"body"`
	MediaURLs []string `json:"media_urls,omitempty"`
	// RecordID is the CRM record (contact, lead, …) the message belongs to.
	RecordID string `json:"record_id,omitempty"`
	// CRMMessageID is set when the caller already created the message's
	// record in the CRM: Switchboard then only updates it.
	CRMMessageID   string   `json:"crm_message_id,omitempty"`
	Template       string   `json:"template,omitempty"`
	TemplateLang   string   `json:"template_language,omitempty"`
	TemplateParams []string `json:"template_params,omitempty"`
	// TemplateID renders the body from a stored template and the record.
	TemplateID string `json:"template_id,omitempty"`
	// FormID starts an SMS form (survey) with this message.
	FormID string `json:"form_id,omitempty"`
	// Mode is one_to_one (default) or automation.
	Mode           string `json:"mode,omitempty"`
	IdempotencyKey string `json:"-"`
}

// SendChunkArgs is a send job: messages of one gateway to hand to its
// provider. Bulk sends are split into chunks; a 1:1 send is a chunk of one.
type SendChunkArgs struct {
	OrgID      string   `json:"org_id"`
	GatewayID  string   `json:"gateway_id"`
	MessageIDs []string `json:"message_ids"`
}

// Kind implements river.JobArgs.
func (SendChunkArgs) Kind() string { return "send_chunk" }

func sendJobOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: store.QueueSend, MaxAttempts: 12}
}

// checkContent validates a body / media / template combination.
func checkContent(body string, media []string, template string) error {
	if strings.TrimSpace(body) == "" && len(media) == 0 && template == "" {
		return sb.FieldError("body", "body is required (or media_urls, or a template)")
	}
	if n := utf8.RuneCountInString(body); n > MaxBodyChars {
		return sb.FieldError("body", "body is %d characters; the most is %d", n, MaxBodyChars)
	}
	if !utf8.ValidString(body) {
		return sb.FieldError("body", "body is not valid UTF-8")
	}
	for _, u := range media {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return sb.FieldError("media_urls", "media URL must be http(s)")
		}
	}
	if len(media) > 10 {
		return sb.FieldError("media_urls", "at most 10 media URLs per message")
	}
	return nil
}

// checkForGateway asks the gateway's provider whether it can carry the
// content (see switchboard.ContentChecker).
func (h *Hub) checkForGateway(gw *sb.Gateway, c *sb.Content) error {
	p, err := h.Providers.Get(gw.Provider)
	if err != nil {
		return nil // the send worker reports the unknown provider
	}
	if cc, ok := p.(sb.ContentChecker); ok {
		return cc.CheckContent(gw, &sb.OutboundMessage{Body: c.Body, MediaURLs: c.MediaURLs, Template: c.Template,
			TemplateLang: c.TemplateLang, TemplateParams: c.TemplateParams})
	}
	return nil
}

// Send accepts one outgoing message from a user: it is stored with its send
// job in one transaction. With an idempotency key a repeated request returns
// the first message and created=false.
func (h *Hub) Send(ctx context.Context, user *sb.User, req SendRequest) (msg *sb.Message, created bool, err error) {
	if req.Mode == "" {
		req.Mode = ModeOneToOne
	}
	if req.Mode != ModeOneToOne && req.Mode != ModeAutomation {
		return nil, false, sb.FieldError("mode", "mode must be %q or %q", ModeOneToOne, ModeAutomation)
	}
	if len(req.IdempotencyKey) > 200 {
		return nil, false, sb.FieldError("idempotency_key", "idempotency key is longer than 200 characters")
	}
	org, err := h.org(ctx, user.OrgID)
	if err != nil {
		return nil, false, err
	}
	if req.GatewayID == "" {
		return nil, false, sb.FieldError("gateway_id", "gateway_id is required")
	}
	gw, err := h.Gateway(ctx, org.ID, req.GatewayID)
	if err != nil {
		return nil, false, err
	}
	if err := user.RequireGateway(gw); err != nil {
		return nil, false, err
	}
	if !gw.Active {
		return nil, false, sb.Errorf(sb.EConflict, "gateway %s is inactive", gw.ID)
	}
	to, err := sb.ParsePhone(req.To, org.Settings.DefaultRegion)
	if err != nil {
		return nil, false, &sb.Error{Code: sb.EInvalid, Field: "to", Message: "to: " + sb.ErrorMessage(err)}
	}
	// Global opt-out on the CRM record overrides subscriptions. Addressed
	// by number only, every record with that number counts, and the
	// message belongs to the record when exactly one has it.
	globalOptOut := ""
	var record *sb.CRMRecord
	if req.RecordID != "" {
		crm, err := h.CRMs.For(ctx, org)
		if err != nil {
			return nil, false, err
		}
		recs, err := crm.GetRecords(ctx, org, []string{req.RecordID})
		if err != nil {
			return nil, false, sb.Wrap(err, sb.EUnavailable, "the CRM could not be asked about record %s", req.RecordID)
		}
		if len(recs) == 0 {
			return nil, false, sb.Errorf(sb.ENotFound, "CRM record %s not found", req.RecordID)
		}
		record = &recs[0]
		if record.OptOut {
			globalOptOut = "the CRM record has the global opt-out flag set"
		}
	} else {
		byPhone, err := h.recordsByPhone(ctx, org, []string{to})
		if err != nil {
			return nil, false, err
		}
		recs := byPhone[to]
		if id := optedOutRecord(recs); id != "" {
			globalOptOut = "CRM record " + id + " with this number has the global opt-out flag set"
		}
		if len(recs) == 1 {
			record = &recs[0]
			req.RecordID = record.ID
		}
	}
	original := req.Body
	if req.TemplateID != "" {
		if req.Body != "" {
			return nil, false, sb.FieldError("body", "give either body or template_id, not both")
		}
		if h.Renderer == nil {
			return nil, false, sb.FieldError("template_id", "templates are not available")
		}
		if req.Body, err = h.Renderer.Render(ctx, org, user, req.TemplateID, record); err != nil {
			return nil, false, err
		}
	}
	if err := checkContent(req.Body, req.MediaURLs, req.Template); err != nil && req.FormID == "" {
		return nil, false, err
	}
	source := sb.SourceAPI
	if req.Mode == ModeAutomation {
		source = sb.SourceAutomation
	}
	now := h.DB.Now().UTC()
	seg := sb.CountSegments(req.Body)
	m := &sb.Message{
		ID: store.NewID(), OrgID: org.ID, GatewayID: gw.ID, Direction: sb.Outgoing, Status: sb.StatusQueued,
		Segments: seg.Segments, RecordID: req.RecordID, CRMMessageID: req.CRMMessageID, OwnerID: user.ID, CreatedByID: user.ID,
		PhoneHash: h.hash(to), IdempotencyKey: req.IdempotencyKey, Source: source, CreatedAt: now, UpdatedAt: now,
	}
	if req.IdempotencyKey != "" {
		canon := req
		canon.To, canon.Body = to, original
		m.RequestHash = h.requestHash("message", user, canon)
	}
	// replay returns the message made earlier with the key, when the
	// request is the same.
	replay := func(prev *sb.Message) error {
		if len(prev.RequestHash) > 0 && !hmac.Equal(prev.RequestHash, m.RequestHash) {
			return idempotencyConflict(req.IdempotencyKey, "message "+prev.ID)
		}
		msg = prev
		return nil
	}
	content := &sb.Content{Phone: to, Body: req.Body, MediaURLs: req.MediaURLs, Template: req.Template, TemplateLang: req.TemplateLang, TemplateParams: req.TemplateParams}
	if err := h.checkForGateway(gw, content); err != nil {
		return nil, false, err
	}
	err = h.DB.Batch(ctx, func(tx *store.Tx) error {
		msg, created = nil, false
		if req.IdempotencyKey != "" {
			prev, err := tx.MessageByIdempotencyKey(ctx, org.ID, req.IdempotencyKey)
			if err != nil {
				return err
			}
			if prev != nil {
				return replay(prev)
			}
		}
		block := ""
		if globalOptOut != "" {
			block = sb.DebugGlobalOptOut
		} else {
			sub, err := tx.Subscription(ctx, gw.ID, m.PhoneHash)
			if err != nil {
				return err
			}
			status := sb.EffectiveStatus(sub, org.Settings.OptInMode)
			block = sb.BlockDebug(status)
			if block != "" && req.Mode == ModeOneToOne {
				return refusal(status, sub)
			}
		}
		if block != "" && req.Mode == ModeOneToOne {
			return sb.Errorf(sb.EConflict, "not sent: %s", globalOptOut)
		}
		mm, cc := *m, *content
		if block != "" {
			mm.Status, mm.Debug = sb.StatusError, block
		} else {
			if err := h.prepareOutgoing(ctx, tx, org, gw, []Outgoing{{Msg: &mm, Content: &cc, Record: record, FormID: req.FormID, User: user}}); err != nil {
				return err
			}
			mm.Segments = sb.CountSegments(cc.Body).Segments
		}
		if err := tx.InsertMessages(ctx, []store.NewMessage{{Msg: &mm, Content: &cc}}); err != nil {
			return err
		}
		if block == "" {
			tx.AddJob(SendChunkArgs{OrgID: org.ID, GatewayID: gw.ID, MessageIDs: []string{mm.ID}}, sendJobOpts())
		}
		msg, created = &mm, true
		return nil
	})
	if sb.IsCode(err, sb.EConflict) && req.IdempotencyKey != "" {
		// The same key, used at the same moment by another process, won.
		first := err
		err = h.DB.Tx(ctx, func(tx *store.Tx) error {
			prev, err := tx.MessageByIdempotencyKey(ctx, org.ID, req.IdempotencyKey)
			if err != nil || prev == nil {
				return cmp.Or(err, first)
			}
			return replay(prev)
		})
	}
	if err != nil {
		return nil, false, err
	}
	if created {
		h.Metrics.MessagesAccepted.WithLabelValues(source).Inc()
	}
	return msg, created, nil
}

// recordsByPhone asks the org's CRM, in one set-based lookup, for the
// records of numbers addressed without a record id (E.164). When the CRM
// cannot answer the send is refused (503: try again), except while the
// CRM connection is offline (its authorization revoked or expired, shown
// to admins until one authorizes again): then no record can be read at all,
// sending goes on as it did before the number had records, and a warning
// is logged.
func (h *Hub) recordsByPhone(ctx context.Context, org *sb.Org, phones []string) (map[string][]sb.CRMRecord, error) {
	if len(phones) == 0 {
		return nil, nil
	}
	crm, err := h.CRMs.For(ctx, org)
	if err != nil {
		return nil, err
	}
	recs, err := crm.FindByPhones(ctx, org, phones)
	if sb.CRMOffline(err) {
		h.Log.Warn("CRM offline: numbers without a record id sent without their records' global opt-out flags", "org", org.ID, "numbers", len(phones), "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, sb.Wrap(err, sb.EUnavailable, "the CRM could not be asked which records have the recipients' numbers (their global opt-out flags)")
	}
	return recs, nil
}

// optedOutRecord returns the id of a record with the global opt-out flag
// among recs, or "".
func optedOutRecord(recs []sb.CRMRecord) string {
	for _, r := range recs {
		if r.OptOut {
			return r.ID
		}
	}
	return ""
}

// requestHash is the keyed hash of a request's canonical form (its JSON
// with the user who made it), stored with an idempotency key.
func (h *Hub) requestHash(kind string, user *sb.User, req any) []byte {
	b, err := json.Marshal(struct {
		User    string `json:"user"`
		Request any    `json:"request"`
	}{user.ID, req})
	if err != nil {
		panic(fmt.Sprintf("hub: request of kind %s cannot be encoded: %v", kind, err))
	}
	return h.DB.Hasher().Request(kind, b)
}

// idempotencyConflict is the error for a reused idempotency key.
func idempotencyConflict(key, made string) error {
	return &sb.Error{Code: sb.EConflict, Field: "Idempotency-Key", Message: fmt.Sprintf(
		"Idempotency-Key %q was used with a different request (it made %s); use a new key for a new request, or repeat the first request unchanged", key, made)}
}

// refusal explains why a 1:1 message to a number is refused.
func refusal(status sb.SubscriptionStatus, sub *sb.Subscription) error {
	detail := ""
	if sub != nil && sub.Detail != "" {
		detail = " (" + sub.Detail + ")"
	}
	if status == sb.NoOptIn {
		return sb.Errorf(sb.EConflict, "not sent: the recipient has not opted in to this gateway and the org is in mandatory opt-in mode; 1:1 messages need an opt-in first")
	}
	return sb.Errorf(sb.EConflict, "not sent: the recipient has opted out of this gateway%s; 1:1 messages to opted-out numbers are refused", detail)
}
