package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseRates(t *testing.T) {
	tests := []struct {
		in      string
		want    []float64
		wantErr string
	}{
		{in: "250,500,1000", want: []float64{250, 500, 1000}},
		{in: " 2.5 , 4000 ", want: []float64{2.5, 4000}},
		{in: "100", want: []float64{100}},
		{in: "", wantErr: "a rate is missing"},
		{in: "250,,500", wantErr: "a rate is missing"},
		{in: "0", wantErr: `"0" is not a rate`},
		{in: "-5", wantErr: `"-5" is not a rate`},
		{in: "NaN", wantErr: `"NaN" is not a rate`},
		{in: "1e7", wantErr: `"1e7" is not a rate`},
		{in: "fast", wantErr: `"fast" is not a rate`},
		{in: strings.Repeat("1,", 100) + "1", wantErr: "at most 100 rates"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseRates(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func FuzzParseRates(f *testing.F) {
	for _, s := range []string{"250,500,1000", "1e3", "", ",", "0.0001", "Inf", "-0", "1_000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rates, err := parseRates(s)
		if err != nil {
			if rates != nil {
				t.Fatalf("rates %v with error %v", rates, err)
			}
			return
		}
		if len(rates) == 0 || len(rates) > 100 {
			t.Fatalf("%d rates from %q", len(rates), s)
		}
		for _, r := range rates {
			if !(r > 0 && r <= maxLoadRate) {
				t.Fatalf("rate %v from %q", r, s)
			}
		}
	})
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of four", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p100", ms(hundred...), 1, 100 * time.Millisecond},
		{"tiny p", ms(1, 2, 3), 0.0001, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Fatalf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 40 * time.Millisecond}
	s := summarize(4, lat, 1, 2*time.Second)
	want := LoadStep{TargetRate: 4, Sent: 5, OK: 4, Errors: 1, AchievedRate: 2, P50Millis: 2, P99Millis: 40, MaxMillis: 40}
	if s != want {
		t.Fatalf("summarize = %+v, want %+v", s, want)
	}
	if s := summarize(10, nil, 3, 0); s.Sent != 3 || s.OK != 0 || s.AchievedRate != 0 || s.P99Millis != 0 {
		t.Fatalf("all failed: %+v", s)
	}
}

// TestRunStepOpenLoop: every request due in the step is made, whatever the
// answers, and failures are counted with the first error kept.
func TestRunStepOpenLoop(t *testing.T) {
	var calls atomic.Int64
	fire := func(context.Context) error {
		if calls.Add(1)%10 == 0 {
			return errors.New("webhook answered 503")
		}
		return nil
	}
	s := runStep(context.Background(), 200, 250*time.Millisecond, 4, fire)
	if s.Sent != 50 || calls.Load() != 50 || s.Errors != 5 || s.OK != 45 || s.FirstError != "webhook answered 503" {
		t.Fatalf("step %+v after %d calls", s, calls.Load())
	}
}

// TestLoadCommand runs the command end to end on SQLite with two short,
// low steps: every webhook is stored and answered.
func TestLoadCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole Switchboard")
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"load", "-db", "sqlite", "-step", "500ms", "-rates", "20,40", "-all", "-json"}, &out, &errOut); err != nil {
		t.Fatalf("load: %v\n%s", err, errOut.String())
	}
	var res LoadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not a JSON result: %v\n%s", err, out.String())
	}
	if res.Database != "sqlite" || len(res.Steps) != 2 {
		t.Fatalf("result %+v", res)
	}
	for i, want := range []int{10, 20} {
		s := res.Steps[i]
		if s.Sent != want || s.OK != want || s.Errors != 0 || s.MaxMillis <= 0 || s.P50Millis > s.P99Millis || s.P99Millis > s.MaxMillis {
			t.Fatalf("step %d: %+v", i, s)
		}
	}
}

func TestLoadFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-db", "mysql"}, "-db must be sqlite, postgres or both"},
		{[]string{"-rates", "100,x"}, `-rates: "x" is not a rate`},
		{[]string{"-step", "1ms"}, "-step must be between"},
		{[]string{"-clients", "0"}, "-clients must be between"},
		{[]string{"-p99", "0s"}, "-p99 must be positive"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"load"}, tt.args...), &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
