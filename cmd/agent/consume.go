package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
	from := fs.String("from", "beginning", "where to start: beginning, latest, or an RFC 3339 time (records that arrived at or after it)")
	follow := fs.Bool("follow", false, "keep reading new records instead of exiting at the end of the stream")
	shard := fs.String("shard", "", "read only this shard (shardId-000000000001, or 1)")
	grep := fs.String("grep", "", "print only user records whose data matches this regular expression (RE2 syntax)")
	format := fs.String("format", "raw", "raw: the data, one user record per line; json: one object per user record with its keys, shard, sequence numbers and arrival time")
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
	o := consumeOptions{stream: *stream, follow: *follow, limit: int32(*limit), shard: shardID(*shard), format: *format}
	switch *from {
	case "beginning":
		o.iterator = types.ShardIteratorTypeTrimHorizon
	case "latest":
		o.iterator = types.ShardIteratorTypeLatest
	default:
		at, err := time.Parse(time.RFC3339Nano, *from)
		if err != nil {
			return usageError{fmt.Errorf("--from %q: want beginning, latest or an RFC 3339 time (2006-01-02T15:04:05Z)", *from)}
		}
		o.iterator, o.at = types.ShardIteratorTypeAtTimestamp, at
	}
	if *format != "raw" && *format != "json" {
		return usageError{fmt.Errorf("--format %q: want raw or json", *format)}
	}
	if *grep != "" {
		re, err := regexp.Compile(*grep)
		if err != nil {
			return usageError{fmt.Errorf("--grep: %w", err)}
		}
		o.grep = re
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
	// Following is watching: each page goes out as it arrives, not when the buffer fills.
	var w io.Writer = out
	if *follow {
		w = flushingWriter{out}
	}
	err = consume(ctx, client, o, w)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// flushingWriter flushes after every write: consume writes once per page of records.
type flushingWriter struct{ *bufio.Writer }

func (f flushingWriter) Write(p []byte) (int, error) {
	n, err := f.Writer.Write(p)
	if err == nil {
		err = f.Flush()
	}
	return n, err
}

// shardID expands a bare shard number to the id Kinesis gives it.
func shardID(s string) string {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return fmt.Sprintf("shardId-%012d", n)
	}
	return s
}

type consumeOptions struct {
	stream   string
	iterator types.ShardIteratorType
	at       time.Time // where an AT_TIMESTAMP iterator starts
	shard    string    // read only this shard; empty: every shard
	grep     *regexp.Regexp
	format   string // "raw" (default) or "json"
	follow   bool
	limit    int32
	idle     time.Duration // wait between empty reads when following [1s]
}

// consumedRecord is one user record as --format json prints it. Data holds the bytes when
// they are valid UTF-8 (JSON strings cannot carry anything else), DataBase64 otherwise.
type consumedRecord struct {
	PartitionKey      string    `json:"partition_key"`
	ExplicitHashKey   string    `json:"explicit_hash_key,omitempty"`
	ShardID           string    `json:"shard_id"`
	SequenceNumber    string    `json:"sequence_number"`
	SubSequenceNumber int       `json:"sub_sequence_number"`
	Aggregated        bool      `json:"aggregated"`
	ArrivalTime       time.Time `json:"arrival_time"`
	Data              *string   `json:"data,omitempty"`
	DataBase64        []byte    `json:"data_base64,omitempty"`
}

// consume prints every user record of every shard (or of o.shard), one per line. Without
// follow it returns once each shard returned an empty read while not behind the tip of the
// stream.
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
	if o.shard != "" {
		var ids []string
		for _, sh := range shards {
			ids = append(ids, aws.ToString(sh.ShardId))
		}
		i := slices.Index(ids, o.shard)
		if i < 0 {
			return fmt.Errorf("consume: stream %s has no shard %s (it has %s)", o.stream, o.shard, strings.Join(ids, ", "))
		}
		shards = shards[i : i+1]
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
			errs[i] = consumeShard(ctx, c, o, aws.ToString(sh.ShardId), func(page []byte) error {
				mu.Lock()
				defer mu.Unlock()
				_, err := w.Write(page)
				return err
			})
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// consumeShard reads one shard and hands emit each page's output, formatted, at once.
func consumeShard(ctx context.Context, c consumeAPI, o consumeOptions, shardID string, emit func([]byte) error) error {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(o.stream), ShardId: aws.String(shardID), ShardIteratorType: o.iterator}
	if o.iterator == types.ShardIteratorTypeAtTimestamp {
		in.Timestamp = aws.Time(o.at)
	}
	itOut, err := c.GetShardIterator(ctx, in)
	if err != nil {
		return fmt.Errorf("consume: shard %s: get iterator: %w", shardID, err)
	}
	iter := itOut.ShardIterator
	var page bytes.Buffer
	enc := json.NewEncoder(&page)
	enc.SetEscapeHTML(false)
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
		page.Reset()
		for _, r := range res.Records {
			// Records of a flow with kinesis.compression hold a gzip or zstd stream of what
			// they would otherwise hold: decompress, then de-aggregate.
			data, _ := dec.Decompress(r.Data)
			recs, aggregated, err := aggregator.Deaggregate(data, aws.ToString(r.PartitionKey))
			if err != nil {
				return fmt.Errorf("consume: shard %s: record %s: %w", shardID, aws.ToString(r.SequenceNumber), err)
			}
			for sub, u := range recs {
				if o.grep != nil && !o.grep.Match(u.Data) {
					continue
				}
				if o.format != "json" {
					page.Write(u.Data)
					page.WriteByte('\n')
					continue
				}
				cr := consumedRecord{PartitionKey: u.PartitionKey, ExplicitHashKey: u.ExplicitHashKey, ShardID: shardID,
					SequenceNumber: aws.ToString(r.SequenceNumber), SubSequenceNumber: sub, Aggregated: aggregated,
					ArrivalTime: aws.ToTime(r.ApproximateArrivalTimestamp).UTC()}
				if utf8.Valid(u.Data) {
					text := string(u.Data)
					cr.Data = &text
				} else {
					cr.DataBase64 = u.Data
				}
				if err := enc.Encode(cr); err != nil {
					return fmt.Errorf("consume: shard %s: %w", shardID, err)
				}
			}
		}
		if page.Len() > 0 {
			if err := emit(page.Bytes()); err != nil {
				return err
			}
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
