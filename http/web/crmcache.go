package web

import (
	"context"
	"sync"
	"time"
)

// CRM cache bounds: a conversation's thread (or an inbox page's message
// records) is read from an external CRM (Salesforce) at most once per
// ThreadTTL per process, however many views of it poll; at most maxThreads
// entries are kept per cache.
const (
	ThreadTTL  = 5 * time.Second
	maxThreads = 1000
)

// crmCache keeps what was read from external CRMs (threads, the inbox's
// message records) for ThreadTTL, failures included (an unreachable CRM is
// not asked again at every poll). Concurrent reads of the same key share
// one CRM call.
type crmCache[V any] struct {
	now func() time.Time
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[string]*cacheEntry[V]
}

type cacheEntry[V any] struct {
	done chan struct{} // closed when val and err are set
	at   time.Time
	val  V
	err  error
}

func newCRMCache[V any](now func() time.Time, ttl time.Duration, max int) *crmCache[V] {
	return &crmCache[V]{now: now, ttl: ttl, max: max, entries: map[string]*cacheEntry[V]{}}
}

// get returns the value under key: a fresh cached one, else the one read
// now by load (or by a concurrent get of the same key).
func (c *crmCache[V]) get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	for {
		c.mu.Lock()
		e, ok := c.entries[key]
		if ok {
			select {
			case <-e.done:
				if c.now().Sub(e.at) < c.ttl {
					c.mu.Unlock()
					return e.val, e.err
				}
				ok = false // stale: read it again
			default:
			}
		}
		if !ok {
			e = &cacheEntry[V]{done: make(chan struct{})}
			c.evictLocked()
			c.entries[key] = e
			c.mu.Unlock()
			val, err := load(ctx)
			c.mu.Lock()
			e.val, e.err, e.at = val, err, c.now()
			if ctx.Err() != nil && c.entries[key] == e {
				// This request ended: its failure says nothing of the CRM.
				delete(c.entries, key)
			}
			close(e.done)
			c.mu.Unlock()
			return val, err
		}
		c.mu.Unlock()
		select {
		case <-e.done: // look again: fresh, or dropped with its request
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
}

// forget drops the thread under key (after a send, so the sender's next
// look asks the CRM again).
func (c *crmCache[V]) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		select {
		case <-e.done:
			delete(c.entries, key)
		default: // a read is under way; it ends soon
		}
	}
}

// evictLocked makes room for one more entry: stale entries go first, then
// the oldest finished one.
func (c *crmCache[V]) evictLocked() {
	if len(c.entries) < c.max {
		return
	}
	now := c.now()
	oldest, oldestAt := "", time.Time{}
	for k, e := range c.entries {
		select {
		case <-e.done:
		default:
			continue
		}
		if now.Sub(e.at) >= c.ttl {
			delete(c.entries, k)
			continue
		}
		if oldest == "" || e.at.Before(oldestAt) {
			oldest, oldestAt = k, e.at
		}
	}
	if len(c.entries) >= c.max && oldest != "" {
		delete(c.entries, oldest)
	}
}
