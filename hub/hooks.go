package hub

import (
	"context"

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
// for a number as soon as it opts out of a gateway — by keyword, by hand or
// by automation — inside the transaction that records the opt-out. (An
// opt-out the provider reports is seen at the number's next text; nothing
// is sent to the number meanwhile.)
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
