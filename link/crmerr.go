package link

import (
	"errors"
	"time"

	"github.com/riverqueue/river/rivertype"

	sb "github.com/switchboard/switchboard"
)

// pendingStates make a write-back job unique per org while one waits or
// runs; a run drains everything pending, and the sweep catches what lands
// just after its last look.
var pendingStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateScheduled, rivertype.JobStateRetryable}

func isOffline(err error) bool {
	var ce *sb.CRMError
	return errors.As(err, &ce) && ce.Offline
}

func isRetryable(err error) bool {
	var ce *sb.CRMError
	return errors.As(err, &ce) && (ce.Retryable || ce.Offline)
}

// retryAfter is how long to leave records alone after a failed write.
func retryAfter(err error) time.Duration {
	var ce *sb.CRMError
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		return ce.RetryAfter
	}
	return 5 * time.Second
}
