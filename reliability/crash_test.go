package reliability

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

const (
	crashMessages = 10_000
	crashChunk    = 1_000
)

// openStore opens the service's database from the test to check the
// outcome.
func openStore(t *testing.T, url string) *store.DB {
	t.Helper()
	ring, err := sb.ParseKeyring(secretKeys)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(hashKey)
	h, err := sb.NewHasher(raw)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), url, store.Options{Keyring: ring, Hasher: h, Inspect: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// postChunks sends the bulk send in chunks, each with its own idempotency
// key, as a client that retries would; it returns how many chunks were
// acknowledged. It stops at the first failure (the process died).
func postChunks(s *service, from int) int {
	ok := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for c := from; c < crashMessages/crashChunk; c++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			recips := make([]map[string]string, crashChunk)
			for i := range recips {
				recips[i] = map[string]string{"to": fmt.Sprintf("+1202%07d", 5000000+c*crashChunk+i)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			status, _, err := postJSON(ctx, s.base+"/v1/bulk-sends", s.Key,
				map[string]any{"gateway_id": s.GW, "body": "Your registration is confirmed.", "recipients": recips},
				"Idempotency-Key", fmt.Sprintf("crash-chunk-%d", c))
			if err == nil && (status == http.StatusAccepted || status == http.StatusOK) {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok
}

// TestCrashSafety kills `switchboard serve` with SIGKILL during a bulk send
// of 10,000 messages — while accepting it, while sending, and while writing
// statuses back to the CRM — restarts it, and checks that every message
// reached the carrier exactly once and every final status reached the CRM.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests run real processes; skipped in -short")
	}
	points := []struct {
		name string
		// wait blocks until the moment to kill.
		wait func(t *testing.T, s *service, c *carrier)
	}{
		{"during accept", nil},
		{"during sending", func(t *testing.T, s *service, c *carrier) {
			waitUntil(t, "sending under way", func() bool { return c.stats(t).Accepted >= 2500 }, s.p.output)
		}},
		{"during status write-back", func(t *testing.T, s *service, c *carrier) {
			waitUntil(t, "all sent with write-back pending", func() bool {
				return c.stats(t).Accepted >= crashMessages && s.crmPending() > 0
			}, s.p.output)
		}},
	}
	for _, d := range storetest.Dialects() {
		for _, pt := range points {
			t.Run(string(d)+"/"+pt.name, func(t *testing.T) {
				url := storetest.URL(t, d)
				c := startCarrier(t)
				s := newService(t, url, c.URL)
				if pt.wait == nil {
					// Kill while bulk-send requests are in flight.
					done := make(chan int, 1)
					go func() { done <- postChunks(s, 0) }()
					waitUntil(t, "some chunks accepted", func() bool {
						var st struct {
							Messages []any `json:"messages"`
						}
						getJSON(t, s.base+"/v1/messages?limit=1", s.Key, &st)
						return len(st.Messages) > 0
					}, s.p.output)
					s.crash()
					<-done
				} else {
					if n := postChunks(s, 0); n != crashMessages/crashChunk {
						t.Fatalf("only %d chunks accepted before the crash", n)
					}
					pt.wait(t, s, c)
					s.crash()
				}
				// The client retries every chunk: accepted ones are not sent again.
				if n := postChunks(s, 0); n != crashMessages/crashChunk {
					t.Fatalf("%d of %d chunks accepted after restart:\n%s", n, crashMessages/crashChunk, s.p.output())
				}
				db := openStore(t, url)
				ctx := context.Background()
				orgs, err := db.Orgs(ctx)
				if err != nil || len(orgs) != 1 {
					t.Fatalf("orgs: %v %d", err, len(orgs))
				}
				org := orgs[0].ID
				var delivered, pending int
				waitUntil(t, "every message delivered and in the CRM", func() bool {
					delivered, _ = db.CountDelivered(ctx, org)
					pending = s.crmPending()
					if delivered == crashMessages && pending == 0 {
						return true
					}
					return false
				}, func() string {
					return fmt.Sprintf("%d delivered, %d CRM changes pending, carrier %+v\nservice output:\n%s", delivered, pending, c.stats(t), s.p.output())
				})
				st := c.stats(t)
				if st.Accepted != crashMessages {
					t.Fatalf("carrier accepted %d distinct messages, want %d", st.Accepted, crashMessages)
				}
				t.Logf("%s: carrier saw %d distinct messages, %d repeated attempts (in flight at the kill, recognised by the carrier)",
					pt.name, st.Accepted, st.Duplicates)
				if n, _ := db.CountRows(ctx, "messages"); n != crashMessages {
					t.Fatalf("%d messages stored, want %d", n, crashMessages)
				}
				if n, err := db.CRMMessagesWithStatus(ctx, org, sb.StatusDelivered); err != nil || n != crashMessages {
					t.Fatalf("%d CRM records Delivered (err %v), want %d", n, err, crashMessages)
				}
			})
		}
	}
}

// waitUntil polls cond until it holds, failing after 3 minutes (a guard
// against hangs; nothing asserts on timing) with what explain says.
func waitUntil(t *testing.T, what string, cond func() bool, explain func() string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, explain())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
