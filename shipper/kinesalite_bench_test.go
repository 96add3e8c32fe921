package shipper

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// BenchmarkKinesalite compares, against one kinesalite in one run, what the shipper pushes
// through NewKinesis with what a plain SDK loop of PutRecords calls reaches (the ceiling the
// shipper's own overhead is measured against). Read MB/s from each sub-benchmark.
//
//	go test -run '^$' -bench Kinesalite -benchtime 3s ./shipper
func BenchmarkKinesalite(b *testing.B) {
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	endpoint := kinesalitetest.Start(b)
	kinesalitetest.CreateStream(b, endpoint, "bench", 4)
	cfg := aws.Config{Region: "us-east-1", Credentials: staticCreds(), BaseEndpoint: aws.String(endpoint)}
	// kinesalite (node) is much slower for its first requests: without a warm-up, whichever
	// sub-benchmark runs first looks ~40 % slower than the others.
	warm := kinesis.NewFromConfig(cfg)
	entries := make([]types.PutRecordsRequestEntry, 80)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte("w"), 64<<10), PartitionKey: aws.String(fmt.Sprint(i))}
	}
	for range 40 {
		if _, err := warm.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("bench"), Records: entries}); err != nil {
			b.Fatal(err)
		}
	}
	for _, size := range []int{1 << 10, 64 << 10} {
		data := bytes.Repeat([]byte("x"), size-16)
		pk := "0123456789abcdef"
		b.Run(fmt.Sprintf("shipper/%dKiB", size>>10), func(b *testing.B) {
			src := &benchSource{rec: Record{PartitionKey: pk, Data: data, UserRecords: 1}, n: uint64(b.N), done: make(chan struct{})}
			s := New(src, NewKinesis(NewKinesisClient(cfg), "bench", Limits{}), Options{Metrics: Metrics{}.withDefaults()})
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			b.SetBytes(int64(size))
			b.ResetTimer()
			go func() { errc <- s.Run(ctx) }()
			<-src.done
			b.StopTimer()
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
		for _, workers := range []int{4, 8} {
			b.Run(fmt.Sprintf("sdk-loop-%d/%dKiB", workers, size>>10), func(b *testing.B) {
				client := kinesis.NewFromConfig(cfg)
				per := min(500, (5<<20)/size)
				var left atomic.Int64
				left.Store(int64(b.N))
				b.SetBytes(int64(size))
				b.ResetTimer()
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						entries := make([]types.PutRecordsRequestEntry, per)
						for i := range entries {
							entries[i] = types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(pk)}
						}
						for {
							n := min(int64(per), left.Add(-int64(per))+int64(per))
							if n <= 0 {
								return
							}
							out, err := client.PutRecords(context.Background(), &kinesis.PutRecordsInput{
								StreamName: aws.String("bench"), Records: entries[:n]})
							if err != nil {
								b.Error(err)
								return
							}
							if c := aws.ToInt32(out.FailedRecordCount); c > 0 {
								b.Errorf("%d records failed", c)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}

type collect struct{ records, bytes int }

func (c *collect) Put(r *aggregator.Record) error {
	c.records++
	c.bytes += len(r.Data) + len(r.PartitionKey)
	return nil
}

// BenchmarkAggregationEfficiency reports Kinesis records per MB of 100-byte lines: what the
// shard's 1,000 records/s limit costs once lines are packed into 1 MiB KPL aggregates.
//
//	go test -run '^$' -bench AggregationEfficiency -benchtime 3x ./shipper
func BenchmarkAggregationEfficiency(b *testing.B) {
	line := bytes.Repeat([]byte("l"), 100)
	const lines = 100_000 // 10 MB of lines
	for range b.N {
		out := &collect{}
		a, err := aggregator.New(aggregator.Options{Aggregate: true}, out)
		if err != nil {
			b.Fatal(err)
		}
		for i := range lines {
			if err := a.Add(0, line, int64(i+1)*101); err != nil {
				b.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			b.Fatal(err)
		}
		mb := float64(lines*len(line)) / 1e6
		b.ReportMetric(float64(out.records)/mb, "records/MB-of-lines")
		b.ReportMetric(float64(out.bytes)/float64(lines*len(line)), "shipped-bytes/line-byte")
	}
}

func staticCreds() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("kinshiptest", "kinshiptest", "")
}
