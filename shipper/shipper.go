package shipper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Record is one destination record.
type Record struct {
	PartitionKey    string
	ExplicitHashKey string
	Data            []byte
	UserRecords     int // lines inside Data (1 for a plain record)
}

// size is what destinations count against their limits.
func (r *Record) size() int { return len(r.Data) + len(r.PartitionKey) }

// Item is one record read from the spool with the sequence number to ack it by.
type Item struct {
	Seq    uint64
	Record Record
}

// Source is the spool as seen by the shipper.
type Source interface {
	Next(ctx context.Context) (Item, error) // blocks until an item is available; returns ctx.Err() when ctx is done
	Pending() int                           // items Next would return now without blocking
	Ack(seq uint64) error                   // item fully delivered (may be called from several goroutines)
}

// Limits bound one request. Bytes are len(Data)+len(PartitionKey).
type Limits struct {
	MaxRecords      int
	MaxRequestBytes int
	MaxRecordBytes  int
}

// The Kinesis Data Streams PutRecords limits, used for zero Limits fields.
const (
	DefaultMaxRecords      = 500
	DefaultMaxRequestBytes = 5 << 20
	DefaultMaxRecordBytes  = 1 << 20
)

// WithDefaults returns l with its zero (or negative) fields set to the Kinesis limits.
func (l Limits) WithDefaults() Limits {
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = DefaultMaxRecordBytes
	}
	return l
}

// Destination sends one request. results is nil (everything accepted) or has len(recs): nil
// = accepted, else why that record failed. err = the whole request failed (nothing accepted).
// Put is called from several goroutines at once; recs is only valid during the call.
type Destination interface {
	Put(ctx context.Context, recs []Record) (results []error, err error)
	Limits() Limits
}

// Options configure a Shipper. Zero values take the defaults in brackets.
type Options struct {
	MaxInFlight    int           // concurrent requests [4]
	BackoffBase    time.Duration // [100ms]
	BackoffMax     time.Duration // [10s] cap of exponential backoff with FULL jitter
	Linger         time.Duration // wait at most this long for more items to fill a request when fewer are pending [0]
	RequestTimeout time.Duration // one Put attempt is abandoned (and retried) after this [1m]; <0: none
	// DrainTimeout: when Run's context ends, requests already in flight may finish (and be
	// acked) for this long, so that a graceful stop does not leave accepted-but-unacked
	// records behind to be sent twice after the restart [0: abandon them at once].
	DrainTimeout time.Duration
	Rand         func() float64 // jitter source in [0,1) for tests; nil = math/rand/v2
	// The adaptive rate never goes below these, so that a throttled destination is still
	// probed often enough to notice it has capacity again [256 KiB/s, 256 records/s].
	MinBytesPerSec   float64
	MinRecordsPerSec float64
	Clock            Clock   // time for backoff, rate limiting and log pacing; nil = the real clock
	Metrics          Metrics // zero: nothing exported
	Logger           *slog.Logger

	// Shards, for flows whose partition keys come from the lines, keeps each shard's records
	// in order: a request carries at most one record per shard, and a shard's next record is
	// not sent while an earlier one is in flight or waiting for its retry (see the package
	// doc). nil: no ordering, requests are filled in Source order [nil].
	Shards ShardRouter
	// LookAheadBytes bounds what the shipper reads past records held back for their shard
	// (with Shards) [16 MiB]; the look-ahead also holds at most 4 requests' worth of records.
	LookAheadBytes int

	// Idle is called when the shipper waits for the Source with no request in flight and
	// nothing pending: whatever upstream holds back to fill records could leave now at no
	// cost to throughput. Called from Run's goroutine or a worker; it must not block [nil].
	Idle func()
}

// Shipper ships items from a Source to a Destination. Run it once.
type Shipper struct {
	src  Source
	dst  Destination
	opts Options
	log  *slog.Logger

	randMu sync.Mutex // a caller's Rand need not be safe for concurrent use

	clock     Clock
	lim       *limiter
	ord       *order // with Options.Shards; set by Run
	m         Metrics
	errCount  [numClasses]prometheus.Counter
	errLabels [numClasses]string

	// inFlight counts requests handed to the workers and not finished; waiting is true while
	// Run blocks in Source.Next with nothing pending. Whichever of the two changes last sees
	// both idle and calls Options.Idle.
	inFlight atomic.Int64
	waiting  atomic.Bool

	mu           sync.Mutex // guards the fields below: failure streak and log rate limits
	failingReqs  int        // requests in flight that have failed at least once
	streak       int        // failed attempts since failingReqs was last 0
	streakAt     time.Time
	streakLogged bool
	lastStreak   time.Time // when a streak's start was last logged
	lastLoud     [numClasses]time.Time
	fatal        error
	cancelRun    context.CancelFunc
	lastErr      error
	lastErrAt    time.Time
}

