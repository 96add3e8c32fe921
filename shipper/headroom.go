package shipper

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinship-agent/kinship/internal/shardmap"
)

// The write limits of one Kinesis shard (provisioned and on-demand alike). A KPL aggregate
// counts as one record, whatever the number of lines inside.
const (
	ShardBytesPerSec   = 1 << 20
	ShardRecordsPerSec = 1000
)

// throughputExceeded is the per-record error code of a shard over its write limits.
const throughputExceeded = "ProvisionedThroughputExceededException"

// HeadroomOptions configure NewHeadroom. Zero values take the defaults in brackets.
type HeadroomOptions struct {
	Stream string // a name or an ARN, for the stream label
	// Shards is the shard map of a flow whose keys come from the lines, the one its
	// aggregator and ShardAware use (and refresh): it gives the open shards and the shard
	// of a throttled record. nil for other flows.
	Shards *shardmap.Map
	// Lister, for flows without Shards, lists the stream's open shards every ShardsEvery:
	// ListShards, or DescribeStreamSummary (OpenShardCount) when ListShards is refused and
	// Lister has that method too (the SDK's client has both). When neither is allowed, this
	// is logged once and kinship_stream_open_shards stays unset. nil: not asked.
	Lister      shardmap.Lister
	ShardsEvery time.Duration // [5m]
	// RandomKeys says that every record has a fresh random partition key: the records spread
	// evenly over the open shards in time, so the utilization is estimated from this host's
	// total ÷ open shards rather than from where the last minute's few records happened to
	// land. Host and fixed keys send everything to one shard, so they must not set it.
	RandomKeys bool
	Window     time.Duration // the rates' sliding window, in whole seconds [1m]
	// WarnAbove is the utilization above which this host alone is worth a warning [0.5]:
	// a fleet of such hosts on the same shards would be throttled.
	WarnAbove float64
	Logger    *slog.Logger
	Clock     Clock // nil: the real clock
}

// Headroom sits in front of the PutRecords client of a Kinesis flow and measures how much
// of its stream's write capacity this host uses: bytes and records per second per shard
// over a sliding window (accepted records are placed by the ShardId Kinesis answers with;
// throttled ones, which have none, by the shard map), throttled records per shard, the
// stream's open shards, and the busiest shard's utilization, with one warning when it goes
// over WarnAbove. It measures what goes on the wire, so it belongs closest to the client:
// inside ShardAware, which re-splits records.
//
// Concurrency: PutRecords is called by the shipper's workers concurrently; one mutex guards
// the windows and is held once per request, never across a call to Kinesis.
type Headroom struct {
	api  KinesisAPI
	opts HeadroomOptions
	log  *slog.Logger
	own  *shardmap.Map // lists the shards of a flow without Shards

	refreshing  atomic.Bool
	nextRefresh atomic.Int64 // Unix ns; 0: at the first request
	described   atomic.Int64 // OpenShardCount of the last DescribeStreamSummary, used when ListShards is refused
	refusedOnce sync.Once

	mu        sync.Mutex
	clock     windowClock
	total     rateWindow
	shards    map[string]*shardLoad
	armed     bool // the utilization was below WarnAbove since the last warning (or there was none)
	warnedAt  time.Time
	checkedAt int64 // the second of the last warning check: once a second is enough
}

// shardLoad is what this host wrote to one shard.
type shardLoad struct {
	win       rateWindow
	throttled uint64
}

var _ KinesisAPI = (*Headroom)(nil)

// warnEvery bounds the headroom warning to one an hour, however often the utilization
// crosses the line.
const warnEvery = time.Hour

// NewHeadroom wraps api. The wiring exports what Read returns (internal/metrics'
// ReportHeadroom), so that the shipper needs no registry.
func NewHeadroom(api KinesisAPI, opts HeadroomOptions) *Headroom {
	if opts.ShardsEvery <= 0 {
		opts.ShardsEvery = 5 * time.Minute
	}
	if opts.Window < 2*time.Second {
		opts.Window = time.Minute
	}
	if opts.WarnAbove <= 0 {
		opts.WarnAbove = 0.5
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seconds := int(opts.Window / time.Second)
	h := &Headroom{api: api, opts: opts, log: log, armed: true, checkedAt: -1,
		clock:  windowClock{epoch: opts.Clock.Now(), seconds: seconds},
		total:  newRateWindow(seconds),
		shards: map[string]*shardLoad{}}
	if opts.Shards == nil && opts.Lister != nil {
		h.own = shardmap.New(opts.Lister, opts.Stream, shardmap.Options{RefreshInterval: opts.ShardsEvery, Logger: log})
	}
	return h
}

// StreamHeadroom is what Read reports: how close this host alone brings the stream's
// busiest shard to its write limits.
type StreamHeadroom struct {
	Stream string
	// OpenShards is the stream's open shard count; 0 when unknown (the identity may call
	// neither ListShards nor DescribeStreamSummary).
	OpenShards int
	// Utilization is the busiest shard's fraction of its write limits over the window:
	// max(bytes/s ÷ 1 MiB/s, records/s ÷ 1000/s). For random partition keys it is the even
	// spread estimate (this host's total ÷ open shards).
	Utilization float64
	// Shards are the per-shard readings; nil for a stream of more than MaxShardReadings
	// shards.
	Shards []ShardHeadroom
}

// ShardHeadroom is what this host wrote to one shard.
type ShardHeadroom struct {
	ID            string
	BytesPerSec   float64 // data + partition key bytes accepted, per second over the window
	RecordsPerSec float64 // Kinesis records accepted (a KPL aggregate is one), per second over the window
	Throttled     uint64  // records the shard refused with ProvisionedThroughputExceededException, since start
}

// MaxShardReadings bounds the per-shard readings: a stream with more open shards reports
// none, as each would be a series per flow per host (internal/metrics.MaxShardSeries, the
// same bound, exports none either).
const MaxShardReadings = 64

// PutRecords sends in, then counts what each shard accepted and refused.
func (h *Headroom) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out, err := h.api.PutRecords(ctx, in, optFns...)
	// After the send, not before: the first request does not wait for the listing, and
	// its throttled records are placed with the map the listing brings.
	h.refreshShards(ctx)
	if err == nil && out != nil && len(out.Records) == len(in.Records) {
		h.observe(in.Records, out.Records)
	}
	return out, err
}

