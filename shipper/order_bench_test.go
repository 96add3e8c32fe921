package shipper

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/shardmap"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// rotatingSource hands out recs in turn, n items in all.
type rotatingSource struct {
	recs  []Record
	n     uint64
	next  atomic.Uint64
	acked atomic.Uint64
	done  chan struct{}
}

func (s *rotatingSource) Next(ctx context.Context) (Item, error) {
	if s.next.Load() >= s.n {
		<-ctx.Done()
		return Item{}, ctx.Err()
	}
	seq := s.next.Add(1) - 1
	return Item{Seq: seq, Record: s.recs[seq%uint64(len(s.recs))]}, nil
}

func (s *rotatingSource) Pending() int { return int(s.n - s.next.Load()) }

func (s *rotatingSource) Ack(uint64) error {
	if s.acked.Add(1) == s.n {
		close(s.done)
	}
	return nil
}

// BenchmarkKinesaliteKeyed ships aggregates packed per shard (a keyed flow's records: 100-byte
// lines of 50 keys, explicit hash keys) through ShardAware into a 4-shard kinesalite stream,
// with per-shard order (as keyed flows run) and without it (as they ran before). Read MB/s.
//
//	go test -run '^$' -bench KinesaliteKeyed -benchtime 3s ./shipper
func BenchmarkKinesaliteKeyed(b *testing.B) {
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	endpoint := kinesalitetest.Start(b)
	kinesalitetest.CreateStream(b, endpoint, "keyedbench", 4)
	cfg := aws.Config{Region: "us-east-1", Credentials: staticCreds(), BaseEndpoint: aws.String(endpoint)}
	client := NewKinesisClient(cfg)
	m := shardmap.New(client, "keyedbench", shardmap.Options{})
	if err := m.Ensure(context.Background()); err != nil {
		b.Fatal(err)
	}
	line := bytes.Repeat([]byte("l"), 100)
	for _, size := range []int{64 << 10, 1000 << 10} {
		// One aggregate per shard, holding lines of that shard's keys.
		byShard := map[string][]aggregator.UserRecord{}
		ehk := map[string]string{}
		var order []string
		for k := 0; len(byShard) < 4 || k < 50; k++ {
			pk := fmt.Sprintf("user-%02d", k)
			id, startKey, _, _ := m.Locate(pk)
			if _, ok := byShard[id]; !ok {
				order = append(order, id)
			}
			byShard[id] = append(byShard[id], aggregator.UserRecord{PartitionKey: pk})
			ehk[id] = startKey
		}
		var recs []Record
		for _, id := range order {
			keys := byShard[id]
			var urs []aggregator.UserRecord
			for i := 0; (i+1)*(len(line)+len(keys[0].PartitionKey)+8) < size; i++ {
				urs = append(urs, aggregator.UserRecord{PartitionKey: keys[i%len(keys)].PartitionKey, Data: line})
			}
			data := aggregator.EncodeUserRecords(nil, urs)
			recs = append(recs, Record{PartitionKey: urs[0].PartitionKey, ExplicitHashKey: ehk[id], Data: data, UserRecords: len(urs)})
		}
		for _, ordered := range []bool{false, true} {
			name := fmt.Sprintf("unordered/%dKiB", size>>10)
			if ordered {
				name = fmt.Sprintf("ordered/%dKiB", size>>10)
			}
			b.Run(name, func(b *testing.B) {
				src := &rotatingSource{recs: recs, n: uint64(b.N), done: make(chan struct{})}
				opts := Options{Metrics: Metrics{}.withDefaults()}
				if ordered {
					opts.Shards = NewShardRouter(m)
				}
				s := New(src, NewKinesis(NewShardAware(client, m, Limits{}, nil), "keyedbench", Limits{}), opts)
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				b.SetBytes(int64(len(recs[0].Data)))
				b.ResetTimer()
				go func() { errc <- s.Run(ctx) }()
				<-src.done
				b.StopTimer()
				cancel()
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkShipOrderedToDiscard is BenchmarkShipToDiscard for a keyed flow's hold-back:
// records over 4 shards (at most 4 per request), what the bookkeeping costs per record.
func BenchmarkShipOrderedToDiscard(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			var recs []Record
			for _, sh := range []string{"a", "b", "c", "d"} {
				recs = append(recs, Record{PartitionKey: sh, Data: make([]byte, size-1), UserRecords: 1})
			}
			src := &rotatingSource{recs: recs, n: uint64(b.N), done: make(chan struct{})}
			s := New(src, Discard{}, Options{Metrics: Metrics{}.withDefaults(), Shards: &fakeRouter{}})
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			go func() { errc <- s.Run(ctx) }()
			<-src.done
			b.StopTimer()
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
