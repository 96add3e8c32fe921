// Package cloudwatch publishes the Amazon Kinesis Agent's CloudWatch metrics for kinship's
// flows (metrics.cloudwatch; agent.json's cloudwatch.*), so that the alarms and dashboards a
// fleet built on them keep working after the switch.
//
// The names, units, dimensions and statistics are the Kinesis Agent's (KinesisSender,
// FirehoseSender, FileTailer and its metrics package):
//
//   - per destination, for each PutRecords / PutRecordBatch request: RecordSendAttempts (the
//     request's records), ServiceErrors (1 when the request failed as a whole, else 0); and
//     when it returned: RecordsSent, RecordSendErrors (records the service refused), BytesSent
//     (the data bytes of the records accepted; Unit Bytes, the others Count). Dimension
//     Destination = "KinesisStream:NAME" or "DeliveryStream:NAME".
//   - per flow, once an interval: ConsecutiveProcessingErrors, Dimension Destination = the bare
//     stream name (so the agent has it). The Kinesis Agent counts exceptions of its tailer's
//     loop since its last successful pass; kinship's tailer does not stop on a file error, so
//     the closest signal is the file errors (kinship_file_errors_total) since the flow last
//     read a line: 0 while lines come in, climbing while every read fails.
//   - with tag_instance, every datum also has Dimension Instance = the EC2 instance id (the
//     host name where IMDS does not answer), as the agent's tagInstance.
//
// Values recorded during an interval are sent at its end as one StatisticSet per metric and
// dimension set (SampleCount = requests, Sum, Minimum, Maximum per request), as the agent's
// accumulating publisher does; an interval without requests sends no sender metric. Requests
// carry at most 1000 data. A failed PutMetricData is counted (kinship_cloudwatch_errors_total),
// logged at most once per errorLogEvery, and its data dropped: metrics never hold up a flow.
//
// Concurrency: the destination wrappers record from the shippers' goroutines under mu; Run's
// goroutine flushes.
package cloudwatch

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
)

// The Kinesis Agent's metric and dimension names.
const (
	MetricBytesSent                   = "BytesSent"
	MetricRecordSendAttempts          = "RecordSendAttempts"
	MetricRecordSendErrors            = "RecordSendErrors"
	MetricRecordsSent                 = "RecordsSent"
	MetricServiceErrors               = "ServiceErrors"
	MetricConsecutiveProcessingErrors = "ConsecutiveProcessingErrors"

	DimensionDestination = "Destination"
	DimensionInstance    = "Instance"
)

// MaxDataPerRequest is PutMetricData's limit of metric data per request.
const MaxDataPerRequest = 1000

// errorLogEvery paces the log lines about failed publishing (each failure is counted).
const errorLogEvery = 5 * time.Minute

// Client is the part of the CloudWatch client the publisher uses.
type Client interface {
	PutMetricData(ctx context.Context, in *cw.PutMetricDataInput, optFns ...func(*cw.Options)) (*cw.PutMetricDataOutput, error)
}

