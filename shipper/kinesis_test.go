package shipper

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"reflect"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestClassify(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	status := func(code int, inner error) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: inner}
	}
	tests := []struct {
		err       error
		reason    string
		retryable bool
	}{
		{nil, "", false},
		{&EntryError{Code: "ProvisionedThroughputExceededException"}, "throttled", true},
		{api("LimitExceededException"), "throttled", true},
		{api("KMSThrottlingException"), "throttled", true},
		{&EntryError{Code: "InternalFailure"}, "transient", true},
		{api("ServiceUnavailable"), "transient", true},
		{api("ResourceNotFoundException"), "config", false},
		{api("AccessDeniedException"), "config", false},
		{api("KMSDisabledException"), "config", false},
		{api("KMSAccessDeniedException"), "config", false},
		{api("ExpiredTokenException"), "config", false},
		{api("UnrecognizedClientException"), "config", false},
		{api("InvalidSignatureException"), "config", false},
		{api("ValidationException"), "invalid", false},
		{api("InvalidArgumentException"), "invalid", false},
		{fmt.Errorf("shipper: kinesis stream s: PutRecords: %w", api("ProvisionedThroughputExceededException")), "throttled", true},
		{status(503, api("UnknownError")), "transient", true},
		{status(500, nil), "transient", true},
		{status(429, api("UnknownError")), "throttled", true},
		{status(403, api("UnknownError")), "config", false},
		{status(413, api("UnknownError")), "invalid", false},
		{&v4.SigningError{Err: errors.New("failed to retrieve credentials")}, "config", false},
		{context.DeadlineExceeded, "transient", true},
		{&smithyhttp.RequestSendError{Err: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}, "transient", true},
		{errors.New("something new"), "transient", true},
	}
	for _, tt := range tests {
		reason, retryable := Classify(tt.err)
		if reason != tt.reason || retryable != tt.retryable {
			t.Errorf("Classify(%v) = %q, %v; want %q, %v", tt.err, reason, retryable, tt.reason, tt.retryable)
		}
	}
}

type fakeKinesisAPI struct {
	put func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)
}

func (f *fakeKinesisAPI) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	return f.put(in)
}

func TestKinesisPut(t *testing.T) {
	recs := []Record{
		{PartitionKey: "a", Data: []byte("one")},
		{PartitionKey: "b", ExplicitHashKey: "123", Data: []byte("two")},
		{PartitionKey: "c", Data: []byte("three")},
	}
	ok := types.PutRecordsResultEntry{SequenceNumber: aws.String("1"), ShardId: aws.String("shardId-000000000000")}
	tests := []struct {
		name    string
		stream  string
		out     *kinesis.PutRecordsOutput
		err     error
		results []error
		wantErr bool
	}{
		{name: "all accepted", stream: "s", out: &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0), Records: []types.PutRecordsResultEntry{ok, ok, ok}}},
		{name: "by ARN", stream: "arn:aws:kinesis:us-east-1:1:stream/s", out: &kinesis.PutRecordsOutput{Records: []types.PutRecordsResultEntry{ok, ok, ok}}},
		{name: "one failed", stream: "s", out: &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(1), Records: []types.PutRecordsResultEntry{
			ok, {ErrorCode: aws.String("ProvisionedThroughputExceededException"), ErrorMessage: aws.String("slow")}, ok}},
			results: []error{nil, &EntryError{Code: "ProvisionedThroughputExceededException", Message: "slow"}, nil}},
		{name: "whole request", stream: "s", err: &smithy.GenericAPIError{Code: "ResourceNotFoundException"}, wantErr: true},
		{name: "short answer", stream: "s", out: &kinesis.PutRecordsOutput{Records: []types.PutRecordsResultEntry{ok}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *kinesis.PutRecordsInput
			k := NewKinesis(&fakeKinesisAPI{put: func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
				// Copy what the SDK would serialise before the entries slice is reused.
				cp := *in
				cp.Records = append([]types.PutRecordsRequestEntry(nil), in.Records...)
				got = &cp
				return tt.out, tt.err
			}}, tt.stream, Limits{})
			results, err := k.Put(context.Background(), recs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(results, tt.results) {
				t.Errorf("results = %v, want %v", results, tt.results)
			}
			if tt.stream[0] == 'a' {
				if aws.ToString(got.StreamARN) != tt.stream || got.StreamName != nil {
					t.Errorf("stream ARN not used: %+v", got)
				}
			} else if aws.ToString(got.StreamName) != tt.stream || got.StreamARN != nil {
				t.Errorf("stream name not used: %+v", got)
			}
			for i, e := range got.Records {
				if string(e.Data) != string(recs[i].Data) || aws.ToString(e.PartitionKey) != recs[i].PartitionKey {
					t.Errorf("entry %d = %q/%q", i, e.Data, aws.ToString(e.PartitionKey))
				}
				if want := recs[i].ExplicitHashKey; (want == "") != (e.ExplicitHashKey == nil) || aws.ToString(e.ExplicitHashKey) != want {
					t.Errorf("entry %d explicit hash key = %v, want %q", i, e.ExplicitHashKey, want)
				}
			}
		})
	}
	if l := NewKinesis(nil, "s", Limits{}).Limits(); l != (Limits{500, 5 << 20, 1 << 20}) {
		t.Errorf("default limits %+v", l)
	}
}

func TestNewKinesisClientLimitsRetriesAndLogging(t *testing.T) {
	cfg := aws.Config{Region: "us-east-1", RetryMaxAttempts: 10, ClientLogMode: aws.LogRequestWithBody | aws.LogSigning | aws.LogRetries}
	o := NewKinesisClient(cfg).Options()
	if n := o.Retryer.MaxAttempts(); n != SDKMaxAttempts {
		t.Errorf("SDK attempts = %d, want %d", n, SDKMaxAttempts)
	}
	if o.ClientLogMode&(aws.LogRequestWithBody|aws.LogSigning|aws.LogRequest) != 0 {
		t.Errorf("client would log requests or signing: %b", o.ClientLogMode)
	}
	if o.ClientLogMode&aws.LogRetries == 0 {
		t.Errorf("harmless LogRetries was dropped")
	}
}
