package hub

import (
	"context"
	"encoding/json"
	"time"

	sb "github.com/switchboard/switchboard"
)

// ListenerLease is how long a process holds a connection-oriented gateway
// (an SMPP bind) without renewing; it renews every third of it.
var ListenerLease = 30 * time.Second

// RunListeners keeps one listener (for example an SMPP bind) running for
// every active gateway whose provider holds a connection, in whichever
// process holds the gateway's lease — so several processes sharing a
// database bind each gateway once, and another takes over within a lease
// period when one stops. It returns when ctx ends.
func (h *Hub) RunListeners(ctx context.Context, holder string) {
	type running struct {
		cancel  context.CancelFunc
		done    chan struct{}
		version string
	}
	active := map[string]*running{}
	stop := func(id string) {
		r := active[id]
		r.cancel()
		<-r.done
		delete(active, id)
		_ = h.DB.ReleaseListenerLease(context.WithoutCancel(ctx), id, holder)
	}
	tick := time.NewTicker(ListenerLease / 3)
	defer tick.Stop()
	for {
		gws, err := h.DB.Gateways(ctx, "")
		if err != nil && ctx.Err() == nil {
			h.Log.Warn("listeners: list gateways", "err", err)
		}
		want := map[string]bool{}
		for _, gw := range gws {
			p, err := h.Providers.Get(gw.Provider)
			if err != nil {
				continue
			}
			l, ok := p.(sb.Listener)
			if !ok || !gw.Active {
				continue
			}
			got, err := h.DB.TakeListenerLease(ctx, gw.ID, holder, h.DB.Now().Add(ListenerLease))
			if err != nil || !got {
				continue
			}
			want[gw.ID] = true
			version := gatewayVersion(gw)
			if r, ok := active[gw.ID]; ok && r.version != version {
				stop(gw.ID) // settings changed: bind again with the new ones
			}
			if _, ok := active[gw.ID]; !ok {
				lctx, cancel := context.WithCancel(ctx)
				r := &running{cancel: cancel, done: make(chan struct{}), version: version}
				active[gw.ID] = r
				go func(gw *sb.Gateway) {
					defer close(r.done)
					if err := l.Listen(lctx, gw, h); err != nil && lctx.Err() == nil {
						h.Log.Warn("listener stopped", "gateway", gw.ID, "provider", gw.Provider, "err", err)
					}
				}(gw)
				h.Log.Info("listener started", "gateway", gw.ID, "provider", gw.Provider)
			}
		}
		for id := range active {
			if !want[id] {
				stop(id)
			}
		}
		select {
		case <-ctx.Done():
			for id := range active {
				stop(id)
			}
			return
		case <-tick.C:
		}
	}
}

func gatewayVersion(gw *sb.Gateway) string {
	b, _ := json.Marshal(struct {
		N string
		C map[string]string
	}{gw.Number, gw.Config})
	return string(b)
}
