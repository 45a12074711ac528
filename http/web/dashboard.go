package web

import (
	"fmt"
	"math"
	"net/http"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// dashRange is a period the dashboard can show.
type dashRange struct {
	Key     string
	Label   string
	Bucket  time.Duration
	Buckets int
}

var dashRanges = []dashRange{
	{"24h", "Last 24 hours", time.Hour, 24},
	{"7d", "Last 7 days", 24 * time.Hour, 7},
	{"30d", "Last 30 days", 24 * time.Hour, 30},
}

// chartStatuses are stacked bottom to top, in this order.
var chartStatuses = []sb.Status{sb.StatusDelivered, sb.StatusSent, sb.StatusQueued, sb.StatusUndelivered, sb.StatusFailed, sb.StatusError, sb.StatusReceived}

// Chart geometry (SVG user units; the SVG scales to its box).
const (
	chartW, chartH                    = 640, 240
	padLeft, padRight, padTop, padBot = 44, 8, 12, 36
)

type bar struct {
	X, Y, W, H float64
	Status     sb.Status
	Title      string
}

type tick struct {
	X, Y  float64
	Label string
}

type chartRow struct {
	Label  string
	Counts []int
	Total  int
}

type gatewayChart struct {
	ID, Name     string
	Bars         []bar
	XTicks       []tick
	YTicks       []tick
	Statuses     []sb.Status
	Rows         []chartRow
	Total        int
	Outgoing     int
	DeliveryRate float64
	HasRate      bool
	OptOuts      int
}

type optOutRow struct {
	Gateway string
	Via     string
	Count   int
}

type dashData struct {
	Range        dashRange
	Ranges       []dashRange
	From, To     time.Time
	Charts       []gatewayChart
	Outgoing     int
	Incoming     int
	Delivered    int
	Failed       int
	DeliveryRate float64
	HasRate      bool
	OptOuts      int
	OptOutRows   []optOutRow
	CRM          *hub.CRMConnection
	Geometry     map[string]float64
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx := r.Context()
	rg := dashRanges[0]
	for _, x := range dashRanges {
		if x.Key == r.URL.Query().Get("range") {
			rg = x
		}
	}
	now := u.d.Now().UTC()
	from := now.Truncate(rg.Bucket).Add(-time.Duration(rg.Buckets-1) * rg.Bucket)
	to := from.Add(time.Duration(rg.Buckets) * rg.Bucket)
	counts, err := u.d.DB.MessageCounts(ctx, rc.Org.ID, from, to, rg.Bucket)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	opts, err := u.d.DB.OptOutCounts(ctx, rc.Org.ID, from, to)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	gws, err := u.d.DB.Gateways(ctx, rc.Org.ID)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	d := dashData{Range: rg, Ranges: dashRanges, From: from, To: to,
		Geometry: map[string]float64{"W": chartW, "H": chartH, "Left": padLeft, "Right": chartW - padRight, "Top": padTop, "Bottom": chartH - padBot}}
	if d.CRM, err = u.d.Hub.CRMConnection(ctx, rc.User); err != nil {
		u.fail(w, r, rc, err)
		return
	}
	names := map[string]string{}
	for _, g := range gws {
		names[g.ID] = g.Name
	}
	byGW := map[string][]store.StatusCount{}
	for _, c := range counts {
		byGW[c.GatewayID] = append(byGW[c.GatewayID], c)
	}
	optByGW := map[string]int{}
	for _, o := range opts {
		optByGW[o.GatewayID] += o.Count
		d.OptOuts += o.Count
		d.OptOutRows = append(d.OptOutRows, optOutRow{Gateway: names[o.GatewayID], Via: o.Via, Count: o.Count})
	}
	var delivered, final int
	for _, g := range gws {
		c := buildChart(g.ID, g.Name, byGW[g.ID], rg, from)
		c.OptOuts = optByGW[g.ID]
		if c.Total == 0 && !g.Active {
			continue
		}
		d.Charts = append(d.Charts, c)
	}
	for _, c := range counts {
		if c.Direction == sb.Incoming {
			d.Incoming += c.Count
			continue
		}
		d.Outgoing += c.Count
		switch c.Status {
		case sb.StatusDelivered:
			delivered += c.Count
			final += c.Count
		case sb.StatusUndelivered, sb.StatusFailed:
			d.Failed += c.Count
			final += c.Count
		}
	}
	d.Delivered = delivered
	if final > 0 {
		d.DeliveryRate, d.HasRate = float64(delivered)/float64(final), true
	}
	u.render(w, http.StatusOK, "dashboard", u.newPage(r, rc, "dashboard", "Dashboard", d))
}

// buildChart lays out one gateway's stacked bars: one bar per time bucket,
// one segment per status.
func buildChart(id, name string, counts []store.StatusCount, rg dashRange, from time.Time) gatewayChart {
	c := gatewayChart{ID: id, Name: name}
	grid := make([]map[sb.Status]int, rg.Buckets)
	for i := range grid {
		grid[i] = map[sb.Status]int{}
	}
	present := map[sb.Status]bool{}
	var delivered, final int
	for _, x := range counts {
		if x.Bucket < 0 || x.Bucket >= rg.Buckets {
			continue
		}
		grid[x.Bucket][x.Status] += x.Count
		present[x.Status] = true
		c.Total += x.Count
		if x.Direction == sb.Outgoing {
			c.Outgoing += x.Count
			switch x.Status {
			case sb.StatusDelivered:
				delivered += x.Count
				final += x.Count
			case sb.StatusUndelivered, sb.StatusFailed:
				final += x.Count
			}
		}
	}
	if final > 0 {
		c.DeliveryRate, c.HasRate = float64(delivered)/float64(final), true
	}
	for _, st := range chartStatuses {
		if present[st] {
			c.Statuses = append(c.Statuses, st)
		}
	}
	peak := 0
	for _, b := range grid {
		t := 0
		for _, n := range b {
			t += n
		}
		peak = max(peak, t)
	}
	top := niceCeil(peak)
	plotW, plotH := float64(chartW-padLeft-padRight), float64(chartH-padTop-padBot)
	slot := plotW / float64(rg.Buckets)
	labelEvery := max(1, rg.Buckets/8)
	for i, b := range grid {
		start := from.Add(time.Duration(i) * rg.Bucket)
		label := start.Format("2 Jan")
		if rg.Bucket < 24*time.Hour {
			label = start.Format("15:04")
		}
		row := chartRow{Label: label}
		y := float64(chartH - padBot)
		x := padLeft + float64(i)*slot + slot*0.1
		for _, st := range c.Statuses {
			n := b[st]
			row.Counts = append(row.Counts, n)
			row.Total += n
			if n == 0 {
				continue
			}
			h := float64(n) / float64(top) * plotH
			y -= h
			c.Bars = append(c.Bars, bar{X: round1(x), Y: round1(y), W: round1(slot * 0.8), H: round1(h), Status: st,
				Title: fmt.Sprintf("%s: %d %s", label, n, st)})
		}
		c.Rows = append(c.Rows, row)
		if i%labelEvery == 0 {
			c.XTicks = append(c.XTicks, tick{X: round1(padLeft + float64(i)*slot + slot/2), Y: chartH - padBot + 16, Label: label})
		}
	}
	for _, v := range []int{0, top / 2, top} {
		c.YTicks = append(c.YTicks, tick{X: padLeft - 6, Y: round1(float64(chartH-padBot) - float64(v)/float64(top)*plotH), Label: fmt.Sprint(v)})
	}
	return c
}

// niceCeil rounds a chart's peak up to 1, 2 or 5 times a power of ten (at
// least 2, so the middle tick is whole).
func niceCeil(n int) int {
	if n <= 2 {
		return 2
	}
	p := int(math.Pow(10, math.Floor(math.Log10(float64(n)))))
	for _, m := range []int{1, 2, 5, 10} {
		if m*p >= n {
			return m * p
		}
	}
	return 10 * p
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }
