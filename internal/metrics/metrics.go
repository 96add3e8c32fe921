// Package metrics defines the Prometheus metrics that dashboards rely on (names fixed by
// DESIGN.md) and hands each flow its own curried set. Stages receive a *Flow and never touch
// a registry; there is no global registry, so tests build their own with NewRegistry.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Set holds the metric vectors of one process, registered on one registry.
type Set struct {
	linesRead       *prometheus.CounterVec
	bytesRead       *prometheus.CounterVec
	linesTruncated  *prometheus.CounterVec
	recordsSent     *prometheus.CounterVec
	userRecordsSent *prometheus.CounterVec
	sendErrors      *prometheus.CounterVec
	retries         *prometheus.CounterVec
	spoolBytes      *prometheus.GaugeVec
	spoolDropped    *prometheus.CounterVec
	spoolCorrupt    *prometheus.CounterVec
	filesWatched    *prometheus.GaugeVec
	readLag         *prometheus.GaugeVec
	fileErrors      *prometheus.CounterVec
	truncations     *prometheus.CounterVec
	sendRate        *prometheus.GaugeVec

	spoolDroppedBytes *prometheus.CounterVec
	spoolWriteErrors  *prometheus.CounterVec
}

// New creates the metric vectors and registers them on reg.
func New(reg prometheus.Registerer) *Set {
	flow := []string{"flow"}
	s := &Set{
		linesRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_lines_read_total", Help: "Lines read from watched files."}, flow),
		bytesRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_bytes_read_total", Help: "Bytes read from watched files, newlines included."}, flow),
		linesTruncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_lines_truncated_total", Help: "Lines longer than max_line_bytes (or than a record) that were shipped truncated."}, flow),
		recordsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_records_sent_total", Help: "Destination records accepted (KPL aggregates count once)."}, flow),
		userRecordsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_user_records_sent_total", Help: "Lines accepted by the destination."}, flow),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_send_errors_total", Help: "Failed sends (whole requests or single records), by reason."}, []string{"flow", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_retries_total", Help: "Records sent again after a failure."}, flow),
		spoolBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kinship_spool_bytes", Help: "Bytes held in the flow's spool on disk."}, flow),
		spoolDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_dropped_total", Help: "Spool frames dropped by when_full: drop_oldest."}, flow),
		spoolCorrupt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_corrupt_frames_total", Help: "Spool frames skipped because their checksum or framing was invalid."}, flow),
		filesWatched: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kinship_files_watched", Help: "Files currently tracked by the flow's tailer."}, flow),
		readLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kinship_read_lag_bytes", Help: "Bytes written to watched files and not yet read."}, flow),
		fileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_file_errors_total", Help: "Errors opening, reading or stating watched files."}, flow),
		truncations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_file_truncations_total", Help: "Files found shorter than the read position and read again from the start."}, flow),
		sendRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kinship_send_rate_bytes", Help: "Bytes/s the shipper allows itself after the destination throttled; 0 while not limited."}, flow),

		spoolDroppedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_dropped_bytes_total", Help: "Spool segment bytes deleted by when_full: drop_oldest before all their frames were acknowledged."}, flow),
		spoolWriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_write_errors_total", Help: "Failed spool writes and fsyncs (disk full, I/O errors); each is retried, appends wait meanwhile."}, flow),
	}
	reg.MustRegister(s.linesRead, s.bytesRead, s.linesTruncated, s.recordsSent, s.userRecordsSent,
		s.sendErrors, s.retries, s.spoolBytes, s.spoolDropped, s.spoolCorrupt, s.filesWatched, s.readLag,
		s.fileErrors, s.truncations, s.spoolDroppedBytes, s.sendRate)
	reg.MustRegister(s.spoolWriteErrors)
	return s
}

// Flow is the set of metrics of one flow. Every field is safe for concurrent use. Hot paths
// should count locally and Add once per read or batch, not once per line.
type Flow struct {
	LinesRead       prometheus.Counter
	BytesRead       prometheus.Counter
	LinesTruncated  prometheus.Counter
	RecordsSent     prometheus.Counter
	UserRecordsSent prometheus.Counter
	SendErrors      *prometheus.CounterVec // label: reason
	Retries         prometheus.Counter
	SpoolBytes      prometheus.Gauge
	SpoolDropped    prometheus.Counter
	SpoolCorrupt    prometheus.Counter
	FilesWatched    prometheus.Gauge
	ReadLag         prometheus.Gauge
	FileErrors      prometheus.Counter
	Truncations     prometheus.Counter
	// SendRate is the bytes/s the shipper allows itself after throttling (0: not limited).
	SendRate prometheus.Gauge

	// SpoolDroppedBytes counts the bytes of segment files deleted by drop_oldest (acknowledged
	// frames sharing a dropped segment included): what the disk budget gave up.
	SpoolDroppedBytes prometheus.Counter
	// SpoolWriteErrors counts failed spool writes and fsyncs, retries included.
	SpoolWriteErrors prometheus.Counter
}

// Flow returns the metrics of the named flow.
func (s *Set) Flow(name string) *Flow {
	l := prometheus.Labels{"flow": name}
	return &Flow{
		LinesRead:       s.linesRead.With(l),
		BytesRead:       s.bytesRead.With(l),
		LinesTruncated:  s.linesTruncated.With(l),
		RecordsSent:     s.recordsSent.With(l),
		UserRecordsSent: s.userRecordsSent.With(l),
		SendErrors:      s.sendErrors.MustCurryWith(l),
		Retries:         s.retries.With(l),
		SpoolBytes:      s.spoolBytes.With(l),
		SpoolDropped:    s.spoolDropped.With(l),
		SpoolCorrupt:    s.spoolCorrupt.With(l),
		FilesWatched:    s.filesWatched.With(l),
		ReadLag:         s.readLag.With(l),
		FileErrors:      s.fileErrors.With(l),
		Truncations:     s.truncations.With(l),
		SendRate:        s.sendRate.With(l),

		SpoolDroppedBytes: s.spoolDroppedBytes.With(l),
		SpoolWriteErrors:  s.spoolWriteErrors.With(l),
	}
}

// ForTest returns a flow's metrics on a fresh private registry.
func ForTest(flow string) *Flow {
	return New(prometheus.NewRegistry()).Flow(flow)
}
