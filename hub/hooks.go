package hub

import (
	"context"
	"errors"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// Features that shape message content (templates, tracked links, SMS forms)
// plug into the pipeline through these hooks, so the send and receive paths
// stay one piece of code.

// Renderer turns a stored template into a body for one recipient.
type Renderer interface {
	// Render returns the body of template templateID for the CRM record rec
	// (nil when the recipient has no record) sent by user. Unknown merge
	// fields are EInvalid errors naming the field.
	Render(ctx context.Context, org *sb.Org, user *sb.User, templateID string, rec *sb.CRMRecord) (string, error)
}

// OutgoingHook sees outgoing messages inside the transaction that accepts
// them, before they are stored: it may rewrite their content (tracked links)
// and store what it needs (form sessions, link codes) in the same
// transaction.
type OutgoingHook interface {
	PrepareOutgoing(ctx context.Context, tx *store.Tx, org *sb.Org, gw *sb.Gateway, msgs []Outgoing) error
}

// Outgoing is one message being accepted.
type Outgoing struct {
	Msg     *sb.Message
	Content *sb.Content
	// Record is the recipient's CRM record, when known.
	Record *sb.CRMRecord
	// FormID starts an SMS form with this message, when set.
	FormID string
	// User is the sending user.
	User *sb.User
}

// IncomingHook sees every incoming message that is not an opt-out, opt-in
// or help keyword (those always win), inside the transaction that stores
// it. A non-empty reply is queued as an answer from the gateway, unless the
// number may not be texted on the gateway (opted out, or not opted in under
// mandatory opt-in). A hook that takes the message as part of something it
// runs (an answer to an SMS form) may set msg.OwnerID and msg.RecordID: the
// hub stores them, and the reply gets them too.
type IncomingHook interface {
	HandleIncoming(ctx context.Context, tx *store.Tx, org *sb.Org, gw *sb.Gateway, msg *sb.Message, c *sb.Content) (reply string, err error)
}

// OptOutHook is implemented by incoming hooks that must stop what they run
// for a number as soon as it opts out of a gateway — by keyword, by hand, by
// automation, by import or reported by the provider — inside the
// transaction that records the opt-out (store.DB.SetOptOutHook).
type OptOutHook interface {
	OptedOut(ctx context.Context, tx *store.Tx, orgID, gatewayID string, phoneHash []byte) error
}

// optedOut tells the incoming hooks that care that a number opted out.
func (h *Hub) optedOut(ctx context.Context, tx *store.Tx, orgID, gatewayID string, phoneHash []byte) error {
	for _, hook := range h.IncomingHooks {
		if oh, ok := hook.(OptOutHook); ok {
			if err := oh.OptedOut(ctx, tx, orgID, gatewayID, phoneHash); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *Hub) prepareOutgoing(ctx context.Context, tx *store.Tx, org *sb.Org, gw *sb.Gateway, out []Outgoing) error {
	for _, hook := range h.OutgoingHooks {
		if err := hook.PrepareOutgoing(ctx, tx, org, gw, out); err != nil {
			return err
		}
	}
	return nil
}

// BodyPreviewer is implemented by outgoing hooks that change a message's
// body (tracked links): PreviewBody returns the body as it would be sent,
// without storing anything.
type BodyPreviewer interface {
	PreviewBody(ctx context.Context, org *sb.Org, body string) (string, error)
}

// PreviewBody returns the body a 1:1 message of the user's org would be
// sent with (long URLs as tracked links of their real length), for a
// compose box's segment counter. It reads only.
func (h *Hub) PreviewBody(ctx context.Context, user *sb.User, body string) (string, error) {
	org, err := h.org(ctx, user.OrgID)
	if err != nil {
		return "", err
	}
	for _, hook := range h.OutgoingHooks {
		if p, ok := hook.(BodyPreviewer); ok {
			if body, err = p.PreviewBody(ctx, org, body); err != nil {
				return "", err
			}
		}
	}
	return body, nil
}

// errPreviewDone rolls a preview's transaction back.
var errPreviewDone = errors.New("preview done")

// previewChunk bounds the messages one preview transaction prepares.
const previewChunk = 500

// PreviewBulkBodies returns the bodies messages of a bulk send by user on
// gateway gw would be sent with, in the order of bodies: the content hooks
// run on them exactly as on the send (long URLs become tracked links of
// their real length, an SMS form's first question is appended when formID
// is set), in transactions that are rolled back, so nothing is stored or
// queued. Errors are the send's (an unknown form, a body too long with the
// form's question).
func (h *Hub) PreviewBulkBodies(ctx context.Context, user *sb.User, gw *sb.Gateway, formID string, bodies []string) ([]string, error) {
	org, err := h.org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(bodies))
	batch, hash, now := store.NewID(), h.hash("preview"), h.DB.Now().UTC()
	for start := 0; start < len(bodies); start += previewChunk {
		part := bodies[start:min(start+previewChunk, len(bodies))]
		err := h.DB.Tx(ctx, func(tx *store.Tx) error {
			prep := make([]Outgoing, len(part))
			for i, b := range part {
				m := &sb.Message{ID: store.NewID(), OrgID: org.ID, GatewayID: gw.ID, Direction: sb.Outgoing, Status: sb.StatusQueued,
					BatchID: batch, OwnerID: user.ID, CreatedByID: user.ID, PhoneHash: hash, Source: sb.SourceBulk, CreatedAt: now, UpdatedAt: now}
				prep[i] = Outgoing{Msg: m, Content: &sb.Content{Body: b}, FormID: formID, User: user}
			}
			if err := h.prepareOutgoing(ctx, tx, org, gw, prep); err != nil {
				return err
			}
			for i, o := range prep {
				out[start+i] = o.Content.Body
			}
			return errPreviewDone
		})
		if !errors.Is(err, errPreviewDone) {
			return nil, err
		}
	}
	return out, nil
}
