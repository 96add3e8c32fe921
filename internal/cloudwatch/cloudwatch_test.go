package cloudwatch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/smithy-go/encoding/cbor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
)

// datum is one metric datum as the CloudWatch endpoint received it.
type datum struct {
	Name, Unit string
	Dims       string // "Destination=...,Instance=..." in the order sent
	N, Sum     float64
	Min, Max   float64
}

func (d datum) String() string {
	return fmt.Sprintf("%s{%s} %s n=%g sum=%g min=%g max=%g", d.Name, d.Dims, d.Unit, d.N, d.Sum, d.Min, d.Max)
}

// fakeCloudWatch is a loopback PutMetricData endpoint. The SDK's CloudWatch client (v1.75)
// speaks Smithy RPC v2 CBOR: POST /service/GraniteServiceVersion20100801/operation/NAME with
// a CBOR map, gzip-compressed (PutMetricData's request compression); the fake decodes it
// with smithy-go's own CBOR decoder.
type fakeCloudWatch struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []request
	fail     int // answer this many requests with an error
}

type request struct {
	namespace string
	data      []datum
}

func newFakeCloudWatch(t *testing.T) *fakeCloudWatch {
	f := &fakeCloudWatch{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Header.Get("Content-Encoding") == "gzip" { // PutMetricData's request compression
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("gzip: %v", err)
				return
			}
			body, _ = io.ReadAll(zr)
		} else {
			body, _ = io.ReadAll(r.Body)
		}
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.Header().Set("Content-Type", "application/cbor")
		if !strings.HasSuffix(r.URL.Path, "/operation/PutMetricData") || r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
			t.Errorf("unexpected request %s %s %v", r.Method, r.URL.Path, r.Header)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		req, err := decodePutMetricData(body)
		if err != nil {
			t.Errorf("decode PutMetricData: %v", err)
		}
		f.mu.Lock()
		failing := f.fail > 0
		if failing {
			f.fail--
		} else {
			f.requests = append(f.requests, req)
		}
		f.mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("InvalidParameterValue"), "message": cbor.String("no")}))
			return
		}
		_, _ = w.Write(cbor.Encode(cbor.Map{}))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCloudWatch) client() *cw.Client {
	return cw.New(cw.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.srv.URL), HTTPClient: f.srv.Client(),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
		RetryMaxAttempts: 1,
	})
}

func (f *fakeCloudWatch) received() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func decodePutMetricData(body []byte) (request, error) {
	v, err := cbor.Decode(body)
	if err != nil {
		return request{}, err
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return request{}, fmt.Errorf("body is %T", v)
	}
	var req request
	ns, _ := m["Namespace"].(cbor.String)
	req.namespace = string(ns)
	list, _ := m["MetricData"].(cbor.List)
	for _, item := range list {
		dm, _ := item.(cbor.Map)
		var d datum
		name, _ := dm["MetricName"].(cbor.String)
		unit, _ := dm["Unit"].(cbor.String)
		d.Name, d.Unit = string(name), string(unit)
		dims, _ := dm["Dimensions"].(cbor.List)
		var parts []string
		for _, x := range dims {
			xm, _ := x.(cbor.Map)
			n, _ := xm["Name"].(cbor.String)
			val, _ := xm["Value"].(cbor.String)
			parts = append(parts, string(n)+"="+string(val))
		}
		d.Dims = strings.Join(parts, ",")
		sv, _ := dm["StatisticValues"].(cbor.Map)
		for key, dst := range map[string]*float64{"SampleCount": &d.N, "Sum": &d.Sum, "Minimum": &d.Min, "Maximum": &d.Max} {
			if x, ok := sv[key]; ok {
				if *dst, err = cbor.AsFloat64(x); err != nil {
					return request{}, fmt.Errorf("%s: %w", key, err)
				}
			}
		}
		if _, err := cbor.AsTime(dm["Timestamp"]); err != nil {
			return request{}, fmt.Errorf("timestamp: %w", err)
		}
		req.data = append(req.data, d)
	}
	return req, nil
}

// scriptedDestination answers each Put with the next scripted outcome.
type scriptedDestination struct {
	mu      sync.Mutex
	answers []func(n int) ([]error, error)
}

func (d *scriptedDestination) Limits() shipper.Limits { return shipper.Limits{}.WithDefaults() }

func (d *scriptedDestination) Put(_ context.Context, recs []shipper.Record) ([]error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.answers[0]
	d.answers = d.answers[1:]
	return a(len(recs))
}

func records(sizes ...int) []shipper.Record {
	out := make([]shipper.Record, len(sizes))
	for i, n := range sizes {
		out[i] = shipper.Record{PartitionKey: "pk", Data: bytes.Repeat([]byte("x"), n)}
	}
	return out
}

