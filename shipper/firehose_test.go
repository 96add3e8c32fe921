package shipper

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/kinship-agent/kinship/aggregator"
)

// fakeFirehose speaks the PutRecordBatch JSON protocol on loopback. fail decides, per
// record and before it is accepted, whether to answer it with an error code.
type fakeFirehose struct {
	t      *testing.T
	stream string
	fail   func(data string) string // error code, or "" to accept

	mu       sync.Mutex
	lines    map[string]int
	requests int
	failed   int
	maxRecs  int
	maxBytes int
}

func (f *fakeFirehose) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("X-Amz-Target"); got != "Firehose_20150804.PutRecordBatch" {
		http.Error(w, `{"__type":"UnknownOperationException"}`, http.StatusBadRequest)
		return
	}
	var in struct {
		DeliveryStreamName string
		Records            []struct{ Data []byte }
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &in); err != nil {
		f.t.Errorf("PutRecordBatch body: %v", err)
		http.Error(w, `{"__type":"SerializationException"}`, http.StatusBadRequest)
		return
	}
	if in.DeliveryStreamName != f.stream {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"ResourceNotFoundException","message":"no such stream"}`)
		return
	}
	type resp struct {
		RecordId     string `json:",omitempty"`
		ErrorCode    string `json:",omitempty"`
		ErrorMessage string `json:",omitempty"`
	}
	out := struct {
		FailedPutCount   int
		Encrypted        bool
		RequestResponses []resp
	}{}
	f.mu.Lock()
	f.requests++
	f.maxRecs = max(f.maxRecs, len(in.Records))
	f.maxBytes = max(f.maxBytes, len(body))
	for i, rec := range in.Records {
		data := string(rec.Data)
		if len(rec.Data) > FirehoseMaxRecordBytes {
			f.t.Errorf("a Firehose record of %d bytes", len(rec.Data))
		}
		if !strings.HasSuffix(data, "\n") {
			f.t.Errorf("record %q does not end with a newline", data)
		}
		if code := f.fail(data); code != "" {
			out.FailedPutCount++
			f.failed++
			out.RequestResponses = append(out.RequestResponses, resp{ErrorCode: code, ErrorMessage: "injected"})
			continue
		}
		for _, l := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
			f.lines[l]++
		}
		out.RequestResponses = append(out.RequestResponses, resp{RecordId: fmt.Sprint(f.requests, "-", i)})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// firehoseClient returns the SDK's client ("sdk") or the agent's lean one ("lean") for endpoint.
func firehoseClient(t *testing.T, kind, endpoint string) FirehoseAPI {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	setEndpoint := func(o *firehose.Options) { o.BaseEndpoint = aws.String(endpoint) }
	if kind == "sdk" {
		return NewFirehoseClient(cfg, setEndpoint)
	}
	api, err := NewFirehoseAPI(context.Background(), cfg, 4, setEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

var firehoseClients = []string{"sdk", "lean"}

// Partial failures (FailedPutCount with per-record error codes) are retried record by
// record through the real SDK: every line reaches the delivery stream exactly once, as
// newline-terminated lines, never as a KPL aggregate.
func TestFirehosePartialFailuresDeliverEveryLineOnce(t *testing.T) {
	for _, kind := range firehoseClients {
		t.Run(kind, func(t *testing.T) { testFirehosePartialFailures(t, kind) })
	}
}

func testFirehosePartialFailures(t *testing.T, kind string) {
	src, lines := newLineSource("fh", 20000, 37)
	var seenMu sync.Mutex
	seen := map[string]int{}
	fake := &fakeFirehose{t: t, stream: "logs", lines: map[string]int{}, fail: func(data string) string {
		// Every third distinct record fails on its first two attempts, alternating codes.
		seenMu.Lock()
		defer seenMu.Unlock()
		seen[data]++
		if crc32.ChecksumIEEE([]byte(data))%3 == 0 && seen[data] <= 2 {
			if seen[data] == 1 {
				return "ServiceUnavailableException"
			}
			return "InternalFailure"
		}
		return ""
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	shipAll(t, src, NewFirehose(firehoseClient(t, kind, srv.URL), "logs"))

	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.failed == 0 {
		t.Fatal("the schedule injected no failures: the test proves nothing")
	}
	assertLinesOnce(t, fake.lines, lines)
	if fake.maxRecs > FirehoseMaxRecords {
		t.Errorf("a request carried %d records, limit %d", fake.maxRecs, FirehoseMaxRecords)
	}
	t.Logf("%d lines in %d records, %d requests, %d injected record failures", len(lines), len(src.items), fake.requests, fake.failed)
}

// A record whose lines exceed a Firehose record (a misconfiguration only) is split at line
// boundaries, and a configuration-level error (no such stream) fails the whole request.
func TestFirehosePutSplitsOversizedAndReportsStreamErrors(t *testing.T) {
	for _, kind := range firehoseClients {
		t.Run(kind, func(t *testing.T) { testFirehoseSplitsAndStreamErrors(t, kind) })
	}
}

func testFirehoseSplitsAndStreamErrors(t *testing.T, kind string) {
	fake := &fakeFirehose{t: t, stream: "logs", lines: map[string]int{}, fail: func(string) string { return "" }}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	client := firehoseClient(t, kind, srv.URL)

	big := strings.Repeat("x", 600<<10)
	datas := [][]byte{[]byte("a" + big), []byte("b" + big), []byte("c")}
	rec := Record{PartitionKey: "pk", Data: encodeForTest(datas), UserRecords: 3}
	res, err := NewFirehose(client, "logs").Put(context.Background(), []Record{rec})
	if err != nil || res != nil {
		t.Fatalf("Put = %v, %v; want everything accepted", res, err)
	}
	for _, d := range datas {
		if fake.lines[string(d)] != 1 {
			t.Errorf("line of %d bytes arrived %d times", len(d), fake.lines[string(d)])
		}
	}

	_, err = NewFirehose(client, "missing").Put(context.Background(), []Record{{PartitionKey: "pk", Data: []byte("x")}})
	if reason, _ := Classify(err); reason != "config" {
		t.Errorf("missing delivery stream: error %v classified %q, want config", err, reason)
	}
}

// capturedFirehose keeps the records of PutRecordBatch calls, accepting all.
type capturedFirehose struct{ records []string }

func (c *capturedFirehose) PutRecordBatch(_ context.Context, in *firehose.PutRecordBatchInput, _ ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error) {
	out := &firehose.PutRecordBatchOutput{FailedPutCount: aws.Int32(0)}
	for _, r := range in.Records {
		c.records = append(c.records, string(r.Data))
		out.RequestResponses = append(out.RequestResponses, types.PutRecordBatchResponseEntry{RecordId: aws.String("x")})
	}
	return out, nil
}

// Lines of an agent.json flow keep their own line end (or none, after ADDBRACKETS): Firehose
// sends them as they are, a plain record alone and an aggregate's lines joined whole, never
// with a second '\n'. Other flows' lines are newline-terminated.
func TestFirehoseFramedLines(t *testing.T) {
	agg := aggregator.EncodeUserRecords(nil, []aggregator.UserRecord{{PartitionKey: "k", Data: []byte("x\n")}, {PartitionKey: "k", Data: []byte("y\n")}})
	recs := []Record{{PartitionKey: "k", Data: []byte("a\n"), UserRecords: 1}, {PartitionKey: "k", Data: []byte("{b\n}"), UserRecords: 1}, {PartitionKey: "k", Data: agg, UserRecords: 2}}
	api := &capturedFirehose{}
	if res, err := NewFirehose(api, "d").LinesFramed().Put(context.Background(), recs); err != nil || res != nil {
		t.Fatal(res, err)
	}
	if want := []string{"a\n", "{b\n}", "x\ny\n"}; !slices.Equal(api.records, want) {
		t.Errorf("framed records %q, want %q", api.records, want)
	}
	api = &capturedFirehose{}
	if _, err := NewFirehose(api, "d").Put(context.Background(), []Record{{PartitionKey: "k", Data: []byte("a"), UserRecords: 1}, {PartitionKey: "k", Data: agg, UserRecords: 2}}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a\n", "x\n\ny\n\n"}; !slices.Equal(api.records, want) {
		t.Errorf("records %q, want %q", api.records, want)
	}
}
