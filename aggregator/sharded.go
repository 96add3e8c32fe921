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
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinship-agent/kinship/internal/metrics"
	"google.golang.org/protobuf/encoding/protowire"
)

// ShardLocator tells which shard a partition key goes to: id names the shard and ehk is the
// explicit hash key that sends a record to it. ok is false while the stream's shards are not
// known; lines then share one aggregate and the shipper splits it before sending.
//
// Version changes whenever the shards do; the aggregator then seals every open aggregate
// before packing on, so that a key's lines packed for a parent shard cannot be overtaken by
// its lines packed for the child.
type ShardLocator interface {
	Locate(pk string) (id, ehk string, ok bool)
	Version() uint64
}

// KeyedOptions configure a Sharded aggregator.
type KeyedOptions struct {
	Options
	Key KeyFunc // the key of a line; required
	// Shards places keys on shards; nil packs each partition key on its own (valid for
	// consumers, but with many keys records do not fill).
	Shards ShardLocator
	// Fallback is the key of lines without one: "random" (a new random key per line, spread
	// over the shards), "host" or a fixed key ["random"].
	Fallback string
	// OpenBytes bounds the bytes of all open aggregates together; when a line would pass
	// it, the largest open aggregate is sealed [8 * MaxRecordBytes].
	OpenBytes int
}

// maxOpenAggregates bounds the open aggregates when keys outnumber shards (no shard map).
const maxOpenAggregates = 1024

// Sharded packs lines whose partition keys come from the lines themselves. Like the KPL, it
// keeps one open aggregate per shard and puts only lines bound for the same shard into one
// aggregate, whose ExplicitHashKey sends it to that shard: every user record of an
// aggregate then hashes into the shard it is read from (consumers drop the whole aggregate
// otherwise), lines of one key keep their order, and aggregates still fill up.
//
// Concurrency and backpressure as for Aggregator: Add from one goroutine; an age timer seals
// aggregates older than MaxAge; one delivery goroutine hashes (MD5) and hands sealed records
// to Output.Put in sealing order, so records of one shard reach the spool in order. At most
// a few sealed records wait for Put; Add blocks beyond that.
//
// Positions: a sealed record carries, per source, the offset before which every line of the
// source is in this record or an earlier one: the start of the source's first line that is
// still in another open aggregate, or the end of the source's last line when there is none.
// A source whose first line sits in another open aggregate and whose start is unknown (its
// first line since New) gets no mark until that aggregate is sealed.
type Sharded struct {
	out     Output
	opts    KeyedOptions
	metrics *metrics.Flow

	mu        sync.Mutex
	open      map[string]*bucket // by shard id ("" while the map is unknown)
	openBytes int
	lastEnd   map[uint32]int64 // per source: end of its last line added
	rng       *rand.ChaCha8
	fixed     string
	version   uint64 // of the shard map the open aggregates were packed with
	closed    bool
	timer     *time.Timer
	hungry    bool          // the consumer is idle: aggregates go at IdleAge (see Nudge)
	nudge     chan struct{} // Nudge → ageLoop

	sealed    chan *bucket // sealed records, in order, to the delivery goroutine
	free      chan *bucket
	err       atomic.Pointer[error]
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// bucket is one open (then sealed) aggregate of one shard.
type bucket struct {
	shard   string
	ehk     string
	keys    []string
	keyIdx  map[string]int
	recs    []byte // encoded AggregatedRecord.records entries
	tblSize int    // encoded size of the partition key table
	n       int
	first   []byte // the first line, to send it plain when it is alone
	starts  map[uint32]int64
	ends    map[uint32]int64
	openAt  time.Time
	out     []byte
	rec     Record
	barrier chan struct{}
}

func (b *bucket) size() int { return magicLen + b.tblSize + len(b.recs) + checksumLen }

// NewSharded returns a running Sharded aggregator delivering to out.
func NewSharded(opts KeyedOptions, out Output) (*Sharded, error) {
	if out == nil {
		return nil, errors.New("aggregator: nil output")
	}
	if opts.Key == nil {
		return nil, errors.New("aggregator: keyed aggregation without a key function")
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = defaultMaxRecordBytes
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = defaultMaxAge
	}
	if opts.MaxRecordBytes <= 2*maxPartitionKeyLen+64 {
		return nil, fmt.Errorf("aggregator: max record bytes %d leaves no room for data with keys of up to %d bytes",
			opts.MaxRecordBytes, maxPartitionKeyLen)
	}
	if opts.IdleAge <= 0 {
		opts.IdleAge = defaultIdleAge
	}
	opts.IdleAge = min(opts.IdleAge, opts.MaxAge)
	if opts.OpenBytes <= 0 {
		opts.OpenBytes = 8 * opts.MaxRecordBytes
	}
	a := &Sharded{out: out, opts: opts, metrics: opts.Metrics,
		open: map[string]*bucket{}, lastEnd: map[uint32]int64{},
		sealed: make(chan *bucket, 4), free: make(chan *bucket, 8), stop: make(chan struct{}),
		nudge: make(chan struct{}, 1)}
	switch opts.Fallback {
	case "", "random":
		var seed [32]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("aggregator: seed random partition keys: %w", err)
		}
		a.rng = rand.NewChaCha8(seed)
	case "host":
		h, err := os.Hostname()
		if err != nil || h == "" {
			return nil, fmt.Errorf("aggregator: fallback partition key from host name: %v", err)
		}
		a.fixed = cleanKey([]byte(h))
	default:
		a.fixed = cleanKey([]byte(opts.Fallback))
	}
	a.timer = time.NewTimer(time.Hour)
	a.timer.Stop()
	a.wg.Add(2)
	go a.deliverLoop()
	go a.ageLoop()
	return a, nil
}

