package kinesisapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
)

// benchInput is a full request at the defaults: 5 records of 1 MiB (KPL aggregates of log
// lines), 5 MiB.
func benchInput() *kinesis.PutRecordsInput {
	line := []byte(`10.1.2.3 - - [07/Dec/2026:10:00:00 +0000] "GET /api/v1/items?id=12345 HTTP/1.1" 200 5123 "-" "Mozilla/5.0"` + "\n")
	data := bytes.Repeat(line, (1<<20)/len(line))
	in := &kinesis.PutRecordsInput{StreamName: aws.String("bench")}
	for range 5 {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String("a1b2c3d4e5f6")})
	}
	return in
}

func inputBytes(in *kinesis.PutRecordsInput) int64 {
	n := 0
	for _, e := range in.Records {
		n += len(e.Data)
	}
	return int64(n)
}

// The cost of making a signed-ready request body and its SigV4 payload hash, per byte of
// records: the SDK's serializer (a growing buffer, then hashing the body), and this
// package's JSON and CBOR encoders. `go test -run '^$' -bench Body ./internal/kinesisapi`
func BenchmarkBody(b *testing.B) {
	in := benchInput()
	b.Run("sdk-json", func(b *testing.B) {
		proto := awsjson.New11(schemas.Kinesis_20131202)
		schema := smithy.NewOperationSchema(schemas.PutRecords, schemas.PutRecordsInput, schemas.PutRecordsOutput)
		u, _ := url.Parse("https://kinesis.us-east-1.amazonaws.com/")
		b.SetBytes(inputBytes(in))
		b.ReportAllocs()
		for b.Loop() {
			req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
			req.URL = u
			if err := proto.SerializeRequest(context.Background(), schema, in, req); err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, req.GetStream()); err != nil {
				b.Fatal(err)
			}
			h.Sum(nil)
		}
	})
	b.Run("lean-json", func(b *testing.B) {
		buf := make([]byte, 0, jsonSize(in))
		b.SetBytes(inputBytes(in))
		b.ReportAllocs()
		for b.Loop() {
			h := sha256.New()
			buf = appendJSON(buf[:0], in, h)
			h.Sum(nil)
		}
	})
	b.Run("lean-cbor", func(b *testing.B) {
		frame := make([]byte, 0, cborFramingSize(in))
		var segs [][]byte
		b.SetBytes(inputBytes(in))
		b.ReportAllocs()
		for b.Loop() {
			h := sha256.New()
			frame, segs, _ = encodeCBOR(frame[:0], segs[:0], in, h)
			h.Sum(nil)
		}
	})
}
