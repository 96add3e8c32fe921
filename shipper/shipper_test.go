package shipper

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func zero() float64 { return 0 }

func TestBatchingRespectsLimits(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		size   int
		limits Limits
		want   []int // records per request, in order
	}{
		{"500 records per request by default", 1200, 6, Limits{}, []int{500, 500, 200}},
		{"request bytes", 30, 98, Limits{MaxRequestBytes: 1000}, []int{10, 10, 10}},                                      // 10*100 = 1000 fits exactly
		{"request bytes, item that does not fit starts the next", 25, 99, Limits{MaxRequestBytes: 1000}, []int{9, 9, 7}}, // 101 bytes each
		{"record count limit", 7, 6, Limits{MaxRecords: 3}, []int{3, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(items(tt.n, tt.size))
			dst := &fakeDest{limits: tt.limits}
			m := Metrics{}.withDefaults()
			s := New(src, dst, Options{MaxInFlight: 1, Metrics: m})
			stop := runShipper(t, s)
			waitAcked(t, src, 5*time.Second)
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			var got []int
			next := 0
			for _, req := range dst.requests() {
				got = append(got, len(req))
				for _, seq := range seqOf(t, req) {
					if seq != next {
						t.Fatalf("request holds item %d, want %d (in order, nothing skipped)", seq, next)
					}
					next++
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request sizes %v, want %v", got, tt.want)
			}
			assertAckedOnce(t, src, tt.n)
			if v := value(m.RecordsSent); v != float64(tt.n) {
				t.Errorf("RecordsSent = %v, want %d", v, tt.n)
			}
			if v := value(m.UserRecordsSent); v != float64(2*tt.n) {
				t.Errorf("UserRecordsSent = %v, want %d", v, 2*tt.n)
			}
		})
	}
}

func TestPartialFailureResendsOnlyFailedEntries(t *testing.T) {
	src := newFakeSource(items(10, 3))
	dst := &fakeDest{limits: Limits{MaxRecords: 10}}
	dst.put = func(_ context.Context, call int, recs []Record) ([]error, error) {
		res := make([]error, len(recs))
		for i, r := range recs {
			switch {
			case call == 0 && (string(r.Data) == "002" || string(r.Data) == "005" || string(r.Data) == "007"):
				res[i] = &EntryError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}
			case call == 1 && string(r.Data) == "005":
				res[i] = &EntryError{Code: "InternalFailure", Message: "oops"}
			}
		}
		return res, nil
	}
	m := Metrics{}.withDefaults()
	logs := &logBuffer{}
	s := New(src, dst, Options{MaxInFlight: 1, Rand: zero, Metrics: m, Logger: logs.logger()})
	stop := runShipper(t, s)
	waitAcked(t, src, 5*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := [][]string{
		{"000", "001", "002", "003", "004", "005", "006", "007", "008", "009"},
		{"002", "005", "007"},
		{"005"},
	}
	if got := dst.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n got %v\nwant %v", got, want)
	}
	assertAckedOnce(t, src, 10)
	if v := value(m.Retries); v != 4 {
		t.Errorf("Retries = %v, want 4 (3 records, then 1)", v)
	}
	if v := value(m.SendErrors.WithLabelValues("throttled")); v != 3 {
		t.Errorf("SendErrors{throttled} = %v, want 3", v)
	}
	if v := value(m.SendErrors.WithLabelValues("transient")); v != 1 {
		t.Errorf("SendErrors{transient} = %v, want 1", v)
	}
	if v := value(m.RecordsSent); v != 10 {
		t.Errorf("RecordsSent = %v, want 10 (each record once)", v)
	}
	// The streak began with throttling: the limiter's line (with the new rate) is its only
	// line; the rate recovers later, once the destination has had time to breathe.
	out := logs.String()
	if n := strings.Count(out, "send rate reduced"); n != 1 {
		t.Errorf("%d throttling log lines for one streak, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "send failed"); n != 0 {
		t.Errorf("%d generic failure lines besides the throttling line, want 0:\n%s", n, out)
	}
}