// Add appends a copy of line, from source, whose end in that source is end.
func (a *Sharded) Add(source uint32, line []byte, end int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	if errp := a.err.Load(); errp != nil {
		return *errp
	}
	pk := a.key(line)
	shard, ehk := "", ""
	if a.opts.Shards != nil {
		if v := a.opts.Shards.Version(); v != a.version {
			a.sealAll()
			a.version = v
		}
		if id, e, ok := a.opts.Shards.Locate(pk); ok {
			shard, ehk = id, e
		}
	} else {
		shard = pk // no map: aggregates of one key each (still valid for consumers)
	}
	// The largest this record may be: the outer partition key (up to maxPartitionKeyLen) and
	// a new key table entry count against MaxRecordBytes.
	limit := a.opts.MaxRecordBytes - maxPartitionKeyLen
	keyCost := 1 + protowire.SizeVarint(uint64(len(pk))) + len(pk)
	if max := limit - magicLen - checksumLen - keyCost - 16; len(line) > max {
		line = line[:max]
		if a.metrics != nil && a.metrics.LinesTruncated != nil {
			a.metrics.LinesTruncated.Inc()
		}
	}
	b := a.open[shard]
	if b != nil {
		grow := recordSizeIdx(len(b.keys), len(line))
		if _, known := b.keyIdx[pk]; !known {
			grow += keyCost
		}
		if b.size()+grow > limit {
			a.seal(b)
			b = nil
		}
	}
	if b == nil {
		b = a.newBucket(shard, ehk)
	}
	idx, known := b.keyIdx[pk]
	if !known {
		idx = len(b.keys)
		b.keyIdx[pk] = idx
		b.keys = append(b.keys, pk)
		b.tblSize += keyCost
		a.openBytes += keyCost
	}
	before := len(b.recs)
	inner := 1 + protowire.SizeVarint(uint64(idx)) + 1 + protowire.SizeVarint(uint64(len(line))) + len(line)
	b.recs = append(b.recs, tagRecords)
	b.recs = protowire.AppendVarint(b.recs, uint64(inner))
	b.recs = append(b.recs, tagPKIndex)
	b.recs = protowire.AppendVarint(b.recs, uint64(idx))
	b.recs = append(b.recs, tagData)
	b.recs = protowire.AppendVarint(b.recs, uint64(len(line)))
	if b.n == 0 {
		b.first = append(b.first[:0], line...)
	}
	b.recs = append(b.recs, line...)
	a.openBytes += len(b.recs) - before
	b.n++
	if _, ok := b.ends[source]; !ok {
		start, known := a.lastEnd[source]
		if !known {
			start = -1
		}
		b.starts[source] = start
	}
	b.ends[source] = end
	a.lastEnd[source] = end

	if !a.opts.Aggregate || b.n == a.opts.MaxRecords {
		a.seal(b)
	}
	for len(a.open) > maxOpenAggregates {
		for _, o := range a.open {
			if o != b {
				a.seal(o)
				break
			}
		}
	}
	for a.openBytes > a.opts.OpenBytes {
		var big *bucket
		for _, o := range a.open {
			if big == nil || len(o.recs) > len(big.recs) {
				big = o
			}
		}
		if big == nil {
			break
		}
		a.seal(big)
	}
	return nil
}

