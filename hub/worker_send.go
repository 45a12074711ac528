package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// SendWorker hands chunks of queued messages to their gateway's provider,
// paced to the gateway's rate across every process that shares the
// database.
type SendWorker struct {
	river.WorkerDefaults[SendChunkArgs]
	Hub *Hub
	// Parallel is how many messages of one chunk are in flight at once on a
	// gateway without a rate limit.
	Parallel int
}

// maxRun bounds one run of a send job: a paced chunk that is not done by
// then snoozes and continues later, so workers are not held for hours and
// a run always ends (with the provider calls in flight) within the job
// timeout.
func (w *SendWorker) maxRun() time.Duration { return w.Hub.JobTimeout / 2 }

// errSnooze carries a snooze request out of the send loop.
type errSnooze struct{ d time.Duration }

func (e errSnooze) Error() string { return "snooze" }

// errStopping ends a chunk between two messages when the job queue is
// stopping (a graceful shutdown): the sends made are recorded, and the
// rest of the chunk runs again at the next start, on any process.
var errStopping = errors.New("the job queue is stopping")

// Work sends the chunk's messages that are still waiting.
func (w *SendWorker) Work(ctx context.Context, job *river.Job[SendChunkArgs]) error {
	h := w.Hub
	gw, err := h.Gateway(ctx, job.Args.OrgID, job.Args.GatewayID)
	if err != nil {
		if sb.IsCode(err, sb.ENotFound) {
			return river.JobCancel(err)
		}
		return err
	}
	items, err := h.DB.MessagesToSend(ctx, job.Args.MessageIDs)
	if err != nil || len(items) == 0 {
		return err
	}
	lastAttempt := job.Attempt >= job.MaxAttempts
	if !gw.Active {
		return h.failItems(ctx, items, sb.StatusError, "", "Gateway is inactive")
	}
	p, err := h.Providers.Get(gw.Provider)
	if err != nil {
		return h.failItems(ctx, items, sb.StatusError, "", "Unknown provider "+gw.Provider)
	}
	org, err := h.org(ctx, gw.OrgID)
	if err != nil {
		return err
	}
	// Re-check subscriptions at send time, set-based: a STOP that arrived
	// after the send was accepted still wins.
	items, err = h.dropBlocked(ctx, org, gw, items)
	if err != nil || len(items) == 0 {
		return err
	}

	stopping := h.DB.Stopping()
	deadline := time.Now().Add(w.maxRun())
	parallel := 1
	if gw.Rate == 0 {
		parallel = max(1, w.Parallel)
	}
	// A gateway without a rate limit whose provider takes many messages in
	// one request sends the chunk in batches; otherwise one message at a
	// time, each in its paced slot.
	bs, _ := p.(sb.BatchSender)
	size := 1
	if bs != nil && gw.Rate == 0 {
		size = max(1, bs.MaxBatch(gw))
	}
	var (
		mu      sync.Mutex
		stopErr error
		wg      sync.WaitGroup
		next    = make(chan []store.SendItem)
	)
	stop := func(err error) {
		mu.Lock()
		if stopErr == nil {
			stopErr = err
		}
		mu.Unlock()
	}
	stopped := func() bool { mu.Lock(); defer mu.Unlock(); return stopErr != nil }
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range next {
				if stopped() {
					continue
				}
				if err := h.pace(ctx, stopping, gw, batch[0]); err != nil {
					stop(err)
					continue
				}
				var err error
				if len(batch) == 1 {
					err = h.sendOne(ctx, p, gw, batch[0])
				} else {
					err = h.sendBatch(ctx, bs, gw, batch)
				}
				if err != nil {
					stop(err)
				}
			}
		}()
	}
	rest := items
feed:
	for len(rest) > 0 {
		if stopped() {
			break
		}
		if ctx.Err() != nil {
			stop(ctx.Err())
			break
		}
		if time.Now().After(deadline) {
			stop(errSnooze{0})
			break
		}
		n := min(size, len(rest))
		select {
		case next <- rest[:n:n]:
			rest = rest[n:]
		case <-stopping:
			stop(errStopping)
			break feed
		}
	}
	close(next)
	wg.Wait()

	var snooze errSnooze
	switch {
	case stopErr == nil:
		return nil
	case errors.Is(stopErr, errStopping):
		// Not an attempt: the job is available again at once, and taken up
		// by the next process that works the queue.
		return river.JobSnooze(0)
	case errors.As(stopErr, &snooze):
		return river.JobSnooze(snooze.d)
	case errors.Is(ctx.Err(), context.Canceled):
		// Cancelled by a shutdown past its grace: not a provider's answer,
		// so nothing is failed, even on the last attempt; the job runs
		// again.
		return stopErr
	case lastAttempt:
		// Out of attempts: fail what is left, with the reason, rather than
		// leave it Queued for ever.
		ids := make([]string, len(items))
		for i, it := range items {
			ids[i] = it.Msg.ID
		}
		debug := "Not sent after repeated provider errors: " + stopErr.Error()
		var se *sb.SendError
		if errors.As(stopErr, &se) && se.Debug != "" {
			debug = "Not sent after repeated provider errors: " + se.Debug
		}
		return h.DB.Tx(ctx, func(tx *store.Tx) error {
			_, err := tx.FailQueued(ctx, ids, sb.StatusFailed, "", debug)
			return err
		})
	default:
		return stopErr
	}
}

