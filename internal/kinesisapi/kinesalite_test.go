package kinesisapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

func testConfig(t testing.TB, endpoint string) aws.Config {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("kinshiptest", "kinshiptest", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

func newTestClient(t *testing.T, endpoint string, p Protocol) *Client {
	t.Helper()
	c, err := New(context.Background(), testConfig(t, endpoint), Options{Protocol: p})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Through kinesalite, with either protocol, every record arrives byte for byte with its
// partition key, and the answer names a shard and sequence number for each.
func TestKinesaliteRoundTrip(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	for _, p := range []Protocol{CBOR, JSON} {
		t.Run(p.String(), func(t *testing.T) {
			stream := "rt-" + p.String()
			kinesalitetest.CreateStream(t, endpoint, stream, 4)
			c := newTestClient(t, endpoint, p)
			rnd := rand.New(rand.NewPCG(5, uint64(p)))
			var sent []types.PutRecordsRequestEntry
			for batch := range 4 {
				in := testInput(120, rnd)
				in.StreamName = aws.String(stream)
				for i := range in.Records {
					// kinesalite takes hash keys below 2^128 and non-empty data only.
					in.Records[i].Data = append(fmt.Appendf(nil, "%d-%03d|", batch, i), in.Records[i].Data...)
					in.Records[i].PartitionKey = aws.String(fmt.Sprintf("%s-%d", validKey(*in.Records[i].PartitionKey), i))
				}
				out, err := c.PutRecords(context.Background(), in)
				if err != nil {
					t.Fatalf("PutRecords: %v", err)
				}
				if aws.ToInt32(out.FailedRecordCount) != 0 || len(out.Records) != len(in.Records) {
					t.Fatalf("answer: %d failed, %d entries for %d", aws.ToInt32(out.FailedRecordCount), len(out.Records), len(in.Records))
				}
				for i, r := range out.Records {
					if aws.ToString(r.ShardId) == "" || aws.ToString(r.SequenceNumber) == "" {
						t.Fatalf("entry %d has no shard or sequence number: %+v", i, r)
					}
				}
				sent = append(sent, in.Records...)
			}
			got := map[string]types.Record{}
			for _, r := range kinesalitetest.ReadAll(t, endpoint, stream) {
				id, _, _ := bytes.Cut(r.Data, []byte("|"))
				got[string(id)] = r
			}
			if len(got) != len(sent) {
				t.Fatalf("%d records in the stream, sent %d", len(got), len(sent))
			}
			for _, e := range sent {
				id, _, _ := bytes.Cut(e.Data, []byte("|"))
				r := got[string(id)]
				if !bytes.Equal(r.Data, e.Data) || aws.ToString(r.PartitionKey) != *e.PartitionKey {
					t.Fatalf("record %s arrived as %q (key %q), sent %q (key %q)", id, r.Data, aws.ToString(r.PartitionKey), e.Data, *e.PartitionKey)
				}
			}
		})
	}
}

// Errors kinesalite answers classify as the SDK's own do: the same API error type and code,
// inside an HTTP response error with the same status, inside an operation error.
func TestKinesaliteErrorsAsTheSDKs(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "errs", 1)
	sdk := kinesis.NewFromConfig(testConfig(t, endpoint), func(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} })
	cases := map[string]*kinesis.PutRecordsInput{
		"missing stream": {StreamName: aws.String("nope"), Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k")}}},
		"bad hash key": {StreamName: aws.String("errs"), Records: []types.PutRecordsRequestEntry{
			{Data: []byte("x"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456")}}},
		"too many records": {StreamName: aws.String("errs"), Records: make([]types.PutRecordsRequestEntry, 501)},
	}
	for i := range cases["too many records"].Records {
		cases["too many records"].Records[i] = types.PutRecordsRequestEntry{Data: []byte("x"), PartitionKey: aws.String("k")}
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, want := sdk.PutRecords(ctx, in, func(o *kinesis.Options) {
				o.APIOptions = nil
			})
			if want == nil {
				t.Fatal("the SDK's request succeeded")
			}
			for _, p := range []Protocol{JSON, CBOR} {
				_, got := newTestClient(t, endpoint, p).PutRecords(ctx, in)
				sameError(t, p, got, want)
			}
		})
	}
}

func sameError(t *testing.T, p Protocol, got, want error) {
	t.Helper()
	if got == nil {
		t.Fatalf("%v: no error, the SDK had %v", p, want)
	}
	var gAPI, wAPI smithy.APIError
	if errors.As(want, &wAPI) != errors.As(got, &gAPI) {
		t.Fatalf("%v: API error %v, the SDK's %v", p, got, want)
	}
	if wAPI != nil && (gAPI.ErrorCode() != wAPI.ErrorCode() || fmt.Sprintf("%T", gAPI) != fmt.Sprintf("%T", wAPI)) {
		t.Errorf("%v: error %T %q, the SDK's %T %q", p, gAPI, gAPI.ErrorCode(), wAPI, wAPI.ErrorCode())
	}
	var gs, ws interface{ HTTPStatusCode() int }
	if errors.As(want, &ws) != errors.As(got, &gs) || (ws != nil && gs.HTTPStatusCode() != ws.HTTPStatusCode()) {
		t.Errorf("%v: status of %v differs from the SDK's %v", p, got, want)
	}
	var gOp, wOp *smithy.OperationError
	if errors.As(want, &wOp) != errors.As(got, &gOp) || (wOp != nil && (gOp.Service() != wOp.Service() || gOp.Operation() != wOp.Operation())) {
		t.Errorf("%v: operation error %v, the SDK's %v", p, got, want)
	}
}
