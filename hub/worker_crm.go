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
// client splits it further to its own limits (200 per Salesforce call).
const CRMBatchSize = 1000

// Throttler is implemented by CRMs that ask non-urgent writes to slow down
// when the org's API budget runs low.
type Throttler interface {
	Throttle(orgID string) bool
}

// CRMWorker writes an org's pending message changes to its CRM in batches:
// new records are created with their latest status, existing ones updated.
// Several changes of one message since the last write become one write.
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
	if err != nil {
		if sb.CRMOffline(err) {
			// Held: the changes stay pending until an admin authorizes again.
			h.Log.Warn("CRM offline; write-backs held", "org", org.ID, "err", err)
			return nil
		}
		return err
	}
	if t, ok := crm.(Throttler); ok && t.Throttle(org.ID) {
		return river.JobSnooze(30 * time.Second)
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
		// Changes younger than the gather delay wait for the next round, so
		// a message that is queued, sent and delivered in quick succession
		// is written once.
		pend, err := h.DB.ClaimCRM(ctx, org.ID, CRMBatchSize, h.JobTimeout+15*time.Second, h.DB.Now().Add(-store.CRMWritebackDelay))
		if err != nil {
			return err
		}
		if len(pend) == 0 {
			more, err := h.DB.CRMClaimable(ctx, org.ID)
			if err != nil || !more {
				return err
			}
			if err := sleepFor(ctx, store.CRMWritebackDelay/2); err != nil {
				return err
			}
			continue
		}
		if err := h.writeCRM(ctx, crm, org, pend, users); err != nil {
			h.Log.Warn("CRM write-back failed; it will be retried", "org", org.ID, "err", err)
			return err
		}
	}
}

func (h *Hub) writeCRM(ctx context.Context, crm sb.CRM, org *sb.Org, pend []store.CRMPending, users map[string]string) error {
	msgs := make([]sb.CRMMessage, 0, len(pend))
	gateways := map[string]*sb.Gateway{}
	for _, p := range pend {
		m := p.Msg
		gw := gateways[m.GatewayID]
		if gw == nil {
			var err error
			if gw, err = h.Gateway(ctx, org.ID, m.GatewayID); err != nil {
				return err
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
			if cm.RecordID == "" && m.Direction == sb.Incoming {
				// Attach an incoming message from a number we never texted
				// to the CRM record that has that number, if any.
				if recs, err := crm.FindByPhone(ctx, org, p.Content.Phone); err == nil && len(recs) > 0 {
					cm.RecordID = recs[0].ID
				}
			}
		}
		msgs = append(msgs, cm)
	}
	kind := org.Settings.CRM
	results, err := crm.WriteMessages(ctx, org, msgs)
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
	// Records to retry stay leased until their retry time; the periodic
	// sweep starts a write-back for them then.
	// Through the group commit, like every other write to message rows.
	if _, ferr := h.DB.BatchMerge(context.WithoutCancel(ctx), "crm_finish", store.CRMFinish(outs), store.FinishCRMMerged); ferr != nil {
		return ferr
	}
	if err == nil {
		h.Metrics.CRMCalls.WithLabelValues(kind, "ok").Inc()
		return nil
	}
	h.Metrics.CRMCalls.WithLabelValues(kind, "error").Inc()
	if sb.CRMOffline(err) {
		h.Log.Warn("CRM authorization lost; write-backs held until it is renewed", "org", org.ID, "err", err)
		return nil
	}
	return err
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
