package hub

import (
	"context"
	"strings"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// setSubscriptionTx stores a subscription change with its history entry (a
// locked opt-out stays locked: see store.Tx.SetSubscription); an opt-out also
// ends what content features run for the number (an open SMS form: the
// store's opt-out hook, set in New).
func (h *Hub) setSubscriptionTx(ctx context.Context, tx *store.Tx, s *sb.Subscription) error {
	if _, err := tx.SetSubscription(ctx, s); err != nil {
		return err
	}
	h.Metrics.OptChanges.WithLabelValues(string(s.Status), s.Via).Inc()
	return nil
}

// SubscriptionRequest is a manual or automation change of a number's
// subscription on a gateway.
type SubscriptionRequest struct {
	GatewayID string                `json:"gateway_id"`
	Phone     string                `json:"phone"`
	Status    sb.SubscriptionStatus `json:"status"`
	// Detail is a custom description (automation); manual changes get
	// "Manual opt-in by <user>" / "Manual opt-out by <user>".
	Detail string `json:"detail,omitempty"`
	// Via is "manual" (default) or "automation".
	Via string `json:"via,omitempty"`
}

// SetSubscription changes a number's subscription on a gateway by hand (the
// conversation view's buttons) or from an automation. Only System Admins and
// users with "Feature: Manual Opt-In/Opt-Out" may. A number that opted out
// from the phone (an opt-out keyword, or the provider's "unsubscribed")
// cannot be opted in this way: only an opt-in keyword from the phone
// reverses it; an opt-out then is recorded in the history and the lock
// stays. It returns the number's subscription as stored.
func (h *Hub) SetSubscription(ctx context.Context, user *sb.User, req SubscriptionRequest) (*sb.Subscription, error) {
	if err := user.Require(sb.PermManualOptInOut); err != nil {
		return nil, err
	}
	if req.Status != sb.OptedIn && req.Status != sb.OptedOut {
		return nil, sb.FieldError("status", "status must be %q or %q", sb.OptedIn, sb.OptedOut)
	}
	if req.Via == "" {
		req.Via = sb.ViaManual
	}
	if req.Via != sb.ViaManual && req.Via != sb.ViaAutomation {
		return nil, sb.FieldError("via", "via must be %q or %q", sb.ViaManual, sb.ViaAutomation)
	}
	if len(req.Detail) > 255 {
		return nil, sb.FieldError("detail", "detail is longer than 255 characters")
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	gw, err := h.Gateway(ctx, org.ID, req.GatewayID)
	if err != nil {
		return nil, err
	}
	if err := user.RequireGateway(gw); err != nil {
		return nil, err
	}
	phone, err := sb.ParsePhone(req.Phone, org.Settings.DefaultRegion)
	if err != nil {
		return nil, err
	}
	detail := strings.TrimSpace(req.Detail)
	if req.Via == sb.ViaManual || detail == "" {
		detail = sb.DetailManual(req.Status, user.Name)
	}
	s := &sb.Subscription{OrgID: org.ID, GatewayID: gw.ID, PhoneHash: h.hash(phone), Status: req.Status, Detail: detail, Via: req.Via, UpdatedBy: user.ID}
	var stored *sb.Subscription
	err = h.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := h.setSubscriptionTx(ctx, tx, s); err != nil {
			return err
		}
		var err error
		stored, err = tx.Subscription(ctx, gw.ID, s.PhoneHash)
		return err
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// GatewaySubscription is one row of the subscriptions panel.
type GatewaySubscription struct {
	GatewayID   string                `json:"gateway_id"`
	GatewayName string                `json:"gateway_name"`
	Number      string                `json:"gateway_number"`
	Status      sb.SubscriptionStatus `json:"status"`
	Detail      string                `json:"detail"`
	UpdatedAt   string                `json:"updated_at,omitempty"`
	// CanSend is false when messages to the number on this gateway are
	// blocked (the conversation view then disables all but the gateway
	// picklist).
	CanSend bool `json:"can_send"`
	// CanOptIn / CanOptOut say whether the manual buttons are shown.
	CanOptIn  bool `json:"can_opt_in"`
	CanOptOut bool `json:"can_opt_out"`
	// Locked: opted out from the phone (an opt-out keyword, or the
	// provider's "unsubscribed"); only an opt-in keyword texted from the
	// phone can opt it back in, so manual opt-in is not possible.
	Locked bool `json:"locked"`
}

// SubscriptionView lists, for a phone number, every active gateway of the
// org the user may use with the number's status and detail and which manual
// buttons the user may use.
func (h *Hub) SubscriptionView(ctx context.Context, user *sb.User, phone string) ([]GatewaySubscription, error) {
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	p, err := sb.ParsePhone(phone, org.Settings.DefaultRegion)
	if err != nil {
		return nil, err
	}
	gws, err := h.DB.Gateways(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	subs, err := h.DB.SubscriptionsForPhone(ctx, org.ID, h.hash(p))
	if err != nil {
		return nil, err
	}
	byGW := map[string]*sb.Subscription{}
	for _, s := range subs {
		byGW[s.GatewayID] = s
	}
	manual := user.Can(sb.PermManualOptInOut)
	out := make([]GatewaySubscription, 0, len(gws))
	for _, gw := range gws {
		if !gw.Active || !user.CanUseGateway(gw.ID) {
			continue
		}
		s := byGW[gw.ID]
		st := sb.EffectiveStatus(s, org.Settings.OptInMode)
		row := GatewaySubscription{GatewayID: gw.ID, GatewayName: gw.Name, Number: gw.Number, Status: st, CanSend: sb.BlockDebug(st) == ""}
		if s != nil {
			row.Detail = s.Detail
			row.UpdatedAt = s.UpdatedAt.Format("2006-01-02T15:04:05Z07:00")
			row.Locked = s.LockedOut()
		}
		row.CanOptOut = manual && st != sb.OptedOut
		row.CanOptIn = manual && st != sb.OptedIn && !row.Locked
		out = append(out, row)
	}
	return out, nil
}

// SubscriptionHistory returns a number's subscription changes on the
// gateways the user may use.
func (h *Hub) SubscriptionHistory(ctx context.Context, user *sb.User, phone string) ([]sb.SubscriptionEvent, error) {
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	p, err := sb.ParsePhone(phone, org.Settings.DefaultRegion)
	if err != nil {
		return nil, err
	}
	events, err := h.DB.SubscriptionHistory(ctx, org.ID, h.hash(p))
	if err != nil {
		return nil, err
	}
	kept := events[:0]
	for _, e := range events {
		if user.CanUseGateway(e.GatewayID) {
			kept = append(kept, e)
		}
	}
	return kept, nil
}
