package sftest

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// latency holds the answers of data API calls, as a slow org does.
type latency struct {
	mu      sync.Mutex
	d       time.Duration
	changed chan struct{} // closed when d changes
}

// SetLatency holds the answer of every data API call for d (0: none), as a
// slow org does. The call takes effect first, so a client that gives up
// before the answer comes does not know whether it was applied. Changing
// the latency releases the answers held under the old one at once.
func (s *Server) SetLatency(d time.Duration) {
	l := &s.latency
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = max(d, 0)
	if l.changed != nil {
		close(l.changed)
	}
	l.changed = make(chan struct{})
}

// Latency returns the latency set with SetLatency.
func (s *Server) Latency() time.Duration {
	s.latency.mu.Lock()
	defer s.latency.mu.Unlock()
	return s.latency.d
}

// hold waits before a data API call is answered, until the latency has
// passed, the latency changes or the client hangs up.
func (l *latency) hold(r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/services/data/") {
		return
	}
	l.mu.Lock()
	d, changed := l.d, l.changed
	l.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-changed:
	case <-r.Context().Done():
	}
}
