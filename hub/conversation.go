package hub

import (
	"context"
	"errors"
	"slices"
	"strings"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// Conversation returns the thread of a CRM record (recordID) or else of an
// E.164 phone number: the message records Switchboard wrote to the org's
// CRM (CRMConversation), newest limit of them, oldest first, as the user
// may see them (VisibleThread).
func (h *Hub) Conversation(ctx context.Context, org *sb.Org, user *sb.User, recordID, phone string, limit int) ([]sb.CRMMessageRecord, error) {
	recs, err := h.CRMConversation(ctx, org, recordID, phone, limit)
	if err != nil {
		return nil, err
	}
	return h.VisibleThread(ctx, org, user, recs)
}

// CRMConversation reads the thread of a CRM record (recordID) or else of
// an E.164 phone number from the org's CRM, newest limit records, oldest
// first, for every gateway. A CRM that cannot be reached (or refuses the
// query) is an unavailable error naming it: "Salesforce could not be
// reached: …".
func (h *Hub) CRMConversation(ctx context.Context, org *sb.Org, recordID, phone string, limit int) ([]sb.CRMMessageRecord, error) {
	if recordID == "" && phone == "" {
		return nil, sb.FieldError("phone", "record_id or phone is required")
	}
	crm, err := h.CRMs.For(ctx, org)
	if err != nil {
		return nil, CRMUnreachable(org, err)
	}
	recs, err := crm.Conversation(ctx, org, recordID, phone, limit)
	if err != nil {
		return nil, CRMUnreachable(org, err)
	}
	return recs, nil
}

// VisibleThread gives every record of a thread its gateway's id and
// leaves out the records of gateways the user may not use. recs is not
// changed.
//
// A Salesforce record names only the gateway number, so its gateway is
// taken from Switchboard's own message (by the record's message id) while
// that is kept, else from the number (a number several gateways share
// counts as any of them the user may use). A user limited to some gateways
// does not see records whose gateway is not known. Such a record's time is
// also the message's own while it is kept (the record's CreatedDate is
// when it was written back, and records written in one batch share it),
// and the thread is put in that order.
func (h *Hub) VisibleThread(ctx context.Context, org *sb.Org, user *sb.User, recs []sb.CRMMessageRecord) ([]sb.CRMMessageRecord, error) {
	gws, err := h.DB.Gateways(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	byNumber := map[string][]string{}
	for _, g := range gws {
		known[g.ID] = true
		byNumber[g.Number] = append(byNumber[g.Number], g.ID)
	}
	var ask []string
	for _, r := range recs {
		if r.GatewayID == "" && r.MessageID != "" {
			ask = append(ask, r.MessageID)
		}
	}
	var refs map[string]store.MessageRef
	if len(ask) > 0 {
		if refs, err = h.DB.MessageRefs(ctx, org.ID, ask); err != nil {
			return nil, err
		}
	}
	limited := user.VisibleGateways() != nil
	out := make([]sb.CRMMessageRecord, 0, len(recs))
	for _, r := range recs {
		if ref, ok := refs[r.MessageID]; ok && r.GatewayID == "" {
			r.GatewayID, r.CreatedAt = ref.GatewayID, ref.CreatedAt
			if r.StatusAt.Before(r.CreatedAt) {
				r.StatusAt = r.CreatedAt
			}
		}
		if r.GatewayID == "" {
			ids := byNumber[r.GatewayNumber]
			for _, id := range ids {
				if user.CanUseGateway(id) {
					r.GatewayID = id
					break
				}
			}
			if r.GatewayID == "" && len(ids) > 0 {
				r.GatewayID = ids[0]
			}
		}
		if !user.CanUseGateway(r.GatewayID) || (limited && !known[r.GatewayID]) {
			continue
		}
		out = append(out, r)
	}
	if len(refs) > 0 {
		slices.SortStableFunc(out, func(a, b sb.CRMMessageRecord) int { return a.CreatedAt.Compare(b.CreatedAt) })
	}
	return out, nil
}

// CRMUnreachable words an error of the org's CRM: errors of the CRM
// itself (down, authorization gone, query refused) are unavailable ones
// naming the CRM; Switchboard's own errors (a bad record id) stay as they
// are.
func CRMUnreachable(org *sb.Org, err error) error {
	var ce *sb.CRMError
	if !errors.As(err, &ce) {
		return err
	}
	name := "The CRM"
	if org.Settings.CRM == sb.CRMSalesforce {
		name = "Salesforce"
	}
	msg := strings.TrimPrefix(ce.Message, "Salesforce could not be reached: ")
	if msg == "" {
		msg = ce.Code
	}
	return sb.Wrap(err, sb.EUnavailable, "%s could not be reached: %s", name, msg)
}
