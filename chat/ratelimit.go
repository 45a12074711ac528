package chat

import (
	"sync"
	"time"
)

// Widget rate limits: each (widget token, client address) may make
// WidgetBurst requests at once and WidgetRate a second after that.
const (
	WidgetRate  = 1.0
	WidgetBurst = 20
	// maxBuckets bounds the limiter's memory; full buckets are dropped
	// first when it is reached.
	maxBuckets = 100_000
)

// RateLimiter is a token bucket per key, in process memory: each process
// limits on its own, which bounds abuse well enough for a public widget.
type RateLimiter struct {
	rate, burst float64
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewRateLimiter returns a limiter allowing burst requests at once and
// rate per second after that, per key.
func NewRateLimiter(rate float64, burst int) *RateLimiter {
	return &RateLimiter{rate: rate, burst: float64(burst), Now: time.Now, buckets: map[string]*bucket{}}
}

// Allow reports whether a request for key may go ahead now, and takes a
// token if so.
func (l *RateLimiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// evict drops buckets that have refilled (they are as good as new), or
// every bucket when none has.
func (l *RateLimiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
