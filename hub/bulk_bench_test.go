package hub_test

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/builtin"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/provider"
	"github.com/switchboard/switchboard/provider/sim"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// builtinCRMs resolves every org to one built-in CRM.
type builtinCRMs struct{ crm *builtin.CRM }

func (c builtinCRMs) For(context.Context, *sb.Org) (sb.CRM, error) { return c.crm, nil }

// bulkEnv is a hub whose job queue only inserts (nothing is sent), with an
// org, its admin and a sandbox simulated gateway: the accept path of a bulk
// send alone.
type bulkEnv struct {
	hub   *hub.Hub
	admin *sb.User
	gw    *sb.Gateway
}

func newBulkEnv(tb testing.TB, d store.Dialect, onQuery func(string)) *bulkEnv {
	tb.Helper()
	ctx := context.Background()
	db := storetest.Open(tb, d, func(o *store.Options) { o.OnQuery = onQuery })
	if _, err := db.NewQueue(&river.Config{}); err != nil {
		tb.Fatal(err)
	}
	public, _ := url.Parse("http://127.0.0.1:1")
	h := hub.New(db, provider.NewRegistry(sim.New("http://127.0.0.1:1/sim", nil)), builtinCRMs{builtin.New(db)}, public,
		logging.Discard(), hub.NewMetrics(prometheus.NewRegistry()))
	_, admin, _, err := h.CreateOrg(ctx, "Bench College", "admin@example.org", "Admin")
	if err != nil {
		tb.Fatal(err)
	}
	sandbox, rate := true, 0.0
	v, err := h.CreateGateway(ctx, admin, hub.GatewayRequest{Name: "Main", Provider: sb.ProviderSim, Number: "+12025550100", Sandbox: &sandbox, Rate: &rate})
	if err != nil {
		tb.Fatal(err)
	}
	return &bulkEnv{hub: h, admin: admin, gw: v.Gateway}
}

// seed opts out every 20th of n numbers (an import of legacy opt-outs) and
// gives every 100th a built-in CRM contact, every other of which has the
// global opt-out flag.
func (e *bulkEnv) seed(tb testing.TB, n int) {
	tb.Helper()
	ctx := context.Background()
	var csv strings.Builder
	csv.WriteString("phone\n")
	for i := 0; i < n; i += 20 {
		fmt.Fprintf(&csv, "%s\n", benchPhone(i))
	}
	if _, err := e.hub.ImportOptOutsCSV(ctx, e.admin, strings.NewReader(csv.String())); err != nil {
		tb.Fatal(err)
	}
	err := e.hub.DB.Tx(ctx, func(tx *store.Tx) error {
		for i := 0; i < n; i += 100 {
			c := &sb.CRMRecord{LastName: fmt.Sprint("Contact", i), Phone: benchPhone(i + 1), OptOut: i%200 == 0}
			if err := tx.SaveContact(ctx, e.admin.OrgID, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func benchPhone(i int) string { return fmt.Sprintf("+12022%06d", i) }

func phoneRecipients(n int) []hub.Recipient {
	out := make([]hub.Recipient, n)
	for i := range out {
		out[i] = hub.Recipient{To: benchPhone(i)}
	}
	return out
}

var bulkRecipients = flag.Int("bulk.recipients", 100_000, "recipients of the bulk send BenchmarkBulkAccept100k makes (a multiple of 200)")

// BenchmarkBulkAccept100k measures accepting a bulk send to 100,000
// numbers given without record ids: parsing, the global opt-out lookup of
// the numbers in the CRM (one query), the subscription check (one query),
// and storing the 100,000 messages with their send jobs. 5,000 numbers are
// opted out; 1,000 have a contact, 500 of them with the global opt-out flag.
// One op is one bulk send; recipients/s is reported too. -bulk.recipients
// sets another size.
func BenchmarkBulkAccept100k(b *testing.B) {
	n := *bulkRecipients
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			e := newBulkEnv(b, d, nil)
			e.seed(b, n)
			req := hub.BulkRequest{GatewayID: e.gw.ID, Body: "Registration for spring classes closes Friday.", Recipients: phoneRecipients(n)}
			b.ResetTimer()
			for b.Loop() {
				res, err := e.hub.Bulk(context.Background(), e.admin, req)
				if err != nil {
					b.Fatal(err)
				}
				if res.Accepted != n-n/200 || res.Blocked != n/20 {
					b.Fatalf("accepted %d, blocked %d", res.Accepted, res.Blocked)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "recipients/s")
		})
	}
}

// TestBulkOptOutCheckIsSetBased counts the statements a bulk send makes
// against the subscriptions and the built-in CRM's contacts (the opt-out
// and global opt-out checks): the same, one each, for 10 recipients as for
// 3,000.
func TestBulkOptOutCheckIsSetBased(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		var counting atomic.Bool
		var subs, contacts atomic.Int64
		e := newBulkEnv(t, d, func(q string) {
			if !counting.Load() {
				return
			}
			if strings.Contains(q, "FROM subscriptions") {
				subs.Add(1)
			}
			if strings.Contains(q, "FROM crm_contacts") {
				contacts.Add(1)
			}
		})
		e.seed(t, 3000)
		for _, n := range []int{10, 3000} {
			subs.Store(0)
			contacts.Store(0)
			counting.Store(true)
			res, err := e.hub.Bulk(context.Background(), e.admin, hub.BulkRequest{GatewayID: e.gw.ID, Body: "hi", Recipients: phoneRecipients(n)})
			counting.Store(false)
			if err != nil {
				t.Fatal(err)
			}
			if want := (n + 19) / 20; res.Blocked != want {
				t.Fatalf("%d recipients: %d blocked, want %d", n, res.Blocked, want)
			}
			if subs.Load() != 1 || contacts.Load() != 1 {
				t.Fatalf("bulk send to %d numbers: %d subscription and %d contact statements, want 1 and 1", n, subs.Load(), contacts.Load())
			}
		}
	})
}
