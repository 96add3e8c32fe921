package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// StreamHeadroom is what a Kinesis flow reports about its stream at each scrape: how close
// this host alone brings the stream's busiest shard to its write limits. The wiring converts
// shipper.StreamHeadroom, which has the same fields, to it.
type StreamHeadroom struct {
	Stream string
	// OpenShards is the stream's open shard count; 0 when unknown (the identity may not call
	// ListShards or DescribeStreamSummary), and the series is then left out.
	OpenShards int
	// Utilization is the busiest shard's fraction of its write limits over the window:
	// max(bytes/s ÷ 1 MiB/s, records/s ÷ 1000/s). For random partition keys it is the even
	// spread estimate (this host's total ÷ open shards).
	Utilization float64
	// Shards are the per-shard series; nil leaves them out (a stream with more than
	// MaxShardSeries shards).
	Shards []ShardHeadroom
}

// ShardHeadroom is what this host wrote to one shard.
type ShardHeadroom struct {
	ID            string
	BytesPerSec   float64 // data + partition key bytes accepted, per second over the window
	RecordsPerSec float64 // Kinesis records accepted (a KPL aggregate is one), per second over the window
	Throttled     uint64  // records the shard refused with ProvisionedThroughputExceededException, since start
}

// MaxShardSeries bounds the per-shard series: a stream with more open shards exports none.
const MaxShardSeries = 64

// headroomCollector reads each flow's StreamHeadroom at scrape time, so that rates over a
// sliding window decay while a flow sends nothing instead of freezing at their last value.
type headroomCollector struct {
	openShards, utilization, shardBytes, shardRecords, shardThrottled *prometheus.Desc

	mu      sync.Mutex
	sources map[string]*headroomSource // by flow
}

// headroomSource is one registration; a pointer, so that a stale unregister can tell it was
// replaced.
type headroomSource struct{ read func() StreamHeadroom }

func newHeadroomCollector(reg prometheus.Registerer) *headroomCollector {
	c := &headroomCollector{
		openShards: prometheus.NewDesc("kinship_stream_open_shards",
			"Open shards of the flow's Kinesis stream (ListShards or DescribeStreamSummary; absent when the identity may call neither).",
			[]string{"flow", "stream"}, nil),
		utilization: prometheus.NewDesc("kinship_stream_write_utilization",
			"This host's share of the busiest shard's write limits over the last minute: max(bytes/s / 1 MiB/s, records/s / 1000/s). "+
				"For random partition keys an estimate: this host's total spread evenly over the open shards. Above 0.5, reshard before the fleet is throttled.",
			[]string{"flow", "stream"}, nil),
		shardBytes: prometheus.NewDesc("kinship_shard_write_bytes_per_second",
			"Bytes (data + partition key) this host wrote to the shard per second over the last minute, as Kinesis placed them (streams of up to 64 shards).",
			[]string{"flow", "shard"}, nil),
		shardRecords: prometheus.NewDesc("kinship_shard_write_records_per_second",
			"Kinesis records (a KPL aggregate counts once) this host wrote to the shard per second over the last minute (streams of up to 64 shards).",
			[]string{"flow", "shard"}, nil),
		shardThrottled: prometheus.NewDesc("kinship_shard_throttled_total",
			"Records the shard refused with ProvisionedThroughputExceededException (streams of up to 64 shards; records whose shard cannot be told count only in kinship_send_errors_total).",
			[]string{"flow", "shard"}, nil),
		sources: map[string]*headroomSource{},
	}
	reg.MustRegister(c)
	return c
}

func (c *headroomCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.openShards
	ch <- c.utilization
	ch <- c.shardBytes
	ch <- c.shardRecords
	ch <- c.shardThrottled
}

func (c *headroomCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	flows := make([]string, 0, len(c.sources))
	reads := make([]func() StreamHeadroom, 0, len(c.sources))
	for f := range c.sources {
		flows = append(flows, f)
	}
	sort.Strings(flows)
	for _, f := range flows {
		reads = append(reads, c.sources[f].read)
	}
	c.mu.Unlock()
	// Read outside the lock: a source takes its own lock, and may report meanwhile.
	for i, flow := range flows {
		h := reads[i]()
		if h.OpenShards > 0 {
			ch <- prometheus.MustNewConstMetric(c.openShards, prometheus.GaugeValue, float64(h.OpenShards), flow, h.Stream)
		}
		ch <- prometheus.MustNewConstMetric(c.utilization, prometheus.GaugeValue, h.Utilization, flow, h.Stream)
		if len(h.Shards) > MaxShardSeries {
			continue
		}
		for _, sh := range h.Shards {
			ch <- prometheus.MustNewConstMetric(c.shardBytes, prometheus.GaugeValue, sh.BytesPerSec, flow, sh.ID)
			ch <- prometheus.MustNewConstMetric(c.shardRecords, prometheus.GaugeValue, sh.RecordsPerSec, flow, sh.ID)
			ch <- prometheus.MustNewConstMetric(c.shardThrottled, prometheus.CounterValue, float64(sh.Throttled), flow, sh.ID)
		}
	}
}

func (c *headroomCollector) report(flow string, read func() StreamHeadroom) (stop func()) {
	src := &headroomSource{read: read}
	c.mu.Lock()
	c.sources[flow] = src
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.sources[flow] == src {
			delete(c.sources, flow)
		}
	}
}

// ReportHeadroom makes read the source of the flow's stream headroom series
// (kinship_stream_open_shards, kinship_stream_write_utilization, kinship_shard_*), called at
// each scrape; it must not block. It replaces the flow's previous source (a flow rebuilt on
// reload). stop removes the series, unless another source replaced read since.
func (f *Flow) ReportHeadroom(read func() StreamHeadroom) (stop func()) {
	if f.headroom == nil || read == nil {
		return func() {}
	}
	return f.headroom.report(f.name, read)
}
