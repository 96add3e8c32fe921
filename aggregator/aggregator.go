package aggregator

import (
	"crypto/md5"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

const (
	defaultMaxRecordBytes = 1 << 20
	defaultMaxAge         = time.Second
	defaultIdleAge        = 20 * time.Millisecond
	maxPartitionKeyLen    = 256 // Kinesis's limit, in Unicode characters; kept in bytes here to be safe

	// randomKeyLen is the length of a random partition key: 128 random bits in hex, so that
	// Kinesis's MD5 of the key falls anywhere in the hash key space.
	randomKeyLen = 32

	// One-byte protobuf tags of the fields the packer writes by hand.
	tagRecords = byte(fieldRecords)<<3 | byte(protowire.BytesType)
	tagPKIndex = byte(fieldPKIndex)<<3 | byte(protowire.VarintType)
	tagData    = byte(fieldData)<<3 | byte(protowire.BytesType)
)

// Aggregator packs lines into Kinesis records.
//
// Concurrency: Add is called from one goroutine. An age timer goroutine seals the open
// aggregate when it gets old; the two share the open aggregate under a mutex held for the
// few tens of nanoseconds an append takes. Sealed aggregates are hashed by Workers
// goroutines in parallel and handed to Output.Put in sealing order by one delivery goroutine.
//
// Memory is bounded by Workers+3 buffers of MaxRecordBytes: one being filled, and the rest
// being hashed, waiting or being delivered. When all are taken, Add blocks until Put returns
// (backpressure). If Put blocks forever, so do Add, Flush and Close: the owner of the Output
// must cancel it (its context) to unblock them.
type Aggregator struct {
	out       Output
	opts      Options
	limit     int // MaxRecordBytes minus the partition key length: the cap on a record's Data
	pkLen     int
	fixedPK   string // "" for random keys
	nslots    int
	metricsOn bool

	// Guarded by mu.
	mu     sync.Mutex
	cur    *slot
	closed bool
	rng    *rand.ChaCha8
	timer  *time.Timer
	openAt time.Time
	nalloc int  // slots allocated so far, at most nslots
	hungry bool // Nudge was called and no aggregate has been sealed since
	seenN  int  // lines in the open aggregate when checkAge last let it fill on

	free  chan *slot // slots ready to fill
	work  chan *slot // sealed aggregates to hash
	order chan *slot // sealed records (and flush barriers) in sealing order

	err       atomic.Pointer[error] // the first error from Put; sticky
	stop      chan struct{}
	nudge     chan struct{} // Nudge → ageLoop
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// slot is one record buffer travelling filler → worker → deliverer → free list.
type slot struct {
	buf      []byte // magic | AggregatedRecord [| MD5, once hashed]
	pk       string
	n        int // user records
	first    int // offset of the first line's bytes in buf, to send it plain
	firstLen int
	marks    []Mark
	markIdx  map[uint32]int // source → index in marks, once a record has several sources
	lastSrc  int            // index in marks of the source of the previous line
	needHash bool
	hashed   chan struct{}
	rec      Record
	barrier  chan struct{} // non-nil: not a record, a Flush waiting for everything before it
}

// New returns a running Aggregator that delivers sealed records to out.
func New(opts Options, out Output) (*Aggregator, error) {
	if out == nil {
		return nil, errors.New("aggregator: nil output")
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = defaultMaxRecordBytes
	}
	if opts.MaxRecords < 0 {
		return nil, fmt.Errorf("aggregator: max records %d is negative", opts.MaxRecords)
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = defaultMaxAge
	}
	if opts.IdleAge <= 0 {
		opts.IdleAge = defaultIdleAge
	}
	opts.IdleAge = min(opts.IdleAge, opts.MaxAge)
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	a := &Aggregator{out: out, opts: opts}
	switch opts.PartitionKey {
	case "", "random":
		a.pkLen = randomKeyLen
		var seed [32]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("aggregator: seed random partition keys: %w", err)
		}
		a.rng = rand.NewChaCha8(seed)
	case "host":
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("aggregator: partition key from host name: %w", err)
		}
		if h == "" {
			return nil, errors.New("aggregator: partition key from host name: empty host name")
		}
		a.fixedPK = h
	default:
		a.fixedPK = opts.PartitionKey
	}
	if a.fixedPK != "" {
		a.pkLen = len(a.fixedPK)
		if a.pkLen > maxPartitionKeyLen {
			return nil, fmt.Errorf("aggregator: partition key of %d bytes is longer than Kinesis's %d", a.pkLen, maxPartitionKeyLen)
		}
	}
	a.limit = opts.MaxRecordBytes - a.pkLen
	if a.limit < 1 {
		return nil, fmt.Errorf("aggregator: max record bytes %d leaves no room for data after a %d-byte partition key",
			opts.MaxRecordBytes, a.pkLen)
	}
	a.opts = opts
	a.metricsOn = opts.Metrics != nil && opts.Metrics.LinesTruncated != nil
	a.nslots = opts.Workers + 3
	a.free = make(chan *slot, a.nslots)
	a.work = make(chan *slot, a.nslots)
	a.order = make(chan *slot, 2*a.nslots)
	a.stop = make(chan struct{})
	a.nudge = make(chan struct{}, 1)
	a.timer = time.NewTimer(time.Hour)
	a.timer.Stop()

	a.wg.Add(opts.Workers + 2)
	for range opts.Workers {
		go a.hashLoop()
	}
	go a.deliverLoop()
	go a.ageLoop()
	return a, nil
}

