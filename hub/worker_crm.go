package hub

import (
	"context"
	"strings"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// CRMBatchSize is how many message changes one CRM write carries; the CRM
// client splits it further to its own limits (Salesforce: 200 records a
// collection, five collections a /composite call).
const CRMBatchSize = 1000

// Defaults of the write-back's gathering (see CRMWorker).
const (
	DefaultCRMWindow          = 10 * time.Second
	DefaultCRMThrottledWindow = time.Minute
	DefaultCRMUsageMaxAge     = 5 * time.Minute
)

// crmPoll is how often a write-back that waits for changes to gather looks
// again while changes keep coming.
const crmPoll = 250 * time.Millisecond

// crmSnooze bounds how long a write-back that only waits for time to pass
// leaves its worker free; an urgent change made meanwhile is written when
// it comes back.
const crmSnooze = time.Second

// UsageBudget is implemented by CRMs with a daily API budget (Salesforce):
// above a share of it, non-urgent writes slow down.
type UsageBudget interface {
	// Throttle reports whether the org's last known usage is above the
	// threshold.
	Throttle(orgID string) bool
	// UsageReadAt is when the usage was last read.
	UsageReadAt(orgID string) time.Time
	// RefreshUsage reads the usage with a cheap call.
	RefreshUsage(ctx context.Context, orgID string) error
}

// OnlineChecker is implemented by CRMs that know without a call whether an
// org's connection is held (Salesforce: not authorized, or revoked); the
// write-back then leaves the changes alone.
type OnlineChecker interface {
	Online(ctx context.Context, orgID string) error
}

// crmOnline returns the CRM's Offline error while the org's connection is
// held (see OnlineChecker), nil otherwise.
func crmOnline(ctx context.Context, crm sb.CRM, orgID string) error {
	if o, ok := crm.(OnlineChecker); ok {
		return o.Online(ctx, orgID)
	}
	return nil
}

// SetCRMGather sets how long non-urgent changes may wait to be written with
// others (window), the same while the org's CRM API usage is above its
// threshold (throttled), and how old a reading of that usage may get before
// a deferring write-back refreshes it (usageMaxAge). Zero keeps a value.
func (h *Hub) SetCRMGather(window, throttled, usageMaxAge time.Duration) {
	h.gwMu.Lock()
	defer h.gwMu.Unlock()
	if window > 0 {
		h.crmWindow = window
	}
	if throttled > 0 {
		h.crmThrottledWindow = throttled
	}
	if usageMaxAge > 0 {
		h.crmUsageMaxAge = usageMaxAge
	}
}

func (h *Hub) crmGather() (window, throttled, usageMaxAge time.Duration) {
	h.gwMu.Lock()
	defer h.gwMu.Unlock()
	return h.crmWindow, h.crmThrottledWindow, h.crmUsageMaxAge
}

// crmThrottled reports whether the org's CRM asks non-urgent writes to slow
// down. While they wait nothing else may call the CRM, so a high reading
// older than the maximum age is refreshed first (GET /limits): the writes
// resume once usage falls.
func (h *Hub) crmThrottled(ctx context.Context, crm sb.CRM, orgID string) bool {
	b, ok := crm.(UsageBudget)
	if !ok || !b.Throttle(orgID) {
		return false
	}
	_, _, maxAge := h.crmGather()
	if time.Since(b.UsageReadAt(orgID)) >= maxAge {
		if err := b.RefreshUsage(ctx, orgID); err != nil {
			h.Log.Warn("CRM API usage could not be refreshed", "org", orgID, "err", err)
		}
		return b.Throttle(orgID)
	}
	return true
}

// CRMWorker writes an org's pending message changes to its CRM in batches:
// new records are created with their latest status, existing ones updated.
// Several changes of one message since the last write become one write.
//
// Changes gather before they are written, so that 1,000 messages cost a
// handful of CRM calls from creation to their final status. A change is
// settled once it is store.CRMWritebackDelay old. The settled changes are
// written together as soon as
//
//   - one is urgent: an incoming message to create (people and automations
//     are waiting for it); or
//   - there are a full batch of them (CRMBatchSize) ready; or
//   - the oldest has waited the gather window (10 s by default); or
//   - the org is idle: no change is unsettled and no outgoing message is in
//     flight (Queued or Sent, and changed within the window), so no status
//     is still to come.
//
// A change of a message in flight — outgoing, Queued or Sent, changed within
// the window, or Queued while the org is sending — is not ready: it waits
// for the message's next status (or for the window to pass without one), so
// that under load, when full batches are written back to back, a message is
// still written once with its final status rather than once per status.
//
// While the org's CRM API usage is above its threshold (80 % of the daily
// limit for Salesforce), only urgent changes are written at once; the rest
// wait the longer throttled window (a minute by default) and go in fewer,
// larger calls.
type CRMWorker struct {
	river.WorkerDefaults[store.CRMWritebackArgs]
	Hub *Hub
}

// Work drains the org's pending changes.
func (w *CRMWorker) Work(ctx context.Context, job *river.Job[store.CRMWritebackArgs]) error {
	h := w.Hub
	org, err := h.org(ctx, job.Args.OrgID)
	if err != nil {
		if sb.IsCode(err, sb.ENotFound) {
			return river.JobCancel(err)
		}
		return err
	}
	crm, err := h.CRMs.For(ctx, org)
	if err == nil {
		err = crmOnline(ctx, crm, org.ID)
	}
	if err != nil {
		if sb.CRMOffline(err) {
			// Held: the changes stay pending, unclaimed, until an admin
			// authorizes again.
			h.Log.Warn("CRM offline; write-backs held", "org", org.ID, "err", err)
			return nil
		}
		return err
	}
	users := map[string]string{}
	// A run ends within the job timeout; what is left continues in the next
	// run right away.
	deadline := time.Now().Add(h.JobTimeout / 2)
	stopping := h.DB.Stopping()
	for {
		if time.Now().After(deadline) {
			return river.JobSnooze(0)
		}
		select {
		case <-stopping:
			// A graceful shutdown: the batch written is done; what is
			// pending stays pending for the next start, on any process.
			return river.JobSnooze(0)
		default:
		}
		now := h.DB.Now()
		settled := now.Add(-store.CRMWritebackDelay)
		window, slow, _ := h.crmGather()
		throttled := h.crmThrottled(ctx, crm, org.ID)
		if throttled {
			window = slow
		}
		active := now.Add(-window)
		g, err := h.DB.CRMGatherState(ctx, org.ID, settled, active, CRMBatchSize)
		if err != nil {
			return err
		}
		if !g.Pending {
			return nil // changes leased by a run that failed are swept later
		}
		stale := g.Ready > 0 && !g.Oldest.After(now.Add(-window))
		// The cut-off of non-urgent changes: settled ones, or while
		// throttled only those that waited the whole window.
		others := settled
		due := g.Urgent || stale
		if throttled {
			others = now.Add(-window)
		} else {
			due = due || g.Ready >= CRMBatchSize || (g.Ready > 0 && !g.Unsettled && !g.InFlight)
		}
		if due {
			claim := store.CRMClaim{Limit: CRMBatchSize, Lease: h.JobTimeout + 15*time.Second,
				UrgentBefore: settled, OtherBefore: others, ActiveAfter: active, HoldQueued: g.Sending}
			n, err := h.writeCRMBatch(ctx, crm, org, claim, users)
			if err != nil {
				h.Log.Warn("CRM write-back failed; it will be retried", "org", org.ID, "err", err)
				return err
			}
			if n > 0 {
				if sb.CRMOffline(crmOnline(ctx, crm, org.ID)) {
					return nil // the write found the authorization gone: held
				}
				continue
			}
		}
		if throttled || (!g.Unsettled && !g.InFlight && g.Ready > 0) {
			// Only time will make the settled changes due: leave the worker
			// free meanwhile, and look again soon for urgent changes.
			wait := crmSnooze
			if g.Ready > 0 {
				wait = g.Oldest.Add(window).Sub(now)
			}
			return river.JobSnooze(min(max(wait, crmPoll), crmSnooze))
		}
		// Changes keep coming: look again shortly.
		if err := sleepFor(ctx, crmPoll); err != nil {
			return err
		}
	}
}

// TxCRM is implemented by a CRM kept in Switchboard's own database (the
// built-in CRM): it writes message records in the write-back's own
// transaction, so a batch is taken, written and finished in one commit
// (store.DB.WriteCRMPending) rather than leased, written and finished.
type TxCRM interface {
	WriteMessagesTx(ctx context.Context, tx *store.Tx, org *sb.Org, msgs []sb.CRMMessage) ([]sb.CRMResult, error)
}

// writeCRMBatch writes the batch of changes claim takes and returns how
// many it took.
func (h *Hub) writeCRMBatch(ctx context.Context, crm sb.CRM, org *sb.Org, claim store.CRMClaim, users map[string]string) (int, error) {
	if tc, ok := crm.(TxCRM); ok {
		// The records are made before the transaction, which then holds
		// the rows only while it writes them.
		pend, err := h.DB.PendingCRM(ctx, org.ID, claim)
		if err != nil || len(pend) == 0 {
			return 0, err
		}
		msgs, err := h.crmMessages(ctx, crm, org, pend, users)
		if err != nil {
			return 0, err
		}
		byID := make(map[string]sb.CRMMessage, len(msgs))
		for _, m := range msgs {
			byID[m.MessageID] = m
		}
		called := false
		n, err := h.DB.WriteCRMPending(ctx, pend, func(tx *store.Tx, held []store.CRMPending) ([]store.CRMOutcome, error) {
			write := make([]sb.CRMMessage, len(held))
			for i, p := range held {
				write[i] = byID[p.Msg.ID]
			}
			called = true
			results, err := tc.WriteMessagesTx(ctx, tx, org, write)
			if err != nil {
				// The transaction rolls back: the changes stay pending.
				return nil, err
			}
			return h.crmOutcomes(org, held, results, nil), nil
		})
		if called {
			h.crmCalled(org, err)
		}
		return n, err
	}
	pend, err := h.DB.ClaimCRMBefore(ctx, org.ID, claim)
	if err != nil || len(pend) == 0 {
		return 0, err
	}
	return len(pend), h.writeCRM(ctx, crm, org, pend, users)
}

func (h *Hub) writeCRM(ctx context.Context, crm sb.CRM, org *sb.Org, pend []store.CRMPending, users map[string]string) error {
	msgs, err := h.crmMessages(ctx, crm, org, pend, users)
	if err != nil {
		return err
	}
	results, err := crm.WriteMessages(ctx, org, msgs)
	outs := h.crmOutcomes(org, pend, results, err)
	// Records to retry stay leased until their retry time; the periodic
	// sweep starts a write-back for them then.
	// Through the group commit, like every other write to message rows.
	if _, ferr := h.DB.BatchMerge(context.WithoutCancel(ctx), "crm_finish", store.CRMFinish(outs), store.FinishCRMMerged); ferr != nil {
		return ferr
	}
	h.crmCalled(org, err)
	if sb.CRMOffline(err) {
		h.Log.Warn("CRM authorization lost; write-backs held until it is renewed", "org", org.ID, "err", err)
		return nil
	}
	return err
}

// crmMessages turns claimed changes into the CRM's message records.
func (h *Hub) crmMessages(ctx context.Context, crm sb.CRM, org *sb.Org, pend []store.CRMPending, users map[string]string) ([]sb.CRMMessage, error) {
	msgs := make([]sb.CRMMessage, 0, len(pend))
	gateways := map[string]*sb.Gateway{}
	for _, p := range pend {
		m := p.Msg
		gw := gateways[m.GatewayID]
		if gw == nil {
			var err error
			if gw, err = h.Gateway(ctx, org.ID, m.GatewayID); err != nil {
				return nil, err
			}
			gateways[m.GatewayID] = gw
		}
		cm := sb.CRMMessage{
			MessageID: m.ID, CRMMessageID: m.CRMMessageID, Direction: m.Direction, Status: m.Status, Debug: m.Debug,
			Segments: m.Segments, ProviderMessageID: m.ProviderMessageID, BatchID: m.BatchID, GatewayID: gw.ID,
			GatewayNumber: gw.Number, RecordID: m.RecordID, OwnerID: h.crmUserID(ctx, org, m.OwnerID, users),
			CreatedByID: h.crmUserID(ctx, org, m.CreatedByID, users), CreatedAt: m.CreatedAt, StatusAt: m.UpdatedAt,
		}
		if strings.HasPrefix(cm.ProviderMessageID, "local:") || strings.HasPrefix(cm.ProviderMessageID, "none:") {
			cm.ProviderMessageID = ""
		}
		if m.CRMMessageID == "" && p.Content != nil {
			cm.Phone, cm.Body, cm.MediaURLs = p.Content.Phone, p.Content.Body, p.Content.MediaURLs
		}
		msgs = append(msgs, cm)
	}
	if err := h.lookUpIncoming(ctx, crm, org, pend, msgs); err != nil {
		return nil, err
	}
	return msgs, nil
}

// crmOutcomes turns a CRM write's results (err: the write's own error) into
// the outcomes to finish the claimed changes with, counting them.
func (h *Hub) crmOutcomes(org *sb.Org, pend []store.CRMPending, results []sb.CRMResult, err error) []store.CRMOutcome {
	kind := org.Settings.CRM
	res, _ := sb.CRMOutcomes(h.DB.Now(), len(pend), results, err)
	outs := make([]store.CRMOutcome, len(pend))
	for i, p := range pend {
		r := res[i]
		outs[i] = store.CRMOutcome{MessageID: p.Msg.ID, Version: p.Version, CRMMessageID: r.CRMID, Retry: r.Retry, RetryAt: r.RetryAt, Err: r.Err}
		switch {
		case err != nil:
		case r.Retry:
			h.Metrics.CRMRecords.WithLabelValues(kind, "retry").Inc()
		case r.Err != "":
			h.Metrics.CRMRecords.WithLabelValues(kind, "failed").Inc()
			h.Log.Warn("CRM rejected a message record", "org", org.ID, "message", p.Msg.ID, "err", r.Err)
		default:
			h.Metrics.CRMRecords.WithLabelValues(kind, "ok").Inc()
		}
	}
	return outs
}

// crmCalled counts a CRM write call by its outcome.
func (h *Hub) crmCalled(org *sb.Org, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	h.Metrics.CRMCalls.WithLabelValues(org.Settings.CRM, result).Inc()
}

// lookUpIncoming completes the incoming messages of a write whose records
// are still to be created, with one batched CRM lookup of each kind:
//
//   - a message from a number the org never texted is attached to the CRM
//     record that has that number, if any (FindByPhones);
//   - a message from a number Switchboard has no outgoing message to on
//     that gateway — history from before Switchboard, or past its
//     retention — takes the owner of the last outgoing message record the
//     CRM has (LastOutgoingOwners); the org's integration user otherwise.
//
// A lookup that fails leaves the messages as they are.
func (h *Hub) lookUpIncoming(ctx context.Context, crm sb.CRM, org *sb.Org, pend []store.CRMPending, msgs []sb.CRMMessage) error {
	var idx []int
	var phones []string
	for i, p := range pend {
		if p.Msg.Direction == sb.Incoming && p.Msg.CRMMessageID == "" && p.Content != nil && p.Content.Phone != "" {
			idx = append(idx, i)
			if msgs[i].RecordID == "" {
				phones = append(phones, p.Content.Phone)
			}
		}
	}
	if len(idx) == 0 {
		return nil
	}
	if len(phones) > 0 {
		found, err := crm.FindByPhones(ctx, org, phones)
		if err != nil {
			h.Log.Warn("CRM record lookup by phone failed; incoming messages are written without a record", "org", org.ID, "err", err)
		}
		for _, i := range idx {
			if recs := found[msgs[i].Phone]; msgs[i].RecordID == "" && len(recs) > 0 {
				msgs[i].RecordID = recs[0].ID
			}
		}
	}
	keys := make([]store.PhoneOnGatewayHash, len(idx))
	for k, i := range idx {
		keys[k] = store.PhoneOnGatewayHash{GatewayID: pend[i].Msg.GatewayID, PhoneHash: pend[i].Msg.PhoneHash}
	}
	texted, err := h.DB.TextedBefore(ctx, org.ID, keys)
	if err != nil {
		return err
	}
	var pairs []sb.PhoneOnGateway
	var asked []int
	for k, i := range idx {
		if !texted[keys[k].Key()] {
			pairs = append(pairs, sb.PhoneOnGateway{GatewayNumber: msgs[i].GatewayNumber, Phone: msgs[i].Phone})
			asked = append(asked, i)
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	owners, err := crm.LastOutgoingOwners(ctx, org, pairs)
	if err != nil {
		h.Log.Warn("CRM lookup of the last outgoing message's owner failed; incoming messages keep the integration user", "org", org.ID, "err", err)
		return nil
	}
	for k, i := range asked {
		if owner := owners[pairs[k]]; owner != "" {
			msgs[i].OwnerID = owner
		}
	}
	return nil
}

// crmUserID maps a Switchboard user id to the user's CRM id.
func (h *Hub) crmUserID(ctx context.Context, org *sb.Org, userID string, cache map[string]string) string {
	if userID == "" {
		return ""
	}
	if v, ok := cache[userID]; ok {
		return v
	}
	v := userID
	if u, err := h.DB.User(ctx, org.ID, userID); err == nil {
		v = u.CRMID()
	}
	cache[userID] = v
	return v
}