// NewClient returns a CloudWatch client on the process's AWS configuration. endpoint, when
// set (metrics.cloudwatch.endpoint), replaces the SDK's endpoint resolution, which otherwise
// honours AWS_ENDPOINT_URL_CLOUDWATCH and AWS_ENDPOINT_URL. aws.endpoint is deliberately not
// used: it is the stream's endpoint (agent.json's kinesis.endpoint), which serves no metrics.
func NewClient(cfg aws.Config, endpoint string) *cw.Client {
	return cw.NewFromConfig(cfg, func(o *cw.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// Options configure a Publisher.
type Options struct {
	Client    Client
	Namespace string
	Interval  time.Duration // [config.DefaultCloudWatchInterval]
	Instance  string        // the Instance dimension's value; "" leaves it out
	// Errors counts failed PutMetricData requests (kinship_cloudwatch_errors_total).
	Errors prometheus.Counter
	Logger *slog.Logger
	Now    func() time.Time // [time.Now]
}

// Publisher accumulates the Kinesis Agent's metrics and publishes them every interval.
type Publisher struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	stats   map[statKey]*stat
	tailers map[string]*tailer // by flow name

	// Error pacing, used by the flushing goroutine only.
	lastErrLog time.Time
	suppressed int
}

type statKey struct{ metric, destination string }

type stat struct {
	unit           types.StandardUnit
	n, sum, lo, hi float64
}

func (s *stat) add(v float64) {
	if s.n == 0 || v < s.lo {
		s.lo = v
	}
	if s.n == 0 || v > s.hi {
		s.hi = v
	}
	s.n++
	s.sum += v
}

// tailer is one flow's ConsecutiveProcessingErrors: file errors since lines last came in.
type tailer struct {
	destination string
	linesRead   prometheus.Counter
	fileErrors  prometheus.Counter
	lines, errs float64 // the counters at the last flush
	streak      float64
	sampled     bool
}

// New returns a publisher; nothing is sent before Run.
func New(opts Options) *Publisher {
	if opts.Interval <= 0 {
		opts.Interval = config.DefaultCloudWatchInterval.D()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Errors == nil {
		opts.Errors = prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{opts: opts, log: log.With("namespace", opts.Namespace),
		stats: map[statKey]*stat{}, tailers: map[string]*tailer{}}
}

// SenderDestination is the Destination dimension of fc's sender metrics as the Kinesis
// Agent names it, and false for destinations it does not have (http, discard).
func SenderDestination(fc config.Flow) (string, bool) {
	switch {
	case fc.Kinesis != nil:
		return "KinesisStream:" + fc.Kinesis.Stream, true
	case fc.Firehose != nil:
		return "DeliveryStream:" + fc.Firehose.DeliveryStream, true
	}
	return "", false
}

// tailerDestination is the Destination dimension of ConsecutiveProcessingErrors: the agent
// uses the flow's bare destination there.
func tailerDestination(fc config.Flow) string {
	switch {
	case fc.Kinesis != nil:
		return fc.Kinesis.Stream
	case fc.Firehose != nil:
		return fc.Firehose.DeliveryStream
	}
	return ""
}

// Wrap returns dst with its requests counted as the Kinesis Agent's sender metrics of fc's
// destination; dst itself for destinations the agent does not have.
func (p *Publisher) Wrap(fc config.Flow, dst shipper.Destination) shipper.Destination {
	dim, ok := SenderDestination(fc)
	if !ok {
		return dst
	}
	return &countingDestination{Destination: dst, p: p, dim: dim}
}

// Watch starts publishing fc's ConsecutiveProcessingErrors from its metrics (again from 0 if
// the flow was watched before: a new version of it after a reload).
func (p *Publisher) Watch(fc config.Flow, m *metrics.Flow) {
	if _, ok := SenderDestination(fc); !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tailers[fc.Name] = &tailer{destination: tailerDestination(fc), linesRead: m.LinesRead, fileErrors: m.FileErrors}
}

// Unwatch stops publishing a flow's ConsecutiveProcessingErrors (the flow was removed).
func (p *Publisher) Unwatch(flow string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.tailers, flow)
}

// countingDestination records each request as the agent's sender does.
type countingDestination struct {
	shipper.Destination
	p   *Publisher
	dim string
}

func (d *countingDestination) Put(ctx context.Context, recs []shipper.Record) ([]error, error) {
	results, err := d.Destination.Put(ctx, recs)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// Abandoned at a stop: not the service's error. (A request timing out is one.)
		d.p.record(d.dim, len(recs), nil)
		return results, err
	}
	if err != nil {
		d.p.record(d.dim, len(recs), &outcome{failed: true})
		return results, err
	}
	o := outcome{}
	for i := range recs {
		if results == nil || (i < len(results) && results[i] == nil) {
			o.sent++
			o.bytes += len(recs[i].Data)
		}
	}
	o.refused = len(recs) - o.sent
	d.p.record(d.dim, len(recs), &o)
	return results, err
}

type outcome struct {
	failed               bool // the request failed as a whole
	sent, refused, bytes int
}

// record adds one request: its attempts, and what came of it (nil: nothing known).
func (p *Publisher) record(dim string, attempts int, o *outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.add(dim, MetricRecordSendAttempts, types.StandardUnitCount, float64(attempts))
	if o == nil {
		return
	}
	if o.failed {
		p.add(dim, MetricServiceErrors, types.StandardUnitCount, 1)
		return
	}
	p.add(dim, MetricServiceErrors, types.StandardUnitCount, 0)
	p.add(dim, MetricBytesSent, types.StandardUnitBytes, float64(o.bytes))
	p.add(dim, MetricRecordsSent, types.StandardUnitCount, float64(o.sent))
	p.add(dim, MetricRecordSendErrors, types.StandardUnitCount, float64(o.refused))
}

func (p *Publisher) add(dim, metric string, unit types.StandardUnit, v float64) {
	k := statKey{metric: metric, destination: dim}
	s := p.stats[k]
	if s == nil {
		s = &stat{unit: unit}
		p.stats[k] = s
	}
	s.add(v)
}

// Run publishes every interval until ctx ends, then once more what the last interval
// gathered, within flushTimeout.
func (p *Publisher) Run(ctx context.Context) {
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			p.Flush(fctx)
			cancel()
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, p.opts.Interval)
			p.Flush(fctx)
			cancel()
		}
	}
}

