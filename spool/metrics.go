package spool

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the instruments the spool updates. The wiring (internal/flow) fills them from
// the flow's series; a nil field counts into an instrument nobody exports, so the zero value
// is a valid Metrics and the spool has no nil checks.
type Metrics struct {
	SpoolBytes         prometheus.Gauge   // kinship_spool_bytes: segment bytes on disk, acknowledged frames included
	SpoolAppendedBytes prometheus.Counter // kinship_spool_appended_bytes_total: data payloads, before compression
	SpoolStoredBytes   prometheus.Counter // kinship_spool_stored_bytes_total: the frame bytes they took on disk
	SpoolWriteErrors   prometheus.Counter // kinship_spool_write_errors_total: failed writes and fsyncs
	SpoolCorrupt       prometheus.Counter // kinship_spool_corrupt_frames_total: frames skipped by Next
	SpoolDropped       prometheus.Counter // kinship_spool_dropped_total: frames drop_oldest deleted
	SpoolDroppedBytes  prometheus.Counter // kinship_spool_dropped_bytes_total: segment bytes drop_oldest deleted
	SpoolLostFrames    prometheus.Counter // kinship_spool_lost_frames_total: damaged frames recovery removed
	SpoolLostBytes     prometheus.Counter // kinship_spool_lost_bytes_total: bytes recovery cut or set aside
}

func (m Metrics) withDefaults() Metrics {
	if m.SpoolBytes == nil {
		m.SpoolBytes = prometheus.NewGauge(prometheus.GaugeOpts{Name: "unexported"})
	}
	for _, c := range []*prometheus.Counter{&m.SpoolAppendedBytes, &m.SpoolStoredBytes, &m.SpoolWriteErrors,
		&m.SpoolCorrupt, &m.SpoolDropped, &m.SpoolDroppedBytes, &m.SpoolLostFrames, &m.SpoolLostBytes} {
		if *c == nil {
			*c = prometheus.NewCounter(prometheus.CounterOpts{Name: "unexported"})
		}
	}
	return m
}