func TestWholeRequestFailureRetriesWholeRequest(t *testing.T) {
	src := newFakeSource(items(5, 3))
	dst := &fakeDest{}
	dst.put = func(_ context.Context, call int, recs []Record) ([]error, error) {
		if call < 2 {
			return nil, &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "try later"}
		}
		return make([]error, len(recs)), nil
	}
	m := Metrics{}.withDefaults()
	s := New(src, dst, Options{MaxInFlight: 1, Rand: zero, Metrics: m})
	stop := runShipper(t, s)
	waitAcked(t, src, 5*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	reqs := dst.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if !reflect.DeepEqual(r, reqs[0]) || len(r) != 5 {
			t.Errorf("request %d = %v, want the whole request %v again", i, r, reqs[0])
		}
	}
	assertAckedOnce(t, src, 5)
	if v := value(m.Retries); v != 10 {
		t.Errorf("Retries = %v, want 10", v)
	}
	if v := value(m.SendErrors.WithLabelValues("transient")); v != 2 {
		t.Errorf("SendErrors{transient} = %v, want 2 (per failed request)", v)
	}
}

func TestBackoffDelay(t *testing.T) {
	r := 0.5
	s := New(nil, nil, Options{BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second, Rand: func() float64 { return r }})
	tests := []struct {
		attempt int
		slow    bool
		want    time.Duration
	}{
		{0, false, 50 * time.Millisecond},
		{1, false, 100 * time.Millisecond},
		{2, false, 200 * time.Millisecond},
		{3, false, 400 * time.Millisecond},
		{4, false, 500 * time.Millisecond}, // capped at BackoffMax before jitter
		{70, false, 500 * time.Millisecond},
		{1 << 20, false, 500 * time.Millisecond},
		{0, true, time.Second}, // config/invalid: slowly, whatever the attempt
	}
	for _, tt := range tests {
		if got := s.delay(tt.attempt, tt.slow); got != tt.want {
			t.Errorf("delay(%d, slow=%v) = %v, want %v", tt.attempt, tt.slow, got, tt.want)
		}
	}
	r = 0.999
	if got := s.delay(10, false); got >= time.Second || got < 990*time.Millisecond {
		t.Errorf("delay with rand 0.999 = %v, want just under BackoffMax", got)
	}
}

// The wait between attempts is real and comes from Rand (throttling) or BackoffMax (config).
func TestRetryPace(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		rand    float64
		minGap  time.Duration
		logWord string
	}{
		{"throttled, rand 0: immediate", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}, 0, 0, "send rate reduced"},
		{"throttled, rand 0.9: 0.9*base", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}, 0.9, 90 * time.Millisecond, "send rate reduced"},
		{"config ignores rand: BackoffMax", &smithy.GenericAPIError{Code: "ResourceNotFoundException"}, 0, 150 * time.Millisecond, "destination rejects records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(items(1, 3))
			var mu sync.Mutex
			var at []time.Time
			dst := &fakeDest{put: func(_ context.Context, call int, recs []Record) ([]error, error) {
				mu.Lock()
				at = append(at, time.Now())
				mu.Unlock()
				if call == 0 {
					return nil, tt.err
				}
				return nil, nil
			}}
			logs := &logBuffer{}
			s := New(src, dst, Options{BackoffBase: 100 * time.Millisecond, BackoffMax: 150 * time.Millisecond,
				Rand: func() float64 { return tt.rand }, Logger: logs.logger()})
			stop := runShipper(t, s)
			waitAcked(t, src, 5*time.Second)
			_ = stop()
			mu.Lock()
			defer mu.Unlock()
			if len(at) != 2 {
				t.Fatalf("%d attempts, want 2", len(at))
			}
			// Only the lower bound: on a shared, loaded machine (-race, 2 cores) a goroutine
			// may wake seconds late. The delays themselves are TestBackoffDelay's.
			if gap := at[1].Sub(at[0]); gap < tt.minGap {
				t.Errorf("waited %v between attempts, want at least %v", gap, tt.minGap)
			}
			if !strings.Contains(logs.String(), tt.logWord) {
				t.Errorf("log lacks %q:\n%s", tt.logWord, logs.String())
			}
		})
	}
}

