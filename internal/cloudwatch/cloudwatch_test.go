package cloudwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/testenv/cloudwatchtest"
	"github.com/kinship-agent/kinship/shipper"
)

func newClient(srv *cloudwatchtest.Server) *cw.Client {
	return cw.New(cw.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
		RetryMaxAttempts: 1,
	})
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
	fake := cloudwatchtest.Start(t)
	reg := prometheus.NewRegistry()
	set := metrics.New(reg)
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "kinship_cloudwatch_errors_total"})
	p := New(Options{Client: newClient(fake), Namespace: "AWSKinesisAgent", Instance: "i-0123456789abcdef0", Errors: errs})

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
	got := fake.Requests()
	if len(got) != 1 || got[0].Namespace != "AWSKinesisAgent" {
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
	if s := strings.Join(strs(got[0].Data), "\n"); s != strings.Join(want, "\n") {
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
	for _, r := range fake.Requests()[1:] {
		for _, d := range r.Data {
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
	if n := len(fake.Requests()); n != 4 {
		t.Fatalf("an interval with nothing to say sent a request (%d requests)", n)
	}
}

func strs(ds []cloudwatchtest.Datum) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// More data than one request takes go in several, none over PutMetricData's 1000, none lost.
func TestBatchesAtMostThousandDataPerRequest(t *testing.T) {
	fake := cloudwatchtest.Start(t)
	p := New(Options{Client: newClient(fake), Namespace: "ns"})
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
	for _, r := range fake.Requests() {
		sizes = append(sizes, len(r.Data))
		for _, d := range r.Data {
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
	fake := cloudwatchtest.Start(t)
	fake.Fail(3)
	var logs bytes.Buffer
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "kinship_cloudwatch_errors_total"})
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	p := New(Options{Client: newClient(fake), Namespace: "ns", Errors: errs,
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
	if got := fake.Requests(); len(got) != 1 || len(got[0].Data) != 5 {
		t.Fatalf("after the endpoint recovered: %+v", got)
	}
}

// Run publishes every interval and once more when stopped, so a short --once run or a stop
// right after a send still reports it.
func TestRunPublishesOnStop(t *testing.T) {
	fake := cloudwatchtest.Start(t)
	p := New(Options{Client: newClient(fake), Namespace: "ns", Interval: time.Hour})
	dst := p.Wrap(config.Flow{Firehose: &config.Firehose{DeliveryStream: "d"}}, &scriptedDestination{answers: []func(int) ([]error, error){allSent}})
	if _, err := dst.Put(context.Background(), records(4, 4)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	cancel()
	<-done
	got := fake.Requests()
	if len(got) != 1 {
		t.Fatalf("%d requests at stop, want 1", len(got))
	}
	names := strs(got[0].Data)
	sort.Strings(names)
	if !strings.Contains(strings.Join(names, "\n"), "RecordsSent{Destination=DeliveryStream:d} Count n=1 sum=2") {
		t.Fatalf("published at stop:\n%s", strings.Join(names, "\n"))
	}
}

// A request abandoned at a stop is no ServiceError; one that timed out is.
func TestStopIsNoServiceErrorTimeoutIs(t *testing.T) {
	fake := cloudwatchtest.Start(t)
	p := New(Options{Client: newClient(fake), Namespace: "ns"})
	ctxErr := func(ctx context.Context) func(int) ([]error, error) {
		return func(int) ([]error, error) { <-ctx.Done(); return nil, ctx.Err() }
	}
	stopped, stop := context.WithCancel(context.Background())
	stop()
	timedOut, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	dst := p.Wrap(config.Flow{Kinesis: &config.Kinesis{Stream: "s"}}, &scriptedDestination{answers: []func(int) ([]error, error){ctxErr(stopped), ctxErr(timedOut)}})
	_, _ = dst.Put(stopped, records(1))
	_, _ = dst.Put(timedOut, records(1))
	p.Flush(context.Background())
	sums := fake.Sums()
	if sums["ServiceErrors{Destination=KinesisStream:s}"] != 1 || sums["RecordSendAttempts{Destination=KinesisStream:s}"] != 2 {
		t.Fatalf("published %v; want 2 attempts, 1 service error", sums)
	}
}