var (
	allSent = func(n int) ([]error, error) { return make([]error, n), nil }
	noneAck = func(n int) ([]error, error) { return nil, errors.New("connection reset") }
	lastBad = func(n int) ([]error, error) {
		r := make([]error, n)
		r[n-1] = errors.New("ProvisionedThroughputExceededException")
		return r, nil
	}
)

// The Kinesis Agent's metrics reach the endpoint with its names, units and dimensions, one
// StatisticSet per metric and destination for all the requests of an interval.
func TestPublishesTheKinesisAgentsMetrics(t *testing.T) {
	fake := newFakeCloudWatch(t)
	reg := prometheus.NewRegistry()
	set := metrics.New(reg)
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "kinship_cloudwatch_errors_total"})
	p := New(Options{Client: fake.client(), Namespace: "AWSKinesisAgent", Instance: "i-0123456789abcdef0", Errors: errs})

	app := config.Flow{Name: "app", Kinesis: &config.Kinesis{Stream: "app-logs"}}
	web := config.Flow{Name: "web", Firehose: &config.Firehose{DeliveryStream: "web"}}
	other := config.Flow{Name: "dry", Discard: &config.Discard{}}
	appM, webM := set.Flow("app"), set.Flow("web")
	p.Watch(app, appM)
	p.Watch(web, webM)
	p.Watch(other, set.Flow("dry"))

	appDst := &scriptedDestination{answers: []func(int) ([]error, error){lastBad, noneAck}}
	webDst := &scriptedDestination{answers: []func(int) ([]error, error){allSent}}
	a, w := p.Wrap(app, appDst), p.Wrap(web, webDst)
	if d := p.Wrap(other, webDst); d != shipper.Destination(webDst) {
		t.Fatal("a destination the Kinesis Agent does not have is wrapped")
	}
	ctx := context.Background()
	// The wrapper hands the destination's answers back unchanged.
	if res, err := a.Put(ctx, records(10, 20, 30)); err != nil || len(res) != 3 || res[2] == nil || res[0] != nil {
		t.Fatalf("wrapped Put returned %v, %v", res, err)
	}
	if _, err := a.Put(ctx, records(1, 1, 1, 1)); err == nil || err.Error() != "connection reset" {
		t.Fatalf("wrapped Put returned %v", err)
	}
	if _, err := w.Put(ctx, records(5, 7)); err != nil {
		t.Fatal(err)
	}
	appM.LinesRead.Add(10) // before the first interval: the baseline

	p.Flush(ctx)
	got := fake.received()
	if len(got) != 1 || got[0].namespace != "AWSKinesisAgent" {
		t.Fatalf("requests %+v", got)
	}
	inst := ",Instance=i-0123456789abcdef0"
	want := []string{
		"BytesSent{Destination=DeliveryStream:web" + inst + "} Bytes n=1 sum=12 min=12 max=12",
		"RecordSendAttempts{Destination=DeliveryStream:web" + inst + "} Count n=1 sum=2 min=2 max=2",
		"RecordSendErrors{Destination=DeliveryStream:web" + inst + "} Count n=1 sum=0 min=0 max=0",
		"RecordsSent{Destination=DeliveryStream:web" + inst + "} Count n=1 sum=2 min=2 max=2",
		"ServiceErrors{Destination=DeliveryStream:web" + inst + "} Count n=1 sum=0 min=0 max=0",
		// Two requests: 3 records (the third refused), then 4 records failing as a whole.
		"BytesSent{Destination=KinesisStream:app-logs" + inst + "} Bytes n=1 sum=30 min=30 max=30",
		"RecordSendAttempts{Destination=KinesisStream:app-logs" + inst + "} Count n=2 sum=7 min=3 max=4",
		"RecordSendErrors{Destination=KinesisStream:app-logs" + inst + "} Count n=1 sum=1 min=1 max=1",
		"RecordsSent{Destination=KinesisStream:app-logs" + inst + "} Count n=1 sum=2 min=2 max=2",
		"ServiceErrors{Destination=KinesisStream:app-logs" + inst + "} Count n=2 sum=1 min=0 max=1",
		// The agent's tailer metric names the bare destination.
		"ConsecutiveProcessingErrors{Destination=app-logs" + inst + "} Count n=1 sum=0 min=0 max=0",
		"ConsecutiveProcessingErrors{Destination=web" + inst + "} Count n=1 sum=0 min=0 max=0",
	}
	if s := strings.Join(strs(got[0].data), "\n"); s != strings.Join(want, "\n") {
		t.Fatalf("published\n%s\nwant\n%s", s, strings.Join(want, "\n"))
	}

	// Next interval: no request, so no sender metric; app's reads fail without a line
	// read: its ConsecutiveProcessingErrors climbs, and falls to 0 once lines come again.
	appM.FileErrors.Add(2)
	p.Flush(ctx)
	appM.FileErrors.Add(3)
	p.Flush(ctx)
	appM.LinesRead.Inc()
	p.Flush(ctx)
	var series []string
	for _, r := range fake.received()[1:] {
		for _, d := range r.data {
			if d.Name != MetricConsecutiveProcessingErrors || !strings.HasPrefix(d.Dims, "Destination=app-logs,") {
				if d.Name != MetricConsecutiveProcessingErrors {
					t.Errorf("sender metric without a request: %v", d)
				}
				continue
			}
			series = append(series, fmt.Sprint(d.Sum))
		}
	}
	if s := strings.Join(series, " "); s != "2 5 0" {
		t.Fatalf("ConsecutiveProcessingErrors over three intervals: %s, want 2 5 0", s)
	}
	if n := counterValue(errs); n != 0 {
		t.Fatalf("%g errors", n)
	}

	p.Unwatch("web")
	p.Unwatch("app")
	p.Flush(ctx)
	if n := len(fake.received()); n != 4 {
		t.Fatalf("an interval with nothing to say sent a request (%d requests)", n)
	}
}

