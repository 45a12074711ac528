package link

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard/switchboard/store"
)

// recorder writes clicks in the background so a redirect never waits for
// the database: handlers put clicks in a buffer, one loop writes whatever
// has gathered in one transaction (group commit) while the next clicks
// gather. Close writes everything still buffered; after it, clicks are
// written at once. A full buffer makes handlers wait rather than drop.
type recorder struct {
	log      *slog.Logger
	maxBatch int
	// write stores one batch in a transaction (RecordClicks plus the CRM
	// write-back jobs).
	write func(ctx context.Context, batch []store.Click) error

	in    chan store.Click
	flush chan chan struct{}
	quit  chan struct{}
	done  chan struct{}

	mu        sync.RWMutex
	closed    bool
	closeOnce sync.Once
}

func newRecorder(log *slog.Logger, buffer, maxBatch int, write func(context.Context, []store.Click) error) *recorder {
	r := &recorder{log: log, maxBatch: maxBatch, write: write,
		in: make(chan store.Click, buffer), flush: make(chan chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

// add records a click: buffered while the recorder runs, written at once
// after Close.
func (r *recorder) add(ctx context.Context, c store.Click) error {
	r.mu.RLock()
	if !r.closed {
		defer r.mu.RUnlock()
		r.in <- c
		return nil
	}
	r.mu.RUnlock()
	return r.write(context.WithoutCancel(ctx), []store.Click{c})
}

// Flush returns once every click added before it was called is written.
func (r *recorder) Flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case r.flush <- ack:
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops buffering and writes what is buffered, after the handlers
// adding a click right now are done. It returns when all is written or ctx
// ends.
func (r *recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		go func() {
			r.mu.Lock()
			r.closed = true
			r.mu.Unlock()
			close(r.quit)
		}()
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *recorder) loop() {
	defer close(r.done)
	batch := make([]store.Click, 0, r.maxBatch)
	for {
		select {
		case c := <-r.in:
			batch = append(batch[:0], c)
			batch = r.drain(batch, r.maxBatch)
			r.store(batch, false)
		case ack := <-r.flush:
			for {
				batch = r.drain(batch[:0], r.maxBatch)
				if len(batch) == 0 {
					break
				}
				r.store(batch, false)
			}
			close(ack)
		case <-r.quit:
			// No add is in progress (Close holds the lock): what is in the
			// buffer is all there is.
			for {
				batch = r.drain(batch[:0], r.maxBatch)
				if len(batch) == 0 {
					return
				}
				r.store(batch, true)
			}
		}
	}
}

// drain appends buffered clicks without waiting, up to limit.
func (r *recorder) drain(batch []store.Click, limit int) []store.Click {
	for len(batch) < limit {
		select {
		case c := <-r.in:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// store writes a batch, retrying while the database is unavailable; once
// closing, it gives up after a few tries and says how many clicks were lost.
func (r *recorder) store(batch []store.Click, closing bool) {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := r.write(context.Background(), batch)
		if err == nil {
			return
		}
		if closing && attempt >= 5 {
			r.log.Error("link clicks could not be stored", "clicks", len(batch), "err", err)
			return
		}
		r.log.Warn("link clicks not stored yet; retrying", "clicks", len(batch), "attempt", attempt, "err", err)
		select {
		case <-time.After(wait):
		case <-r.quit:
			closing = true
		}
		wait = min(2*wait, 5*time.Second)
	}
}
