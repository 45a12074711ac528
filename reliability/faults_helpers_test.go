package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/provider/sim"
)

// recipients returns n distinct recipients, numbered from first.
func recipients(first, n int) []map[string]string {
	out := make([]map[string]string, n)
	for i := range out {
		out[i] = map[string]string{"to": fmt.Sprintf("+1202%07d", first+i)}
	}
	return out
}

// bulkSend posts one bulk send through s to gateway gw and returns its batch
// id; it fails the test unless the send is accepted whole.
func bulkSend(t *testing.T, s *service, gw string, recips []map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	status, body, err := postJSON(ctx, s.base+"/v1/bulk-sends", s.Key,
		map[string]any{"gateway_id": gw, "body": "Your registration is confirmed.", "recipients": recips})
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("bulk send: %d %v %s", status, err, body)
	}
	var res struct {
		BatchID  string `json:"batch_id"`
		Accepted int    `json:"accepted"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.Accepted != len(recips) {
		t.Fatalf("bulk send accepted %d of %d: %v %s", res.Accepted, len(recips), err, body)
	}
	return res.BatchID
}

// batchCounts returns a bulk send's messages by status.
func batchCounts(t *testing.T, s *service, batch string) map[string]int {
	t.Helper()
	var st struct {
		Counts map[string]int `json:"counts"`
	}
	if code := getJSON(t, s.base+"/v1/bulk-sends/"+batch, s.Key, &st); code != http.StatusOK {
		return nil
	}
	return st.Counts
}

// setFaults sets the carrier's simulated send failures over its HTTP API.
func (c *carrier) setFaults(t *testing.T, f sim.Faults) {
	t.Helper()
	b, _ := json.Marshal(f)
	req, _ := http.NewRequest(http.MethodPut, c.URL+"/v1/faults", bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		out, _ := io.ReadAll(resp.Body)
		t.Fatalf("set carrier faults: %d %s", resp.StatusCode, out)
	}
}

// faults returns the simulated send failures still to come.
func (c *carrier) faults(t *testing.T) sim.Faults {
	t.Helper()
	var f sim.Faults
	getJSON(t, c.URL+"/v1/faults", "", &f)
	return f
}

// fullStats reads every carrier counter.
func (c *carrier) fullStats(t *testing.T) sim.Stats {
	t.Helper()
	var s sim.Stats
	getJSON(t, c.URL+"/v1/stats", "", &s)
	return s
}

// arrivals returns when each send from a gateway number reached the
// carrier.
func (c *carrier) arrivals(t *testing.T, number string) []time.Time {
	t.Helper()
	var at []time.Time
	if code := getJSON(t, c.URL+"/v1/numbers/"+url.PathEscape(number)+"/arrivals", "", &at); code != http.StatusOK {
		t.Fatalf("arrivals: HTTP %d", code)
	}
	return at
}

// metric sums the samples of a Prometheus counter or gauge on s's /metrics
// whose labels include all of labels ("name", "value", …); -1 when /metrics
// cannot be read.
func (s *service) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return -1
	}
	return sumMetric(resp.Body, name, labels...)
}

// sumMetric sums the samples of name in a Prometheus text exposition whose
// labels include all of labels.
func sumMetric(r io.Reader, name string, labels ...string) float64 {
	var want []string
	for i := 0; i+1 < len(labels); i += 2 {
		want = append(want, labels[i]+`="`+labels[i+1]+`"`)
	}
	total := 0.0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		head, value, ok := strings.Cut(line, " ")
		if i := strings.LastIndexByte(line, '}'); i > 0 {
			head, value, ok = line[:i+1], strings.TrimSpace(line[i+1:]), true
		}
		if !ok || !containsAll(head, want...) {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

// readyz returns /readyz's status and body.
func (s *service) readyz() (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// maxInWindow returns the most arrivals (sorted) within any window of
// length w: the count of at[i..j] with at[j]-at[i] < w, maximised.
func maxInWindow(at []time.Time, w time.Duration) int {
	n, _ := peakWindow(at, w)
	return n
}

// peakWindow returns the most arrivals (sorted) within any window of length
// w, and the index of the first arrival of such a window.
func peakWindow(at []time.Time, w time.Duration) (best, first int) {
	i := 0
	for j := range at {
		for at[j].Sub(at[i]) >= w {
			i++
		}
		if j-i+1 > best {
			best, first = j-i+1, i
		}
	}
	return best, first
}