// Add appends a copy of line, from source, whose end in that source is end. It seals the
// open aggregate first when line would not fit in it. A line that cannot fit in a record
// even on its own is truncated (and counted), never dropped.
func (a *Aggregator) Add(source uint32, line []byte, end int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	if errp := a.err.Load(); errp != nil {
		return *errp
	}
	if len(line) > a.limit {
		line = line[:a.limit]
		if a.metricsOn {
			a.opts.Metrics.LinesTruncated.Inc()
		}
	}
	rs := recordSize(len(line))
	if s := a.cur; s != nil && len(s.buf)+rs+checksumLen > a.limit {
		a.seal()
	}
	s := a.cur
	if s == nil {
		s = a.open()
	}

	// Record{partition_key_index: 0, data: line}, written by hand: this is the hot path.
	inner := recordInnerSize(len(line))
	s.buf = append(s.buf, tagRecords)
	s.buf = protowire.AppendVarint(s.buf, uint64(inner))
	s.buf = append(s.buf, tagPKIndex, 0, tagData)
	s.buf = protowire.AppendVarint(s.buf, uint64(len(line)))
	if s.n == 0 {
		s.first, s.firstLen = len(s.buf), len(line)
	}
	s.buf = append(s.buf, line...)
	s.n++
	s.mark(source, end)

	// A first line too big to share its record (it only fits plain) is sent on its own now.
	if !a.opts.Aggregate || s.n == a.opts.MaxRecords || len(s.buf)+checksumLen > a.limit {
		a.seal()
	}
	return nil
}

// recordSize is the encoded size of AggregatedRecord.records holding a line of n bytes.
func recordSize(n int) int {
	inner := recordInnerSize(n)
	return 1 + protowire.SizeVarint(uint64(inner)) + inner
}

// recordInnerSize is the encoded size of Record{partition_key_index: 0, data: n bytes}.
func recordInnerSize(n int) int {
	return 2 + 1 + protowire.SizeVarint(uint64(n)) + n
}

func (s *slot) mark(source uint32, end int64) {
	if s.lastSrc < len(s.marks) && s.marks[s.lastSrc].Source == source {
		s.marks[s.lastSrc].Offset = end
		return
	}
	if len(s.marks) == 1 && s.markIdx == nil {
		s.markIdx = make(map[uint32]int)
	}
	if s.markIdx != nil {
		if len(s.markIdx) == 0 {
			for i, m := range s.marks {
				s.markIdx[m.Source] = i
			}
		}
		if i, ok := s.markIdx[source]; ok {
			s.marks[i].Offset = end
			s.lastSrc = i
			return
		}
		s.markIdx[source] = len(s.marks)
	}
	s.lastSrc = len(s.marks)
	s.marks = append(s.marks, Mark{Source: source, Offset: end})
}

// open starts a new aggregate in a free slot. Called with mu held; blocks while every slot
// is in the pipeline.
func (a *Aggregator) open() *slot {
	var s *slot
	select {
	case s = <-a.free:
	default:
		if a.nalloc < a.nslots {
			a.nalloc++
			s = &slot{hashed: make(chan struct{}, 1)}
			if a.opts.Aggregate {
				// Room for the largest record: a lone line of limit bytes with its framing.
				s.buf = make([]byte, 0, a.opts.MaxRecordBytes+64)
			}
		} else {
			s = <-a.free
		}
	}
	s.pk = a.fixedPK
	if a.rng != nil {
		var k [randomKeyLen / 2]byte
		var b [randomKeyLen]byte
		binary.LittleEndian.PutUint64(k[:8], a.rng.Uint64())
		binary.LittleEndian.PutUint64(k[8:], a.rng.Uint64())
		hex.Encode(b[:], k[:])
		s.pk = string(b[:]) // the one allocation per record; it is small
	}
	s.buf = append(s.buf[:0], magic[:]...)
	s.buf = protowire.AppendTag(s.buf, fieldPKTable, protowire.BytesType)
	s.buf = protowire.AppendString(s.buf, s.pk)
	a.cur = s
	if a.timed() {
		a.openAt = time.Now()
		a.seenN = 0
		if a.hungry {
			a.timer.Reset(a.opts.IdleAge)
		} else {
			a.timer.Reset(a.opts.MaxAge)
		}
	}
	return s
}

// timed says whether aggregates wait for more lines at all (else each line is sealed at once).
func (a *Aggregator) timed() bool { return a.opts.Aggregate && a.opts.MaxRecords != 1 }

