package shipper

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"
)

// Clock is the time source of the shipper's backoff and rate limiter; tests inject a fake
// one so that pacing can be checked without waiting for it.
type Clock interface {
	Now() time.Time
	// After behaves like time.After; a fake clock may fire at once and move its time on.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Rate is the send rate the adaptive limiter allows. Limited is false while nothing was
// throttled recently: requests then go out as fast as MaxInFlight lets them.
type Rate struct {
	Limited           bool
	BytesPerSec       float64
	RecordsPerSec     float64
	Cuts              int     // decreases since New
	Recoveries        int     // returns to unlimited since New
	LowestBytesPerSec float64 // lowest bytes/s limit since New (0: never limited)
}

// AIMD tuning. A cut halves the rate, at most once per cutEvery so that the throttling of
// every request already in flight counts as one signal (Kinesis meters per second). Each
// second without throttling adds an eighth of the rate the streak started from, so a
// single cut is undone in about four seconds; reaching that rate again ends the streak.
const (
	cutFactor    = 0.5
	cutEvery     = time.Second
	increaseFrac = 1.0 / 8
	observeEvery = time.Second
)

// limiter is an AIMD token bucket on bytes/s and records/s for one destination.
type limiter struct {
	clock Clock
	log   *slog.Logger
	min   [2]float64 // bytes/s, records/s floors
	gauge func(bytesPerSec float64)

	mu      sync.Mutex
	limited bool
	rate    [2]float64 // current limit
	start   [2]float64 // the rate the streak started from: reaching it again ends the streak
	tokens  [2]float64 // may go negative: a request larger than the burst still goes, then repays
	refill  time.Time  // tokens were last refilled
	lastCut time.Time
	lastInc time.Time

	// Throughput accepted while unlimited, measured over observeEvery windows: the starting
	// point of the first cut.
	winStart time.Time
	win      [2]float64
	observed [2]float64

	cuts, recoveries int
	lowest           float64 // lowest bytes/s limit since New
}

func newLimiter(clock Clock, log *slog.Logger, minBytes, minRecords float64, gauge func(float64)) *limiter {
	l := &limiter{clock: clock, log: log, min: [2]float64{minBytes, minRecords}, gauge: gauge, winStart: clock.Now()}
	gauge(0)
	return l
}

// wait blocks until the limiter lets a request of bytes and records go, or ctx ends.
func (l *limiter) wait(ctx context.Context, bytes, records int) bool {
	for {
		d := l.reserve(bytes, records)
		if d <= 0 {
			return ctx.Err() == nil
		}
		select {
		case <-l.clock.After(d):
		case <-ctx.Done():
			return false
		}
	}
}

// reserve takes the tokens for one request and returns 0, or returns how long to wait
// before asking again. Tokens may go into debt so that a request larger than one second's
// worth is not starved; the debt then delays the requests after it.
func (l *limiter) reserve(bytes, records int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.limited {
		return 0
	}
	now := l.clock.Now()
	l.refillLocked(now)
	var wait time.Duration
	for i := range l.tokens {
		if l.tokens[i] < 0 {
			wait = max(wait, time.Duration(-l.tokens[i]/l.rate[i]*float64(time.Second))+time.Millisecond)
		}
	}
	if wait > 0 {
		return wait
	}
	l.tokens[0] -= float64(bytes)
	l.tokens[1] -= float64(records)
	return 0
}

func (l *limiter) refillLocked(now time.Time) {
	dt := now.Sub(l.refill).Seconds()
	if dt <= 0 {
		return
	}
	l.refill = now
	for i := range l.tokens {
		l.tokens[i] = min(l.tokens[i]+l.rate[i]*dt, l.rate[i]) // burst: one second's worth
	}
}

// accepted notes records the destination took; while limited, time without throttling
// raises the rate (additive increase) until the streak's starting rate is reached again.
func (l *limiter) accepted(bytes, records int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if !l.limited {
		l.win[0] += float64(bytes)
		l.win[1] += float64(records)
		if el := now.Sub(l.winStart); el >= observeEvery {
			for i := range l.win {
				l.observed[i] = l.win[i] / el.Seconds()
			}
			l.win, l.winStart = [2]float64{}, now
		}
		return
	}
	dt := now.Sub(l.lastInc).Seconds()
	if dt <= 0 || now.Sub(l.lastCut) < cutEvery {
		return // an increase right after a cut would undo it before it was felt
	}
	l.lastInc = now
	for i := range l.rate {
		l.rate[i] += l.start[i] * increaseFrac * dt
	}
	if l.rate[0] >= l.start[0] && l.rate[1] >= l.start[1] {
		l.limited = false
		l.recoveries++
		l.win, l.winStart = [2]float64{}, now
		l.gauge(0)
		l.log.Info("shipper: send rate recovered; no longer limited",
			"bytes_per_s", int64(l.start[0]), "records_per_s", int64(l.start[1]))
		return
	}
	l.gauge(l.rate[0])
}

// throttled cuts the rate (multiplicative decrease), at most once per cutEvery. The first
// cut of a streak starts from the throughput observed before it and logs one line.
func (l *limiter) throttled() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if l.limited && now.Sub(l.lastCut) < cutEvery {
		return
	}
	first := !l.limited
	if first {
		base := l.observed
		if el := now.Sub(l.winStart); el > 0 && l.win[0] > 0 {
			// The window in progress is the most recent evidence of what went through.
			for i := range base {
				base[i] = max(base[i], l.win[i]/max(el.Seconds(), observeEvery.Seconds()))
			}
		}
		for i := range base {
			base[i] = max(base[i], 2*l.min[i])
		}
		l.start, l.rate = base, base
		l.limited = true
		l.tokens = [2]float64{}
		l.refill = now
	}
	l.refillLocked(now)
	for i := range l.rate {
		l.rate[i] = max(l.rate[i]*cutFactor, l.min[i])
		// Tokens saved up at the old rate would let a burst through right after the cut.
		l.tokens[i] = min(l.tokens[i], 0)
	}
	l.lastCut, l.lastInc = now, now
	l.cuts++
	if l.lowest == 0 || l.rate[0] < l.lowest {
		l.lowest = l.rate[0]
	}
	l.gauge(l.rate[0])
	if first {
		l.log.Warn("shipper: throttled by the destination; send rate reduced",
			"bytes_per_s", int64(l.rate[0]), "records_per_s", int64(l.rate[1]),
			"from_bytes_per_s", int64(l.start[0]))
	}
}

func (l *limiter) current() Rate {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Rate{Limited: l.limited, Cuts: l.cuts, Recoveries: l.recoveries, LowestBytesPerSec: l.lowest}
	if l.limited {
		r.BytesPerSec, r.RecordsPerSec = l.rate[0], l.rate[1]
	} else {
		r.BytesPerSec, r.RecordsPerSec = math.Inf(1), math.Inf(1)
	}
	return r
}
