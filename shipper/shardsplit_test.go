package shipper

import (
	"context"
	"math/big"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/shardmap"
)

// twoShards is a stream of two open shards split at 2^127, placing records like Kinesis.
type twoShards struct {
	puts [][]types.PutRecordsRequestEntry
	fail map[int]bool // entry index of the next request to reject
}

var half = new(big.Int).Lsh(big.NewInt(1), 127)

func (s *twoShards) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	mk := func(id string, a, b *big.Int) types.Shard {
		return types.Shard{ShardId: aws.String(id), HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(a.String()), EndingHashKey: aws.String(b.String())},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
	}
	return &kinesis.ListShardsOutput{Shards: []types.Shard{mk("lo", big.NewInt(0), new(big.Int).Sub(half, big.NewInt(1))), mk("hi", half, max)}}, nil
}

func (s *twoShards) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	s.puts = append(s.puts, in.Records)
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for i, e := range in.Records {
		var h shardmap.Hash
		if e.ExplicitHashKey != nil {
			h, _ = shardmap.ParseHash(*e.ExplicitHashKey)
		} else {
			h = shardmap.KeyHash(*e.PartitionKey)
		}
		id := "lo"
		if h.Hi >= 1<<63 {
			id = "hi"
		}
		r := types.PutRecordsResultEntry{ShardId: aws.String(id), SequenceNumber: aws.String("1")}
		if s.fail[i] {
			r = types.PutRecordsResultEntry{ErrorCode: aws.String("ProvisionedThroughputExceededException")}
			*out.FailedRecordCount++
		}
		out.Records = append(out.Records, r)
	}
	s.fail = nil
	return out, nil
}

// keysOn returns n partition keys whose hash falls in the lo (hi=false) or hi shard.
func keysOn(hi bool, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		k := "k" + big.NewInt(int64(i)).String()
		if (shardmap.KeyHash(k).Hi >= 1<<63) == hi {
			out = append(out, k)
		}
	}
	return out
}

func TestShardAwareResplitsAggregateSpanningShards(t *testing.T) {
	api := &twoShards{}
	m := shardmap.New(api, "s", shardmap.Options{})
	sa := NewShardAware(api, m, Limits{}, nil)
	lo, hi := keysOn(false, 2), keysOn(true, 2)
	// Packed when the stream had one shard: keys of both halves, explicit hash key 0.
	recs := []aggregator.UserRecord{{PartitionKey: lo[0], Data: []byte("1")}, {PartitionKey: hi[0], Data: []byte("2")},
		{PartitionKey: lo[1], Data: []byte("3")}, {PartitionKey: hi[1], Data: []byte("4")}}
	spanning := aggregator.EncodeUserRecords(nil, recs)
	plain := types.PutRecordsRequestEntry{Data: []byte("plain"), PartitionKey: aws.String(hi[0])}
	in := &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
		{Data: spanning, PartitionKey: aws.String(lo[0]), ExplicitHashKey: aws.String("0")}, plain}}

	out, err := sa.PutRecords(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 2 || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("merged output %+v, want 2 accepted entries", out)
	}
	sent := api.puts[0]
	if len(sent) != 3 || sa.Resplits() != 1 {
		t.Fatalf("sent %d entries (%d re-splits), want the aggregate in 2 parts and the plain record", len(sent), sa.Resplits())
	}
	for _, e := range sent[:2] {
		urs, err := aggregator.DecodeAggregate(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		ehk, _ := shardmap.ParseHash(aws.ToString(e.ExplicitHashKey))
		for _, u := range urs {
			if (shardmap.KeyHash(u.PartitionKey).Hi >= 1<<63) != (ehk.Hi >= 1<<63) {
				t.Errorf("part for hash key %s holds key %s of the other shard", aws.ToString(e.ExplicitHashKey), u.PartitionKey)
			}
		}
		if len(urs) != 2 {
			t.Errorf("part holds %d user records, want 2", len(urs))
		}
	}

	// A part rejected makes its whole original record fail, so that it is retried.
	api.fail = map[int]bool{1: true}
	out, err = sa.PutRecords(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 1 || out.Records[0].ErrorCode == nil || out.Records[1].ErrorCode != nil {
		t.Errorf("with one part rejected: %+v", out.Records)
	}
}

// Packed before the shard map was known: several keys, no explicit hash key. Routed by its
// first key alone it would put the other shard's records where consumers drop them.
func TestShardAwareSplitsAggregatePackedWithoutMap(t *testing.T) {
	api := &twoShards{}
	sa := NewShardAware(api, shardmap.New(api, "s", shardmap.Options{}), Limits{}, nil)
	lo, hi := keysOn(false, 1), keysOn(true, 1)
	data := aggregator.EncodeUserRecords(nil, []aggregator.UserRecord{{PartitionKey: lo[0], Data: []byte("1")}, {PartitionKey: hi[0], Data: []byte("2")}})
	in := &kinesis.PutRecordsInput{Records: []types.PutRecordsRequestEntry{{Data: data, PartitionKey: aws.String(lo[0])}}}
	if _, err := sa.PutRecords(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	sent := api.puts[0]
	if len(sent) != 2 {
		t.Fatalf("sent %d entries, want one per shard", len(sent))
	}
	for _, e := range sent {
		if aws.ToString(e.PartitionKey) != lo[0] && aws.ToString(e.PartitionKey) != hi[0] {
			t.Errorf("part with key %s", aws.ToString(e.PartitionKey))
		}
		if string(e.Data) != "1" && string(e.Data) != "2" {
			t.Errorf("a part of one line is not sent plain: %q", e.Data)
		}
	}
}