// key returns the line's partition key, or the fallback.
func (a *Sharded) key(line []byte) string {
	if k, ok := a.opts.Key(line); ok {
		return cleanKey(k)
	}
	if a.metrics != nil && a.metrics.PartitionKeyMissing != nil {
		a.metrics.PartitionKeyMissing.Inc()
	}
	if a.rng == nil {
		return a.fixed
	}
	var k [randomKeyLen / 2]byte
	var b [randomKeyLen]byte
	binary.LittleEndian.PutUint64(k[:8], a.rng.Uint64())
	binary.LittleEndian.PutUint64(k[8:], a.rng.Uint64())
	hex.Encode(b[:], k[:])
	return string(b[:])
}

// recordSizeIdx is the encoded size of a records entry with key index idx and n data bytes.
func recordSizeIdx(idx, n int) int {
	inner := 1 + protowire.SizeVarint(uint64(idx)) + 1 + protowire.SizeVarint(uint64(n)) + n
	return 1 + protowire.SizeVarint(uint64(inner)) + inner
}

func (a *Sharded) newBucket(shard, ehk string) *bucket {
	var b *bucket
	select {
	case b = <-a.free:
	default:
		b = &bucket{keyIdx: map[string]int{}, starts: map[uint32]int64{}, ends: map[uint32]int64{}}
	}
	b.shard, b.ehk = shard, ehk
	b.openAt = time.Now()
	if len(a.open) == 0 && a.opts.Aggregate && a.opts.MaxRecords != 1 {
		a.timer.Reset(a.maxAge())
	}
	a.open[shard] = b
	return b
}

// seal takes b out of the open set, computes its marks and queues it for delivery. Called
// with mu held; blocks while the delivery queue is full (backpressure).
func (a *Sharded) seal(b *bucket) {
	delete(a.open, b.shard)
	a.openBytes -= b.tblSize + len(b.recs)
	marks := make([]Mark, 0, len(b.ends))
	for src := range b.ends {
		// Every line of src read so far is in this record or an earlier one, except those
		// in aggregates still open.
		off, ok := a.lastEnd[src], true
		for _, o := range a.open {
			if s, in := o.starts[src]; in {
				if s < 0 {
					ok = false
					break
				}
				off = min(off, s)
			}
		}
		if ok {
			marks = append(marks, Mark{Source: src, Offset: off})
		}
	}
	b.rec = Record{PartitionKey: b.keys[0], UserRecords: b.n, Marks: marks}
	a.sealed <- b
}

