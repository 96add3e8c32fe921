package shipper

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the instruments the shipper updates. The wiring (internal/flow) fills them
// from the flow's series; a nil field counts into an instrument nobody exports, so the zero
// value is a valid Metrics and the send path has no nil checks.
type Metrics struct {
	RecordsSent     prometheus.Counter // kinship_records_sent_total: destination records accepted (an aggregate once)
	UserRecordsSent prometheus.Counter // kinship_user_records_sent_total: lines accepted
	Retries         prometheus.Counter // kinship_retries_total: records sent again after a failure
	Resplits        prometheus.Counter // kinship_resplit_records_total: aggregates re-split per shard (Options.Shards)
	SendRate        prometheus.Gauge   // kinship_send_rate_bytes: the rate allowed after throttling; 0: not limited
	// SendErrors is kinship_send_errors_total curried by flow; label: reason.
	SendErrors *prometheus.CounterVec
}

func (m Metrics) withDefaults() Metrics {
	for _, c := range []*prometheus.Counter{&m.RecordsSent, &m.UserRecordsSent, &m.Retries, &m.Resplits} {
		if *c == nil {
			*c = prometheus.NewCounter(prometheus.CounterOpts{Name: "unexported"})
		}
	}
	if m.SendRate == nil {
		m.SendRate = prometheus.NewGauge(prometheus.GaugeOpts{Name: "unexported"})
	}
	if m.SendErrors == nil {
		m.SendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unexported"}, []string{"reason"})
	}
	return m
}
