package hub_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// batchProvider is a partner with a batch send API whose answers the test
// sets: refuse sets a refusal of every batch as a whole; otherwise a
// message to a number ending in 9 is refused alone (invalid number).
type batchProvider struct {
	refuse error
	mu     sync.Mutex
	sizes  []int
	singly int
}

func (p *batchProvider) Name() string                        { return "batchfake" }
func (p *batchProvider) ConfigFields() []sb.ConfigField      { return nil }
func (p *batchProvider) ValidateConfig(gw *sb.Gateway) error { return nil }
func (p *batchProvider) MaxBatch(gw *sb.Gateway) int         { return 10 }

func (p *batchProvider) Send(ctx context.Context, gw *sb.Gateway, m *sb.OutboundMessage) (*sb.SendResult, error) {
	p.mu.Lock()
	p.singly++
	p.mu.Unlock()
	return &sb.SendResult{ProviderMessageID: "one-" + m.ID}, nil
}

func (p *batchProvider) SendBatch(ctx context.Context, gw *sb.Gateway, ms []*sb.OutboundMessage) ([]sb.BatchResult, error) {
	p.mu.Lock()
	p.sizes = append(p.sizes, len(ms))
	p.mu.Unlock()
	if p.refuse != nil {
		return nil, p.refuse
	}
	res := make([]sb.BatchResult, len(ms))
	for i, m := range ms {
		if strings.HasSuffix(m.To, "9") {
			res[i].Err = &sb.SendError{Kind: sb.SendInvalidNumber, Code: "21211", Debug: "invalid number " + m.To}
			continue
		}
		res[i].Result = &sb.SendResult{ProviderMessageID: "b-" + m.ID, Status: sb.StatusSent}
	}
	return res, nil
}

func (p *batchProvider) HandleWebhook(ctx context.Context, gw *sb.Gateway, req *sb.WebhookRequest) (*sb.Events, error) {
	return nil, sb.Errorf(sb.ENotFound, "no webhooks")
}

// TestBatchSenderOutcomes: through a provider's batch API, each message of
// a batch gets its own outcome (taken, or refused alone); a batch refused
// whole for good fails each of its messages with the partner's reason; a
// gateway with a rate limit sends one message per slot, not in batches.
func TestBatchSenderOutcomes(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			p := &batchProvider{}
			e := hubtest.New(t, d, hubtest.Options{Providers: []sb.Provider{p}})
			ctx := context.Background()
			gateway := func(number string, rate float64) string {
				v, err := e.Hub.CreateGateway(ctx, e.Admin, hub.GatewayRequest{Provider: "batchfake", Number: number, Rate: &rate})
				if err != nil {
					t.Fatal(err)
				}
				return v.ID
			}
			bulk := func(gw string, n int) []*sb.Message {
				recips := make([]map[string]string, n)
				for i := range recips {
					recips[i] = map[string]string{"to": fmt.Sprintf("+1202555%04d", 5000+i)}
				}
				batchID := postBulk(t, e, gw, "Fees are due", recips)
				var msgs []*sb.Message
				t.Cleanup(func() {
					if t.Failed() {
						for _, m := range msgs {
							t.Logf("%s %s %q %q", m.ID, m.Status, m.ProviderMessageID, m.Debug)
						}
					}
				})
				e.WaitFor("every message handed to the partner or failed", func() bool {
					var err error
					msgs, err = e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{BatchID: batchID, Limit: 500})
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range msgs {
						if m.Status == sb.StatusQueued && m.ProviderMessageID == "" {
							return false
						}
					}
					return len(msgs) == n
				})
				return msgs
			}

			// Taken or refused one by one.
			for _, m := range bulk(gateway("+12025550501", 0), 25) {
				phoneEnds9 := m.Status == sb.StatusFailed
				switch {
				case phoneEnds9 && m.ErrorCode == "21211" && strings.Contains(m.Debug, "invalid number"):
				case m.Status == sb.StatusSent && m.ProviderMessageID == "b-"+m.ID:
				default:
					t.Fatalf("message %s: %s %q %q %q", m.ID, m.Status, m.ProviderMessageID, m.ErrorCode, m.Debug)
				}
			}
			p.mu.Lock()
			sizes, singly := append([]int(nil), p.sizes...), p.singly
			p.mu.Unlock()
			total := 0
			for _, s := range sizes {
				if s < 1 || s > 10 {
					t.Fatalf("batch of %d messages (max 10)", s)
				}
				total += s
			}
			if total != 25 || singly != 0 {
				t.Fatalf("batches %v (total %d), single sends %d; want 25 messages in batches", sizes, total, singly)
			}

			// Refused whole, for good: every message fails with the reason.
			p.mu.Lock()
			p.refuse = &sb.SendError{Kind: sb.SendPermanent, Code: "403", Debug: "account suspended"}
			p.mu.Unlock()
			for _, m := range bulk(gateway("+12025550502", 0), 12) {
				if m.Status != sb.StatusFailed || m.ErrorCode != "403" || m.Debug != "account suspended" {
					t.Fatalf("message %s of a refused batch: %s %q %q", m.ID, m.Status, m.ErrorCode, m.Debug)
				}
			}

			// A paced gateway sends one message per slot.
			p.mu.Lock()
			p.refuse, p.sizes = nil, nil
			p.mu.Unlock()
			for _, m := range bulk(gateway("+12025550503", 1000), 3) {
				if m.ProviderMessageID != "one-"+m.ID {
					t.Fatalf("message %s on a paced gateway: %s %q", m.ID, m.Status, m.ProviderMessageID)
				}
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if len(p.sizes) != 0 || p.singly != 3 {
				t.Fatalf("paced gateway: batches %v, single sends %d", p.sizes, p.singly)
			}
		})
	}
}
