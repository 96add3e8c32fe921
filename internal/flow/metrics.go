package flow

import (
	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
	"github.com/kinship-agent/kinship/spool"
	"github.com/kinship-agent/kinship/tailer"
)

// The stages declare the instruments they update and know nothing of the registry; the
// flow, which knows both, hands each stage its share of the flow's series. Here rather than
// in internal/metrics so that metrics stays a leaf every stage's test can do without.

func tailerMetrics(m *metrics.Flow) tailer.Metrics {
	return tailer.Metrics{
		LinesRead: m.LinesRead, BytesRead: m.BytesRead, LinesTruncated: m.LinesTruncated,
		FileErrors: m.FileErrors, Truncations: m.Truncations,
		FilesWatched: m.FilesWatched, ReadLag: m.ReadLag,
		FilesSkipped: m.FilesSkipped,
	}
}

func spoolMetrics(m *metrics.Flow) spool.Metrics {
	return spool.Metrics{
		SpoolBytes: m.SpoolBytes, SpoolAppendedBytes: m.SpoolAppendedBytes, SpoolStoredBytes: m.SpoolStoredBytes,
		SpoolWriteErrors: m.SpoolWriteErrors, SpoolCorrupt: m.SpoolCorrupt,
		SpoolDropped: m.SpoolDropped, SpoolDroppedBytes: m.SpoolDroppedBytes,
		SpoolLostFrames: m.SpoolLostFrames, SpoolLostBytes: m.SpoolLostBytes,
	}
}

func aggregatorMetrics(m *metrics.Flow) aggregator.Metrics {
	return aggregator.Metrics{LinesTruncated: m.LinesTruncated, PartitionKeyMissing: m.PartitionKeyMissing}
}

func shipperMetrics(m *metrics.Flow) shipper.Metrics {
	return shipper.Metrics{
		RecordsSent: m.RecordsSent, UserRecordsSent: m.UserRecordsSent, Retries: m.Retries, Resplits: m.Resplits,
		SendRate: m.SendRate, SendErrors: m.SendErrors,
	}
}

// ReportHeadroom exports h's readings as the flow's kinship_stream_* and kinship_shard_*
// series, read at each scrape, until stop; for the wiring that builds a Kinesis flow's
// client around a shipper.Headroom.
func ReportHeadroom(m *metrics.Flow, h *shipper.Headroom) (stop func()) {
	return m.ReportHeadroom(func() metrics.StreamHeadroom { return headroomReading(h.Read()) })
}

func headroomReading(r shipper.StreamHeadroom) metrics.StreamHeadroom {
	out := metrics.StreamHeadroom{Stream: r.Stream, OpenShards: r.OpenShards, Utilization: r.Utilization}
	if r.Shards != nil {
		out.Shards = make([]metrics.ShardHeadroom, len(r.Shards))
		for i, sh := range r.Shards {
			out.Shards[i] = metrics.ShardHeadroom(sh)
		}
	}
	return out
}
