// Package metrics defines the Prometheus metrics that dashboards rely on (a contract:
// docs/operations.md lists them, packaging/monitoring queries them) and hands each flow its
// own curried set. The stages do not import it: each
// declares the few instruments it updates (tailer.Metrics, aggregator.Metrics, ...), and
// internal/flow fills those from the flow's *Flow. There is no global registry; tests that
// read counters build their own with NewRegistry.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Set holds the metric vectors of one process, registered on one registry.
type Set struct {
	reg              prometheus.Registerer // for what registers after New (SpoolGlobal)
	perFlow          []flowVec             // every vector with a flow label, for Forget
	orphanSpoolBytes *prometheus.GaugeVec

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

	spoolAppendedBytes  *prometheus.CounterVec
	spoolStoredBytes    *prometheus.CounterVec
	partitionKeyMissing *prometheus.CounterVec
	spoolWriteErrors    *prometheus.CounterVec
	resplits            *prometheus.CounterVec
	filesSkipped        *prometheus.CounterVec

	processingSkipped *prometheus.CounterVec
	processingErrors  *prometheus.CounterVec
	linesFiltered     *prometheus.CounterVec

	spoolLostFrames *prometheus.CounterVec
	spoolLostBytes  *prometheus.CounterVec

	spoolUnackedBytes *prometheus.GaugeVec

	headroom *headroomCollector

	cloudWatchOnce   sync.Once
	cloudWatchErrors prometheus.Counter
	filesDeleted     *prometheus.CounterVec
	linesInvalidUTF8 *prometheus.CounterVec
}

// New creates the metric vectors and registers them on reg.
func New(reg prometheus.Registerer) *Set {
	flow := []string{"flow"}
	s := &Set{
		reg: reg,
		orphanSpoolBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kinship_orphan_spool_bytes", Help: "Bytes left in the spool of a flow no longer in the configuration (kept, never shipped until the flow is restored)."}, flow),
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

		partitionKeyMissing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_partition_key_missing_total", Help: "Lines without the configured partition key (not JSON, field missing, no match) sent with the fallback key."}, flow),

		spoolDroppedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_dropped_bytes_total", Help: "Spool segment bytes deleted by when_full: drop_oldest before all their frames were acknowledged."}, flow),

		spoolAppendedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_appended_bytes_total", Help: "Payload bytes appended to the spool, before compression."}, flow),
		spoolStoredBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_stored_bytes_total", Help: "Bytes those payloads took on disk (frame headers and padding included); appended/stored is the compression ratio."}, flow),
		spoolWriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_write_errors_total", Help: "Failed spool writes and fsyncs (disk full, I/O errors); each is retried, appends wait meanwhile."}, flow),
		resplits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_resplit_records_total", Help: "Aggregates whose user records span several shards of the current shard map (packed before a reshard), re-split per shard before sending; each counted once."}, flow),
		filesSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_files_skipped_total", Help: "Paths a flow's patterns found but the tailer does not read, each counted once, by reason (symlink: a link the patterns' wildcards found, without follow_symlinks; state_dir: the agent's own state; special: a procfs/sysfs file that reports size 0)."}, []string{"flow", "reason"}),

		processingSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_processing_skipped_total", Help: "Records a processor dropped (log_to_json on a line its pattern does not match): not sent, the file position moves past them."}, flow),
		processingErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_processing_errors_total", Help: "Records a processor failed on (add_ec2_metadata on a record that is not a JSON object, log_to_json with on_parse_error: raw), sent as read."}, flow),
		linesFiltered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_lines_filtered_total", Help: "Records dropped by include/exclude processors: not sent, the file position moves past them."}, flow),

		spoolLostFrames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_lost_frames_total", Help: "Spool data frames that spool recovery found damaged or torn and removed (their file positions are rolled back so lines still in the files are read again)."}, flow),
		spoolLostBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_spool_lost_bytes_total", Help: "Spool bytes that recovery cut off or set aside as damaged (kept in *.broken files)."}, flow),

		spoolUnackedBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kinship_spool_unacked_bytes", Help: "Bytes of the spooled records the destination has not acknowledged yet (payloads, before spool compression): 0 once everything read was shipped. " +
				"kinship_spool_bytes also counts acknowledged records until their segment file is deleted, so it stays above 0 on an idle flow."}, flow),
		linesInvalidUTF8: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_lines_invalid_utf8_total", Help: "Lines an http destination (format ndjson) sent with U+FFFD in place of bytes that are not UTF-8, which JSON strings cannot hold (format raw sends the bytes as read)."}, flow),
		filesDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinship_files_deleted_total", Help: "Rotated files deleted by delete_after_shipped once every line was acknowledged (by every flow that reads them)."}, flow),
	}
	s.register(s.linesRead, s.bytesRead, s.linesTruncated, s.recordsSent, s.userRecordsSent,
		s.sendErrors, s.retries, s.spoolBytes, s.spoolDropped, s.spoolCorrupt, s.filesWatched, s.readLag,
		s.fileErrors, s.truncations, s.spoolDroppedBytes, s.sendRate)
	s.register(s.spoolAppendedBytes, s.spoolStoredBytes)
	s.register(s.partitionKeyMissing)
	s.register(s.spoolWriteErrors)
	s.register(s.resplits)
	s.register(s.filesSkipped)
	s.register(s.processingSkipped, s.processingErrors, s.linesFiltered)
	s.register(s.spoolLostFrames, s.spoolLostBytes)
	s.register(s.spoolUnackedBytes)
	s.headroom = newHeadroomCollector(reg)
	s.register(s.filesDeleted, s.linesInvalidUTF8)
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

	// SpoolAppendedBytes and SpoolStoredBytes count data payloads appended to the spool before
	// compression and the frame bytes they took on disk: their ratio is what compression saves.
	SpoolAppendedBytes prometheus.Counter
	SpoolStoredBytes   prometheus.Counter
	// PartitionKeyMissing counts lines that had no partition key where the flow takes it
	// from the line, and went with the fallback key.
	PartitionKeyMissing prometheus.Counter
	// SpoolWriteErrors counts failed spool writes and fsyncs, retries included.
	SpoolWriteErrors prometheus.Counter
	// Resplits counts aggregates found spanning several shards when they were about to be
	// sent (the stream was resharded after they were packed), so re-split per shard.
	Resplits prometheus.Counter
	// FilesDeleted counts files delete_after_shipped removed.
	FilesDeleted prometheus.Counter
	// LinesInvalidUTF8 counts lines an ndjson http destination sent with U+FFFD.
	LinesInvalidUTF8 prometheus.Counter
	// FilesSkipped counts paths the tailer found and chose not to read, by reason.
	FilesSkipped *prometheus.CounterVec // label: reason
	// ProcessingSkipped, ProcessingErrors and LinesFiltered count what the processing stage
	// did not ship as processed: records a processor dropped, records shipped as read after
	// a processor failed, records include/exclude dropped.
	ProcessingSkipped prometheus.Counter
	ProcessingErrors  prometheus.Counter
	LinesFiltered     prometheus.Counter
	// SpoolLostFrames and SpoolLostBytes count what spool recovery removed as damaged at
	// Open: data frames (at least one per damaged stretch) and bytes cut or set aside.
	SpoolLostFrames prometheus.Counter
	SpoolLostBytes  prometheus.Counter
	// SpoolUnackedBytes is what the spool holds that the destination has not acknowledged;
	// SpoolBytes also holds acknowledged frames until their segment is deleted. Set by the
	// flow, which counts those bytes.
	SpoolUnackedBytes prometheus.Gauge

	name     string
	headroom *headroomCollector // see ReportHeadroom
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

		SpoolAppendedBytes:  s.spoolAppendedBytes.With(l),
		SpoolStoredBytes:    s.spoolStoredBytes.With(l),
		PartitionKeyMissing: s.partitionKeyMissing.With(l),
		SpoolWriteErrors:    s.spoolWriteErrors.With(l),
		Resplits:            s.resplits.With(l),
		FilesDeleted:        s.filesDeleted.With(l),
		LinesInvalidUTF8:    s.linesInvalidUTF8.With(l),
		FilesSkipped:        s.filesSkipped.MustCurryWith(l),

		ProcessingSkipped: s.processingSkipped.With(l),
		ProcessingErrors:  s.processingErrors.With(l),
		LinesFiltered:     s.linesFiltered.With(l),

		SpoolLostFrames: s.spoolLostFrames.With(l),
		SpoolLostBytes:  s.spoolLostBytes.With(l),

		SpoolUnackedBytes: s.spoolUnackedBytes.With(l),

		name:     name,
		headroom: s.headroom,
	}
}