// Nudge tells the aggregator that its consumer is idle: nothing to send, nothing in flight.
// The open aggregate (or the next one) is then sealed as soon as it is IdleAge old instead of
// MaxAge, so that at low rates a line leaves within a few tens of milliseconds. It is not
// sealed early while lines arrive fast enough to fill it before MaxAge: at high rates records
// stay full. As the consumer is busy again once it has the record, early seals come at most
// once per round trip of the consumer, never in a tight loop of tiny records.
// Safe for concurrent use and never blocks (Add may hold the lock while it waits for Put:
// the age goroutine does the work); calling it again before a seal changes nothing.
func (a *Aggregator) Nudge() {
	select {
	case a.nudge <- struct{}{}:
	default:
	}
}

// nudged is Nudge's work, on the age goroutine.
func (a *Aggregator) nudged() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.hungry {
		return
	}
	a.hungry = true
	if a.cur != nil && a.timed() {
		a.checkAge(time.Now())
	}
}

// checkAge seals the open aggregate when it is due, or sets the timer for when it may be.
// Called with mu held and cur open.
func (a *Aggregator) checkAge(now time.Time) {
	age := now.Sub(a.openAt)
	left := a.opts.MaxAge - age
	if left <= 0 {
		a.seal()
		return
	}
	if a.hungry {
		if age < a.opts.IdleAge {
			left = a.opts.IdleAge - age
		} else {
			// Sealed unless lines come fast enough (on average since it opened) to fill it
			// before MaxAge, and some came since the last look: when they stop, it goes.
			fullAt := time.Duration(float64(a.opts.MaxAge) * float64(len(a.cur.buf)+checksumLen) / float64(a.limit))
			if fullAt <= age || a.cur.n == a.seenN {
				a.seal()
				return
			}
			a.seenN = a.cur.n
			left = min(left, a.opts.IdleAge)
		}
	}
	a.timer.Reset(left)
}

// seal sends the open aggregate down the pipeline. Called with mu held.
func (a *Aggregator) seal() {
	s := a.cur
	a.cur = nil
	a.hungry = false // the consumer gets a record: it is busy again
	s.rec = Record{PartitionKey: s.pk, UserRecords: s.n, Marks: s.marks}
	line := s.buf[s.first : s.first+s.firstLen]
	// A lone line goes plain, as the KPL does, unless it looks like an aggregate itself:
	// a consumer would try to decode it and fail, so it stays wrapped when it fits.
	s.needHash = s.n > 1 || (HasMagic(line) && len(s.buf)+checksumLen <= a.limit)
	if s.needHash {
		a.work <- s
	} else {
		s.rec.Data = line
	}
	a.order <- s
}

func (a *Aggregator) hashLoop() {
	defer a.wg.Done()
	for s := range a.work {
		sum := md5.Sum(s.buf[magicLen:])
		s.buf = append(s.buf, sum[:]...)
		s.rec.Data = s.buf
		s.hashed <- struct{}{}
	}
}

func (a *Aggregator) deliverLoop() {
	defer a.wg.Done()
	for s := range a.order {
		if s.barrier != nil {
			close(s.barrier)
			continue
		}
		if s.needHash {
			<-s.hashed
		}
		// After a failed Put, later records are dropped: the caller stops on the error and
		// their lines are read again after a restart (positions never passed them).
		if a.err.Load() == nil {
			if err := a.out.Put(&s.rec); err != nil {
				a.fail(err)
			}
		}
		s.rec = Record{}
		s.n = 0
		s.marks = s.marks[:0]
		clear(s.markIdx)
		s.lastSrc = 0
		a.free <- s
	}
}

// fail records the first error from Put. Kept out of deliverLoop so that the error
// variable there is not moved to the heap on every record.
func (a *Aggregator) fail(err error) {
	err = fmt.Errorf("aggregator: put record: %w", err)
	a.err.CompareAndSwap(nil, &err)
}

// ageLoop seals an aggregate MaxAge after its first line (or IdleAge after, see Nudge),
// whether or not Add is called.
func (a *Aggregator) ageLoop() {
	defer a.wg.Done()
	for {
		select {
		case <-a.stop:
			return
		case <-a.nudge:
			a.nudged()
			continue
		case <-a.timer.C:
		}
		a.mu.Lock()
		if a.cur != nil && !a.closed {
			// The timer may have fired for an aggregate that a full buffer already sealed.
			a.checkAge(time.Now())
		}
		a.mu.Unlock()
	}
}

// Flush seals the open aggregate and returns once Put has returned for every record sealed
// so far, with the first error Put returned, if any.
func (a *Aggregator) Flush() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	if a.cur != nil {
		a.seal()
	}
	done := make(chan struct{})
	a.order <- &slot{barrier: done}
	a.mu.Unlock()
	<-done
	if errp := a.err.Load(); errp != nil {
		return *errp
	}
	return nil
}

// Close seals the open aggregate, delivers everything and stops the goroutines. It returns
// the first error Put returned, if any. Calling it again returns the same.
func (a *Aggregator) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		if a.cur != nil {
			a.seal()
		}
		a.timer.Stop()
		close(a.stop)
		// Every sender holds mu and checks closed first, so nothing is sent after this.
		close(a.work)
		close(a.order)
		a.mu.Unlock()
		a.wg.Wait()
		if errp := a.err.Load(); errp != nil {
			a.closeErr = *errp
		}
	})
	return a.closeErr
}
