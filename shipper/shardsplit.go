package shipper

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/shardmap"
)

// ShardAware sits between the Kinesis destination and the client of a flow whose partition
// keys come from the lines. Aggregates wait in the spool between packing and sending, and
// the stream may be resharded meanwhile: an aggregate packed for a shard that has since been
// split would reach one child shard holding user records that hash into the other, and
// consumers (the KCL) drop such an aggregate whole. So before each PutRecords, every
// aggregate sent with an explicit hash key is checked against the current shard map, and
// one whose user records (or whose explicit hash key) now span several shards is decoded and
// re-encoded into one aggregate per shard, in the original order.
//
// Results are merged back: an original record counts as accepted only when all its parts
// were; a part accepted next to a failed one is sent again with the retry (a duplicate,
// within the at-least-once contract).
//
// The map is refreshed when it is older than its interval, and at once when PutRecords put a
// record on another shard than the map predicted (the stream was resharded).
type ShardAware struct {
	api    KinesisAPI
	shards *shardmap.Map
	limits Limits
	log    *slog.Logger

	resplit atomic.Int64 // aggregates re-split so far
}

var _ KinesisAPI = (*ShardAware)(nil)

// NewShardAware wraps api; limits bound the requests that re-splitting produces.
func NewShardAware(api KinesisAPI, shards *shardmap.Map, limits Limits, log *slog.Logger) *ShardAware {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ShardAware{api: api, shards: shards, limits: limits.WithDefaults(), log: log}
}

// SetLogger replaces the logger given to NewShardAware; call it before the first request.
func (s *ShardAware) SetLogger(l *slog.Logger) {
	if l != nil {
		s.log = l
	}
}

// Resplits returns how many aggregates were re-split because they spanned several shards.
func (s *ShardAware) Resplits() int64 { return s.resplit.Load() }

// PutRecords checks (and re-splits) in.Records against the shard map, then sends them.
func (s *ShardAware) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if err := s.shards.Ensure(ctx); err != nil {
		return nil, err
	}
	snap := s.shards.Current()
	parts := make([]types.PutRecordsRequestEntry, 0, len(in.Records))
	owner := make([]int, 0, len(in.Records))
	predicted := make([]string, 0, len(in.Records))
	split := false
	for i, e := range in.Records {
		ps, ids := splitForShards(snap, aws.ToString(e.PartitionKey), aws.ToString(e.ExplicitHashKey), e.Data)
		if ps == nil {
			parts = append(parts, e)
			owner = append(owner, i)
			predicted = append(predicted, ids[0])
			continue
		}
		split = true
		s.resplit.Add(1)
		for j := range ps {
			parts = append(parts, ps[j])
			owner = append(owner, i)
			predicted = append(predicted, ids[j])
		}
	}
	if !split {
		out, err := s.api.PutRecords(ctx, in, optFns...)
		if err != nil {
			return nil, err
		}
		if len(out.Records) == len(parts) {
			s.verify(ctx, parts, out.Records, predicted)
			var failed int32
			for _, r := range out.Records {
				if r.ErrorCode != nil {
					failed++
				}
			}
			out.FailedRecordCount = aws.Int32(failed)
		}
		return out, nil
	}

	// Parts go out in requests within the limits, in order.
	results := make([]types.PutRecordsResultEntry, len(parts))
	for start := 0; start < len(parts); {
		end, bytes := start, 0
		for end < len(parts) && end-start < s.limits.MaxRecords {
			sz := len(parts[end].Data) + len(aws.ToString(parts[end].PartitionKey))
			if end > start && bytes+sz > s.limits.MaxRequestBytes {
				break
			}
			bytes += sz
			end++
		}
		req := *in
		req.Records = parts[start:end]
		out, err := s.api.PutRecords(ctx, &req, optFns...)
		if err != nil {
			return nil, err
		}
		if len(out.Records) != end-start {
			return nil, fmt.Errorf("shipper: shard-aware put: PutRecords answered %d entries for %d records", len(out.Records), end-start)
		}
		copy(results[start:end], out.Records)
		s.verify(ctx, parts[start:end], results[start:end], predicted[start:end])
		start = end
	}
	merged := make([]types.PutRecordsResultEntry, len(in.Records))
	seen := make([]bool, len(in.Records))
	for p, r := range results {
		o := owner[p]
		// The first part speaks for the record unless a later one failed.
		if !seen[o] || (r.ErrorCode != nil && merged[o].ErrorCode == nil) {
			merged[o], seen[o] = r, true
		}
	}
	var failed int32
	for _, r := range merged {
		if r.ErrorCode != nil {
			failed++
		}
	}
	return &kinesis.PutRecordsOutput{Records: merged, FailedRecordCount: aws.Int32(failed)}, nil
}

// errShardMismatch is the entry error for an aggregate that Kinesis placed on a shard that
// does not hold all its user records (the stream was resharded after the map was read):
// consumers would drop it, so it is sent again, re-split against the refreshed map. Unknown
// to Classify, it is retried soon like any transient failure.
const errShardMismatch = "KinshipShardMismatch"

