package hub

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/switchboard/switchboard/store"
)

// SweepArgs is the periodic housekeeping job: it starts write-backs that
// are due (after a lease or retry pause ended) and purges data past its
// retention.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "sweep" }

// SweepWorker runs SweepArgs jobs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	Hub *Hub
}

// HealthCheckInterval is how often CRM connections are checked.
var HealthCheckInterval = 15 * time.Minute

// Retention of cached provider reports and undelivered leftovers.
const Retention = 7 * 24 * time.Hour

// Work runs one sweep.
func (w *SweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	return w.Hub.Sweep(ctx)
}

// Sweep starts due CRM write-backs and purges expired data.
func (h *Hub) Sweep(ctx context.Context) error {
	orgs, err := h.DB.OrgsWithCRMPending(ctx)
	if err != nil {
		return err
	}
	for _, org := range orgs {
		if err := h.DB.TouchCRMJob(ctx, org); err != nil {
			return err
		}
	}
	n, err := h.DB.Purge(ctx, h.DB.Now().Add(-Retention))
	if err != nil {
		return err
	}
	if n > 0 {
		h.Log.Info("retention purge", "rows", n)
	}
	return nil
}

// QueueConfig returns the job queue configuration: workers, queues and
// periodic jobs. sendWorkers sizes the send queue; extra adds the workers of
// other features (chat export, forms…). Callers may append periodic jobs.
func (h *Hub) QueueConfig(sendWorkers int, log *slog.Logger, extra ...func(*river.Workers)) *river.Config {
	workers := river.NewWorkers()
	river.AddWorker(workers, &SendWorker{Hub: h, Parallel: 8})
	river.AddWorker(workers, &CRMWorker{Hub: h})
	river.AddWorker(workers, &SweepWorker{Hub: h})
	river.AddWorker(workers, &HealthCheckWorker{Hub: h})
	for _, add := range extra {
		add(workers)
	}
	if sendWorkers <= 0 {
		sendWorkers = 20
	}
	return &river.Config{
		Logger:  log,
		Workers: workers,
		Queues: map[string]river.QueueConfig{
			store.QueueSend:    {MaxWorkers: sendWorkers},
			store.QueueCRM:     {MaxWorkers: 8},
			store.QueueDefault: {MaxWorkers: 4},
		},
		JobTimeout: h.JobTimeout,
		// A job still "running" this long after it started belongs to a
		// process that died: it is run again by any live process.
		RescueStuckJobsAfter:        h.JobTimeout + h.JobTimeout/2 + 5*time.Second,
		CompletedJobRetentionPeriod: time.Hour,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(5*time.Second), func() (river.JobArgs, *river.InsertOpts) {
				return SweepArgs{}, nil
			}, &river.PeriodicJobOpts{RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(HealthCheckInterval), func() (river.JobArgs, *river.InsertOpts) {
				// One round of checks at a time, across processes: a round
				// that overlapped a slower one could store its outcome
				// first and be overtaken by an older one.
				return HealthCheckArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true,
					ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateRetryable}}}
			}, nil),
		},
	}
}