func TestCancelStopsPromptlyWithoutExtraAcks(t *testing.T) {
	tests := []struct {
		name string
		put  func(ctx context.Context, call int, recs []Record) ([]error, error)
	}{
		{"backing off for an hour", func(ctx context.Context, call int, recs []Record) ([]error, error) {
			if call == 0 {
				return nil, nil
			}
			return nil, errors.New("connection reset")
		}},
		{"request in flight honours ctx", func(ctx context.Context, call int, recs []Record) ([]error, error) {
			if call == 0 {
				return nil, nil
			}
			<-ctx.Done()
			return nil, ctx.Err()
		}},
		{"request in flight answers success after cancel", func(ctx context.Context, call int, recs []Record) ([]error, error) {
			if call == 0 {
				return nil, nil
			}
			<-ctx.Done()
			return nil, nil // too late: the shipper has given up on it
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(items(10, 3))
			first := make(chan struct{})
			var once sync.Once
			dst := &fakeDest{limits: Limits{MaxRecords: 4}, put: func(ctx context.Context, call int, recs []Record) ([]error, error) {
				if call > 0 {
					once.Do(func() { close(first) })
				}
				return tt.put(ctx, call, recs)
			}}
			s := New(src, dst, Options{MaxInFlight: 1, BackoffBase: time.Hour, BackoffMax: time.Hour, Rand: func() float64 { return 1 }})
			stop := runShipper(t, s)
			select {
			case <-first:
			case <-time.After(5 * time.Second):
				t.Fatal("second request never sent")
			}
			start := time.Now()
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Run took %v to return after cancel", d)
			}
			acks := src.ackCounts()
			want := map[uint64]int{0: 1, 1: 1, 2: 1, 3: 1}
			if !reflect.DeepEqual(acks, want) {
				t.Errorf("acked %v, want only the first request's items %v", acks, want)
			}
		})
	}
}

func TestMaxInFlightRespected(t *testing.T) {
	const limit = 3
	var cur, peak atomic.Int32
	src := newFakeSource(items(600, 3))
	dst := &fakeDest{limits: Limits{MaxRecords: 10}, put: func(ctx context.Context, call int, recs []Record) ([]error, error) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		cur.Add(-1)
		return nil, nil
	}}
	s := New(src, dst, Options{MaxInFlight: limit})
	stop := runShipper(t, s)
	waitAcked(t, src, 10*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p := peak.Load(); p != limit {
		t.Errorf("peak concurrent requests %d, want exactly %d", p, limit)
	}
	assertAckedOnce(t, src, 600)
}

