package chat

import (
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	at := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	l := NewRateLimiter(2, 3)
	l.Now = func() time.Time { return at }
	steps := []struct {
		advance time.Duration
		key     string
		want    bool
	}{
		{0, "a", true}, {0, "a", true}, {0, "a", true}, // the burst
		{0, "a", false},                      // empty
		{0, "b", true},                       // keys are apart
		{250 * time.Millisecond, "a", false}, // half a token
		{250 * time.Millisecond, "a", true},  // one token after 0.5 s at 2/s
		{0, "a", false},
		{time.Hour, "a", true}, {0, "a", true}, {0, "a", true}, // refilled to the burst, not more
		{0, "a", false},
	}
	for i, s := range steps {
		at = at.Add(s.advance)
		if got := l.Allow(s.key); got != s.want {
			t.Errorf("step %d (%s after %v): %v, want %v", i, s.key, s.advance, got, s.want)
		}
	}
}
