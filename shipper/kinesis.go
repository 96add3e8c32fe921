package shipper

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// KinesisAPI is the part of the Kinesis client the shipper uses.
type KinesisAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Kinesis is a Destination that sends PutRecords requests to one stream.
type Kinesis struct {
	api     KinesisAPI
	stream  string
	byARN   bool
	limits  Limits
	entries sync.Pool // *[]types.PutRecordsRequestEntry, reused across requests
}

var _ Destination = (*Kinesis)(nil)

// NewKinesis returns a destination for stream (a name or a stream ARN). Zero Limits fields
// take the service's defaults: 500 records, 5 MiB per request, 1 MiB per record.
func NewKinesis(api KinesisAPI, stream string, limits Limits) *Kinesis {
	return &Kinesis{api: api, stream: stream, byARN: strings.HasPrefix(stream, "arn:"), limits: limits.WithDefaults()}
}

// Limits returns the request limits the shipper batches to.
func (k *Kinesis) Limits() Limits { return k.limits }

// EntryError is one record that PutRecords rejected (its ErrorCode and ErrorMessage).
type EntryError struct {
	Code    string
	Message string
}

func (e *EntryError) Error() string { return "record rejected: " + e.Code + ": " + e.Message }

// ErrorCode lets Classify treat entry errors and API errors alike.
func (e *EntryError) ErrorCode() string { return e.Code }

// Put sends recs in one PutRecords request.
func (k *Kinesis) Put(ctx context.Context, recs []Record) ([]error, error) {
	ep, _ := k.entries.Get().(*[]types.PutRecordsRequestEntry)
	if ep == nil {
		ep = new([]types.PutRecordsRequestEntry)
	}
	entries := (*ep)[:0]
	for i := range recs {
		// Pointers into recs, not copies: recs outlives the call, so this allocates nothing.
		e := types.PutRecordsRequestEntry{Data: recs[i].Data, PartitionKey: &recs[i].PartitionKey}
		if recs[i].ExplicitHashKey != "" {
			e.ExplicitHashKey = &recs[i].ExplicitHashKey
		}
		entries = append(entries, e)
	}
	in := &kinesis.PutRecordsInput{Records: entries}
	if k.byARN {
		in.StreamARN = &k.stream
	} else {
		in.StreamName = &k.stream
	}
	out, err := k.api.PutRecords(ctx, in)
	clear(entries) // do not pin shipped data in the pool
	*ep = entries[:0]
	k.entries.Put(ep)
	if err != nil {
		return nil, fmt.Errorf("shipper: kinesis stream %s: PutRecords: %w", k.stream, err)
	}
	if len(out.Records) != len(recs) {
		return nil, fmt.Errorf("shipper: kinesis stream %s: PutRecords answered %d entries for %d records", k.stream, len(out.Records), len(recs))
	}
	if aws.ToInt32(out.FailedRecordCount) == 0 {
		return nil, nil
	}
	results := make([]error, len(recs))
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			results[i] = &EntryError{Code: *r.ErrorCode, Message: aws.ToString(r.ErrorMessage)}
		}
	}
	return results, nil
}

// SDKMaxAttempts is how many attempts the SDK makes per call of ours: one retry for a
// dropped connection, no more, so that its retries and the shipper's do not multiply.
const SDKMaxAttempts = 2

// requestLogModes would log request headers (a session token), bodies (the data) or
// signing details: never wanted in a log-shipping agent's own logs.
const requestLogModes = aws.LogSigning | aws.LogRequest | aws.LogRequestWithBody |
	aws.LogResponseWithBody | aws.LogRequestEventMessage | aws.LogResponseEventMessage

// NewKinesisClient returns the SDK's Kinesis client, for the calls other than PutRecords
// (the shard map's ListShards) and for comparisons in tests; the agent's PutRecords go
// through NewKinesisAPI. The SDK retries at most SDKMaxAttempts-1 times without its
// client-side retry quota (the shipper owns backoff and never gives up), and
// request/response/signing logging is off whatever cfg asks for, so credentials and shipped
// data never reach a log.
func NewKinesisClient(cfg aws.Config, optFns ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.NewFromConfig(cfg, append([]func(*kinesis.Options){func(o *kinesis.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = SDKMaxAttempts
			so.RateLimiter = ratelimit.None
		})
		o.RetryMaxAttempts = SDKMaxAttempts
		o.ClientLogMode &^= requestLogModes
	}}, optFns...)...)
}

// Discard is a destination that accepts everything (benchmarks, dry runs). The shipper still
// counts what it "sent".
type Discard struct{ Limit Limits }

var _ Destination = Discard{}

// Put accepts recs.
func (Discard) Put(context.Context, []Record) ([]error, error) { return nil, nil }

// Limits returns Limit with the Kinesis defaults for zero fields.
func (d Discard) Limits() Limits { return d.Limit.WithDefaults() }
