package shipper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// receiver is an HTTP log receiver: it decompresses by Content-Encoding, reads NDJSON or
// raw lines, and counts every line it accepted. failFirst requests are answered with
// failStatus before anything is accepted.
type receiver struct {
	t          *testing.T
	format     string
	failFirst  int
	failStatus int

	mu       sync.Mutex
	lines    map[string]int
	requests int
	headers  http.Header
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	rc.headers = r.Header.Clone()
	rc.mu.Unlock()
	if n <= rc.failFirst {
		http.Error(w, "warming up", rc.failStatus)
		return
	}
	var body io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			rc.t.Errorf("gzip: %v", err)
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		body = zr
	case "zstd":
		zr, err := zstd.NewReader(r.Body)
		if err != nil {
			rc.t.Errorf("zstd: %v", err)
			return
		}
		defer zr.Close()
		body = zr
	case "":
	default:
		rc.t.Errorf("Content-Encoding %q", enc)
	}
	var got []string
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if rc.format == "raw" {
			got = append(got, sc.Text())
			continue
		}
		var obj struct {
			Line *string `json:"line"`
		}
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil || obj.Line == nil {
			rc.t.Errorf("not an NDJSON {\"line\"} object: %q (%v)", sc.Text(), err)
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		got = append(got, *obj.Line)
	}
	if err := sc.Err(); err != nil {
		rc.t.Errorf("reading the body: %v", err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	for _, l := range got {
		rc.lines[l]++
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func newHTTPForTest(t *testing.T, url, format, compression string) *HTTP {
	t.Helper()
	h, err := NewHTTP(HTTPOptions{URL: url, Format: format, Compression: compression,
		Headers: map[string]string{"Authorization": "Bearer test-token"}, Timeout: 30 * time.Second,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Every line of every record (KPL aggregates unpacked) reaches the receiver exactly once,
// in each format and compression.
func TestHTTPDeliversEveryLineOnce(t *testing.T) {
	for _, tc := range []struct{ format, compression string }{
		{"ndjson", "gzip"}, {"raw", "zstd"}, {"ndjson", "none"}, {"raw", "gzip"}, {"ndjson", "zstd"},
	} {
		t.Run(tc.format+"+"+tc.compression, func(t *testing.T) {
			rc := &receiver{t: t, format: tc.format, lines: map[string]int{}}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			src, lines := newLineSource("http", 5000, 23)
			shipAll(t, src, newHTTPForTest(t, srv.URL+"/ingest", tc.format, tc.compression))
			rc.mu.Lock()
			defer rc.mu.Unlock()
			assertLinesOnce(t, rc.lines, lines)
			if got := rc.headers.Get("Authorization"); got != "Bearer test-token" {
				t.Errorf("Authorization header %q, want the configured one", got)
			}
		})
	}
}

// A receiver that answers 503 for a while and then recovers gets every line once: the
// failed POSTs accepted nothing and are sent again (by go-retryablehttp, then the shipper).
func TestHTTPRecoversAfter503(t *testing.T) {
	rc := &receiver{t: t, format: "ndjson", lines: map[string]int{}, failFirst: 7, failStatus: http.StatusServiceUnavailable}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	src, lines := newLineSource("retry", 3000, 50)
	shipAll(t, src, newHTTPForTest(t, srv.URL, "ndjson", "gzip"))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	assertLinesOnce(t, rc.lines, lines)
	if rc.requests <= 7 {
		t.Errorf("%d requests: the 503s were not retried", rc.requests)
	}
}

// Statuses map to the shipper's error classes, and go-retryablehttp retries a request at
// most HTTPRetryMax times on its own.
func TestHTTPStatusClasses(t *testing.T) {
	for _, tc := range []struct {
		status   int
		reason   string
		attempts int
	}{
		{http.StatusServiceUnavailable, "transient", HTTPRetryMax + 1},
		{http.StatusTooManyRequests, "throttled", HTTPRetryMax + 1},
		{http.StatusBadRequest, "config", 1},
		{http.StatusUnauthorized, "config", 1},
		{http.StatusNotFound, "config", 1},
	} {
		rc := &receiver{t: t, format: "raw", lines: map[string]int{}, failFirst: 1000, failStatus: tc.status}
		srv := httptest.NewServer(rc)
		h := newHTTPForTest(t, srv.URL, "raw", "none")
		res, err := h.Put(context.Background(), []Record{{PartitionKey: "pk", Data: []byte("one line")}})
		srv.Close()
		if res != nil || err == nil {
			t.Errorf("status %d: Put = %v, %v; want a whole-request error", tc.status, res, err)
			continue
		}
		if reason, _ := Classify(err); reason != tc.reason {
			t.Errorf("status %d: %v classified %q, want %q", tc.status, err, reason, tc.reason)
		}
		if rc.requests != tc.attempts {
			t.Errorf("status %d: %d attempts, want %d", tc.status, rc.requests, tc.attempts)
		}
		if bytes.Contains([]byte(err.Error()), []byte("test-token")) {
			t.Errorf("the error names a header value: %v", err)
		}
	}
}

func TestNewHTTPRejectsUnknownSettings(t *testing.T) {
	if _, err := NewHTTP(HTTPOptions{URL: "http://127.0.0.1:1", Format: "xml"}); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := NewHTTP(HTTPOptions{URL: "http://127.0.0.1:1", Compression: "brotli"}); err == nil {
		t.Error("compression brotli accepted")
	}
}

// Raw lines end with one '\n': a line that kept its own (an agent.json record) is not ended
// twice.
func TestHTTPRawKeepsOneNewline(t *testing.T) {
	h := newHTTPForTest(t, "http://127.0.0.1:1", "raw", "none")
	body, _, err := h.encode(&bytes.Buffer{}, []Record{{Data: []byte("a")}, {Data: []byte("b\n")}})
	if err != nil || string(body) != "a\nb\n" {
		t.Errorf("body %q, %v; want \"a\\nb\\n\"", body, err)
	}
}

// ndjson cannot carry bytes that are not UTF-8: such lines go with U+FFFD in their place, and
// that is counted (once per line, when the receiver accepted them) and said at most once a
// minute, never silently (issue 13.8).
func TestHTTPCountsLinesThatAreNotUTF8(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if posts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the retry must not count twice
			return
		}
	}))
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	invalid := prometheus.NewCounter(prometheus.CounterOpts{Name: "invalid"})
	reg.MustRegister(invalid)
	var logs bytes.Buffer
	h, err := NewHTTP(HTTPOptions{URL: srv.URL, InvalidUTF8: invalid, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{{Data: []byte("fine")}, {Data: []byte("bad \xff")}, {Data: []byte("trunc \xe2\x98")}}
	for range 2 {
		if _, err := h.Put(t.Context(), recs); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(invalid); got != 4 {
		t.Errorf("counted %v lines that are not UTF-8, want 4 (2 per accepted request)", got)
	}
	if n := strings.Count(logs.String(), "not UTF-8"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	raw, err := NewHTTP(HTTPOptions{URL: srv.URL, Format: "raw", InvalidUTF8: invalid})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Put(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(invalid); got != 4 {
		t.Errorf("raw format counted lines (%v): it sends the bytes as read", got)
	}
}
