package shipper

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

// fakeClock's After fires at once and moves its time on by d, so that a test sees minutes of
// pacing in milliseconds and can count what happened in them.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.advance(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

func TestLimiterHalvesOnThrottlingAndRecoversAdditively(t *testing.T) {
	clock := newFakeClock()
	logs := &logBuffer{}
	var gauge float64
	l := newLimiter(clock, logs.logger(), 1000, 10, func(v float64) { gauge = v })

	// 100 kB/s and 100 records/s go through unlimited.
	for range 3 {
		if d := l.reserve(100_000, 100); d != 0 {
			t.Fatalf("unlimited limiter made a request wait %v", d)
		}
		clock.advance(time.Second)
		l.accepted(100_000, 100)
	}
	l.throttled()
	r := l.current()
	if !r.Limited || r.BytesPerSec != 50_000 || r.RecordsPerSec != 50 {
		t.Fatalf("after a throttle: %+v, want half the observed 100 kB/s, 100 records/s", r)
	}
	if gauge != 50_000 {
		t.Errorf("gauge = %v, want 50000", gauge)
	}
	// Every request in flight gets throttled at once: that is one signal, not many.
	l.throttled()
	l.throttled()
	if r := l.current(); r.BytesPerSec != 50_000 || r.Cuts != 1 {
		t.Fatalf("throttles within a second cut again: %+v", r)
	}
	clock.advance(time.Second)
	l.throttled()
	if r := l.current(); r.BytesPerSec != 25_000 || r.RecordsPerSec != 25 {
		t.Fatalf("second cut: %+v, want 25 kB/s, 25 records/s", r)
	}

	// The bucket spaces requests at the limited rate: 25 kB/s means a 25 kB request a second.
	if d := l.reserve(25_000, 10); d != 0 {
		t.Fatalf("first request waited %v", d)
	}
	d := l.reserve(25_000, 10)
	if d < 900*time.Millisecond || d > 1100*time.Millisecond {
		t.Fatalf("second request told to wait %v, want about 1s", d)
	}
	clock.advance(d)
	if d := l.reserve(25_000, 10); d != 0 {
		t.Fatalf("after waiting, request still waits %v", d)
	}

	// No more throttling: +1/8 of the starting 100 kB/s per second, unlimited again at 100 kB/s.
	var rates []float64
	for range 10 {
		clock.advance(time.Second)
		l.accepted(25_000, 10)
		if r := l.current(); r.Limited {
			rates = append(rates, r.BytesPerSec)
		}
	}
	for i := 1; i < len(rates); i++ {
		if rates[i] <= rates[i-1] {
			t.Errorf("rate did not rise while unthrottled: %v", rates)
		}
	}
	if r := l.current(); r.Limited || r.Recoveries != 1 || r.LowestBytesPerSec != 25_000 {
		t.Errorf("after 10 quiet seconds: %+v, want unlimited after one recovery, lowest 25 kB/s", r)
	}
	if gauge != 0 {
		t.Errorf("gauge = %v after recovery, want 0 (not limited)", gauge)
	}
	out := logs.String()
	if n := strings.Count(out, "send rate reduced"); n != 1 {
		t.Errorf("%d lines for one throttling streak with two cuts, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "bytes_per_s=50000") {
		t.Errorf("the throttling line does not name the new rate:\n%s", out)
	}
	if n := strings.Count(out, "send rate recovered"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, out)
	}
}

// A request larger than a second's worth of the limit still goes (nothing is starved); the
// debt delays the next one.
func TestLimiterLetsLargeRequestsThrough(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(clock, slog.New(slog.DiscardHandler), 1000, 10, func(float64) {})
	l.throttled() // nothing observed yet: starts from twice the floor, cut to the floor
	if r := l.current(); r.BytesPerSec != 1000 {
		t.Fatalf("rate %v, want the 1000 B/s floor", r.BytesPerSec)
	}
	if d := l.reserve(5000, 1); d != 0 {
		t.Fatalf("a 5 kB request at 1 kB/s waited %v, want it to go and repay after", d)
	}
	if d := l.reserve(1, 1); d < 4*time.Second {
		t.Errorf("next request waits %v, want about 5s of debt", d)
	}
}

// A configuration error (here a missing stream) is retried every BackoffMax, forever, logged
// once a minute and kept visible in LastError; nothing is acked, nothing dropped, no spinning.
func TestConfigErrorRetriesSlowlyWithoutSpinning(t *testing.T) {
	clock := newFakeClock()
	start := clock.Now()
	const window = 10 * time.Minute
	reached := make(chan struct{})
	var once sync.Once
	src := newFakeSource(items(50, 3))
	dst := &fakeDest{limits: Limits{MaxRecords: 100}, put: func(ctx context.Context, _ int, _ []Record) ([]error, error) {
		if clock.Now().Sub(start) >= window {
			once.Do(func() { close(reached) })
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Stream app not found"}
	}}
	logs := &logBuffer{}
	m := Metrics{}.withDefaults()
	s := New(src, dst, Options{MaxInFlight: 1, BackoffMax: 10 * time.Second, Clock: clock, Metrics: m, Logger: logs.logger()})
	stop := runShipper(t, s)
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatalf("the fake clock never reached %v: the shipper stopped retrying", window)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// One attempt at 0s, then one per 10s backoff up to and including 600s.
	if n := len(dst.requests()); n != 61 {
		t.Errorf("%d Put calls in %v of config errors with BackoffMax 10s, want 61", n, window)
	}
	if n := len(src.ackCounts()); n != 0 {
		t.Errorf("%d items acked though the destination accepted nothing", n)
	}
	if v := value(m.SendErrors.WithLabelValues("config")); v != 60 {
		t.Errorf("SendErrors{config} = %v, want 60", v)
	}
	if n := strings.Count(logs.String(), "destination rejects records"); n != 10 {
		t.Errorf("%d log lines in 10 minutes of config errors, want 10 (one a minute):\n%s", n, logs.String())
	}
	err, at := s.LastError()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ResourceNotFoundException" {
		t.Errorf("LastError = %v, want the ResourceNotFoundException", err)
	}
	if want := start.Add(window - 10*time.Second); !at.Equal(want) {
		t.Errorf("LastError time = %v, want %v (the last failed attempt)", at, want)
	}
}
