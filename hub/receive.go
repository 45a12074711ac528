package hub

import (
	"context"
	"net/http"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/provider"
	"github.com/switchboard/switchboard/store"
)

// Webhook handles one request a partner made to
// /webhooks/{provider}/{gatewayID}/{action}: it finds the gateway, lets the
// provider verify and parse the request, stores what it carries durably, and
// returns the answer to give the partner. Nothing is stored when the
// signature is wrong.
func (h *Hub) Webhook(ctx context.Context, providerName, gatewayID, action string, r *http.Request) (*sb.Response, error) {
	gw, err := h.Gateway(ctx, "", gatewayID)
	if err != nil || gw.Provider != providerName {
		h.Metrics.Webhooks.WithLabelValues(providerName, "unknown_gateway").Inc()
		return nil, sb.Errorf(sb.ENotFound, "no %s gateway %s", providerName, gatewayID)
	}
	p, err := h.Providers.Get(gw.Provider)
	if err != nil {
		return nil, err
	}
	req, err := provider.ReadWebhook(r, h.PublicURL, action)
	if err != nil {
		h.Metrics.Webhooks.WithLabelValues(providerName, sb.ErrorCode(err)).Inc()
		return nil, err
	}
	ev, err := p.HandleWebhook(ctx, gw, req)
	if err != nil {
		h.Metrics.Webhooks.WithLabelValues(providerName, sb.ErrorCode(err)).Inc()
		return nil, err
	}
	err = h.Deliver(ctx, gw, ev)
	if err == nil && len(ev.OtherGateways) > 0 {
		err = h.routeWebhook(ctx, p, gw, req, ev.OtherGateways)
	}
	if err != nil {
		h.Metrics.Webhooks.WithLabelValues(providerName, "store_failed").Inc()
		if sb.ErrorCode(err) == sb.EInternal {
			// Not stored (the database is away or busy): the partner is
			// told to try again, and nothing was acknowledged. What was
			// stored already is not stored twice when it comes again.
			return nil, sb.Wrap(err, sb.EUnavailable, "the webhook could not be stored; try again")
		}
		return nil, err
	}
	h.Metrics.Webhooks.WithLabelValues(providerName, "ok").Inc()
	resp := ev.Response
	if resp.StatusCode == 0 {
		resp.StatusCode = http.StatusOK
	}
	return &resp, nil
}

// routeWebhook hands a webhook that also carries events for other gateways
// (see switchboard.WebhookRouter) to each of them: the gateway of the same
// org and provider whose route key is named verifies the request with its
// own secret and takes its own part, which is stored for it. A part no
// gateway of the org claims, or whose signature does not verify with the
// claiming gateway's secret, is logged and not stored; the rest of the
// webhook is still acknowledged.
func (h *Hub) routeWebhook(ctx context.Context, p sb.Provider, from *sb.Gateway, req *sb.WebhookRequest, keys []string) error {
	router, ok := p.(sb.WebhookRouter)
	if !ok {
		return nil
	}
	gws, err := h.DB.Gateways(ctx, from.OrgID)
	if err != nil {
		return err
	}
	for _, key := range keys {
		var to *sb.Gateway
		for _, g := range gws {
			if g.Provider == from.Provider && g.ID != from.ID && key != "" && router.RouteKey(g) == key {
				to = g
				break
			}
		}
		if to == nil {
			h.Metrics.Webhooks.WithLabelValues(from.Provider, "unrouted").Inc()
			h.Log.Warn("webhook part ignored: no gateway of the org has this route key (for WhatsApp, the phone_number_id); add a gateway for it to receive its messages",
				"gateway", from.ID, "provider", from.Provider, "route_key", key)
			continue
		}
		ev, err := p.HandleWebhook(ctx, to, req)
		if err != nil {
			h.Metrics.Webhooks.WithLabelValues(from.Provider, "route_refused").Inc()
			msg := "webhook part refused and not stored: the request does not verify for the gateway it names"
			if sb.IsCode(err, sb.EForbidden) {
				msg = "webhook part refused and not stored: its signature does not verify with the named gateway's secret; gateways that share one partner app (one WhatsApp callback URL) must hold that app's same secret"
			}
			h.Log.Warn(msg, "gateway", from.ID, "target_gateway", to.ID, "provider", from.Provider, "route_key", key, "err", sb.ErrorMessage(err))
			continue
		}
		// The part for `to` only: the request's other parts are delivered
		// here, by this loop.
		ev.OtherGateways = nil
		if err := h.Deliver(ctx, to, ev); err != nil {
			return err
		}
		h.Metrics.Webhooks.WithLabelValues(from.Provider, "routed").Inc()
	}
	return nil
}