// pace waits for the gateway's next free slot. A gateway without a rate
// limit still honours a provider's throttling pause. It returns
// errStopping, sending nothing, when stopping closes while it waits.
func (h *Hub) pace(ctx context.Context, stopping <-chan struct{}, gw *sb.Gateway, it store.SendItem) error {
	if gw.Rate <= 0 {
		// No rate limit: only a provider's throttling pause (recorded on the
		// pacing row) holds sends back, and this process looks at the row
		// only while such a pause may be in force.
		if !h.throttledRecently(gw.ID) {
			return nil
		}
		next, err := h.DB.PacingNext(ctx, gw.ID)
		if err != nil {
			return err
		}
		if wait := time.Duration(next-h.DB.Now().UnixMicro()) * time.Microsecond; wait > h.MaxPacingWait {
			return errSnooze{wait}
		}
		return sleepUntil(ctx, stopping, h.DB, next)
	}
	units := 1
	if gw.RateUnit == sb.RatePerSegment {
		units = max(1, it.Msg.Segments)
	}
	cost := int64(math.Ceil(float64(units) * 1e6 / gw.Rate))
	next, err := h.DB.PacingNext(ctx, gw.ID)
	if err != nil {
		return err
	}
	now := h.DB.Now().UnixMicro()
	if wait := time.Duration(next-now) * time.Microsecond; wait > h.MaxPacingWait {
		return errSnooze{wait - h.MaxPacingWait/2}
	}
	// A slot is used only on time: when the reservation came back, or the
	// wait ended, more than half a slot late, sending then would crowd the
	// next slot's send, so the late slot is left unused and another taken.
	// Slots are asked for a little ahead (paceLead: about twice what a
	// reservation has lately taken to come back), so a slow round trip to
	// the database does not by itself make every slot late.
	for range 20 {
		asked := time.Now()
		start, err := h.DB.ReserveSendSlots(ctx, gw.ID, 1, cost, h.paceLead())
		if err != nil {
			return err
		}
		h.observeReservation(time.Since(asked))
		if h.SlotObserver != nil {
			h.SlotObserver(gw.ID, time.UnixMicro(start))
		}
		if h.DB.Now().UnixMicro()-start > cost/2 {
			continue
		}
		if err := sleepUntil(ctx, stopping, h.DB, start); err != nil {
			return err
		}
		if h.DB.Now().UnixMicro()-start <= cost/2 {
			return nil
		}
	}
	return errSnooze{0}
}

// maxPaceLead bounds how far ahead of the clock a slot is asked for.
const maxPaceLead = 250 * time.Millisecond

// paceLead is how far ahead of the clock this process asks for send slots
// (microseconds): twice the recent reservation round trip, at most
// maxPaceLead.
func (h *Hub) paceLead() int64 {
	return min(2*h.reserveRTT.Load(), maxPaceLead.Microseconds())
}

// observeReservation folds a reservation's round trip into the recent
// average (an exponentially weighted moving average, 1/8 per sample).
func (h *Hub) observeReservation(d time.Duration) {
	for {
		old := h.reserveRTT.Load()
		next := old + (d.Microseconds()-old)/8
		if old == 0 {
			next = d.Microseconds()
		}
		if h.reserveRTT.CompareAndSwap(old, next) {
			return
		}
	}
}

