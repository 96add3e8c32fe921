package aggregator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

const (
	defaultMaxRecordBytes = 1 << 20
	defaultMaxAge         = time.Second
	defaultIdleAge        = 20 * time.Millisecond
	maxPartitionKeyLen    = 256 // Kinesis's limit, in Unicode characters; kept in bytes here to be safe

	randomKeyLen = 32 // 128 random bits in hex (keySource.next)

	// One-byte protobuf tags of the fields the packer writes by hand.
	tagRecords = byte(fieldRecords)<<3 | byte(protowire.BytesType)
	tagPKIndex = byte(fieldPKIndex)<<3 | byte(protowire.VarintType)
	tagData    = byte(fieldData)<<3 | byte(protowire.BytesType)
)

// Aggregator packs lines into Kinesis records, all of one aggregate under one partition key
// (random, host or fixed): one aggregate is open at a time.
//
// Concurrency: Add is called from one goroutine. An age timer goroutine seals the open
// aggregate when it gets old; the two share the open aggregate under a mutex held for the
// few tens of nanoseconds an append takes. Sealed aggregates are hashed by Workers
// goroutines (hashPipeline: at high rates, several side by side on MD5 lanes) and handed to
// Output.Put in sealing order by one delivery goroutine.
//
// Memory is bounded by Workers+2 buffers of MaxRecordBytes, allocated as they are first
// needed: one being filled, one being delivered, and a batch of Workers waiting for peers or
// being hashed (a third spare let hashing overlap one more Put, which measured no faster).
// With Options.Buffers they come from there, one per aggregate, and go to the Output with
// its Record: the slots then hold none between aggregates. When all slots are taken, Add
// blocks until Put returns (backpressure). If Put blocks forever, so do Add, Flush and
// Close: the owner of the Output must cancel it (its context) to unblock them.
type Aggregator struct {
	*core
	keys   keySource
	limit  int // MaxRecordBytes minus the partition key length: the cap on a record's Data
	nslots int

	// Guarded by core.mu.
	cur    *slot
	openAt time.Time
	nalloc int // slots allocated so far, at most nslots
	seenN  int // lines in the open aggregate when checkAge last let it fill on
	// skipped are the marks of lines skipped while no aggregate was open: the next aggregate
	// takes them, or a record of marks only at the next tick.
	skipped []Mark

	hash  *hashPipeline
	free  chan *slot // slots ready to fill
	order chan *slot // sealed records (and flush barriers) in sealing order
}

var _ packer = (*Aggregator)(nil)

// slot is one record buffer travelling filler → worker → deliverer → free list.
type slot struct {
	buf      []byte // magic | AggregatedRecord [| MD5, once hashed]
	base     []byte // Options.Buffers: the buffer buf lies in, Headroom bytes in; nil otherwise
	pk       string
	n        int // user records
	first    int // offset of the first line's bytes in buf, to send it plain
	firstLen int
	joined   int // bytes of the lines, for Options.JoinBytes
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
	return newAggregator(opts, out, osHostname)
}

func newAggregator(opts Options, out Output, hostname func() (string, error)) (*Aggregator, error) {
	c, err := newCore(opts, out)
	if err != nil {
		return nil, err
	}
	a := &Aggregator{core: c}
	if a.keys, err = newKeySource(c.opts.PartitionKey, hostname); err != nil {
		return nil, err
	}
	if a.keys.deterministic && c.opts.Aggregate {
		return nil, errors.New("aggregator: deterministic partition keys differ line by line: with aggregation, use NewSharded with DeterministicKey")
	}
	a.limit = MaxUserRecordBytes(c.opts.MaxRecordBytes, a.keys.maxLen())
	if a.limit < 1 {
		return nil, fmt.Errorf("aggregator: max record bytes %d leaves no room for data after a %d-byte partition key",
			c.opts.MaxRecordBytes, a.keys.maxLen())
	}
	if err := c.setLineLimit(a.limit); err != nil {
		return nil, err
	}
	a.hash = newHashPipeline(c.opts, 2) // every slot may be in the hash pipeline at once
	c.hash = a.hash
	a.opts.Workers = a.hash.workers
	a.nslots = a.hash.workers + 2
	a.free = make(chan *slot, a.nslots)
	a.order = make(chan *slot, 2*a.nslots)
	c.run(a)
	return a, nil
}

func (a *Aggregator) start() {
	a.hash.start(&a.wg)
	a.wg.Add(1)
	go a.deliverLoop()
}

// addLines is core.AddLines' loop, in the packer so that add is called directly. With the
// default packing (only size seals) the lines that fit the open aggregate are appended in a
// tight loop (appendRun); add takes the others: the first of an aggregate, one that seals,
// one to cut.
func (a *Aggregator) addLines(source uint32, lines [][]byte, ends []int64) error {
	ends = ends[:len(lines)]
	sizeOnly := a.opts.Aggregate && a.opts.MaxRecords == 0 && a.opts.JoinBytes == 0
	for i := 0; i < len(lines); {
		if errp := a.err.Load(); errp != nil {
			return *errp
		}
		if s := a.cur; sizeOnly && s != nil {
			if n := a.appendRun(s, lines[i:]); n > 0 {
				i += n
				s.mark(source, ends[i-1])
				continue
			}
		}
		line := lines[i]
		if len(line) > a.lineLimit {
			line = a.cut(line)
		}
		a.add(source, line, ends[i])
		i++
	}
	return nil
}

// appendRun appends to s, which holds a line already, the lines from the start of lines
// that fit it whole and need no cut, as add would one by one; it returns how many. Marks are
// the caller's.
func (a *Aggregator) appendRun(s *slot, lines [][]byte) int {
	buf := s.buf
	room := a.limit - checksumLen // len(buf) may grow to this, as in add
	k := 0
	for _, line := range lines {
		n := len(line)
		inner := recordInnerSize(n)
		rs := 1 + varintSize(inner) + inner
		if n > a.lineLimit || len(buf)+rs > room {
			break
		}
		// The record is written as in add, on purpose not through a shared function: it does
		// not inline, and the call cost 2–4 ns a line (BenchmarkPack200B, +2–3 %).
		at := len(buf)
		buf = buf[:at+rs] // a slot's capacity holds a record of limit bytes
		buf[at] = tagRecords
		at += 1 + putVarint(buf[at+1:], inner)
		buf[at], buf[at+1], buf[at+2] = tagPKIndex, 0, tagData
		at += 3 + putVarint(buf[at+3:], n)
		copy(buf[at:], line)
		k++
	}
	s.buf = buf
	s.n += k
	return k
}

// add packs line, sealing the open aggregate first when line would not fit in it. A line of
// up to limit bytes fits a record of its own, plain.
func (a *Aggregator) add(source uint32, line []byte, end int64) {
	n := len(line)
	inner := recordInnerSize(n)
	rs := 1 + varintSize(inner) + inner
	s := a.cur
	if s != nil && (len(s.buf)+rs+checksumLen > a.limit || (a.opts.JoinBytes > 0 && s.joined+n > a.opts.JoinBytes)) {
		a.seal(true)
		s = nil
	}
	if s == nil {
		s = a.open(line)
	}

	// Record{partition_key_index: 0, data: line}, written by hand: this is the hot path.
	buf := s.buf
	if cap(buf)-len(buf) < rs {
		buf = slices.Grow(buf, rs) // only without aggregation: full slots have room for any record
	}
	at := len(buf)
	buf = buf[:at+rs]
	buf[at] = tagRecords
	at += 1 + putVarint(buf[at+1:], inner)
	buf[at], buf[at+1], buf[at+2] = tagPKIndex, 0, tagData
	at += 3 + putVarint(buf[at+3:], n)
	if s.n == 0 {
		s.first, s.firstLen = at, n
	}
	copy(buf[at:], line)
	s.buf = buf
	s.n++
	s.joined += n
	if i := s.lastSrc; i < len(s.marks) && s.marks[i].Source == source {
		s.marks[i].Offset = end // s.mark's first case, which does not inline
	} else {
		s.markOther(source, end)
	}

	// A first line too big to share its record (it only fits plain) is sent on its own now.
	if !a.opts.Aggregate || s.n == a.opts.MaxRecords || len(buf)+checksumLen > a.limit || (a.opts.JoinBytes > 0 && s.joined >= a.opts.JoinBytes) {
		a.seal(true)
	}
}

// recordSize is the encoded size of AggregatedRecord.records holding a line of n bytes.
func recordSize(n int) int {
	inner := recordInnerSize(n)
	return 1 + varintSize(inner) + inner
}

// recordInnerSize is the encoded size of Record{partition_key_index: 0, data: n bytes}.
func recordInnerSize(n int) int {
	return 2 + 1 + varintSize(n) + n
}

// varintSize is protowire.SizeVarint for a length, with the sizes of lines (up to 16 KiB)
// first: two compares instead of a bit scan per line.
func varintSize(v int) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	}
	return protowire.SizeVarint(uint64(v))
}

// putVarint writes v as a protobuf varint at the start of b, which has room for it, and
// returns its size.
func putVarint(b []byte, v int) int {
	switch {
	case v < 1<<7:
		b[0] = byte(v)
		return 1
	case v < 1<<14:
		b[0], b[1] = byte(v)|0x80, byte(v>>7)
		return 2
	}
	return binary.PutUvarint(b, uint64(v))
}

// mark moves source's mark to end: the previous line's source is checked first, since lines
// come in runs of one source.
func (s *slot) mark(source uint32, end int64) {
	if i := s.lastSrc; i < len(s.marks) && s.marks[i].Source == source {
		s.marks[i].Offset = end
		return
	}
	s.markOther(source, end)
}

func (s *slot) markOther(source uint32, end int64) {
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

// skip moves source's mark past a line that is not packed: in the open aggregate, or kept
// for the next one (or a record of marks only, see tick).
func (a *Aggregator) skip(source uint32, end int64) {
	if a.cur != nil {
		a.cur.mark(source, end)
		return
	}
	for i := range a.skipped {
		if a.skipped[i].Source == source {
			a.skipped[i].Offset = end
			return
		}
	}
	if len(a.skipped) == 0 {
		a.timer.Reset(a.opts.MaxAge)
	}
	a.skipped = append(a.skipped, Mark{Source: source, Offset: end})
}

// sealSkipped delivers the kept marks of skipped lines in a record of their own, after
// every record sealed before. Called with mu held and no aggregate open.
func (a *Aggregator) sealSkipped() {
	s := a.slot()
	s.marks = append(s.marks[:0], a.skipped...)
	a.skipped = a.skipped[:0]
	s.n, s.needHash = 0, false
	s.rec = Record{Marks: s.marks}
	a.hash.releaseBatch() // delivered in order behind any aggregate waiting for peers
	a.order <- s
}

// open starts a new aggregate for line in a free slot. Called with mu held; blocks while
// every slot is in the pipeline.
func (a *Aggregator) open(line []byte) *slot {
	s := a.slot()
	s.pk = a.keys.next(line)
	s.joined = 0
	if a.opts.Buffers != nil && a.opts.Aggregate {
		s.base = a.newBuffer()
		s.buf = s.base[a.opts.Headroom:a.opts.Headroom]
	}
	s.buf = append(s.buf[:0], magic[:]...)
	s.buf = protowire.AppendTag(s.buf, fieldPKTable, protowire.BytesType)
	s.buf = protowire.AppendString(s.buf, s.pk)
	for _, m := range a.skipped {
		s.mark(m.Source, m.Offset) // the line's own mark comes after, so a source's grows
	}
	a.skipped = a.skipped[:0]
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

// newBuffer takes a buffer from Options.Buffers with room for the headroom and the largest
// record, as a slot's own buffer has.
func (a *Aggregator) newBuffer() []byte {
	n := a.opts.Headroom + a.opts.MaxRecordBytes + 64
	b := a.opts.Buffers.Get(n)
	if cap(b) < n {
		b = make([]byte, n) // a pool that broke its promise: do not write past its buffer
	}
	return b[:cap(b)]
}

// slot takes a free slot, allocating one while fewer than nslots exist. Called with mu
// held; blocks while every slot is in the pipeline.
func (a *Aggregator) slot() *slot {
	var s *slot
	select {
	case s = <-a.free:
	default:
		if a.nalloc < a.nslots {
			a.nalloc++
			s = &slot{hashed: make(chan struct{}, 1)}
			if a.opts.Aggregate && a.opts.Buffers == nil {
				// Room for the largest record: a lone line of limit bytes with its framing.
				s.buf = make([]byte, 0, a.opts.MaxRecordBytes+64)
			}
		} else {
			s = <-a.free
		}
	}
	return s
}

// nudged starts the early seal of the open aggregate, if any. At high rates it is not sealed
// early while lines arrive fast enough to fill it before MaxAge: records stay full.
func (a *Aggregator) nudged(now time.Time) {
	if a.cur != nil && a.timed() {
		a.checkAge(now)
	}
}

// tick is the age timer's work; marks of skipped lines kept while no aggregate was open
// leave now.
func (a *Aggregator) tick(now time.Time) {
	switch {
	case a.cur != nil:
		a.checkAge(now)
	case len(a.skipped) > 0:
		a.sealSkipped()
	}
}

// sealAll seals the open aggregate, or the marks of skipped lines.
func (a *Aggregator) sealAll() {
	switch {
	case a.cur != nil:
		a.seal(false)
	case len(a.skipped) > 0:
		a.sealSkipped()
	}
}

func (a *Aggregator) barrier(done chan struct{}) {
	a.hash.releaseBatch()
	a.order <- &slot{barrier: done}
}

func (a *Aggregator) shut() {
	a.hash.shut()
	close(a.order)
}

// checkAge seals the open aggregate when it is due, or sets the timer for when it may be.
// Called with mu held and cur open.
func (a *Aggregator) checkAge(now time.Time) {
	age := now.Sub(a.openAt)
	left := a.opts.MaxAge - age
	if left <= 0 {
		a.seal(false)
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
				a.seal(false)
				return
			}
			a.seenN = a.cur.n
			left = min(left, a.opts.IdleAge)
		}
	}
	a.timer.Reset(left)
}

