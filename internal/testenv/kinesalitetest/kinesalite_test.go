package kinesalitetest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

func TestStartServesTheKinesisAPIOnLoopback(t *testing.T) {
	endpoint := Start(t)
	CreateStream(t, endpoint, "smoke", 3)
	out, err := Client(endpoint).ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("smoke")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Shards) != 3 {
		t.Errorf("stream has %d shards, want 3", len(out.Shards))
	}
}
