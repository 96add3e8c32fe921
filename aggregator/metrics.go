package aggregator

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the instruments the aggregator updates. The wiring (internal/flow) fills them
// from the flow's series; a nil field counts into an instrument nobody exports, so the zero
// value is a valid Metrics and the packing path has no nil checks.
type Metrics struct {
	// LinesTruncated is kinship_lines_truncated_total: lines cut to fit a record (the
	// tailer cuts most; the aggregator only lines that grew after it).
	LinesTruncated prometheus.Counter
	// PartitionKeyMissing is kinship_partition_key_missing_total: lines without the key the
	// flow takes from the lines, sent with the fallback key (Sharded).
	PartitionKeyMissing prometheus.Counter
}

func (m Metrics) withDefaults() Metrics {
	for _, c := range []*prometheus.Counter{&m.LinesTruncated, &m.PartitionKeyMissing} {
		if *c == nil {
			*c = prometheus.NewCounter(prometheus.CounterOpts{Name: "unexported"})
		}
	}
	return m
}