// snapshot is the shard map to place throttled records with, nil when there is none.
func (h *Headroom) snapshot() *shardmap.Snapshot {
	if h.opts.Shards != nil {
		return h.opts.Shards.Current()
	}
	if h.own != nil {
		return h.own.Current()
	}
	return nil
}

// openShards is the stream's open shard count, 0 when unknown.
func (h *Headroom) openShards() int {
	if s := h.snapshot(); s != nil {
		return len(s.Shards)
	}
	return int(h.described.Load())
}

func (h *Headroom) observe(entries []types.PutRecordsRequestEntry, results []types.PutRecordsResultEntry) {
	now := h.opts.Clock.Now()
	var snap *shardmap.Snapshot // looked up for the first throttled record only
	h.mu.Lock()
	sec := h.clock.second(now)
	var bytes, records int64
	for i := range results {
		r := &results[i]
		e := &entries[i]
		if r.ErrorCode == nil {
			size := int64(len(e.Data) + len(aws.ToString(e.PartitionKey)))
			bytes += size
			records++
			if r.ShardId != nil {
				h.load(*r.ShardId).win.add(sec, size, 1)
			} else if id := h.place(&snap, e); id != "" {
				h.load(id).win.add(sec, size, 1)
			}
			continue
		}
		// A refused record names no shard: place it as Kinesis would.
		if *r.ErrorCode == throughputExceeded {
			if id := h.place(&snap, e); id != "" {
				h.load(id).throttled++
			}
		}
	}
	if records > 0 {
		h.total.add(sec, bytes, records)
	}
	warn := h.checkLocked(now, sec)
	h.mu.Unlock()
	if warn != nil {
		h.log.Warn("this host alone uses over half of a shard's write capacity; add shards (UpdateShardCount) before the fleet is throttled",
			warn...)
	}
}

// place returns the shard the map sends e to, "" when it cannot tell; *snap caches the map
// for the rest of the request.
func (h *Headroom) place(snap **shardmap.Snapshot, e *types.PutRecordsRequestEntry) string {
	if *snap == nil {
		if *snap = h.snapshot(); *snap == nil {
			return ""
		}
	}
	sh, err := (*snap).Target(aws.ToString(e.PartitionKey), aws.ToString(e.ExplicitHashKey))
	if err != nil || sh == nil {
		return ""
	}
	return sh.ID
}

func (h *Headroom) load(id string) *shardLoad {
	l := h.shards[id]
	if l == nil {
		l = &shardLoad{win: newRateWindow(h.clock.seconds)}
		h.shards[id] = l
	}
	return l
}

// busiest is the utilization now and what it comes from; estimated says it is the even
// spread of a random-key flow's total over open shards.
type busiest struct {
	util, bytesPerSec, recordsPerSec float64
	shard                            string
	estimated                        bool
}

func (h *Headroom) busiestLocked(now time.Time, sec int64, open int) busiest {
	span := h.clock.span(now).Seconds()
	var b busiest
	if h.opts.RandomKeys && open > 0 {
		bs, rs := h.total.sums(sec)
		b = busiest{bytesPerSec: float64(bs) / span / float64(open), recordsPerSec: float64(rs) / span / float64(open), estimated: true}
		b.util = utilization(b.bytesPerSec, b.recordsPerSec)
		return b
	}
	for id, l := range h.shards {
		bs, rs := l.win.sums(sec)
		bps, rps := float64(bs)/span, float64(rs)/span
		if u := utilization(bps, rps); u > b.util {
			b = busiest{util: u, bytesPerSec: bps, recordsPerSec: rps, shard: id}
		}
	}
	return b
}

func utilization(bytesPerSec, recordsPerSec float64) float64 {
	return max(bytesPerSec/ShardBytesPerSec, recordsPerSec/ShardRecordsPerSec)
}

