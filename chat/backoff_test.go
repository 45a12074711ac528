package chat

import (
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// TestDefaultBackoff checks the retry schedule of chat exports: 30 s
// before the first retry, doubling with each attempt, capped at one hour, each wait cut by
// at most a fifth (jitter) and never lengthened.
func TestDefaultBackoff(t *testing.T) {
	const samples = 300
	schedule := []struct {
		attempt int
		base    time.Duration // the wait before jitter
	}{
		{0, 30 * time.Second}, // attempt 0 (River starts at 1) is treated as 1
		{1, 30 * time.Second},
		{2, time.Minute},
		{3, 2 * time.Minute},
		{4, 4 * time.Minute},
		{5, 8 * time.Minute},
		{6, 16 * time.Minute},
		{7, 32 * time.Minute},
		{8, time.Hour}, // 64 min, capped
		{9, time.Hour},
		{20, time.Hour},
		{200, time.Hour}, // no overflow for large attempts
	}
	for _, s := range schedule {
		low, high := s.base-s.base/5, s.base
		lowest, highest := high, low
		for range samples {
			d := DefaultBackoff(s.attempt)
			if d < low || d > high {
				t.Fatalf("attempt %d: %v, want between %v and %v", s.attempt, d, low, high)
			}
			lowest, highest = min(lowest, d), max(highest, d)
		}
		// Jittered: the waits spread over the band, not one value.
		if highest-lowest < s.base/20 {
			t.Errorf("attempt %d: %d waits all within %v..%v; want them spread over %v..%v", s.attempt, samples, lowest, highest, low, high)
		}
	}
	if got := DefaultBackoff(-3); got < 24*time.Second || got > 30*time.Second {
		t.Errorf("negative attempt: %v", got)
	}
}

// TestExportRetryUsesBackoff: the export worker spaces River's retries by
// the service's Backoff, attempt by attempt.
func TestExportRetryUsesBackoff(t *testing.T) {
	var asked []int
	w := &ExportWorker{Service: &Service{Backoff: func(attempt int) time.Duration {
		asked = append(asked, attempt)
		return time.Duration(attempt) * time.Hour
	}}}
	for _, attempt := range []int{1, 2, 5} {
		before := time.Now()
		at := w.NextRetry(&river.Job[ExportArgs]{JobRow: &rivertype.JobRow{Attempt: attempt}})
		wait := at.Sub(before)
		if wait < time.Duration(attempt)*time.Hour || wait > time.Duration(attempt)*time.Hour+time.Minute {
			t.Errorf("attempt %d: next retry in %v, want %v", attempt, wait, time.Duration(attempt)*time.Hour)
		}
	}
	if len(asked) != 3 || asked[0] != 1 || asked[1] != 2 || asked[2] != 5 {
		t.Fatalf("backoff asked for attempts %v", asked)
	}
	// Without a Backoff the default schedule applies.
	w.Service.Backoff = nil
	before := time.Now()
	wait := w.NextRetry(&river.Job[ExportArgs]{JobRow: &rivertype.JobRow{Attempt: 2}}).Sub(before)
	if wait < 48*time.Second || wait > 61*time.Second {
		t.Fatalf("default backoff for attempt 2: %v", wait)
	}
}
