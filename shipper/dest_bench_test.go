package shipper

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"testing"
)

// BenchmarkHTTPPut measures one destination request of 500 aggregates of 100 lines of 100
// bytes (about 5 MB of lines) to a loopback receiver that discards the body.
func BenchmarkHTTPPut(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	recs, n := benchRecords(50, 100)
	for _, tc := range []struct{ format, compression string }{{"ndjson", "none"}, {"ndjson", "gzip"}, {"raw", "zstd"}} {
		b.Run(tc.format+"+"+tc.compression, func(b *testing.B) {
			h, err := NewHTTP(HTTPOptions{URL: srv.URL, Format: tc.format, Compression: tc.compression})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := h.Put(context.Background(), recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFirehoseUnpack measures turning aggregates into Firehose records, without the SDK.
func BenchmarkFirehoseUnpack(b *testing.B) {
	recs, n := benchRecords(500, 100)
	f := NewFirehose(discardFirehose{}, "x")
	b.SetBytes(int64(n))
	for b.Loop() {
		if _, err := f.Put(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRecords returns count aggregates of 100 lines of lineBytes bytes, and the lines' bytes.
func benchRecords(count, lineBytes int) ([]Record, int) {
	var recs []Record
	n := 0
	for i := range count {
		var datas [][]byte
		for j := range 100 {
			l := fmt.Appendf(nil, "%08d-%04d ", i, j)
			for len(l) < lineBytes {
				l = append(l, 'a'+byte(len(l)%26))
			}
			datas = append(datas, l)
			n += len(l)
		}
		recs = append(recs, Record{PartitionKey: "pk", Data: encodeForTest(datas), UserRecords: len(datas)})
	}
	return recs, n
}

type discardFirehose struct{}

func (discardFirehose) PutRecordBatch(_ context.Context, in *firehose.PutRecordBatchInput, _ ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error) {
	return &firehose.PutRecordBatchOutput{FailedPutCount: new(int32), RequestResponses: make([]types.PutRecordBatchResponseEntry, len(in.Records))}, nil
}