// flushTimeout bounds the last publishing at a stop.
const flushTimeout = 2 * time.Second

// Flush publishes what was gathered since the last flush. Failures are counted and logged
// (paced); the data of a failed request are dropped.
func (p *Publisher) Flush(ctx context.Context) {
	data := p.take()
	for len(data) > 0 {
		n := min(len(data), MaxDataPerRequest)
		_, err := p.opts.Client.PutMetricData(ctx, &cw.PutMetricDataInput{
			Namespace: aws.String(p.opts.Namespace), MetricData: data[:n]})
		if err != nil {
			p.failed(err, n)
		}
		data = data[n:]
	}
}

func (p *Publisher) failed(err error, dropped int) {
	p.opts.Errors.Inc()
	now := p.opts.Now()
	if !p.lastErrLog.IsZero() && now.Sub(p.lastErrLog) < errorLogEvery {
		p.suppressed++
		return
	}
	p.log.Warn("publishing CloudWatch metrics failed; these metrics are dropped, shipping goes on",
		"err", err, "dropped_data", dropped, "failures_not_logged", p.suppressed)
	p.lastErrLog, p.suppressed = now, 0
}

// take turns what was gathered into metric data, in a stable order, and starts a new
// interval.
func (p *Publisher) take() []types.MetricDatum {
	now := p.opts.Now().UTC().Truncate(time.Second)
	p.mu.Lock()
	stats := p.stats
	p.stats = map[statKey]*stat{}
	var tails []struct {
		name string
		t    *tailer
	}
	for name, t := range p.tailers {
		tails = append(tails, struct {
			name string
			t    *tailer
		}{name, t})
	}
	p.mu.Unlock()

	keys := make([]statKey, 0, len(stats))
	for k := range stats {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].destination != keys[j].destination {
			return keys[i].destination < keys[j].destination
		}
		return keys[i].metric < keys[j].metric
	})
	data := make([]types.MetricDatum, 0, len(keys)+len(tails))
	for _, k := range keys {
		s := stats[k]
		data = append(data, types.MetricDatum{
			MetricName: aws.String(k.metric), Dimensions: p.dimensions(k.destination), Unit: s.unit, Timestamp: aws.Time(now),
			StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(s.n), Sum: aws.Float64(s.sum),
				Minimum: aws.Float64(s.lo), Maximum: aws.Float64(s.hi)},
		})
	}
	sort.Slice(tails, func(i, j int) bool { return tails[i].name < tails[j].name })
	for _, x := range tails {
		v := x.t.sample()
		data = append(data, types.MetricDatum{
			MetricName: aws.String(MetricConsecutiveProcessingErrors), Dimensions: p.dimensions(x.t.destination),
			Unit: types.StandardUnitCount, Timestamp: aws.Time(now),
			StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(1), Sum: aws.Float64(v), Minimum: aws.Float64(v), Maximum: aws.Float64(v)},
		})
	}
	return data
}

// sample updates the streak from the counters' moves since the last sample: lines read
// end it, file errors without lines extend it. Called by the flushing goroutine only.
func (t *tailer) sample() float64 {
	lines, errs := counterValue(t.linesRead), counterValue(t.fileErrors)
	if t.sampled {
		switch {
		case lines > t.lines:
			t.streak = 0
		case errs > t.errs:
			t.streak += errs - t.errs
		}
	}
	t.lines, t.errs, t.sampled = lines, errs, true
	return t.streak
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

func (p *Publisher) dimensions(destination string) []types.Dimension {
	d := []types.Dimension{{Name: aws.String(DimensionDestination), Value: aws.String(destination)}}
	if p.opts.Instance != "" {
		d = append(d, types.Dimension{Name: aws.String(DimensionInstance), Value: aws.String(p.opts.Instance)})
	}
	return d
}