// sleepUntil waits until the store's clock reads atMicros; it returns
// errStopping when stopping closes first, or ctx's error.
func sleepUntil(ctx context.Context, stopping <-chan struct{}, db *store.DB, atMicros int64) error {
	select {
	case <-stopping:
		return errStopping
	default:
	}
	d := time.Duration(atMicros-db.Now().UnixMicro()) * time.Microsecond
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-stopping:
		return errStopping
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sleepFor waits d or until ctx ends.
func sleepFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outbound is what the provider needs to send one queued message.
func (h *Hub) outbound(ctx context.Context, gw *sb.Gateway, it store.SendItem) (*sb.OutboundMessage, error) {
	out := &sb.OutboundMessage{
		ID: it.Msg.ID, From: gw.Number, To: it.Content.Phone, Body: it.Content.Body, MediaURLs: it.Content.MediaURLs,
		Template: it.Content.Template, TemplateLang: it.Content.TemplateLang, TemplateParams: it.Content.TemplateParams,
		StatusCallback: h.statusCallback(gw, it.Msg.ID), Segments: sb.CountSegments(it.Content.Body), Progress: it.Progress,
	}
	if gw.Provider == sb.ProviderWhatsApp {
		at, err := h.DB.LastIncomingAt(ctx, gw.ID, it.Msg.PhoneHash)
		if err != nil {
			return nil, err
		}
		out.LastInboundAt = at
	}
	return out, nil
}

// sendOne hands one message to the provider and records the outcome. It
// returns an error only when the chunk must stop (retry or snooze).
func (h *Hub) sendOne(ctx context.Context, p sb.Provider, gw *sb.Gateway, it store.SendItem) error {
	out, err := h.outbound(ctx, gw, it)
	if err != nil {
		return err
	}
	// A provider call in flight is never cut short by shutdown: cancelling
	// it half-way would leave us not knowing whether the message went out.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.SendTimeout)
	began := time.Now()
	res, err := p.Send(sctx, gw, out)
	cancel()
	h.Metrics.SendLatency.Observe(time.Since(began).Seconds())
	o, err := h.settle(ctx, gw, it, res, err)
	if o == nil {
		return err
	}
	return h.recordOutcomes(ctx, []store.SendOutcome{*o})
}

// sendBatch hands several messages to the provider in one request and
// records their outcomes together. A failure of the request as a whole
// stops the chunk as a single send's failure would (the job tries again, or
// snoozes when throttled), except a permanent one, which fails every
// message of the batch with its reason.
func (h *Hub) sendBatch(ctx context.Context, bs sb.BatchSender, gw *sb.Gateway, items []store.SendItem) error {
	outs := make([]*sb.OutboundMessage, len(items))
	for i, it := range items {
		out, err := h.outbound(ctx, gw, it)
		if err != nil {
			return err
		}
		outs[i] = out
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.SendTimeout)
	began := time.Now()
	results, err := bs.SendBatch(sctx, gw, outs)
	cancel()
	h.Metrics.SendLatency.Observe(time.Since(began).Seconds())
	if err == nil && len(results) != len(items) {
		err = &sb.SendError{Kind: sb.SendTransient, Debug: fmt.Sprintf("the provider answered %d results for a batch of %d messages", len(results), len(items))}
	}
	if err != nil {
		var se *sb.SendError
		if !errors.As(err, &se) || se.Retryable() {
			return h.retryLater(ctx, gw, items[0].Msg.ID, err)
		}
		results = make([]sb.BatchResult, len(items))
		for i := range results {
			results[i].Err = err
		}
	}
	outcomes := make([]store.SendOutcome, 0, len(items))
	var stop error
	for i, it := range items {
		o, err := h.settle(ctx, gw, it, results[i].Result, results[i].Err)
		if o != nil {
			outcomes = append(outcomes, *o)
		} else if stop == nil {
			stop = err
		}
	}
	// The outcomes known are recorded even when one message must be tried
	// again: those are not sent twice.
	if err := h.recordOutcomes(ctx, outcomes); err != nil {
		return err
	}
	return stop
}

// settle turns a provider's answer for one message into the outcome to
// record, or, when the message must be tried again later, into the error
// that stops the chunk (with a nil outcome).
func (h *Hub) settle(ctx context.Context, gw *sb.Gateway, it store.SendItem, res *sb.SendResult, err error) (*store.SendOutcome, error) {
	o := &store.SendOutcome{MessageID: it.Msg.ID}
	var se *sb.SendError
	if errors.As(err, &se) && se.Retryable() && se.Progress != "" && se.Progress != it.Progress {
		// Part of the message went out: the next attempt sends the rest.
		wctx := context.WithoutCancel(ctx)
		if err := h.DB.Tx(wctx, func(tx *store.Tx) error {
			return tx.SaveSendProgress(wctx, it.Msg.ID, se.Progress)
		}); err != nil {
			return nil, err
		}
	}
	switch {
	case err == nil:
		o.ProviderMessageID, o.Status = res.ProviderMessageID, res.Status
		if o.Status != sb.StatusSent {
			o.Status = sb.StatusQueued
		}
		if o.ProviderMessageID == "" {
			o.ProviderMessageID = "none:" + it.Msg.ID
		}
		h.Metrics.SendResults.WithLabelValues(gw.Provider, "ok").Inc()
	case errors.As(err, &se) && !se.Retryable():
		o.Status, o.ErrorCode, o.Debug = sb.StatusFailed, se.Code, se.Debug
		if o.Debug == "" {
			o.Debug = se.Error()
		}
		h.Metrics.SendResults.WithLabelValues(gw.Provider, string(se.Kind)).Inc()
	default:
		return nil, h.retryLater(ctx, gw, it.Msg.ID, err)
	}
	o.OptOut = se != nil && se.Kind == sb.SendOptedOut
	return o, nil
}

// retryLater handles a provider's answer that calls for trying again: a
// throttling pause holds the gateway back (in every process) and snoozes
// the chunk; any other failure is returned for the job to retry.
func (h *Hub) retryLater(ctx context.Context, gw *sb.Gateway, messageID string, err error) error {
	var se *sb.SendError
	if errors.As(err, &se) && se.Kind == sb.SendThrottled {
		h.Metrics.SendResults.WithLabelValues(gw.Provider, string(se.Kind)).Inc()
		pause := se.RetryAfter
		if pause <= 0 {
			pause = time.Second
		}
		if err := h.DB.DelayGateway(context.WithoutCancel(ctx), gw.ID, h.DB.Now().Add(pause)); err != nil {
			return err
		}
		h.noteThrottle(gw.ID, pause)
		return errSnooze{pause}
	}
	kind := "transient"
	if se != nil {
		kind = string(se.Kind)
	}
	h.Metrics.SendResults.WithLabelValues(gw.Provider, kind).Inc()
	h.Log.Warn("send failed; will retry", "gateway", gw.ID, "message", messageID, "err", err)
	return err
}

// recordOutcomes records send outcomes. Outcomes of concurrent sends are
// recorded together in one set-based step of a group commit.
func (h *Hub) recordOutcomes(ctx context.Context, outcomes []store.SendOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	payloads := make([]any, len(outcomes))
	for i, o := range outcomes {
		payloads[i] = o
	}
	if _, err := h.DB.BatchMergeAll(context.WithoutCancel(ctx), "send", payloads, store.RecordSendsMerged); err != nil {
		return err
	}
	for _, o := range outcomes {
		if o.OptOut {
			h.Metrics.OptChanges.WithLabelValues(string(sb.OptedOut), sb.ViaProvider).Inc()
		}
	}
	return nil
}

// dropBlocked records Status Error for items whose number may not be texted
// now and returns the rest.
func (h *Hub) dropBlocked(ctx context.Context, org *sb.Org, gw *sb.Gateway, items []store.SendItem) ([]store.SendItem, error) {
	keep := items[:0:0]
	err := h.DB.Tx(ctx, func(tx *store.Tx) error {
		keep = keep[:0]
		hashes := make([][]byte, len(items))
		for i, it := range items {
			hashes[i] = it.Msg.PhoneHash
		}
		statuses, err := tx.SubscriptionStatuses(ctx, gw.ID, hashes)
		if err != nil {
			return err
		}
		for _, it := range items {
			var sub *sb.Subscription
			if st, ok := statuses[string(it.Msg.PhoneHash)]; ok {
				sub = &sb.Subscription{Status: st}
			}
			// System replies (keyword confirmations, HELP) are the one
			// message allowed to a number that has just opted out.
			if block := sb.BlockDebug(sb.EffectiveStatus(sub, org.Settings.OptInMode)); block != "" && it.Msg.Source != sb.SourceSystem {
				if _, _, err := tx.RecordSend(ctx, store.SendOutcome{MessageID: it.Msg.ID, Status: sb.StatusError, Debug: block}); err != nil {
					return err
				}
				continue
			}
			keep = append(keep, it)
		}
		return nil
	})
	return keep, err
}

func (h *Hub) failItems(ctx context.Context, items []store.SendItem, status sb.Status, code, debug string) error {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.Msg.ID
	}
	return h.DB.Tx(ctx, func(tx *store.Tx) error {
		_, err := tx.FailQueued(ctx, ids, status, code, debug)
		return err
	})
}

// throttleWatch is how long after a provider's throttling answer a process
// keeps checking the shared pacing row of an unlimited gateway (other
// processes may have been throttled too: they each learn it from their own
// next answer, or from the row while they watch it).
const throttleWatch = time.Minute

func (h *Hub) noteThrottle(gatewayID string, pause time.Duration) {
	h.gwMu.Lock()
	defer h.gwMu.Unlock()
	if h.throttled == nil {
		h.throttled = map[string]time.Time{}
	}
	h.throttled[gatewayID] = time.Now().Add(pause + throttleWatch)
}

func (h *Hub) throttledRecently(gatewayID string) bool {
	h.gwMu.Lock()
	defer h.gwMu.Unlock()
	return time.Now().Before(h.throttled[gatewayID])
}
