package hub

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// MaxBulkRecipients bounds one bulk send.
const MaxBulkRecipients = 200_000

// Recipient is one addressee of a bulk send: a phone number, a CRM record
// (whose phone is looked up), or both.
type Recipient struct {
	To       string `json:"to,omitempty"`
	RecordID string `json:"record_id,omitempty"`
}

// BulkRequest is a bulk send.
type BulkRequest struct {
	GatewayID  string      `json:"gateway_id"`
	Body       string      `json:"body"`
	MediaURLs  []string    `json:"media_urls,omitempty"`
	Recipients []Recipient `json:"recipients"`
	// TemplateID renders each recipient's body from a stored template.
	TemplateID string `json:"template_id,omitempty"`
	// FormID starts an SMS form (survey) with each message.
	FormID string `json:"form_id,omitempty"`
	// IdempotencyKey makes a retried request return the first one's result.
	IdempotencyKey string `json:"-"`
}

// Excluded is a recipient left out of a bulk send, with the reason.
type Excluded struct {
	Index    int    `json:"index"`
	RecordID string `json:"record_id,omitempty"`
	// To is masked: only the country code and last two digits.
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`
}

// BulkResult describes an accepted bulk send.
type BulkResult struct {
	BatchID  string     `json:"batch_id"`
	Accepted int        `json:"accepted"`
	Queued   int        `json:"queued"`
	Blocked  int        `json:"blocked"`
	Excluded []Excluded `json:"excluded"`
	Segments int        `json:"segments_per_message"`
	// Replayed is true when an earlier request with the same idempotency
	// key made this bulk send.
	Replayed bool `json:"replayed,omitempty"`
}

// Bulk accepts a bulk send. Records with the global opt-out flag (also
// when a recipient is given by number only and a CRM record with that
// number has it), missing or invalid numbers and duplicates are left out and
// reported. A number given alone is linked to the CRM record that has it
// when exactly one does. Numbers that are
// opted out (or not opted in, in mandatory mode) on the gateway get a message
// with Status Error and Debug "Previous Opt-out" / "No Opt-In" and reach no
// provider. The check is one set-based lookup for the whole send.
func (h *Hub) Bulk(ctx context.Context, user *sb.User, req BulkRequest) (*BulkResult, error) {
	if err := user.Require(sb.PermBulkSMS); err != nil {
		return nil, err
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	if org.Settings.CRM == sb.CRMSalesforce && !org.Settings.MessagingAPIForBulk {
		return nil, &sb.Error{Code: sb.EConflict, Field: ToggleMessagingAPIForBulk, Message: "bulk sends of an org connected to Salesforce go through the Messaging API: a System Admin must enable \"Messaging API for bulk sends\" (messaging_api_for_bulk in the org settings) first"}
	}
	gw, err := h.Gateway(ctx, org.ID, req.GatewayID)
	if err != nil {
		return nil, err
	}
	if err := user.RequireGateway(gw); err != nil {
		return nil, err
	}
	if !gw.Active {
		return nil, sb.Errorf(sb.EConflict, "gateway %s is inactive", gw.ID)
	}
	if req.TemplateID != "" {
		if req.Body != "" {
			return nil, sb.FieldError("body", "give either body or template_id, not both")
		}
		if h.Renderer == nil {
			return nil, sb.FieldError("template_id", "templates are not available")
		}
	} else if err := checkContent(req.Body, req.MediaURLs, ""); err != nil && req.FormID == "" {
		return nil, err
	}
	if err := h.checkForGateway(gw, &sb.Content{Body: req.Body, MediaURLs: req.MediaURLs}); err != nil {
		return nil, err
	}
	if len(req.Recipients) == 0 {
		return nil, sb.FieldError("recipients", "recipients is empty")
	}
	if len(req.IdempotencyKey) > 200 {
		return nil, sb.FieldError("idempotency_key", "idempotency key is longer than 200 characters")
	}
	var reqHash []byte
	if req.IdempotencyKey != "" {
		reqHash = h.requestHash("bulk", user, req)
		if prev, err := h.replayedBulk(ctx, org.ID, req.IdempotencyKey, reqHash); prev != nil || err != nil {
			return prev, err
		}
	}
	if len(req.Recipients) > MaxBulkRecipients {
		return nil, sb.FieldError("recipients", "a bulk send has at most %d recipients, got %d", MaxBulkRecipients, len(req.Recipients))
	}
	res := &BulkResult{BatchID: store.NewID(), Excluded: []Excluded{}, Segments: sb.CountSegments(req.Body).Segments}

	// Records: look up phones and global opt-out flags in one CRM call.
	var recordIDs []string
	for _, r := range req.Recipients {
		if r.RecordID != "" {
			recordIDs = append(recordIDs, r.RecordID)
		}
	}
	records := map[string]sb.CRMRecord{}
	if len(recordIDs) > 0 {
		crm, err := h.CRMs.For(ctx, org)
		if err != nil {
			return nil, err
		}
		recs, err := crm.GetRecords(ctx, org, recordIDs)
		if err != nil {
			return nil, sb.Wrap(err, sb.EUnavailable, "the CRM could not be asked about the recipients' records")
		}
		for _, r := range recs {
			records[r.ID] = r
		}
	}

	// Numbers without a record id: the records that have them, in one
	// set-based CRM lookup for the whole send.
	type parsedPhone struct {
		phone string
		err   error
	}
	parsed := make([]parsedPhone, len(req.Recipients))
	var phoneOnly []string
	for i, r := range req.Recipients {
		if r.To != "" {
			p, err := sb.ParsePhone(r.To, org.Settings.DefaultRegion)
			parsed[i] = parsedPhone{p, err}
			if err == nil && r.RecordID == "" {
				phoneOnly = append(phoneOnly, p)
			}
		}
	}
	byPhone, err := h.recordsByPhone(ctx, org, phoneOnly)
	if err != nil {
		return nil, err
	}

	type target struct {
		phone, recordID string
		hash            []byte
		record          *sb.CRMRecord
		body            string
	}
	targets := make([]target, 0, len(req.Recipients))
	seen := make(map[string]bool, len(req.Recipients))
	for i, r := range req.Recipients {
		to := r.To
		if r.RecordID != "" {
			rec, ok := records[r.RecordID]
			if !ok {
				res.Excluded = append(res.Excluded, Excluded{Index: i, RecordID: r.RecordID, Reason: "CRM record not found"})
				continue
			}
			if rec.OptOut {
				res.Excluded = append(res.Excluded, Excluded{Index: i, RecordID: r.RecordID, Reason: "Global opt-out"})
				continue
			}
			if to == "" {
				to = rec.Phone
			}
		}
		if to == "" {
			res.Excluded = append(res.Excluded, Excluded{Index: i, RecordID: r.RecordID, Reason: "no phone number"})
			continue
		}
		phone, err := parsed[i].phone, parsed[i].err
		if to != r.To {
			phone, err = sb.ParsePhone(to, org.Settings.DefaultRegion)
		}
		if err != nil {
			res.Excluded = append(res.Excluded, Excluded{Index: i, RecordID: r.RecordID, Reason: "invalid phone number: " + sb.ErrorMessage(err)})
			continue
		}
		if seen[phone] {
			res.Excluded = append(res.Excluded, Excluded{Index: i, RecordID: r.RecordID, To: sb.MaskPhone(phone), Reason: "duplicate phone number"})
			continue
		}
		seen[phone] = true
		t := target{phone: phone, recordID: r.RecordID, hash: h.hash(phone), body: req.Body}
		if rec, ok := records[r.RecordID]; ok {
			t.record = &rec
		} else if r.RecordID == "" {
			recs := byPhone[phone]
			if id := optedOutRecord(recs); id != "" {
				res.Excluded = append(res.Excluded, Excluded{Index: i, RecordID: id, To: sb.MaskPhone(phone), Reason: "Global opt-out"})
				continue
			}
			if len(recs) == 1 {
				t.record, t.recordID = &recs[0], recs[0].ID
			}
		}
		if req.TemplateID != "" {
			body, err := h.Renderer.Render(ctx, org, user, req.TemplateID, t.record)
			if err != nil {
				if sb.IsCode(err, sb.EInvalid) {
					res.Excluded = append(res.Excluded, Excluded{Index: i, RecordID: r.RecordID, To: sb.MaskPhone(phone), Reason: "template: " + sb.ErrorMessage(err)})
					continue
				}
				return nil, err
			}
			t.body = body
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return nil, sb.Errorf(sb.EInvalid, "no recipient can be texted: all %d were excluded (first reason: %s)", len(res.Excluded), res.Excluded[0].Reason)
	}

	now := h.DB.Now().UTC()
	excluded, _ := json.Marshal(res.Excluded)
	err = h.DB.Tx(ctx, func(tx *store.Tx) error {
		hashes := make([][]byte, len(targets))
		for i, t := range targets {
			hashes[i] = t.hash
		}
		statuses, err := tx.SubscriptionStatuses(ctx, gw.ID, hashes)
		if err != nil {
			return err
		}
		batch := store.Batch{ID: res.BatchID, OrgID: org.ID, GatewayID: gw.ID, CreatedBy: user.ID, Total: len(req.Recipients),
			Excluded: string(excluded), CreatedAt: now, IdempotencyKey: req.IdempotencyKey, RequestHash: reqHash}
		msgs := make([]store.NewMessage, 0, len(targets))
		var prep []Outgoing
		var queued []string
		res.Queued, res.Blocked = 0, 0
		for i, t := range targets {
			st, ok := statuses[string(t.hash)]
			var sub *sb.Subscription
			if ok {
				sub = &sb.Subscription{Status: st}
			}
			m := &sb.Message{
				ID: store.NewID(), OrgID: org.ID, GatewayID: gw.ID, Direction: sb.Outgoing, Status: sb.StatusQueued,
				Segments: res.Segments, BatchID: res.BatchID, RecordID: t.recordID, OwnerID: user.ID, CreatedByID: user.ID,
				PhoneHash: t.hash, Source: sb.SourceBulk, CreatedAt: now.Add(time.Duration(i)), UpdatedAt: now,
			}
			c := &sb.Content{Phone: t.phone, Body: t.body, MediaURLs: req.MediaURLs}
			m.Segments = sb.CountSegments(c.Body).Segments
			if block := sb.BlockDebug(sb.EffectiveStatus(sub, org.Settings.OptInMode)); block != "" {
				m.Status, m.Debug = sb.StatusError, block
				res.Blocked++
			} else {
				queued = append(queued, m.ID)
				res.Queued++
				prep = append(prep, Outgoing{Msg: m, Content: c, Record: t.record, FormID: req.FormID, User: user})
			}
			msgs = append(msgs, store.NewMessage{Msg: m, Content: c})
		}
		if err := h.prepareOutgoing(ctx, tx, org, gw, prep); err != nil {
			return err
		}
		for _, p := range prep {
			p.Msg.Segments = sb.CountSegments(p.Content.Body).Segments
		}
		// With templates or tracked links bodies differ: report the most
		// segments any message takes.
		res.Segments = 0
		for _, m := range msgs {
			res.Segments = max(res.Segments, m.Msg.Segments)
		}
		if err := tx.InsertMessages(ctx, msgs); err != nil {
			return err
		}
		for start := 0; start < len(queued); start += h.ChunkSize {
			tx.AddJob(SendChunkArgs{OrgID: org.ID, GatewayID: gw.ID, MessageIDs: queued[start:min(start+h.ChunkSize, len(queued))]}, sendJobOpts())
		}
		res.Accepted = len(targets)
		b, _ := json.Marshal(res)
		batch.Result = string(b)
		return tx.CreateBatch(ctx, batch)
	})
	if sb.IsCode(err, sb.EConflict) && req.IdempotencyKey != "" {
		// The same request, made at the same moment, won the race.
		if prev, perr := h.replayedBulk(ctx, org.ID, req.IdempotencyKey, reqHash); prev != nil || perr != nil {
			return prev, perr
		}
	}
	if err != nil {
		return nil, err
	}
	h.Metrics.MessagesAccepted.WithLabelValues(sb.SourceBulk).Add(float64(res.Accepted))
	return res, nil
}

// BatchStatus is a bulk send's progress.
type BatchStatus struct {
	store.Batch
	Counts map[sb.Status]int `json:"counts"`
	// Done is true when no message of the batch is still Queued.
	Done bool `json:"done"`
}

// Batch returns a bulk send's progress and results by status.
func (h *Hub) Batch(ctx context.Context, user *sb.User, id string) (*BatchStatus, error) {
	b, err := h.DB.BulkBatch(ctx, user.OrgID, id)
	if err != nil {
		return nil, err
	}
	if !user.CanUseGateway(b.GatewayID) {
		return nil, sb.Errorf(sb.EForbidden, "bulk send %s is on gateway %s, which you do not have access to; a System Admin can add it to your gateways", b.ID, b.GatewayID)
	}
	counts, err := h.DB.BatchCounts(ctx, user.OrgID, id)
	if err != nil {
		return nil, fmt.Errorf("batch counts: %w", err)
	}
	return &BatchStatus{Batch: *b, Counts: counts, Done: counts[sb.StatusQueued] == 0}, nil
}

// replayedBulk returns the result of the bulk send made earlier with key,
// or nil; a conflict when that send's request differs from this one's
// (reqHash).
func (h *Hub) replayedBulk(ctx context.Context, orgID, key string, reqHash []byte) (*BulkResult, error) {
	raw, prevHash, err := h.DB.BatchResult(ctx, orgID, key)
	if err != nil || raw == "" {
		return nil, err
	}
	var res BulkResult
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		return nil, err
	}
	if len(prevHash) > 0 && !hmac.Equal(prevHash, reqHash) {
		return nil, idempotencyConflict(key, "bulk send "+res.BatchID)
	}
	res.Replayed = true
	return &res, nil
}