func strs(ds []datum) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// More data than one request takes go in several, none over PutMetricData's 1000, none lost.
func TestBatchesAtMostThousandDataPerRequest(t *testing.T) {
	fake := newFakeCloudWatch(t)
	p := New(Options{Client: fake.client(), Namespace: "ns"})
	ctx := context.Background()
	const streams = 450 // 5 sender metrics each: 2250 data
	for i := range streams {
		d := p.Wrap(config.Flow{Kinesis: &config.Kinesis{Stream: fmt.Sprintf("s%03d", i)}}, &scriptedDestination{answers: []func(int) ([]error, error){allSent}})
		if _, err := d.Put(ctx, records(1)); err != nil {
			t.Fatal(err)
		}
	}
	p.Flush(ctx)
	var sizes []int
	seen := map[string]bool{}
	for _, r := range fake.received() {
		sizes = append(sizes, len(r.data))
		for _, d := range r.data {
			seen[d.Name+d.Dims] = true
		}
	}
	if !reflect.DeepEqual(sizes, []int{1000, 1000, 250}) || len(seen) != streams*5 {
		t.Fatalf("requests of %v data, %d distinct; want 1000, 1000, 250 and %d", sizes, len(seen), streams*5)
	}
}

// A failing endpoint costs a counted error and a paced log line, never the flow's data: the
// wrapped destination answers as before, and the next interval publishes again.
func TestFailuresAreCountedAndLoggedNotFatal(t *testing.T) {
	fake := newFakeCloudWatch(t)
	fake.fail = 3
	var logs bytes.Buffer
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "kinship_cloudwatch_errors_total"})
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	p := New(Options{Client: fake.client(), Namespace: "ns", Errors: errs,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	dst := p.Wrap(config.Flow{Kinesis: &config.Kinesis{Stream: "s"}}, &scriptedDestination{answers: []func(int) ([]error, error){allSent, allSent, allSent, allSent}})
	ctx := context.Background()
	for range 3 {
		if res, err := dst.Put(ctx, records(3)); err != nil || len(res) != 1 || res[0] != nil {
			t.Fatalf("Put: %v %v", res, err)
		}
		p.Flush(ctx)
		now = now.Add(time.Minute)
	}
	if n := counterValue(errs); n != 3 {
		t.Fatalf("%g errors counted, want 3", n)
	}
	if n := strings.Count(logs.String(), "publishing CloudWatch metrics failed"); n != 1 {
		t.Fatalf("%d log lines for 3 failures within minutes, want 1:\n%s", n, logs.String())
	}
	if _, err := dst.Put(ctx, records(3)); err != nil {
		t.Fatal(err)
	}
	p.Flush(ctx)
	if got := fake.received(); len(got) != 1 || len(got[0].data) != 5 {
		t.Fatalf("after the endpoint recovered: %+v", got)
	}
}

// Run publishes every interval and once more when stopped, so a short --once run or a stop
// right after a send still reports it.
func TestRunPublishesOnStop(t *testing.T) {
	fake := newFakeCloudWatch(t)
	p := New(Options{Client: fake.client(), Namespace: "ns", Interval: time.Hour})
	dst := p.Wrap(config.Flow{Firehose: &config.Firehose{DeliveryStream: "d"}}, &scriptedDestination{answers: []func(int) ([]error, error){allSent}})
	if _, err := dst.Put(context.Background(), records(4, 4)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	cancel()
	<-done
	got := fake.received()
	if len(got) != 1 {
		t.Fatalf("%d requests at stop, want 1", len(got))
	}
	names := strs(got[0].data)
	sort.Strings(names)
	if !strings.Contains(strings.Join(names, "\n"), "RecordsSent{Destination=DeliveryStream:d} Count n=1 sum=2") {
		t.Fatalf("published at stop:\n%s", strings.Join(names, "\n"))
	}
}