func (a *Sharded) deliverLoop() {
	defer a.wg.Done()
	for b := range a.sealed {
		if b.barrier != nil {
			close(b.barrier)
			continue
		}
		if b.n == 1 && !HasMagic(b.first) {
			b.rec.Data = b.first // a lone line goes plain, routed by its own key
		} else {
			b.rec.ExplicitHashKey = b.ehk
			b.out = append(b.out[:0], magic[:]...)
			for _, k := range b.keys {
				b.out = protowire.AppendTag(b.out, fieldPKTable, protowire.BytesType)
				b.out = protowire.AppendString(b.out, k)
			}
			b.out = append(b.out, b.recs...)
			sum := md5.Sum(b.out[magicLen:])
			b.out = append(b.out, sum[:]...)
			b.rec.Data = b.out
		}
		if a.err.Load() == nil {
			if err := a.out.Put(&b.rec); err != nil {
				err = fmt.Errorf("aggregator: put record: %w", err)
				a.err.CompareAndSwap(nil, &err)
			}
		}
		b.rec = Record{}
		b.keys = b.keys[:0]
		clear(b.keyIdx)
		clear(b.starts)
		clear(b.ends)
		b.recs = b.recs[:0]
		b.tblSize, b.n = 0, 0
		// Buffers that grew for a full aggregate are kept: the free list is bounded.
		select {
		case a.free <- b:
		default:
		}
	}
}

// Nudge tells the aggregator that its consumer is idle: open aggregates are then sealed once
// they are IdleAge old instead of MaxAge, so a line leaves within tens of milliseconds at low
// rates. Unlike Aggregator's, there is no fill-rate rule: with one aggregate per shard open,
// an idle shipper at a medium rate gets smaller records sooner, which is the trade taken.
// It never blocks.
func (a *Sharded) Nudge() {
	select {
	case a.nudge <- struct{}{}:
	default:
	}
}

// maxAge is how old an open aggregate may get now. Called with mu held.
func (a *Sharded) maxAge() time.Duration {
	if a.hungry {
		return a.opts.IdleAge
	}
	return a.opts.MaxAge
}

// ageLoop seals every aggregate older than MaxAge (IdleAge after a Nudge).
func (a *Sharded) ageLoop() {
	defer a.wg.Done()
	for {
		select {
		case <-a.stop:
			return
		case <-a.timer.C:
		case <-a.nudge:
			a.mu.Lock()
			a.hungry = true
			a.mu.Unlock()
		}
		a.mu.Lock()
		if !a.closed {
			now := time.Now()
			due := a.maxAge()
			var next time.Duration
			sealed := false
			for _, b := range a.open {
				if left := due - now.Sub(b.openAt); left <= 0 {
					a.seal(b)
					sealed = true
				} else if next == 0 || left < next {
					next = left
				}
			}
			if sealed {
				a.hungry = false // the consumer gets records: it is busy again
			}
			if next > 0 {
				a.timer.Reset(next)
			}
		}
		a.mu.Unlock()
	}
}

// sealAll seals every open aggregate, oldest first so that sources' marks only grow.
func (a *Sharded) sealAll() {
	for len(a.open) > 0 {
		var old *bucket
		for _, b := range a.open {
			if old == nil || b.openAt.Before(old.openAt) {
				old = b
			}
		}
		a.seal(old)
	}
}

// Flush seals every open aggregate and returns once Put returned for all of them.
func (a *Sharded) Flush() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	a.sealAll()
	done := make(chan struct{})
	a.sealed <- &bucket{barrier: done}
	a.mu.Unlock()
	<-done
	if errp := a.err.Load(); errp != nil {
		return *errp
	}
	return nil
}

// Close seals everything, delivers it and stops. It returns the first error Put returned.
func (a *Sharded) Close() error {
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.sealAll()
		a.closed = true
		a.timer.Stop()
		close(a.stop)
		close(a.sealed)
		a.mu.Unlock()
		a.wg.Wait()
		if errp := a.err.Load(); errp != nil {
			a.closeErr = *errp
		}
	})
	return a.closeErr
}

// EncodeUserRecords appends an aggregate of recs to dst, with key tables built from the
// records' own keys. The shipper uses it to re-split an aggregate across shards.
func EncodeUserRecords(dst []byte, recs []UserRecord) []byte { return encodeUserRecords(dst, recs) }
