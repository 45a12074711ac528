package sftest

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// latency holds the answers of data API calls, as a slow org does.
type latency struct {
	mu         sync.Mutex
	d          time.Duration
	writesOnly bool          // SetWriteLatency: queries are answered at once
	changed    chan struct{} // closed when d changes
}

// SetLatency holds the answer of every data API call for d (0: none), as a
// slow org does. The call takes effect first, so a client that gives up
// before the answer comes does not know whether it was applied. Changing
// the latency releases the answers held under the old one at once.
func (s *Server) SetLatency(d time.Duration) { s.latency.set(d, false) }

// SetWriteLatency is SetLatency for the calls that change records only
// (see FailNextWrites); queries are answered at once.
func (s *Server) SetWriteLatency(d time.Duration) { s.latency.set(d, true) }

func (l *latency) set(d time.Duration, writesOnly bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d, l.writesOnly = max(d, 0), writesOnly
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
func (l *latency) hold(r *http.Request, body []byte) {
	if !strings.HasPrefix(r.URL.Path, "/services/data/") {
		return
	}
	l.mu.Lock()
	d, writesOnly, changed := l.d, l.writesOnly, l.changed
	l.mu.Unlock()
	if d <= 0 || writesOnly && !changesRecords(r, body) {
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