// loudEvery bounds how often failures that need an operator are logged; streakEvery how
// often the start of a streak of retryable failures is (throttling comes and goes).
const (
	loudEvery   = time.Minute
	streakEvery = 10 * time.Second
)

// New returns a Shipper; it does nothing until Run.
func New(src Source, dst Destination, opts Options) *Shipper {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 4
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 10 * time.Second
	}
	if opts.BackoffMax < opts.BackoffBase {
		opts.BackoffMax = opts.BackoffBase
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = time.Minute
	}
	opts.Metrics = opts.Metrics.withDefaults()
	if opts.MinBytesPerSec <= 0 {
		opts.MinBytesPerSec = 256 << 10
	}
	if opts.MinRecordsPerSec <= 0 {
		opts.MinRecordsPerSec = 256
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Shipper{src: src, dst: dst, opts: opts, log: log, m: opts.Metrics, clock: opts.Clock}
	s.lim = newLimiter(opts.Clock, log, opts.MinBytesPerSec, opts.MinRecordsPerSec, opts.Metrics.SendRate.Set)
	for c := range numClasses {
		s.errLabels[c] = class(c).String()
		s.errCount[c] = opts.Metrics.SendErrors.WithLabelValues(s.errLabels[c])
	}
	return s
}

// batch is one request and the items it acks. Batches are recycled between Run and the
// workers, so steady-state shipping allocates nothing per request here.
type batch struct {
	items    []Item
	recs     []Record
	bytes    int
	tooLarge bool
}

func (b *batch) reset() {
	clear(b.items) // drop references to shipped data
	b.items = b.items[:0]
	b.bytes = 0
	b.tooLarge = false
}

// Run ships until ctx is done and then returns nil; requests in flight get DrainTimeout to
// finish, then are abandoned and their items not acked. It returns an error only for a programming or spool error that
// retrying cannot fix: a Source.Next or Ack error, or a Destination returning the wrong
// number of results.
func (s *Shipper) Run(ctx context.Context) error {
	if s.src == nil || s.dst == nil {
		return errors.New("shipper: New needs a Source and a Destination")
	}
	lim := s.dst.Limits().WithDefaults()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.cancelRun = cancel
	s.mu.Unlock()

	if s.opts.Shards != nil {
		s.ord = newOrder(s.opts.Shards, lim, s.opts.LookAheadBytes)
	}
	n := s.opts.MaxInFlight
	// free holds the batches not on the wire: taking one is taking a request slot.
	free := make(chan *batch, n)
	work := make(chan *batch)
	for range n {
		free <- &batch{items: make([]Item, 0, min(lim.MaxRecords, 1024)), recs: make([]Record, 0, min(lim.MaxRecords, 1024))}
	}
	// Requests run on their own context, which ends DrainTimeout after ctx does.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	workersDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-workersDone:
			return
		}
		if s.opts.DrainTimeout > 0 {
			t := time.NewTimer(s.opts.DrainTimeout)
			defer t.Stop()
			select {
			case <-t.C:
			case <-workersDone:
			}
		}
		cancelSend()
	}()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for b := range work {
				s.ship(sendCtx, b)
				b.reset()
				if s.inFlight.Add(-1) == 0 && s.waiting.Load() {
					s.idle()
				}
				free <- b
			}
		})
	}

	var carry Item
	hasCarry := false
	for ctx.Err() == nil {
		var b *batch
		select {
		case b = <-free:
		case <-ctx.Done():
		}
		if b == nil {
			break
		}
		var err error
		if s.ord != nil {
			err = s.fillOrdered(ctx, lim, b)
		} else {
			err = s.fill(ctx, lim, b, &carry, &hasCarry)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.setFatal(fmt.Errorf("shipper: next item: %w", err))
			}
			break
		}
		// Some worker is idle or about to be: a free batch means fewer than n are busy.
		s.inFlight.Add(1)
		work <- b
	}
	close(work)
	wg.Wait()
	close(workersDone)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

func (s *Shipper) idle() {
	if s.opts.Idle != nil {
		s.opts.Idle()
	}
}

// setFatal records the first unrecoverable error and stops Run.
func (s *Shipper) setFatal(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal == nil {
		s.fatal = err
		s.log.Error("shipper: stopping", "err", err)
	}
	if s.cancelRun != nil {
		s.cancelRun()
	}
}

// fill takes the first item (blocking), then more while they are pending (or arrive within
// Linger) and fit the limits. An item that does not fit is carried into the next batch.
func (s *Shipper) fill(ctx context.Context, lim Limits, b *batch, carry *Item, hasCarry *bool) error {
	first := *carry
	if *hasCarry {
		*carry, *hasCarry = Item{}, false
	} else {
		if s.opts.Idle != nil && s.src.Pending() == 0 {
			s.waiting.Store(true)
			if s.inFlight.Load() == 0 {
				s.idle()
			}
		}
		var err error
		first, err = s.src.Next(ctx)
		s.waiting.Store(false)
		if err != nil {
			return err
		}
	}
	b.items = append(b.items, first)
	b.bytes = first.Record.size()
	if b.bytes > lim.MaxRecordBytes {
		// Alone, so that its rejection cannot fail good records with it.
		b.tooLarge = true
		s.noteTooLarge(first, lim)
		return nil
	}
	var lingerCtx context.Context
	for len(b.items) < lim.MaxRecords {
		var it Item
		var err error
		switch {
		case s.src.Pending() > 0:
			it, err = s.src.Next(ctx)
		case s.opts.Linger > 0:
			if lingerCtx == nil {
				var stop context.CancelFunc
				lingerCtx, stop = context.WithTimeout(ctx, s.opts.Linger)
				defer stop()
			}
			it, err = s.src.Next(lingerCtx)
			if err != nil && ctx.Err() == nil && lingerCtx.Err() != nil {
				return nil // lingered long enough: ship what we have
			}
		default:
			return nil
		}
		if err != nil {
			return err
		}
		sz := it.Record.size()
		if sz > lim.MaxRecordBytes || b.bytes+sz > lim.MaxRequestBytes {
			*carry, *hasCarry = it, true
			return nil
		}
		b.items = append(b.items, it)
		b.bytes += sz
	}
	return nil
}

// ship sends one batch until every record was accepted or ctx ends.
func (s *Shipper) ship(ctx context.Context, b *batch) {
	if failed, delivered := s.send(ctx, b); failed {
		s.noteDone(delivered)
	}
}

// send is ship's retry loop; failed says whether the request ever failed (it is then part of
// a failure streak), delivered whether every record was accepted.
func (s *Shipper) send(ctx context.Context, b *batch) (failed, delivered bool) {
	items := b.items
	for attempt := 0; ; attempt++ {
		if attempt > 0 && s.ord != nil {
			s.countResplits(items)
		}
		recs := b.recs[:0]
		for i := range items {
			recs = append(recs, items[i].Record)
		}
		b.recs = recs
		reqBytes := 0
		for i := range recs {
			reqBytes += recs[i].size()
		}
		// Requests in flight stay bounded by MaxInFlight (the free batches); the limiter
		// only spaces them out while the destination throttles.
		if !s.lim.wait(ctx, reqBytes, len(recs)) {
			clear(recs)
			return failed, false
		}
		results, err := s.put(ctx, recs)
		clear(recs)
		if ctx.Err() != nil {
			return failed, false // abandoned: not acked, shipped again after a restart
		}
		var slow bool
		if err != nil {
			c := classify(err)
			if c == classThrottled {
				s.lim.throttled()
			}
			s.errCount[c].Inc()
			s.noteFailure(c, err, len(items), !failed)
			failed = true
			slow = !c.retryable()
		} else {
			if results != nil && len(results) != len(recs) {
				s.setFatal(fmt.Errorf("shipper: destination returned %d results for %d records", len(results), len(recs)))
				return failed, false
			}
			var perClass [numClasses]int
			var firstErr error
			var firstClass class
			kept := items[:0]
			sent, users, sentBytes := 0, 0, 0
			for i := range items {
				var rerr error
				if results != nil {
					rerr = results[i]
				}
				if rerr == nil {
					if aerr := s.src.Ack(items[i].Seq); aerr != nil {
						s.setFatal(fmt.Errorf("shipper: ack %d: %w", items[i].Seq, aerr))
						return failed, false
					}
					if s.ord != nil {
						s.ord.release(items[i].Seq)
					}
					sent++
					users += items[i].Record.UserRecords
					sentBytes += items[i].Record.size()
					continue
				}
				c := classify(rerr)
				if firstErr == nil {
					firstErr, firstClass = rerr, c
				}
				perClass[c]++
				slow = slow || !c.retryable()
				kept = append(kept, items[i])
			}
			clear(items[len(kept):])
			items = kept
			if sent > 0 {
				s.m.RecordsSent.Add(float64(sent))
				s.m.UserRecordsSent.Add(float64(users))
			}
			if perClass[classThrottled] > 0 {
				s.lim.throttled()
			} else if sent > 0 {
				s.lim.accepted(sentBytes, sent)
			}
			if len(items) == 0 {
				return failed, true
			}
			for c, n := range perClass {
				if n > 0 {
					s.errCount[c].Add(float64(n))
				}
			}
			s.noteFailure(firstClass, firstErr, len(items), !failed)
			failed = true
		}
		if !s.sleep(ctx, s.delay(attempt, slow)) {
			return failed, false
		}
		s.m.Retries.Add(float64(len(items)))
	}
}

