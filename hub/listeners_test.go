package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// bindProvider is a connection-oriented provider (like SMPP) that records
// which process holds its bind.
type bindProvider struct {
	mu      sync.Mutex
	holders map[string]int // holder → binds open
	maxOpen int
	changed chan struct{}
}

func (p *bindProvider) Name() string                   { return "bind" }
func (p *bindProvider) ConfigFields() []sb.ConfigField { return nil }
func (p *bindProvider) ValidateConfig(*sb.Gateway) error {
	return nil
}
func (p *bindProvider) Send(context.Context, *sb.Gateway, *sb.OutboundMessage) (*sb.SendResult, error) {
	return &sb.SendResult{ProviderMessageID: "b1", Status: sb.StatusSent}, nil
}
func (p *bindProvider) HandleWebhook(context.Context, *sb.Gateway, *sb.WebhookRequest) (*sb.Events, error) {
	return nil, sb.Errorf(sb.ENotFound, "no webhooks")
}

// boundListener is the provider as one process sees it.
type boundListener struct {
	*bindProvider
	holder string
}

func (l boundListener) Listen(ctx context.Context, gw *sb.Gateway, sink sb.EventSink) error {
	l.open(l.holder, 1)
	defer l.open(l.holder, -1)
	<-ctx.Done()
	return nil
}

func (p *bindProvider) open(holder string, d int) {
	p.mu.Lock()
	p.holders[holder] += d
	total := 0
	for _, n := range p.holders {
		total += n
	}
	p.maxOpen = max(p.maxOpen, total)
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *bindProvider) state() (map[string]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := map[string]int{}
	for k, v := range p.holders {
		cp[k] = v
	}
	return cp, p.maxOpen
}

// TestListenerHeldByOneProcess: of two processes sharing a database, one
// holds a gateway's bind; when it stops, the other takes over.
func TestListenerHeldByOneProcess(t *testing.T) {
	if len(storetest.Dialects()) < 2 {
		t.Skip("needs PostgreSQL (a SQLite file belongs to one process)")
	}
	old := hub.ListenerLease
	hub.ListenerLease = 600 * time.Millisecond
	t.Cleanup(func() { hub.ListenerLease = old })
	p := &bindProvider{holders: map[string]int{}, changed: make(chan struct{}, 1)}
	a := hubtest.New(t, store.Postgres, hubtest.Options{Providers: []sb.Provider{boundListener{p, "a"}}})
	b := hubtest.New(t, store.Postgres, hubtest.Options{Peer: a, Providers: []sb.Provider{boundListener{p, "b"}}})
	if _, err := a.Hub.CreateGateway(context.Background(), a.Admin, hub.GatewayRequest{Provider: "bind", Number: "+12025550401"}); err != nil {
		t.Fatal(err)
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { a.Hub.RunListeners(ctxA, "a"); close(doneA) }()
	go func() { b.Hub.RunListeners(ctxB, "b"); close(doneB) }()
	t.Cleanup(func() { stopA(); stopB(); <-doneA; <-doneB })

	first := ""
	a.WaitFor("one bind open", func() bool {
		h, _ := p.state()
		for k, n := range h {
			if n == 1 {
				first = k
			}
		}
		return first != ""
	})
	// Stop the holder: the other process takes the gateway over.
	if first == "a" {
		stopA()
		<-doneA
	} else {
		stopB()
		<-doneB
	}
	a.WaitFor("the other process binds", func() bool {
		h, _ := p.state()
		for k, n := range h {
			if k != first && n == 1 && h[first] == 0 {
				return true
			}
		}
		return false
	})
	if _, maxOpen := p.state(); maxOpen != 1 {
		t.Fatalf("%d binds were open at once", maxOpen)
	}
}