// checkLocked decides on the warning, at most once a second: once when the utilization
// goes over WarnAbove, then again only after it fell back below and rose again, and never
// twice within warnEvery (a crossing within the hour is told when the hour is over, if the
// utilization is still above then). It returns the log attributes of a warning, or nil.
func (h *Headroom) checkLocked(now time.Time, sec int64) []any {
	if sec == h.checkedAt {
		return nil
	}
	h.checkedAt = sec
	open := h.openShards()
	b := h.busiestLocked(now, sec, open)
	if b.util <= h.opts.WarnAbove {
		h.armed = true
		return nil
	}
	if !h.armed || (!h.warnedAt.IsZero() && now.Sub(h.warnedAt) < warnEvery) {
		return nil
	}
	h.armed, h.warnedAt = false, now
	attrs := []any{"stream", h.opts.Stream, "utilization", round2(b.util),
		"bytes_per_sec", int64(b.bytesPerSec), "records_per_sec", int64(b.recordsPerSec), "window", h.opts.Window}
	if b.estimated {
		attrs = append(attrs, "shard", "any (random keys: this host's total spread evenly)")
	} else {
		attrs = append(attrs, "shard", b.shard)
	}
	if open > 0 {
		attrs = append(attrs, "open_shards", open)
	}
	return attrs
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// Read returns the headroom now, as kinship_stream_* and kinship_shard_* export it; the
// metrics call it at each scrape.
func (h *Headroom) Read() StreamHeadroom {
	now := h.opts.Clock.Now()
	open := h.openShards()
	snap := h.snapshot()
	h.mu.Lock()
	defer h.mu.Unlock()
	sec := h.clock.second(now)
	out := StreamHeadroom{Stream: h.opts.Stream, OpenShards: open}
	out.Utilization = h.busiestLocked(now, sec, open).util
	// Shards that closed (or that this host no longer writes to, without a map to tell)
	// leave once their window is empty and nothing was throttled there.
	for id, l := range h.shards {
		if !l.win.empty(sec) {
			continue
		}
		if snap != nil && snap.ByID(id) == nil || snap == nil && l.throttled == 0 {
			delete(h.shards, id)
		}
	}
	count := open
	if count == 0 {
		count = len(h.shards)
	}
	if count > MaxShardReadings {
		return out
	}
	span := h.clock.span(now).Seconds()
	out.Shards = make([]ShardHeadroom, 0, len(h.shards))
	for id, l := range h.shards {
		bs, rs := l.win.sums(sec)
		out.Shards = append(out.Shards, ShardHeadroom{ID: id,
			BytesPerSec: float64(bs) / span, RecordsPerSec: float64(rs) / span, Throttled: l.throttled})
	}
	return out
}

// describer is the SDK client's DescribeStreamSummary, asked when ListShards is refused.
type describer interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// shardsTimeout bounds a shard listing: it runs on a worker between two of its requests.
const shardsTimeout = 10 * time.Second

// refreshShards lists the shards of a flow without a shard map when ShardsEvery has passed,
// on the worker whose request came at that time (the others go on). A refusal is never a
// flow error: the open shard count stays unknown, and is asked again ShardsEvery later.
func (h *Headroom) refreshShards(ctx context.Context) {
	if h.own == nil || ctx.Err() != nil {
		return // a request that timed out, or a flow stopping: a listing now would fail for nothing
	}
	now := h.opts.Clock.Now()
	if now.UnixNano() < h.nextRefresh.Load() || !h.refreshing.CompareAndSwap(false, true) {
		return
	}
	defer h.refreshing.Store(false)
	h.nextRefresh.Store(now.Add(h.opts.ShardsEvery).UnixNano())
	ctx, cancel := context.WithTimeout(ctx, shardsTimeout)
	defer cancel()
	lerr := h.own.Refresh(ctx)
	if lerr == nil {
		return
	}
	var derr error
	if d, ok := h.opts.Lister.(describer); ok {
		in := &kinesis.DescribeStreamSummaryInput{}
		if strings.HasPrefix(h.opts.Stream, "arn:") {
			in.StreamARN = aws.String(h.opts.Stream)
		} else {
			in.StreamName = aws.String(h.opts.Stream)
		}
		out, err := d.DescribeStreamSummary(ctx, in)
		if err == nil && out.StreamDescriptionSummary != nil && out.StreamDescriptionSummary.OpenShardCount != nil {
			h.described.Store(int64(*out.StreamDescriptionSummary.OpenShardCount))
			return
		}
		derr = err
		if derr == nil {
			derr = errors.New("no OpenShardCount in the answer")
		}
	}
	// The count known before (if any) stays; asked again ShardsEvery later.
	h.refusedOnce.Do(func() {
		h.log.Info("cannot read the stream's open shard count (kinesis:ListShards or kinesis:DescribeStreamSummary); "+
			"kinship_stream_open_shards stays unset and per-shard throttling of random keys is not counted",
			"stream", h.opts.Stream, "list_shards_err", lerr, "describe_err", derr)
	})
}
