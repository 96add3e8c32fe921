package tailer

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the instruments the tailer updates. The wiring (internal/flow) fills them
// from the flow's series; a nil field counts into an instrument nobody exports, so the zero
// value is a valid Metrics and the read path has no nil checks.
type Metrics struct {
	LinesRead      prometheus.Counter // kinship_lines_read_total
	BytesRead      prometheus.Counter // kinship_bytes_read_total, newlines included
	LinesTruncated prometheus.Counter // kinship_lines_truncated_total: lines cut at max_line_bytes
	FileErrors     prometheus.Counter // kinship_file_errors_total: open, read and stat errors
	Truncations    prometheus.Counter // kinship_file_truncations_total: files read again from 0
	FilesWatched   prometheus.Gauge   // kinship_files_watched
	ReadLag        prometheus.Gauge   // kinship_read_lag_bytes: written to files, not yet read
	// FilesSkipped is kinship_files_skipped_total curried by flow; label: reason.
	FilesSkipped *prometheus.CounterVec
}

func (m Metrics) withDefaults() Metrics {
	for _, c := range []*prometheus.Counter{&m.LinesRead, &m.BytesRead, &m.LinesTruncated, &m.FileErrors, &m.Truncations} {
		if *c == nil {
			*c = prometheus.NewCounter(prometheus.CounterOpts{Name: "unexported"})
		}
	}
	for _, g := range []*prometheus.Gauge{&m.FilesWatched, &m.ReadLag} {
		if *g == nil {
			*g = prometheus.NewGauge(prometheus.GaugeOpts{Name: "unexported"})
		}
	}
	if m.FilesSkipped == nil {
		m.FilesSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unexported"}, []string{"reason"})
	}
	return m
}
