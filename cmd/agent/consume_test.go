package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinship-agent/kinship/aggregator"
)

// fakeStream serves a fixed set of records per shard, in pages of one record, then empty
// reads: the shape of a real stream read to its tip.
type fakeStream struct {
	mu     sync.Mutex
	shards map[string][]types.Record
	calls  int
	fail   error
}

func (f *fakeStream) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	var ids []string
	for id := range f.shards {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// Two pages, to exercise NextToken.
	if in.NextToken == nil && len(ids) > 1 {
		return &kinesis.ListShardsOutput{Shards: []types.Shard{{ShardId: aws.String(ids[0])}}, NextToken: aws.String("page2")}, nil
	}
	out := &kinesis.ListShardsOutput{}
	start := 0
	if in.NextToken != nil {
		start = 1
	}
	for _, id := range ids[start:] {
		out.Shards = append(out.Shards, types.Shard{ShardId: aws.String(id)})
	}
	return out, nil
}

func (f *fakeStream) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(aws.ToString(in.ShardId) + "/0")}, nil
}

func (f *fakeStream) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return nil, f.fail
	}
	var shard string
	var i int
	if _, err := fmt.Sscanf(strings.Replace(aws.ToString(in.ShardIterator), "/", " ", 1), "%s %d", &shard, &i); err != nil {
		return nil, err
	}
	recs := f.shards[shard]
	out := &kinesis.GetRecordsOutput{MillisBehindLatest: aws.Int64(0), NextShardIterator: aws.String(fmt.Sprintf("%s/%d", shard, i+1))}
	if i < len(recs) {
		out.Records = recs[i : i+1]
	}
	return out, nil
}

func TestConsumePrintsEveryUserRecordAndExitsAtTheTip(t *testing.T) {
	agg := aggregator.EncodeAggregate("pk", "", [][]byte{[]byte("a1"), []byte("a2"), []byte("a3")})
	f := &fakeStream{shards: map[string][]types.Record{
		"shard-0": {{Data: agg, PartitionKey: aws.String("pk")}, {Data: []byte("plain"), PartitionKey: aws.String("x")}},
		"shard-1": {{Data: []byte("b1"), PartitionKey: aws.String("y")}},
		"shard-2": nil,
	}}
	var out bytes.Buffer
	if err := consume(context.Background(), f, consumeOptions{stream: "s", limit: 10}, &out); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	sort.Strings(got)
	want := []string{"a1", "a2", "a3", "b1", "plain"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("consume printed %q, want %q", got, want)
	}
}

func TestConsumeReportsErrors(t *testing.T) {
	f := &fakeStream{shards: map[string][]types.Record{"shard-0": nil}, fail: errors.New("boom")}
	err := consume(context.Background(), f, consumeOptions{stream: "s", limit: 10}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "shard-0") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v, want one naming the shard and the cause", err)
	}
}

func TestConsumeFollowStopsOnCancel(t *testing.T) {
	f := &fakeStream{shards: map[string][]types.Record{"shard-0": {{Data: []byte("x"), PartitionKey: aws.String("k")}}}}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- consume(ctx, f, consumeOptions{stream: "s", limit: 10, follow: true, idle: 1}, &out) }()
	for {
		f.mu.Lock()
		calls := f.calls
		f.mu.Unlock()
		if calls > 5 {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if out.String() != "x\n" {
		t.Errorf("printed %q", out.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
