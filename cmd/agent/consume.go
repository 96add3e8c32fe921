package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/awsconf"
	"github.com/kinship-agent/kinship/internal/payload"
)

// consumeAPI is what consume needs of a Kinesis client.
type consumeAPI interface {
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

func cmdConsume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stream := fs.String("stream", "", "stream name (required)")
	from := fs.String("from", "beginning", "where to start: beginning or latest")
	follow := fs.Bool("follow", false, "keep reading new records instead of exiting at the end of the stream")
	endpoint := fs.String("endpoint", "", "Kinesis endpoint URL (default: the standard AWS environment, or --config's aws.endpoint)")
	cfgPath := fs.String("config", "", "take aws.region, aws.endpoint and aws.role_arn from this kinship configuration")
	region := fs.String("region", "", "AWS region (default: the standard AWS environment)")
	limit := fs.Int("limit", 1000, "records per GetRecords call (small values keep responses small)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *stream == "" {
		return usageError{errors.New("--stream is required")}
	}
	var it types.ShardIteratorType
	switch *from {
	case "beginning":
		it = types.ShardIteratorTypeTrimHorizon
	case "latest":
		it = types.ShardIteratorTypeLatest
	default:
		return usageError{fmt.Errorf("--from %q: want beginning or latest", *from)}
	}
	var ac config.AWS
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		ac = cfg.AWS
	}
	if *endpoint != "" {
		ac.Endpoint = *endpoint
	}
	if *region != "" {
		ac.Region = *region
	}
	awsCfg, err := awsconf.Load(ctx, ac)
	if err != nil {
		return err
	}
	client := kinesis.NewFromConfig(awsCfg, awsconf.KinesisOptions(ac))
	out := bufio.NewWriterSize(stdout, 256<<10)
	err = consume(ctx, client, consumeOptions{stream: *stream, iterator: it, follow: *follow, limit: int32(*limit)}, out)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

type consumeOptions struct {
	stream   string
	iterator types.ShardIteratorType
	follow   bool
	limit    int32
	idle     time.Duration // wait between empty reads when following [1s]
}

// consume prints every user record of every shard, one per line. Without follow it returns
// once each shard returned an empty read while not behind the tip of the stream.
func consume(ctx context.Context, c consumeAPI, o consumeOptions, w io.Writer) error {
	if o.idle <= 0 {
		o.idle = time.Second
	}
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(o.stream)}
	for {
		res, err := c.ListShards(ctx, in)
		if err != nil {
			return fmt.Errorf("consume: list shards of %s: %w", o.stream, err)
		}
		shards = append(shards, res.Shards...)
		if res.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs = make([]error, len(shards))
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, sh := range shards {
		wg.Go(func() {
			errs[i] = consumeShard(ctx, c, o, aws.ToString(sh.ShardId), func(lines [][]byte) error {
				mu.Lock()
				defer mu.Unlock()
				for _, l := range lines {
					if _, err := w.Write(l); err != nil {
						return err
					}
					if _, err := w.Write([]byte{'\n'}); err != nil {
						return err
					}
				}
				return nil
			})
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func consumeShard(ctx context.Context, c consumeAPI, o consumeOptions, shardID string, emit func([][]byte) error) error {
	itOut, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(o.stream), ShardId: aws.String(shardID), ShardIteratorType: o.iterator})
	if err != nil {
		return fmt.Errorf("consume: shard %s: get iterator: %w", shardID, err)
	}
	iter := itOut.ShardIterator
	var lines [][]byte
	var dec payload.Decompressor
	defer dec.Close()
	for iter != nil {
		res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(o.limit)})
		if err != nil {
			var throttled *types.ProvisionedThroughputExceededException
			if errors.As(err, &throttled) {
				if err := sleep(ctx, o.idle); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("consume: shard %s: get records: %w", shardID, err)
		}
		lines = lines[:0]
		for _, r := range res.Records {
			// Records of a flow with kinesis.compression hold a gzip or zstd stream of what
			// they would otherwise hold: decompress, then de-aggregate.
			data, _ := dec.Decompress(r.Data)
			recs, _, err := aggregator.Deaggregate(data, aws.ToString(r.PartitionKey))
			if err != nil {
				return fmt.Errorf("consume: shard %s: record %s: %w", shardID, aws.ToString(r.SequenceNumber), err)
			}
			for _, u := range recs {
				lines = append(lines, u.Data)
			}
		}
		if err := emit(lines); err != nil {
			return err
		}
		iter = res.NextShardIterator
		if len(res.Records) == 0 {
			if !o.follow && aws.ToInt64(res.MillisBehindLatest) == 0 {
				return nil
			}
			if err := sleep(ctx, o.idle); err != nil {
				return err
			}
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