// CloudWatchErrors counts failed PutMetricData requests (metrics.cloudwatch), for the whole
// process; registered on first use, so that it shows only where publishing is on.
func (s *Set) CloudWatchErrors() prometheus.Counter {
	s.cloudWatchOnce.Do(func() {
		s.cloudWatchErrors = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinship_cloudwatch_errors_total", Help: "Failed PutMetricData requests (metrics.cloudwatch); their metrics are dropped, shipping goes on."})
		s.reg.MustRegister(s.cloudWatchErrors)
	})
	return s.cloudWatchErrors
}

// SpoolGlobal exports the global spool budget: bytes held by all running flows' spools
// together and the bound (0: none). The functions are called at each scrape.
func (s *Set) SpoolGlobal(used, bound func() float64) {
	s.reg.MustRegister(s.orphanSpoolBytes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kinship_spool_global_bytes", Help: "Bytes held by the spools of all running flows together."}, used),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kinship_spool_global_max_bytes", Help: "The global spool bound (top-level spool.max_bytes); 0: none."}, bound))
}

// OrphanSpool sets the bytes left in the spool of a flow no longer configured; 0 removes the
// series (the flow came back, or its directory was deleted).
func (s *Set) OrphanSpool(flow string, bytes int64) {
	if bytes == 0 {
		s.orphanSpoolBytes.DeleteLabelValues(flow)
		return
	}
	s.orphanSpoolBytes.WithLabelValues(flow).Set(float64(bytes))
}

// Forget deletes every series of a flow removed from the configuration, so that its
// counters and gauges do not stay on /metrics, frozen, for the life of the process (a
// dashboard would show a flow that no longer exists). The orphan-spool gauge is left alone:
// it is about removed flows and has its own life (OrphanSpool).
func (s *Set) Forget(flow string) {
	for _, v := range s.perFlow {
		v.DeletePartialMatch(prometheus.Labels{"flow": flow})
	}
}

// register registers per-flow vectors and keeps them for Forget: one list, so a vector
// cannot be exported without also being forgotten with its flow.
func (s *Set) register(vecs ...flowVec) {
	for _, v := range vecs {
		s.reg.MustRegister(v)
		s.perFlow = append(s.perFlow, v)
	}
}

// flowVec is a metric vector with a flow label.
type flowVec interface {
	prometheus.Collector
	DeletePartialMatch(prometheus.Labels) int
}
