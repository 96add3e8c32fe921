package flow

import (
	"context"
	"time"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/shipper"
)

// lineAggregator is what the sink feeds: the plain aggregator, or the shard-aware one for
// partition keys taken from the lines.
type lineAggregator interface {
	Add(source uint32, line []byte, end int64) error
	// AddLines is Add for each line of a batch, under one lock acquisition.
	AddLines(source uint32, lines [][]byte, ends []int64) error
	Skip(source uint32, end int64) error // the line ending at end is not shipped; its position moves
	Close() error
	Nudge()            // the shipper is idle: seal open aggregates early
	MaxLineBytes() int // the longest line that fits a record: the tailer's effective line limit
}

// shardMapWait bounds how long a flow waits for the first shard map at start; without one it
// still runs (its first aggregates are split by the shipper once the map is known).
const shardMapWait = 10 * time.Second

func (f *Flow) newAggregator(ctx context.Context, out aggregator.Output) (lineAggregator, error) {
	opts := aggregatorOptions(f.cfg, aggregatorMetrics(f.deps.Metrics))
	opts.Logger = f.log
	opts.MD5 = f.deps.MD5
	key := lineKeyFunc(f.cfg)
	if key == nil {
		opts.Buffers, opts.Headroom = aggregateBuffers{f}, frameHeadroom
		return aggregator.New(opts, out)
	}
	fallback := opts.PartitionKey
	if fallback == aggregator.Deterministic {
		fallback = "random" // never used: every line has its MD5
	}
	ko := aggregator.KeyedOptions{Options: opts, Key: key, Fallback: fallback}
	if m := f.deps.Shards; m != nil {
		wctx, cancel := context.WithTimeout(ctx, shardMapWait)
		err := m.Ensure(wctx)
		cancel()
		if err != nil {
			f.log.Warn("shard map not known yet; packing per shard starts once it is", "err", err)
		}
		ko.Shards = m
	}
	return aggregator.NewSharded(ko, out)
}

// lineKeyFunc returns how to take a partition key from a line, nil when the flow's keys do
// not come from the lines.
func lineKeyFunc(cfg config.Flow) aggregator.KeyFunc {
	k := cfg.Kinesis
	switch {
	case k == nil:
		return nil
	case k.PartitionKeyField != "":
		return aggregator.JSONFieldKey(k.PartitionKeyField)
	case k.PartitionKeyRegex != nil:
		return aggregator.RegexKey(k.PartitionKeyRegex)
	case k.PartitionKey == aggregator.Deterministic && k.Aggregate:
		// Each line has its own key: aggregated, lines are packed per shard like keys from
		// a field. Without aggregation the plain aggregator keys each record itself.
		return aggregator.DeterministicKey()
	}
	return nil
}

// KeysFromLines reports whether a flow takes partition keys from its lines (and so needs a
// shard map).
func KeysFromLines(cfg config.Flow) bool { return lineKeyFunc(cfg) != nil }

// shardRouter is what the shipper keeps per-shard order by, for a flow whose keys come from
// the lines and that has a shard map (the records of one key then go to one shard, in the
// order written, under retries and with several requests in flight); nil otherwise.
func (f *Flow) shardRouter() shipper.ShardRouter {
	if lineKeyFunc(f.cfg) == nil || f.deps.Shards == nil {
		return nil
	}
	return shipper.NewShardRouter(f.deps.Shards)
}