func TestLingerFillsRequests(t *testing.T) {
	tests := []struct {
		linger time.Duration
		want   []int
	}{
		{0, []int{1, 1}},
		{300 * time.Millisecond, []int{2}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.linger), func(t *testing.T) {
			all := items(2, 3)
			src := newFakeSource(all[:1])
			src.total = 2
			dst := &fakeDest{}
			s := New(src, dst, Options{MaxInFlight: 1, Linger: tt.linger})
			stop := runShipper(t, s)
			time.Sleep(30 * time.Millisecond)
			src.push(all[1])
			src.mu.Lock()
			src.total = 2
			src.mu.Unlock()
			waitAcked(t, src, 5*time.Second)
			_ = stop()
			var got []int
			for _, r := range dst.requests() {
				got = append(got, len(r))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request sizes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTooLargeRecordIsSentAloneAndNeverDropped(t *testing.T) {
	its := items(5, 3)
	its[2].Record.Data = []byte(strings.Repeat("x", 200))
	src := newFakeSource(its)
	dst := &fakeDest{limits: Limits{MaxRecordBytes: 100}}
	dst.put = func(_ context.Context, call int, recs []Record) ([]error, error) {
		for _, r := range recs {
			if len(r.Data) > 100 && call < 4 {
				return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "record too big"}
			}
		}
		return nil, nil
	}
	m := Metrics{}.withDefaults()
	logs := &logBuffer{}
	s := New(src, dst, Options{MaxInFlight: 1, BackoffMax: 10 * time.Millisecond, Metrics: m, Logger: logs.logger()})
	stop := runShipper(t, s)
	waitAcked(t, src, 5*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	reqs := dst.requests()
	if !reflect.DeepEqual(reqs[0], []string{"000", "001"}) || !reflect.DeepEqual(reqs[len(reqs)-1], []string{"003", "004"}) {
		t.Errorf("good records not batched around the big one: %v", reqs)
	}
	for _, r := range reqs[1 : len(reqs)-1] {
		if len(r) != 1 || len(r[0]) != 200 {
			t.Errorf("big record not alone in its request: %v", reqs)
		}
	}
	assertAckedOnce(t, src, 5)
	if v := value(m.SendErrors.WithLabelValues("too_large")); v != 1 {
		t.Errorf("SendErrors{too_large} = %v, want 1", v)
	}
	if v := value(m.SendErrors.WithLabelValues("invalid")); v != 3 {
		t.Errorf("SendErrors{invalid} = %v, want 3 (calls 1..3 rejected it)", v)
	}
	if n := strings.Count(logs.String(), "larger than the destination's limit"); n != 1 {
		t.Errorf("%d too-large log lines, want 1", n)
	}
	if n := strings.Count(logs.String(), "destination rejects records"); n != 1 {
		t.Errorf("%d rejection log lines for 3 rejections within a minute, want 1", n)
	}
}

func TestProgrammingErrorsStopRun(t *testing.T) {
	tests := []struct {
		name   string
		ackErr error
		put    func(ctx context.Context, call int, recs []Record) ([]error, error)
		want   string
	}{
		{"ack fails", errors.New("spool closed"), nil, "ack 0: spool closed"},
		{"wrong number of results", nil, func(ctx context.Context, call int, recs []Record) ([]error, error) {
			return make([]error, len(recs)+1), nil
		}, "returned 4 results for 3 records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(items(3, 3))
			src.ackErr = tt.ackErr
			s := New(src, &fakeDest{put: tt.put}, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := s.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Fatal("Run returned only after its context ended")
			}
		})
	}
}

func TestDiscardAcceptsEverything(t *testing.T) {
	src := newFakeSource(items(1000, 10))
	m := Metrics{}.withDefaults()
	s := New(src, Discard{}, Options{Metrics: m})
	stop := runShipper(t, s)
	waitAcked(t, src, 5*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertAckedOnce(t, src, 1000)
	if v := value(m.RecordsSent); v != 1000 {
		t.Errorf("RecordsSent = %v", v)
	}
	if l := (Discard{Limit: Limits{MaxRecords: 7}}).Limits(); l != (Limits{7, DefaultMaxRequestBytes, DefaultMaxRecordBytes}) {
		t.Errorf("Discard limits %+v", l)
	}
}

// value reads a counter without the testutil package (and its extra dependencies).
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// Throttling that comes and goes across concurrent requests is one event in the log, not one
// per request.
func TestFlappingFailuresLogOnce(t *testing.T) {
	src := newFakeSource(items(400, 3))
	var mu sync.Mutex
	tried := map[string]bool{}
	dst := &fakeDest{limits: Limits{MaxRecords: 10}, put: func(_ context.Context, _ int, recs []Record) ([]error, error) {
		mu.Lock()
		defer mu.Unlock()
		k := string(recs[0].Data)
		if !tried[k] {
			tried[k] = true
			return nil, &smithy.GenericAPIError{Code: "InternalFailure"}
		}
		return nil, nil
	}}
	logs := &logBuffer{}
	m := Metrics{}.withDefaults()
	s := New(src, dst, Options{MaxInFlight: 4, BackoffBase: time.Millisecond, Metrics: m, Logger: logs.logger()})
	stop := runShipper(t, s)
	waitAcked(t, src, 10*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertAckedOnce(t, src, 400)
	if v := value(m.SendErrors.WithLabelValues("transient")); v != 40 {
		t.Errorf("SendErrors{transient} = %v, want 40 (one per failed request)", v)
	}
	out := logs.String()
	if n := strings.Count(out, "send failed"); n != 1 {
		t.Errorf("%d failure lines for 40 failed requests, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "sends recovered"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, out)
	}
}

// A graceful stop lets the request in flight finish and acks it, so that a restart does not
// send its records a second time; new requests are not started.
func TestDrainTimeoutAcksRequestsInFlight(t *testing.T) {
	src := newFakeSource(items(10, 3))
	inFlight := make(chan struct{})
	release := make(chan struct{})
	dst := &fakeDest{limits: Limits{MaxRecords: 4}, put: func(ctx context.Context, call int, recs []Record) ([]error, error) {
		if call == 0 {
			close(inFlight)
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return nil, nil
	}}
	s := New(src, dst, Options{MaxInFlight: 1, DrainTimeout: 10 * time.Second})
	stop := runShipper(t, s)
	<-inFlight
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := map[uint64]int{0: 1, 1: 1, 2: 1, 3: 1}
	if acks := src.ackCounts(); !reflect.DeepEqual(acks, want) {
		t.Errorf("acked %v, want the drained request's items %v and nothing started after the stop", acks, want)
	}
	if n := len(dst.requests()); n != 1 {
		t.Errorf("%d requests, want 1: no new request after the stop", n)
	}
}
