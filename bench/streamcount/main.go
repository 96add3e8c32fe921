// Command streamcount prints how many records a Kinesis stream holds (every shard from its
// start), for the pipeline benchmark's kinesalite rows. It uses the AWS SDK with the
// standard environment (AWS_ENDPOINT_URL_KINESIS, AWS_CA_BUNDLE, dummy credentials).
//
//	streamcount -stream bench
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func main() {
	stream := flag.String("stream", "bench", "stream name")
	flag.Parse()
	n, err := count(*stream)
	if err != nil {
		fmt.Fprintln(os.Stderr, "streamcount:", err)
		os.Exit(1)
	}
	fmt.Println(n)
}

func count(stream string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return 0, err
	}
	c := kinesis.NewFromConfig(cfg)
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			return 0, err
		}
		// Small pages: one huge GetRecords answer can crash kinesalite.
		for iter := it.ShardIterator; iter != nil; {
			page, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(20)})
			if err != nil {
				return 0, err
			}
			if len(page.Records) == 0 {
				break
			}
			n += len(page.Records)
			iter = page.NextShardIterator
		}
	}
	return n, nil
}
