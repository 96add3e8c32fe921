package shipper

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/kinship-agent/kinship/aggregator"
)

// The Firehose PutRecordBatch limits. A Firehose record holds at most 1,000 KiB (not 1 MiB).
const (
	FirehoseMaxRecords      = 500
	FirehoseMaxRequestBytes = 4 << 20
	FirehoseMaxRecordBytes  = 1000 << 10
)

// FirehoseAPI is the part of the Firehose client the shipper uses.
type FirehoseAPI interface {
	PutRecordBatch(ctx context.Context, in *firehose.PutRecordBatchInput, optFns ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error)
}

// Firehose is a Destination that sends PutRecordBatch requests to one delivery stream.
//
// Firehose delivers record bytes as they are (to S3, concatenated), so its records must be
// plain lines, not KPL aggregates. Rather than turning aggregation off for firehose flows
// (one line per record: 500 lines per request at most, and a spool frame per line), the
// pipeline stays the same and each shipper record is unpacked here: its lines, each ended
// by "\n" so that records concatenated by Firehose stay line-separated, become one Firehose
// record. Every line costs at least 6 bytes of framing inside an aggregate and 1 byte here,
// so a record within FirehoseMaxRecordBytes (the configuration bounds batch.max_bytes by
// it) always becomes exactly one Firehose record, and a failed Firehose record maps to
// exactly one shipper record: the shipper resends only what failed, nothing twice.
//
// A larger record (only a misconfiguration makes one; the shipper sends it alone) is split
// into several Firehose records at line boundaries; if only some of them fail, the whole
// record is retried and its accepted parts arrive twice.
//
// Records of agent.json flows are framed already (LinesFramed): each line keeps the '\n' it
// was read with, as the Kinesis Agent sends it (a cut line ends with the truncated record
// terminator, an ADDBRACKETS record with '}'), and is sent as it is, nothing added. Such a
// flow without aggregatedRecordSizeBytes is not aggregated, so each of its lines is a
// shipper record of its own and one Firehose record, as the Kinesis Agent sends them; with
// it, an aggregate's lines (batch.max_bytes is aggregatedRecordSizeBytes) are joined whole.
type Firehose struct {
	api    FirehoseAPI
	stream string
	framed bool // lines end as they are to be delivered: no '\n' is added
}

var _ Destination = (*Firehose)(nil)

// NewFirehose returns a destination for the delivery stream named stream.
func NewFirehose(api FirehoseAPI, stream string) *Firehose {
	return &Firehose{api: api, stream: stream}
}

// LinesFramed returns a copy of f for a flow whose lines carry their own line ends (each
// keeps its '\n', config.Flow.KeepNewline): they are sent, and joined, as they are.
func (f *Firehose) LinesFramed() *Firehose {
	c := *f
	c.framed = true
	return &c
}

// Limits returns the PutRecordBatch limits. The shipper counts the aggregate's bytes, which
// are never fewer than the newline-joined lines sent for it.
func (f *Firehose) Limits() Limits {
	return Limits{MaxRecords: FirehoseMaxRecords, MaxRequestBytes: FirehoseMaxRequestBytes, MaxRecordBytes: FirehoseMaxRecordBytes}
}

// Put sends recs, unpacked into newline-terminated lines, in one PutRecordBatch request.
func (f *Firehose) Put(ctx context.Context, recs []Record) ([]error, error) {
	entries := make([]types.Record, 0, len(recs))
	owner := make([]int, 0, len(recs)) // entries[i] carries lines of recs[owner[i]]
	for i := range recs {
		if f.framed && !aggregator.HasMagic(recs[i].Data) {
			// A plain record is one line, sent as it is: no copy.
			entries, owner = append(entries, types.Record{Data: recs[i].Data}), append(owner, i)
			continue
		}
		// One buffer per record, sized by the record: the lines are never larger.
		end := 1
		if f.framed {
			end = 0
		}
		buf := make([]byte, 0, len(recs[i].Data)+1)
		eachLine(&recs[i], func(line []byte) {
			if len(buf) > 0 && len(buf)+len(line)+end > FirehoseMaxRecordBytes {
				entries, owner = append(entries, types.Record{Data: buf}), append(owner, i)
				buf = make([]byte, 0, len(recs[i].Data)+1)
			}
			buf = append(buf, line...)
			if !f.framed {
				buf = append(buf, '\n')
			}
		})
		entries, owner = append(entries, types.Record{Data: buf}), append(owner, i)
	}
	out, err := f.api.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: &f.stream, Records: entries})
	if err != nil {
		return nil, fmt.Errorf("shipper: firehose delivery stream %s: PutRecordBatch: %w", f.stream, err)
	}
	if len(out.RequestResponses) != len(entries) {
		return nil, fmt.Errorf("shipper: firehose delivery stream %s: PutRecordBatch answered %d entries for %d records", f.stream, len(out.RequestResponses), len(entries))
	}
	if aws.ToInt32(out.FailedPutCount) == 0 {
		return nil, nil
	}
	results := make([]error, len(recs))
	failed := 0
	for j, r := range out.RequestResponses {
		if r.ErrorCode != nil && results[owner[j]] == nil {
			results[owner[j]] = &EntryError{Code: *r.ErrorCode, Message: aws.ToString(r.ErrorMessage)}
			failed++
		}
	}
	if failed == 0 {
		// FailedPutCount without an ErrorCode: nothing says which failed, so all are resent.
		return nil, fmt.Errorf("shipper: firehose delivery stream %s: PutRecordBatch: %d records failed without an error code", f.stream, aws.ToInt32(out.FailedPutCount))
	}
	return results, nil
}

// NewFirehoseClient returns a Firehose client for the shipper, set up like NewKinesisClient:
// at most SDKMaxAttempts attempts per call without a client-side retry quota (the shipper
// owns backoff), and no request, body or signing logs whatever cfg asks for.
func NewFirehoseClient(cfg aws.Config, optFns ...func(*firehose.Options)) *firehose.Client {
	return firehose.NewFromConfig(cfg, append([]func(*firehose.Options){func(o *firehose.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = SDKMaxAttempts
			so.RateLimiter = ratelimit.None
		})
		o.RetryMaxAttempts = SDKMaxAttempts
		o.ClientLogMode &^= requestLogModes
	}}, optFns...)...)
}
