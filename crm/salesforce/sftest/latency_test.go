package sftest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/crm/salesforce/sftest"
)

// TestLatency: a slow org applies a call at once but holds its answer until
// the client hangs up or the latency is lifted; token calls are not held.
func TestLatency(t *testing.T) {
	tests := []struct {
		name    string
		release func(s *sftest.Server, cancel context.CancelFunc)
		wantErr bool
	}{
		{"client gives up", func(_ *sftest.Server, cancel context.CancelFunc) { cancel() }, true},
		{"latency lifted", func(s *sftest.Server, _ context.CancelFunc) { s.SetLatency(0) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sftest.NewServer(t)
			s.SetLatency(time.Hour)
			token := login(t, s) // the token endpoint is not slowed
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type answer struct {
				status int
				err    error
			}
			done := make(chan answer, 1)
			go func() {
				req, _ := http.NewRequestWithContext(ctx, "POST", s.InstanceURL()+"/services/data/v62.0/sobjects/Contact", strings.NewReader(`{"LastName":"Slow"}`))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := s.HTTPClient().Do(req)
				if err == nil {
					resp.Body.Close()
					done <- answer{status: resp.StatusCode}
					return
				}
				done <- answer{err: err}
			}()
			deadline := time.After(30 * time.Second)
			for len(s.Records("Contact")) == 0 {
				select {
				case a := <-done:
					t.Fatalf("answered before the record was saved: %+v", a)
				case <-deadline:
					t.Fatal("the record was never saved")
				case <-time.After(5 * time.Millisecond):
				}
			}
			select {
			case a := <-done:
				t.Fatalf("answered while held: %+v", a)
			default:
			}
			tt.release(s, cancel)
			a := <-done
			if tt.wantErr != (a.err != nil) || (!tt.wantErr && a.status != http.StatusCreated) {
				t.Fatalf("answer %+v, want error %v", a, tt.wantErr)
			}
			if n := len(s.Records("Contact")); n != 1 {
				t.Fatalf("%d contacts, want 1", n)
			}
		})
	}
}
