package link_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"

	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/link"
	"github.com/switchboard/switchboard/store"
)

// BenchmarkRedirect measures GET /l/{code} in process through the real
// handler (routing, logging and recovery middleware, cache, bot check,
// click recorder) on SQLite, and reports the 50th and 99th percentile of
// one request's latency. Clicks are written by the background recorder
// while the benchmark runs, as in production.
//
//	go test -run '^$' -bench BenchmarkRedirect -benchtime 20000x ./link/
func BenchmarkRedirect(b *testing.B) {
	var svc *link.Service
	e := hubtest.New(b, store.SQLite, hubtest.Options{Setup: func(e *hubtest.Env, cfg *river.Config) {
		svc = link.New(e.DB, e.Hub, link.Options{})
		svc.AddWorkers(cfg.Workers)
	}})
	b.Cleanup(func() { _ = svc.Close(context.Background()) })
	e.HTTP.Content = &sbhttp.Content{Links: svc}
	handler := e.HTTP.Handler()
	ctx := context.Background()
	msg := e.Send("+12025550100", "hello")
	links := []store.Link{
		{Code: link.NewCode(), OrgID: e.Org.ID, URL: "https://example.org/basic/target", Mode: link.ModeBasic, MessageID: msg.ID, CreatedAt: time.Now()},
		{Code: link.NewCode(), OrgID: e.Org.ID, URL: "https://example.org/tracked/target", Mode: link.ModePerRecipient, MessageID: msg.ID, CreatedAt: time.Now()},
		{Code: link.NewCode(), OrgID: e.Org.ID, URL: "https://example.org/other/target", Mode: link.ModeBasic, CreatedAt: time.Now()},
	}
	if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.InsertLinks(ctx, links) }); err != nil {
		b.Fatal(err)
	}
	request := func(code string) *http.Request {
		r := httptest.NewRequest("GET", "/l/"+code, nil)
		r.Header.Set("User-Agent", chromeUA)
		r.Header.Set("Referer", "https://mail.example.com/")
		return r
	}
	run := func(b *testing.B, codes ...string) {
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			w := httptest.NewRecorder()
			r := request(codes[i%len(codes)])
			start := time.Now()
			handler.ServeHTTP(w, r)
			lat = append(lat, time.Since(start))
			if w.Code != http.StatusFound {
				b.Fatalf("status %d", w.Code)
			}
		}
		b.StopTimer()
		if err := svc.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("basic", func(b *testing.B) { run(b, links[0].Code) })
	b.Run("per_recipient", func(b *testing.B) { run(b, links[1].Code) })
	b.Run("uncached", func(b *testing.B) {
		// A cache of one entry and two codes: every request reads the store.
		prev := svc
		svc = link.New(e.DB, e.Hub, link.Options{CacheSize: 1})
		e.HTTP.Content = &sbhttp.Content{Links: svc}
		defer func() {
			_ = svc.Close(ctx)
			svc = prev
			e.HTTP.Content = &sbhttp.Content{Links: prev}
		}()
		run(b, links[0].Code, links[2].Code)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, request(links[1].Code))
				if w.Code != http.StatusFound {
					b.Errorf("status %d", w.Code)
					return
				}
			}
		})
		b.StopTimer()
		if err := svc.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	})
}
