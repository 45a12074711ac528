package hub

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the hub's Prometheus metrics.
type Metrics struct {
	MessagesAccepted *prometheus.CounterVec // by source
	SendResults      *prometheus.CounterVec // by provider, result
	StatusUpdates    *prometheus.CounterVec // by provider, status
	Incoming         *prometheus.CounterVec // by provider, keyword
	Webhooks         *prometheus.CounterVec // by provider, result
	CRMCalls         *prometheus.CounterVec // by crm, result
	CRMRecords       *prometheus.CounterVec // by crm, result
	OptChanges       *prometheus.CounterVec // by status, via
	SendLatency      prometheus.Histogram   // provider call seconds
	CRMAPIUsage      *prometheus.GaugeVec   // by org: used fraction
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		MessagesAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_messages_accepted_total", Help: "Outgoing messages accepted, by source."}, []string{"source"}),
		SendResults:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_send_results_total", Help: "Provider send attempts, by provider and result."}, []string{"provider", "result"}),
		StatusUpdates:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_status_updates_total", Help: "Status updates applied, by provider and status."}, []string{"provider", "status"}),
		Incoming:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_incoming_messages_total", Help: "Incoming messages stored, by provider and keyword kind."}, []string{"provider", "keyword"}),
		Webhooks:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_webhooks_total", Help: "Provider webhook requests, by provider and result."}, []string{"provider", "result"}),
		CRMCalls:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_crm_write_calls_total", Help: "CRM write calls, by CRM and result."}, []string{"crm", "result"}),
		CRMRecords:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_crm_records_total", Help: "Message records written to the CRM, by CRM and result."}, []string{"crm", "result"}),
		OptChanges:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_subscription_changes_total", Help: "Subscription changes, by status and how."}, []string{"status", "via"}),
		SendLatency:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "switchboard_provider_send_seconds", Help: "Duration of provider send calls.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		CRMAPIUsage:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switchboard_crm_api_usage_ratio", Help: "CRM API calls used over the CRM's daily limit, by org."}, []string{"org"}),
	}
	if reg != nil {
		reg.MustRegister(m.MessagesAccepted, m.SendResults, m.StatusUpdates, m.Incoming, m.Webhooks, m.CRMCalls, m.CRMRecords, m.OptChanges, m.SendLatency, m.CRMAPIUsage)
	}
	return m
}
