package kinesisapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Sending full requests (5 MiB, 4 in flight as at the defaults) to a loopback TLS endpoint
// that offers HTTP/2, through the SDK's HTTP client as the agent builds it: the client's
// share of the CPU and its allocations per byte of records (the server's CPU counts too, as
// it runs in the same process). `go test -run '^$' -bench PutRecordsTLS -benchmem ./internal/kinesisapi`
func BenchmarkPutRecordsTLS(b *testing.B) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		ct, ans := okAnswer(CBOR, 5)
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(ans)
	}))
	cfg := h2TLSEndpoint(b, srv)
	const inFlight = 4
	c, err := New(context.Background(), cfg, Options{Endpoint: srv.URL, MaxInFlight: inFlight})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	b.SetBytes(inFlight * inputBytes(in))
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		for range inFlight {
			wg.Go(func() {
				if _, err := c.PutRecords(context.Background(), in); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
}

// One request at a time with one small record, to a loopback TLS endpoint: what a request
// costs apart from its bytes (building, signing, the transport's goroutines, the answer's
// decoding), the server's share included.
// `go test -run '^$' -bench PutRecordsSmall -benchmem ./internal/kinesisapi`
func BenchmarkPutRecordsSmall(b *testing.B) {
	ct, ans := okAnswer(CBOR, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(ans)
	}))
	cfg := h2TLSEndpoint(b, srv)
	c, err := New(context.Background(), cfg, Options{Endpoint: srv.URL, MaxInFlight: 1})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	in.Records = in.Records[:1]
	in.Records[0].Data = in.Records[0].Data[:1024]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.PutRecords(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
