package kinesisapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go/encoding/cbor"
)

// Any answer a network can bring (status, error-type header, body) decodes to an output or
// to an error carrying the answer's status, in both protocols: never a panic, never an
// output and an error at once.
func FuzzDecodeResponse(f *testing.F) {
	_, okJSON := okAnswer(JSON, 3)
	_, okCBOR := okAnswer(CBOR, 3)
	f.Add(uint16(200), false, "", okJSON)
	f.Add(uint16(200), true, "", okCBOR)
	f.Add(uint16(200), false, "", []byte(`{"FailedRecordCount":1,"Records":[{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"slow"},{"SequenceNumber":"1","ShardId":"s"}]}`))
	f.Add(uint16(200), true, "", cbor.Encode(cbor.Map{"FailedRecordCount": cbor.Uint(1), "Records": cbor.List{
		cbor.Map{"ErrorCode": cbor.String("InternalFailure"), "ErrorMessage": cbor.String("x")}}}))
	f.Add(uint16(400), false, "ProvisionedThroughputExceededException", []byte(`{"__type":"ProvisionedThroughputExceededException","message":"m"}`))
	f.Add(uint16(400), true, "", cbor.Encode(cbor.Map{"__type": cbor.String("ResourceNotFoundException"), "message": cbor.String("m")}))
	f.Add(uint16(400), true, "KMSThrottlingException", []byte{})
	f.Add(uint16(500), false, "", []byte("<html>bad gateway</html>"))
	f.Add(uint16(503), true, "", []byte{0xbf, 0x61, 0x61})
	f.Add(uint16(200), true, "", []byte{0x9f, 0x9f, 0x9f, 0x9f})
	f.Add(uint16(200), false, "", []byte(`{"Records":[{"ShardId":1}]}`))
	clients := map[bool]*Client{}
	for _, isCBOR := range []bool{false, true} {
		p := JSON
		if isCBOR {
			p = CBOR
		}
		c, err := New(context.Background(), testConfig(f, "http://127.0.0.1:1"), Options{Protocol: p})
		if err != nil {
			f.Fatal(err)
		}
		clients[isCBOR] = c
	}
	f.Fuzz(func(t *testing.T, status uint16, isCBOR bool, errType string, body []byte) {
		status = 100 + status%500
		resp := &http.Response{StatusCode: int(status), Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
		if errType != "" {
			resp.Header.Set("X-Amzn-ErrorType", errType)
		}
		out, err := clients[isCBOR].decode(context.Background(), resp)
		if (out == nil) == (err == nil) {
			t.Fatalf("output %v and error %v", out, err)
		}
		if status >= 300 && err == nil {
			t.Fatalf("status %d decoded as success", status)
		}
		var re *awshttp.ResponseError
		if err != nil && (!errors.As(err, &re) || re.HTTPStatusCode() != int(status)) {
			t.Fatalf("error %v does not carry status %d", err, status)
		}
	})
}

// Whatever the data, partition key and stream name, both bodies decode to exactly them
// (keys with invalid UTF-8 as the SDK would send them), within their size bounds.
func FuzzBodies(f *testing.F) {
	f.Add([]byte("data"), "key", "stream", true)
	f.Add([]byte{}, "\x00\"\\\xff", "s", false)
	f.Add(bytes.Repeat([]byte{0xff}, 300), "ünï\u2028", "arn:aws:kinesis:us-east-1:1:stream/s", true)
	f.Fuzz(func(t *testing.T, data []byte, key, stream string, hashKey bool) {
		in := testInputFrom(data, key, stream, hashKey)
		var s sha256Sink
		body := appendJSON(make([]byte, 0, jsonSize(in)), in, &s)
		var got struct {
			Records    []decodedEntry
			StreamName string
		}
		if len(body) > jsonSize(in) {
			t.Fatalf("JSON body %d bytes over its bound %d", len(body), jsonSize(in))
		}
		if err := json.Unmarshal(body, &got); err != nil || got.StreamName != validKey(stream) {
			t.Fatalf("JSON body %q: %v (stream %q)", body, err, got.StreamName)
		}
		want := wantEntries(in)
		for i := range want {
			want[i].PartitionKey = strings.ToValidUTF8(want[i].PartitionKey, "\uFFFD")
		}
		checkEntries(t, got.Records, want)

		frame, segs, size := encodeCBOR(make([]byte, 0, cborFramingSize(in)), nil, in, &s)
		if len(frame) != cborFramingSize(in) {
			t.Fatalf("CBOR framing %d bytes, computed %d", len(frame), cborFramingSize(in))
		}
		v, err := cbor.Decode(bytes.Join(segs, nil))
		if err != nil || size != len(bytes.Join(segs, nil)) {
			t.Fatalf("CBOR body: %v", err)
		}
		m, _ := v.(cbor.Map)
		list, _ := m["Records"].(cbor.List)
		em, _ := list[0].(cbor.Map)
		d, _ := em["Data"].(cbor.Slice)
		k, _ := em["PartitionKey"].(cbor.String)
		if !bytes.Equal(d, data) || string(k) != validKey(key) || m["StreamName"] != cbor.String(validKey(stream)) {
			t.Fatalf("CBOR body decodes to %q/%q/%v", d, k, m["StreamName"])
		}
	})
}

func testInputFrom(data []byte, key, stream string, hashKey bool) *kinesis.PutRecordsInput {
	e := types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(key)}
	if hashKey {
		e.ExplicitHashKey = aws.String("12345")
	}
	return &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: []types.PutRecordsRequestEntry{e, e}}
}

// sha256Sink is a hash.Hash that discards what it is given.
type sha256Sink struct{}

func (sha256Sink) Write(p []byte) (int, error) { return len(p), nil }
func (sha256Sink) Sum(b []byte) []byte         { return b }
func (sha256Sink) Reset()                      {}
func (sha256Sink) Size() int                   { return 0 }
func (sha256Sink) BlockSize() int              { return 64 }
