package form

import (
	"context"
	"encoding/json"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// WritebackArgs asks for an org's changed form sessions to be written to its
// CRM as form records. One is pending per org at a time; it drains every
// pending change.
type WritebackArgs struct {
	OrgID string `json:"org_id"`
}

// Kind implements river.JobArgs.
func (WritebackArgs) Kind() string { return "form_writeback" }

func writebackOpts() *river.InsertOpts { return store.WritebackOpts() }

// ExpireArgs is the periodic job that ends sessions whose timeout passed and
// restarts write-backs left for later (CRM offline, retries, a change that
// landed just as a write-back ended).
type ExpireArgs struct{}

// Kind implements river.JobArgs.
func (ExpireArgs) Kind() string { return "form_expire" }

// ExpireInterval is how often expired sessions are closed and pending
// write-backs restarted.
const ExpireInterval = 5 * time.Second

// AddWorkers registers the service's job workers (pass it to
// hub.QueueConfig).
func (s *Service) AddWorkers(w *river.Workers) {
	river.AddWorker(w, &writebackWorker{s: s})
	river.AddWorker(w, &expireWorker{s: s})
}

// PeriodicJobs returns the service's periodic jobs.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(ExpireInterval), func() (river.JobArgs, *river.InsertOpts) {
			return ExpireArgs{}, nil
		}, nil),
	}
}

type expireWorker struct {
	river.WorkerDefaults[ExpireArgs]
	s *Service
}

func (w *expireWorker) Work(ctx context.Context, job *river.Job[ExpireArgs]) error {
	return w.s.Expire(ctx)
}

// Expire ends the open sessions whose timeout has passed and queues the
// write-back of every org with session changes not yet in its CRM.
func (s *Service) Expire(ctx context.Context) error {
	expired, err := s.DB.ExpireFormSessions(ctx, s.now())
	if err != nil {
		return err
	}
	pending, err := s.DB.OrgsWithFormPending(ctx)
	if err != nil {
		return err
	}
	if len(expired)+len(pending) == 0 {
		return nil
	}
	return s.DB.Tx(ctx, func(tx *store.Tx) error {
		for _, org := range append(expired, pending...) {
			tx.AddJobOnce(WritebackArgs{OrgID: org}, writebackOpts())
		}
		return nil
	})
}

type writebackWorker struct {
	river.WorkerDefaults[WritebackArgs]
	s *Service
}

func (w *writebackWorker) Work(ctx context.Context, job *river.Job[WritebackArgs]) error {
	return w.s.WriteBack(ctx, job.Args.OrgID)
}

// SessionBatch is how many form records one CRM write carries.
const SessionBatch = 200

// WriteBack writes an org's changed sessions to its CRM as form records. A
// CRM that cannot store form records (no sb.FormResponseWriter) keeps them
// pending.
func (s *Service) WriteBack(ctx context.Context, orgID string) error {
	org, err := s.DB.Org(ctx, orgID)
	if err != nil {
		if sb.IsCode(err, sb.ENotFound) {
			return river.JobCancel(err)
		}
		return err
	}
	crm, err := s.Hub.CRMs.For(ctx, org)
	if err != nil {
		if sb.CRMOffline(err) {
			return nil
		}
		return err
	}
	fw, _ := crm.(sb.FormResponseWriter)
	if fw == nil {
		s.Log.Warn("the org's CRM cannot store form records; they are kept until it can", "org", org.ID, "crm", org.Settings.CRM)
		return nil
	}
	users := map[string]string{}
	for {
		claimed, err := s.DB.ClaimFormSessions(ctx, org.ID, SessionBatch, 2*time.Minute)
		if err != nil || len(claimed) == 0 {
			return err
		}
		rs := make([]sb.FormResponse, len(claimed))
		for i, c := range claimed {
			rs[i] = s.response(ctx, crm, org, c, users)
		}
		results, werr := fw.WriteFormResponses(ctx, org, rs)
		outs, retry := outcomes(s.DB.Now(), claimed, results, werr)
		if err := s.DB.Tx(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.FinishFormSessions(ctx, outs) }); err != nil {
			return err
		}
		if werr != nil {
			if sb.CRMOffline(werr) {
				return nil
			}
			return werr
		}
		if retry {
			return nil // the rest waits for the periodic job
		}
	}
}

// response builds the CRM form record of a claimed session.
func (s *Service) response(ctx context.Context, crm sb.CRM, org *sb.Org, c store.ClaimedSession, users map[string]string) sb.FormResponse {
	r := sb.FormResponse{
		SessionID: c.ID, CRMFormID: c.CRMRecordID, FormID: c.FormID, FormName: c.FormName, RecordID: c.RecordID,
		Status: statusText(c.Status), OwnerID: s.crmUserID(ctx, org, c.OwnerID, users), CreatedByID: s.crmUserID(ctx, org, c.CreatedByID, users),
		Answers: c.Answers, StartedAt: c.StartedAt,
	}
	if c.EndedAt != nil {
		r.EndedAt = *c.EndedAt
	}
	if r.Answers == nil {
		r.Answers = []sb.FormAnswer{}
	}
	var d Definition
	if json.Unmarshal([]byte(c.Definition), &d) == nil {
		for i := range r.Answers {
			if q, _ := d.question(r.Answers[i].Question); q != nil {
				r.Answers[i].Text = q.Text
			}
		}
	}
	if r.RecordID == "" && c.Phone != "" && r.CRMFormID == "" {
		// Started by a number never texted from a record: attach the form
		// record to the CRM record that has the number, if any.
		if recs, err := crm.FindByPhone(ctx, org, c.Phone); err == nil && len(recs) > 0 {
			r.RecordID = recs[0].ID
		}
	}
	return r
}

func statusText(st string) string {
	switch st {
	case store.SessionCompleted:
		return sb.FormCompleted
	case store.SessionExpired:
		return sb.FormExpired
	case store.SessionCancelled:
		return sb.FormCancelled
	}
	return sb.FormInProgress
}

// crmUserID maps a Switchboard user id to the user's CRM id.
func (s *Service) crmUserID(ctx context.Context, org *sb.Org, userID string, cache map[string]string) string {
	if userID == "" {
		return ""
	}
	if v, ok := cache[userID]; ok {
		return v
	}
	v := userID
	if u, err := s.DB.User(ctx, org.ID, userID); err == nil {
		v = u.CRMID()
	}
	cache[userID] = v
	return v
}

func outcomes(now time.Time, claimed []store.ClaimedSession, results []sb.CRMResult, werr error) ([]store.FormOutcome, bool) {
	res, retry := sb.CRMOutcomes(now, len(claimed), results, werr)
	outs := make([]store.FormOutcome, len(claimed))
	for i, c := range claimed {
		outs[i] = store.FormOutcome{SessionID: c.ID, Version: c.Version, CRMRecordID: res[i].CRMID, Retry: res[i].Retry, RetryAt: res[i].RetryAt, Err: res[i].Err}
	}
	return outs, retry
}
