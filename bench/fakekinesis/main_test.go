package main

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/kinship-agent/kinship/aggregator"
)

// Every aggregate's MD5 trailer is checked, however many a request holds and however large
// they are (large ones side by side after the answer, small ones inline): a request whose
// aggregates are corrupt, large and small, counts each one as an MD5 error, and the good
// ones' user records are counted.
func TestMD5ErrorsCounted(t *testing.T) {
	h := &handler{st: &stats{}, md5: newMD5Checker()}
	defer h.md5.close()
	line := bytes.Repeat([]byte("x"), 200)
	aggregate := func(lines int) []byte {
		datas := make([][]byte, lines)
		for i := range datas {
			datas[i] = fmt.Appendf(nil, "%d %s", i, line)
		}
		return aggregator.EncodeAggregate("k", "", datas)
	}
	corrupt := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 1
		return b
	}
	large, small := aggregate(2000), aggregate(3)
	if len(large) < 4*md5SmallAggregate || len(small) >= md5SmallAggregate {
		t.Fatalf("aggregates of %d and %d bytes do not take both paths", len(large), len(small))
	}
	var datas [][]byte
	for range 10 {
		datas = append(datas, large, small)
	}
	datas = append(datas, corrupt(large), corrupt(small), []byte("a plain record"))
	for round := range 3 {
		recs := make(cbor.List, len(datas))
		for i, d := range datas {
			recs[i] = cbor.Map{"Data": cbor.Slice(d), "PartitionKey": cbor.String("k")}
		}
		body := cbor.Encode(cbor.Map{"StreamName": cbor.String("bench"), "Records": recs})
		w := putRecords(h, body)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		h.md5.flush() // large aggregates are checked after the answer
		n := int64(round + 1)
		if got := h.st.MD5Errors.Load(); got != 2*n {
			t.Errorf("round %d: %d MD5 errors, want %d", round, got, 2*n)
		}
		if got := h.st.Aggregates.Load(); got != 22*n {
			t.Errorf("round %d: %d aggregates, want %d", round, got, 22*n)
		}
		if got, want := h.st.UserRecords.Load(), n*(10*2000+10*3+1); got != want {
			t.Errorf("round %d: %d user records, want %d", round, got, want)
		}
	}
}

// With a pace, PutRecords requests take turns (a single-threaded endpoint's pace): three sent
// at once are answered no sooner than three paces after they were sent, every one accepted.
func TestPaceTakesTurns(t *testing.T) {
	const pace = 30 * time.Millisecond
	h := &handler{st: &stats{}, md5: newMD5Checker(), pace: pace}
	defer h.md5.close()
	body := cbor.Encode(cbor.Map{"StreamName": cbor.String("bench"), "Records": cbor.List{
		cbor.Map{"Data": cbor.Slice([]byte("a line")), "PartitionKey": cbor.String("k")}}})
	start := time.Now()
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Go(func() {
			codes[i] = putRecords(h, body).Code
		})
	}
	wg.Wait()
	if took := time.Since(start); took < 3*pace {
		t.Errorf("3 requests answered in %v with a pace of %v: they did not take turns", took, pace)
	}
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	if got := h.st.Requests.Load(); got != 3 {
		t.Errorf("%d requests counted, want 3", got)
	}
}

// The MD5 check's cost per byte of aggregates, for requests of 4 aggregates of 1 MiB, one
// and four at a time (the agent's default max_in_flight), against crypto/md5 one by one.
// `go test -run '^$' -bench MD5Check ./bench/fakekinesis`
func BenchmarkMD5Check(b *testing.B) {
	agg := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	want := md5.Sum(agg)
	request := func() []md5Check {
		checks := make([]md5Check, 4)
		for i := range checks {
			checks[i] = md5Check{pb: agg, want: want[:]}
		}
		return checks
	}
	b.Run("crypto-md5", func(b *testing.B) {
		b.SetBytes(4 << 20)
		for b.Loop() {
			for _, c := range request() {
				if md5.Sum(c.pb) != want {
					b.Fatal("mismatch")
				}
			}
		}
	})
	for _, inFlight := range []int{1, 4} {
		b.Run(fmt.Sprintf("side-by-side-%d", inFlight), func(b *testing.B) {
			c := newMD5Checker()
			defer c.close()
			b.SetBytes(int64(inFlight) * 4 << 20)
			for b.Loop() {
				var wg sync.WaitGroup
				for range inFlight {
					wg.Go(func() {
						checks := request()
						c.check(checks)
						for _, c := range checks {
							if !c.ok {
								b.Error("mismatch")
							}
						}
					})
				}
				wg.Wait()
			}
		})
	}
}

// putRecords serves one signed-looking CBOR PutRecords request with body.
func putRecords(h *handler, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
	req.Header.Set("Content-Type", "application/x-amz-cbor-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=a/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0")
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}