// seal sends the open aggregate down the pipeline; full says it was sealed because the next
// line did not fit (it may wait for peers to be hashed with). Called with mu held.
func (a *Aggregator) seal(full bool) {
	s := a.cur
	a.cur = nil
	a.hungry = false // the consumer gets a record: it is busy again
	s.rec = Record{PartitionKey: s.pk, UserRecords: s.n, Marks: s.marks, Buffer: s.base}
	line := s.buf[s.first : s.first+s.firstLen]
	// A lone line goes plain, as the KPL does, unless it looks like an aggregate itself:
	// a consumer would try to decode it and fail, so it stays wrapped when it fits.
	s.needHash = s.n > 1 || (HasMagic(line) && len(s.buf)+checksumLen <= a.limit)
	if s.needHash {
		a.hash.submit(s, full)
	} else {
		s.rec.Data = line
		// Delivered in order behind any aggregate waiting for peers: let them go.
		a.hash.releaseBatch()
	}
	a.order <- s
}

func (s *slot) hash(sum summer) {
	s.buf = sum.Sum(s.buf, s.buf[magicLen:])
	s.rec.Data = s.buf
	s.hashed <- struct{}{}
}

func (a *Aggregator) deliverLoop() {
	defer a.wg.Done()
	for s := range a.order {
		if s.barrier != nil {
			close(s.barrier)
			continue
		}
		if s.needHash {
			waitHashed(a.hash, s, s.hashed)
		}
		a.put(&s.rec)
		if s.base != nil {
			s.base, s.buf = nil, nil // the Output's now (Record.Buffer)
		}
		s.rec = Record{}
		s.n = 0
		s.marks = s.marks[:0]
		clear(s.markIdx)
		s.lastSrc = 0
		a.free <- s
	}
}