func (s *Shipper) put(ctx context.Context, recs []Record) ([]error, error) {
	if s.opts.RequestTimeout < 0 {
		return s.dst.Put(ctx, recs)
	}
	// A hung connection must not hold a request slot forever.
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	return s.dst.Put(ctx, recs)
}

// delay is the wait before retry number attempt+1: full jitter over a capped exponential,
// or BackoffMax for failures that retrying soon cannot fix.
func (s *Shipper) delay(attempt int, slow bool) time.Duration {
	if slow {
		return s.opts.BackoffMax
	}
	ceil := s.opts.BackoffMax
	if attempt < 62 {
		if e := s.opts.BackoffBase << attempt; e > 0 && e>>attempt == s.opts.BackoffBase && e < ceil {
			ceil = e
		}
	}
	return time.Duration(s.rand() * float64(ceil))
}

func (s *Shipper) rand() float64 {
	if s.opts.Rand == nil {
		return rand.Float64()
	}
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.opts.Rand()
}

// sleep waits d on the shipper's clock unless ctx ends first; it reports whether to go on.
func (s *Shipper) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-s.clock.After(d):
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// LastError returns the last failure of a send (a whole request, or the first failed record
// of one) and when it happened; nil while nothing has failed. Configuration errors stay
// visible here between their once-a-minute log lines.
func (s *Shipper) LastError() (error, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr, s.lastErrAt
}

// SendRate returns the adaptive limiter's state: unlimited unless the destination throttled
// recently.
func (s *Shipper) SendRate() Rate { return s.lim.current() }

// noteFailure logs the start of a failure streak (the first request failing while no other
// is), and failures that need an operator at most once a minute: one line per event, never
// per record or per retry.
func (s *Shipper) noteFailure(c class, err error, records int, firstOfRequest bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.lastErr, s.lastErrAt = err, now
	s.streak++
	if firstOfRequest {
		s.failingReqs++
		if s.failingReqs == 1 {
			s.streakAt = now
			// Throttling is logged by the limiter, with the rate it falls back to.
			if c == classTransient && now.Sub(s.lastStreak) >= streakEvery {
				s.lastStreak, s.streakLogged = now, true
				s.log.Warn("shipper: send failed; retrying with backoff", "reason", c.String(), "records", records, "err", err)
			}
		}
	}
	if !c.retryable() && (s.lastLoud[c].IsZero() || now.Sub(s.lastLoud[c]) >= loudEvery) {
		s.lastLoud[c], s.streakLogged = now, true
		s.log.Error("shipper: destination rejects records; retrying every backoff_max until fixed",
			"reason", c.String(), "records", records, "retry_every", s.opts.BackoffMax, "err", err)
	}
}

// noteDone ends a failed request's part in the streak: delivered, or abandoned at shutdown.
// The streak ends when no request is failing any more.
func (s *Shipper) noteDone(delivered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failingReqs--
	if s.failingReqs > 0 {
		return
	}
	if delivered && s.streakLogged {
		s.log.Info("shipper: sends recovered", "failed_attempts", s.streak, "after", s.clock.Now().Sub(s.streakAt).Round(time.Millisecond))
	}
	s.streak, s.streakLogged = 0, false
}

func (s *Shipper) noteTooLarge(it Item, lim Limits) {
	s.errCount[classTooLarge].Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if s.lastLoud[classTooLarge].IsZero() || now.Sub(s.lastLoud[classTooLarge]) >= loudEvery {
		s.lastLoud[classTooLarge] = now
		s.log.Error("shipper: record larger than the destination's limit (a bug upstream); sending it alone and never dropping it",
			"seq", it.Seq, "bytes", it.Record.size(), "max_record_bytes", lim.MaxRecordBytes)
	}
}