// Deliver stores incoming messages and status updates of a gateway; when
// it returns nil they are durable and the partner may be told so. A
// repeated delivery changes nothing. Status reports that name their message
// (the usual case) are merged with other concurrent reports into one
// set-based update; the rest share one group-committed transaction.
func (h *Hub) Deliver(ctx context.Context, gw *sb.Gateway, ev *sb.Events) error {
	if len(ev.Incoming) == 0 && len(ev.Statuses) == 0 {
		return nil
	}
	var byID, byPID, applied []sb.StatusUpdate
	for _, st := range ev.Statuses {
		if st.MessageID != "" && st.Status.Valid() && st.Status != sb.StatusReceived {
			byID = append(byID, st)
		} else {
			byPID = append(byPID, st)
		}
	}
	if len(byID) > 0 {
		// All of a webhook's reports are queued at once, so that a batch of
		// reports (WhatsApp's statuses, the simulated carrier's report
		// batches) shares one group commit.
		items := make([]any, len(byID))
		for i, st := range byID {
			items[i] = store.StatusItem{GatewayID: gw.ID, Update: st}
		}
		res, err := h.DB.BatchMergeAll(ctx, "status", items, store.ApplyStatusesMerged)
		if err != nil {
			return err
		}
		for i, r := range res {
			if r.(store.StatusResult).Applied {
				applied = append(applied, byID[i])
			}
		}
	}
	var kinds []sb.KeywordKind
	if len(ev.Incoming) > 0 || len(byPID) > 0 {
		org, err := h.org(ctx, gw.OrgID)
		if err != nil {
			return err
		}
		base := len(applied)
		err = h.DB.Batch(ctx, func(tx *store.Tx) error {
			kinds, applied = kinds[:0], applied[:base]
			for _, in := range ev.Incoming {
				kind, err := h.receive(ctx, tx, org, gw, in)
				if err != nil {
					return err
				}
				kinds = append(kinds, kind)
			}
			for _, st := range byPID {
				res, err := tx.ApplyStatus(ctx, gw.ID, st)
				if sb.IsCode(err, sb.ENotFound) || sb.IsCode(err, sb.EInvalid) {
					// A signed report for a message this gateway does not
					// know: acknowledge it so the partner does not resend
					// for ever.
					h.Log.Warn("status report ignored", "gateway", gw.ID, "err", err)
					continue
				}
				if err != nil {
					return err
				}
				if !res.Applied {
					continue
				}
				applied = append(applied, st) // an "unsubscribed" report opted the number out
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, k := range kinds {
		kk := string(k)
		if kk == "" {
			kk = "none"
		}
		h.Metrics.Incoming.WithLabelValues(gw.Provider, kk).Inc()
	}
	for _, st := range applied {
		h.Metrics.StatusUpdates.WithLabelValues(gw.Provider, string(st.Status)).Inc()
		if st.OptedOut {
			h.Metrics.OptChanges.WithLabelValues(string(sb.OptedOut), sb.ViaProvider).Inc()
		}
	}
	return nil
}

// receive stores one incoming message and applies the keyword and
// subscription rules. It returns the keyword kind the message was.
func (h *Hub) receive(ctx context.Context, tx *store.Tx, org *sb.Org, gw *sb.Gateway, in sb.InboundMessage) (sb.KeywordKind, error) {
	from := in.From
	if p, err := sb.ParsePhone(in.From, org.Settings.DefaultRegion); err == nil {
		from = p
	}
	if from == "" {
		return "", sb.FieldError("from", "incoming message has no sender")
	}
	hash := h.hash(from)
	now := h.DB.Now().UTC()
	// Owner: the owner of the last outgoing message to this number on this
	// gateway, otherwise the org's integration user.
	owner, record, err := tx.LastOutgoing(ctx, org.ID, gw.ID, hash)
	if err != nil {
		return "", err
	}
	integration := org.Settings.IntegrationUserID
	if owner == "" {
		owner = integration
	}
	m := &sb.Message{
		ID: store.NewID(), OrgID: org.ID, GatewayID: gw.ID, Direction: sb.Incoming, Status: sb.StatusReceived,
		Segments: sb.CountSegments(in.Body).Segments, ProviderMessageID: in.ProviderMessageID, RecordID: record,
		OwnerID: owner, CreatedByID: integration, PhoneHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	if !in.ReceivedAt.IsZero() {
		t := in.ReceivedAt.UTC()
		m.ReceivedAt = &t
	}
	if m.ProviderMessageID == "" {
		m.ProviderMessageID = "local:" + m.ID
	}
	isNew, err := tx.InsertIncoming(ctx, m, &sb.Content{Phone: from, Body: in.Body, MediaURLs: in.MediaURLs})
	if err != nil || !isNew {
		return "", err // a replayed webhook changes nothing
	}
	kind, word := gw.Keywords.Match(in.Body)
	sub, err := tx.Subscription(ctx, gw.ID, hash)
	if err != nil {
		return "", err
	}
	reply, source := "", sb.SourceSystem
	switch kind {
	case sb.KeywordOptOut:
		if err := h.setSubscriptionTx(ctx, tx, &sb.Subscription{OrgID: org.ID, GatewayID: gw.ID, PhoneHash: hash, Status: sb.OptedOut,
			Detail: sb.DetailKeyword(sb.OptedOut, word), Via: sb.ViaKeyword, Locked: true}); err != nil {
			return "", err
		}
		reply = gw.OptOutReply
	case sb.KeywordOptIn:
		if err := h.setSubscriptionTx(ctx, tx, &sb.Subscription{OrgID: org.ID, GatewayID: gw.ID, PhoneHash: hash, Status: sb.OptedIn,
			Detail: sb.DetailKeyword(sb.OptedIn, word), Via: sb.ViaKeyword}); err != nil {
			return "", err
		}
		reply = gw.OptInReply
	case sb.KeywordHelp:
		reply = gw.HelpText
	default:
		// "Create Opt-in for Incoming SMS", an option of mandatory opt-in
		// mode: a number in No Opt-In is opted in by texting. An explicit
		// opt-out of any kind stays: a keyword or provider opt-out is
		// reversed only by an opt-in keyword, a manual, automation or
		// imported one by an opt-in keyword or a permitted manual opt-in.
		status := sb.EffectiveStatus(sub, org.Settings.OptInMode)
		if org.Settings.OptInMode == sb.OptInMandatory && org.Settings.CreateOptInOnIncoming && status == sb.NoOptIn {
			if err := h.setSubscriptionTx(ctx, tx, &sb.Subscription{OrgID: org.ID, GatewayID: gw.ID, PhoneHash: hash, Status: sb.OptedIn,
				Detail: sb.DetailOptInFromIncoming, Via: sb.ViaIncoming}); err != nil {
				return "", err
			}
			status = sb.OptedIn
		}
		// Content features (SMS forms, query codes) see the rest.
		content := &sb.Content{Phone: from, Body: in.Body, MediaURLs: in.MediaURLs}
		for _, hook := range h.IncomingHooks {
			r, err := hook.HandleIncoming(ctx, tx, org, gw, m, content)
			if err != nil {
				return "", err
			}
			if r != "" && reply == "" {
				reply = r
			}
		}
		// A hook may have claimed the message for a record it runs (an SMS
		// form's answers belong to the form's owner).
		if m.OwnerID != owner || m.RecordID != record {
			if err := tx.SetMessageOwner(ctx, m.ID, m.OwnerID, m.RecordID); err != nil {
				return "", err
			}
			owner, record = m.OwnerID, m.RecordID
		}
		// Replies of content features are sends like any other: never to a
		// number that may not be texted on this gateway. (Keyword
		// confirmations are the only messages that are.)
		if block := sb.BlockDebug(status); block != "" && reply != "" {
			h.Log.Warn("reply to an incoming message not sent: the number may not be texted", "gateway", gw.ID, "reason", block)
			reply = ""
		}
		source = sb.SourceAutomation
	}
	if reply != "" {
		if err := h.queueReply(ctx, tx, org, gw, from, hash, owner, record, reply, source); err != nil {
			return "", err
		}
	}
	return kind, nil
}

// queueReply queues an answer to an incoming message, created by the
// integration user and owned like the incoming message it answers: a
// keyword confirmation or HELP answer (source system: the one message sent
// even to a number that has just opted out), or a content feature's reply
// such as an SMS form's next question (source automation: like any send,
// it is not sent to a number that may not be texted).
func (h *Hub) queueReply(ctx context.Context, tx *store.Tx, org *sb.Org, gw *sb.Gateway, to string, hash []byte, owner, record, body, source string) error {
	now := h.DB.Now().UTC()
	m := &sb.Message{
		ID: store.NewID(), OrgID: org.ID, GatewayID: gw.ID, Direction: sb.Outgoing, Status: sb.StatusQueued,
		Segments: sb.CountSegments(body).Segments, RecordID: record, OwnerID: owner, CreatedByID: org.Settings.IntegrationUserID,
		PhoneHash: hash, Source: source, CreatedAt: now, UpdatedAt: now,
	}
	c := &sb.Content{Phone: to, Body: body}
	// Content features see replies too (a form's next question may hold a
	// link to shorten).
	if err := h.prepareOutgoing(ctx, tx, org, gw, []Outgoing{{Msg: m, Content: c}}); err != nil {
		return err
	}
	m.Segments = sb.CountSegments(c.Body).Segments
	if err := tx.InsertMessages(ctx, []store.NewMessage{{Msg: m, Content: c}}); err != nil {
		return err
	}
	tx.AddJob(SendChunkArgs{OrgID: org.ID, GatewayID: gw.ID, MessageIDs: []string{m.ID}}, sendJobOpts())
	return nil
}