// verify looks at where Kinesis put each accepted record. When one landed on another shard
// than the map predicted, the stream was resharded: the map is refreshed, and every
// aggregate on a shard that does not hold all its user records is turned into a failure so
// that the retry re-splits it (the misplaced copy is dropped by KCL-style consumers; for
// others it is a duplicate, bounded to the records in flight during the reshard).
func (s *ShardAware) verify(ctx context.Context, parts []types.PutRecordsRequestEntry, results []types.PutRecordsResultEntry, predicted []string) {
	var refreshed *shardmap.Snapshot
	for i := range results {
		r := &results[i]
		if r.ErrorCode != nil || r.ShardId == nil || *r.ShardId == predicted[i] {
			continue
		}
		if refreshed == nil {
			s.log.Info("record landed on another shard than the shard map says; refreshing the map",
				"predicted", predicted[i], "shard", *r.ShardId)
			if err := s.shards.Refresh(ctx); err != nil {
				s.log.Warn("shard map refresh failed", "err", err)
				s.shards.Invalidate()
			}
			refreshed = s.shards.Current()
		}
		if !aggregator.HasMagic(parts[i].Data) || refreshed == nil {
			continue // a plain record, routed by its own partition key: always where it belongs
		}
		if !placedWell(refreshed, *r.ShardId, parts[i].Data) {
			r.ErrorCode = aws.String(errShardMismatch)
			r.ErrorMessage = aws.String("aggregate landed on shard " + *r.ShardId + " which does not hold all its user records (stream resharded); sending it again, re-split")
			r.ShardId, r.SequenceNumber = nil, nil
		}
	}
}

// placedWell reports whether every user record of the aggregate data goes to shard id.
// An unknown shard (closed since) or an undecodable record counts as misplaced.
func placedWell(snap *shardmap.Snapshot, id string, data []byte) bool {
	sh := snap.ByID(id)
	if sh == nil {
		return false
	}
	recs, err := aggregator.DecodeAggregate(data)
	if err != nil {
		return !aggregator.HasMagic(data)
	}
	for _, r := range recs {
		if t, err := snap.Target(r.PartitionKey, r.ExplicitHashKey); err != nil || t != sh {
			return false
		}
	}
	return true
}

// place returns the shard a record goes to as it is (nil: the map cannot tell), and
// whether that is the whole answer (exact): a plain record goes by its own key, and an
// aggregate whose partition keys all hash into its target, with no explicit hash key table,
// is sent as it is. Otherwise splitForShards must decode it.
func place(snap *shardmap.Snapshot, pk, ehk string, data []byte) (target *shardmap.Shard, exact bool) {
	target, err := snap.Target(pk, ehk)
	if err != nil {
		return nil, true // not a hash key: nothing to split, Kinesis will say what it thinks
	}
	if ehk == "" && !aggregator.HasMagic(data) {
		return target, true
	}
	return target, target != nil && keysIn(data, target)
}

// keysIn reports whether data is an aggregate whose partition keys all hash into target and
// that has no explicit hash key table (user records then go by their partition keys). False
// means "look closer", not "misplaced". It reads the key tables only; the full (MD5-checked)
// decode is left to the rare aggregate that may need re-splitting.
func keysIn(data []byte, target *shardmap.Shard) bool {
	keys, in := 0, true
	err := aggregator.KeyTables(data, func(k []byte, explicit bool) bool {
		if explicit || !target.Contains(shardmap.KeyHashBytes(k)) {
			in = false
			return false
		}
		keys++
		return true
	})
	return err == nil && in && keys > 0
}

// splitForShards returns nil and the predicted shard ("" when the map cannot tell) when a
// record goes to one shard as it is, or the entries that replace it and their shards. The
// shipper's ShardRouter asks it too, so that the shards a record is held for are the ones
// it is sent to.
func splitForShards(snap *shardmap.Snapshot, pk, ehk string, data []byte) ([]types.PutRecordsRequestEntry, []string) {
	if snap == nil {
		return nil, []string{""}
	}
	target, exact := place(snap, pk, ehk, data)
	if exact || target == nil {
		// Plain, all keys in place, not an explicit hash key, or a gap in the map: nothing
		// to split, send as is.
		id := ""
		if target != nil {
			id = target.ID
		}
		return nil, []string{id}
	}
	// An aggregate: with an explicit hash key (packed per shard), or without one but
	// possibly holding several keys (packed before the shard map was known).
	recs, err := aggregator.DecodeAggregate(data)
	if err != nil {
		return nil, []string{target.ID} // not an aggregate of ours: send as is
	}
	var groups []*shardmap.Shard
	byShard := map[*shardmap.Shard][]aggregator.UserRecord{}
	for _, r := range recs {
		sh, err := snap.Target(r.PartitionKey, r.ExplicitHashKey)
		if err != nil {
			sh, _ = snap.Target(r.PartitionKey, "") // a user record's bad explicit key: go by its key
		}
		if sh == nil {
			return nil, []string{target.ID}
		}
		if _, ok := byShard[sh]; !ok {
			groups = append(groups, sh)
		}
		byShard[sh] = append(byShard[sh], r)
	}
	if len(groups) == 1 && groups[0] == target {
		return nil, []string{target.ID}
	}
	out := make([]types.PutRecordsRequestEntry, 0, len(groups))
	ids := make([]string, 0, len(groups))
	for _, sh := range groups {
		rs := byShard[sh]
		pk := rs[0].PartitionKey
		if len(rs) == 1 && rs[0].ExplicitHashKey == "" && !aggregator.HasMagic(rs[0].Data) {
			out = append(out, types.PutRecordsRequestEntry{Data: rs[0].Data, PartitionKey: aws.String(pk)})
		} else {
			out = append(out, types.PutRecordsRequestEntry{Data: aggregator.EncodeUserRecords(nil, rs),
				PartitionKey: aws.String(pk), ExplicitHashKey: aws.String(sh.StartKey)})
		}
		ids = append(ids, sh.ID)
	}
	return out, ids
}
