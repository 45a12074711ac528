package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// pgProxy is a TCP proxy between Switchboard and PostgreSQL that a test can
// cut: every connection is reset at once and new ones are refused until it
// is restored. The shared PostgreSQL server itself is never touched.
type pgProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}

	// refused counts connections refused while cut.
	refused atomic.Int64
	wg      sync.WaitGroup
}

func startPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *pgProxy) addr() string { return p.ln.Addr().String() }

func (p *pgProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			p.refused.Add(1)
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.pipe(c)
	}
}

// pipe copies between a client and a new server connection until either
// side ends or the proxy is cut.
func (p *pgProxy) pipe(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(client)
		return
	}
	if !p.track(client, server) {
		reset(client)
		reset(server)
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); done <- struct{}{} }()
	<-done
	client.Close()
	server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// track registers a connection pair unless the proxy was cut meanwhile.
func (p *pgProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// cut resets every connection and refuses new ones.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		reset(c)
	}
}

// restore lets connections through again.
func (p *pgProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// reset closes a connection with a TCP reset, as a dead server's host does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// createGateway adds a simulated gateway through the API and returns its id.
func createGateway(t *testing.T, s *service, number string, rate float64) string {
	t.Helper()
	status, body, err := postJSON(context.Background(), s.base+"/v1/gateways", s.Key,
		map[string]any{"name": "Paced " + number, "provider": "sim", "number": number, "rate": rate})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create gateway: %d %v %s", status, err, body)
	}
	var gw struct {
		ID         string `json:"id"`
		Registered bool   `json:"registered"`
	}
	if err := json.Unmarshal(body, &gw); err != nil || !gw.Registered {
		t.Fatalf("gateway not registered with the carrier: %v %s", err, body)
	}
	return gw.ID
}

const (
	outageMessages = 3000
	// outageFor is how long the database stays away: longer than the
	// service's job timeout (8 s), so jobs time out while it is away.
	outageFor = 10 * time.Second
)

// TestPostgresOutage cuts the database away from a running `switchboard
// serve` in the middle of a bulk send — every connection reset, new ones
// refused — and lets it back after a while. While it is away /readyz
// answers 503 saying so, and the carrier's status callbacks are refused (so
// the carrier keeps them). Afterwards the process carries on by itself:
// every message is delivered exactly once (the carrier recognises repeated
// sends of messages in flight at the cut) and its final status is in the
// CRM, none lost, none doubled.
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("fault tests run real processes; skipped in -short")
	}
	direct := storetest.URL(t, store.Postgres)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startPGProxy(t, u.Host)
	u.Host = proxy.addr()
	c := startCarrier(t)
	s := newService(t, u.String(), c.URL)
	// A paced gateway makes the send last long enough to cut it midway.
	gw := createGateway(t, s, "+12025550160", 300)
	batch := bulkSend(t, s, gw, recipients(5_000_000, outageMessages))
	explain := func() string {
		return fmt.Sprintf("carrier %+v, proxy refused %d\nservice output:\n%s", c.fullStats(t), proxy.refused.Load(), s.p.output())
	}
	waitUntil(t, "sending under way", func() bool { return c.stats(t).Accepted >= outageMessages/5 }, explain)

	proxy.cut()
	cutAt := time.Now()
	atCut := c.fullStats(t)
	if atCut.Accepted >= outageMessages {
		t.Fatalf("the send was over before the cut: %+v", atCut)
	}
	// Admins see the state: /readyz says the database is unreachable.
	var readyBody string
	waitUntil(t, "/readyz to report the database unreachable", func() bool {
		code, body := s.readyz()
		readyBody = body
		return code == http.StatusServiceUnavailable && strings.Contains(body, "database is not reachable")
	}, func() string { return readyBody + "\n" + explain() })
	// The outage lasts outageFor (its length is part of the fault, longer
	// than the job timeout; nothing is timed), and at least until the
	// service was refused again and again and the carrier's status
	// callbacks were refused rather than acknowledged unstored.
	waitUntil(t, "reconnections refused and callbacks bounced", func() bool {
		return time.Since(cutAt) >= outageFor && proxy.refused.Load() >= 30 && c.fullStats(t).CallbackRetries > atCut.CallbackRetries
	}, explain)
	if code, body := s.readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz during the outage: %d %s", code, body)
	}
	proxy.restore()
	t.Logf("/readyz during the outage: %s", strings.TrimSpace(readyBody))

	waitUntil(t, "/readyz to recover", func() bool { code, _ := s.readyz(); return code == http.StatusOK }, explain)
	db := openStore(t, direct)
	ctx := context.Background()
	orgs, err := db.Orgs(ctx)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("orgs: %v %d", err, len(orgs))
	}
	org := orgs[0].ID
	waitUntil(t, "every message delivered and in the CRM", func() bool {
		n, _ := db.CountDelivered(ctx, org)
		p, err := db.CRMPendingCount(ctx, org)
		return n == outageMessages && err == nil && p == 0
	}, func() string { return fmt.Sprintf("batch %v; ", batchCounts(t, s, batch)) + explain() })
	select {
	case <-s.p.exited:
		t.Fatalf("switchboard exited during the outage:\n%s", s.p.output())
	default:
	}
	st := c.fullStats(t)
	if st.Accepted != outageMessages {
		t.Fatalf("carrier took %d distinct messages, want %d", st.Accepted, outageMessages)
	}
	if n, _ := db.CountRows(ctx, "messages"); n != outageMessages {
		t.Fatalf("%d messages stored, want %d", n, outageMessages)
	}
	if n, err := db.CRMMessagesWithStatus(ctx, org, sb.StatusDelivered); err != nil || n != outageMessages {
		t.Fatalf("%d CRM records Delivered (err %v), want %d", n, err, outageMessages)
	}
	if testing.Verbose() && os.Getenv("RELIABILITY_DEBUG") != "" {
		t.Log(s.p.output())
	}
	t.Logf("cut after %d sends; %d connections refused; carrier saw %d distinct messages, %d repeated sends (in flight at the cut), %d callback retries",
		atCut.Accepted, proxy.refused.Load(), st.Accepted, st.Duplicates, st.CallbackRetries)
}
