package shipper

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"

	"github.com/kinship-agent/kinship/internal/kinesisapi"
)

// KinesisAPIOptions configure NewKinesisAPI.
type KinesisAPIOptions struct {
	Protocol    string // kinesis.protocol: "cbor" (the default when empty) or "json"
	Endpoint    string // aws.endpoint; empty: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, the region's
	MaxInFlight int    // kinesis.max_in_flight: request buffers kept for reuse
}

// NewKinesisAPI returns the PutRecords client the agent ships with: a lean client that
// encodes each request once (CBOR by default), signs it with cfg's credentials and sends it
// with the SDK's HTTP client to the endpoint the SDK would use, and answers with the SDK's
// output and error types (see internal/kinesisapi). Unlike NewKinesisClient it never retries
// by itself: every retry is the shipper's. Other Kinesis calls (ListShards) still go through
// the SDK's client.
func NewKinesisAPI(ctx context.Context, cfg aws.Config, o KinesisAPIOptions) (KinesisAPI, error) {
	p, err := kinesisapi.ParseProtocol(o.Protocol)
	if err != nil {
		return nil, err
	}
	c, err := kinesisapi.New(ctx, cfg, kinesisapi.Options{Protocol: p, Endpoint: o.Endpoint, MaxInFlight: o.MaxInFlight})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// NewFirehoseAPI returns the PutRecordBatch client the agent ships with: like
// NewKinesisAPI, a lean client (JSON, the only protocol Firehose speaks, written once into a
// pooled buffer) with the SDK's signer, HTTP client, endpoint (optFns: awsconf.FirehoseOptions),
// output and error types, and no retries of its own.
func NewFirehoseAPI(ctx context.Context, cfg aws.Config, maxInFlight int, optFns ...func(*firehose.Options)) (FirehoseAPI, error) {
	c, err := kinesisapi.NewFirehose(ctx, cfg, kinesisapi.FirehoseOptions{MaxInFlight: maxInFlight, FirehoseOptions: optFns})
	if err != nil {
		return nil, err
	}
	return c, nil
}
