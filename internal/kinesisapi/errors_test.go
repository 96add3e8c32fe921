package kinesisapi

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	ftypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/encoding/cbor"
)

// answer is a canned error answer: status, X-Amzn-ErrorType header, and a body given as a
// map (encoded in the request's protocol) or raw bytes.
type answer struct {
	name   string
	status int
	header string
	fields map[string]string
	raw    string
}

var errorAnswers = []answer{
	{name: "throughput exceeded", status: 400, header: "ProvisionedThroughputExceededException",
		fields: map[string]string{"__type": "ProvisionedThroughputExceededException", "message": "Rate exceeded"}},
	{name: "kms throttling", status: 400, fields: map[string]string{"__type": "KMSThrottlingException", "message": "slow"}},
	{name: "kms disabled", status: 400, fields: map[string]string{"__type": "KMSDisabledException", "message": "off"}},
	{name: "namespaced type", status: 400, fields: map[string]string{"__type": "com.amazonaws.kinesis#ResourceNotFoundException", "message": "m"}},
	{name: "unknown code", status: 400, fields: map[string]string{"__type": "SomethingNewException", "message": "new"}},
	{name: "access denied", status: 403, fields: map[string]string{"__type": "AccessDeniedException", "Message": "no"}},
	{name: "expired token", status: 400, fields: map[string]string{"__type": "ExpiredTokenException", "message": "old"}},
	{name: "internal failure", status: 500, fields: map[string]string{"__type": "InternalFailure", "message": "boom"}},
	{name: "service unavailable empty", status: 503},
	{name: "bad gateway html", status: 502, raw: "<html>bad gateway</html>"},
	{name: "too large empty", status: 413},
	{name: "header only", status: 400, header: "LimitExceededException"},
}

func (a answer) serve(p Protocol) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if a.header != "" {
			w.Header().Set("X-Amzn-ErrorType", a.header)
		}
		w.Header().Set("Content-Type", p.contentType())
		w.WriteHeader(a.status)
		switch {
		case a.raw != "":
			_, _ = io.WriteString(w, a.raw)
		case a.fields != nil && p == CBOR:
			m := cbor.Map{}
			for k, v := range a.fields {
				m[k] = cbor.String(v)
			}
			_, _ = w.Write(cbor.Encode(m))
		case a.fields != nil:
			b, _ := json.Marshal(a.fields)
			_, _ = w.Write(b)
		}
	}
}

// Every error answer gives the lean client, in JSON and in CBOR, the error the SDK's client
// gives for the JSON answer: the same type, code, status and operation, which is all the
// shipper's classes look at.
func TestErrorsAsTheSDKs(t *testing.T) {
	in := testInput(3, rand.New(rand.NewPCG(9, 9)))
	for _, a := range errorAnswers {
		t.Run(strings.ReplaceAll(a.name, " ", "-"), func(t *testing.T) {
			sdkSrv := httptest.NewServer(a.serve(JSON))
			defer sdkSrv.Close()
			sdk := kinesis.NewFromConfig(testConfig(t, sdkSrv.URL), func(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} })
			_, want := sdk.PutRecords(context.Background(), in)
			for _, p := range []Protocol{JSON, CBOR} {
				srv := httptest.NewServer(a.serve(p))
				_, got := newTestClient(t, srv.URL, p).PutRecords(context.Background(), in)
				srv.Close()
				sameError(t, p, got, want)
			}
		})
	}
}

// The Firehose client signs what it sends (as service firehose), sends every record's bytes,
// decodes the SDK's output, and fails as the SDK's client does.
func TestFirehose(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")}
	in := &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("logs")}
	for i := range 50 {
		in.Records = append(in.Records, ftypes.Record{Data: []byte(strings.Repeat(string(rune('a'+i%26)), i*100) + "\n\x00\xff")})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifySignature(r, body, creds, "firehose"); err != nil {
			t.Error(err)
		}
		var got struct {
			DeliveryStreamName string
			Records            []struct{ Data []byte }
		}
		if err := json.Unmarshal(body, &got); err != nil || got.DeliveryStreamName != "logs" || len(got.Records) != len(in.Records) {
			t.Fatalf("body: %v, %+v", err, got.DeliveryStreamName)
		}
		for i, r := range got.Records {
			if string(r.Data) != string(in.Records[i].Data) {
				t.Errorf("record %d differs", i)
			}
		}
		if r.Header.Get("X-Amz-Target") != firehoseTarget {
			t.Errorf("target %q", r.Header.Get("X-Amz-Target"))
		}
		var b strings.Builder
		b.WriteString(`{"FailedPutCount":1,"Encrypted":false,"RequestResponses":[{"ErrorCode":"ServiceUnavailableException","ErrorMessage":"slow"}`)
		for range len(got.Records) - 1 {
			b.WriteString(`,{"RecordId":"r"}`)
		}
		b.WriteString(`]}`)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, b.String())
	}))
	defer srv.Close()
	c, err := NewFirehose(context.Background(), cfg, FirehoseOptions{FirehoseOptions: []func(*firehose.Options){
		func(o *firehose.Options) { o.BaseEndpoint = aws.String(srv.URL) }}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.PutRecordBatch(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedPutCount) != 1 || len(out.RequestResponses) != 50 || aws.ToString(out.RequestResponses[0].ErrorCode) != "ServiceUnavailableException" {
		t.Errorf("output %+v", out)
	}

	for _, a := range errorAnswers {
		esrv := httptest.NewServer(a.serve(JSON))
		ec, err := NewFirehose(context.Background(), cfg, FirehoseOptions{FirehoseOptions: []func(*firehose.Options){
			func(o *firehose.Options) { o.BaseEndpoint = aws.String(esrv.URL) }}})
		if err != nil {
			t.Fatal(err)
		}
		sdk := firehose.NewFromConfig(cfg, func(o *firehose.Options) { o.BaseEndpoint = aws.String(esrv.URL); o.Retryer = aws.NopRetryer{} })
		_, want := sdk.PutRecordBatch(context.Background(), in)
		_, got := ec.PutRecordBatch(context.Background(), in)
		esrv.Close()
		sameError(t, JSON, got, want)
	}
}
