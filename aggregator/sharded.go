package aggregator

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// ShardLocator tells which shard a partition key goes to: id names the shard and ehk is the
// explicit hash key that sends a record to it, under the shard map of version version. ok is
// false while the stream's shards are not known; lines then share one aggregate and the
// shipper splits it before sending. internal/shardmap's Map is the one implementation.
//
// The version changes whenever the shards do; the aggregator then seals every open aggregate
// before packing on, so that a key's lines packed for a parent shard cannot be overtaken by
// its lines packed for the child. Shard and version come from one call, so that they are
// read from the same map: a refresh between two calls would pack a line for the child shard
// while the parent's aggregate, holding the key's earlier lines, stays open and may be
// sealed after it.
type ShardLocator interface {
	Locate(pk string) (id, ehk string, version uint64, ok bool)
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
// aggregates older than MaxAge; Workers goroutines build and hash (MD5) sealed aggregates
// (hashPipeline: at high rates, several side by side on MD5 lanes), and one delivery
// goroutine hands them to Output.Put in sealing order, so records of one shard reach the
// spool in order. At most Workers+2 sealed records wait for Put; Add blocks beyond that.
// Memory: open aggregates up to OpenBytes, and each sealed one its lines, which become the
// record in place (a key table larger than bucketRoom makes a copy).
//
// Positions: a sealed record carries, per source, the offset before which every line of the
// source is in this record or an earlier one: the start of the source's first line that is
// still in another open aggregate, or the end of the source's last line when there is none.
// A source whose first line sits in another open aggregate and whose start is unknown (its
// first line since New) gets no mark until that aggregate is sealed.
type Sharded struct {
	*core
	key   KeyFunc
	shard ShardLocator
	keys  keySource // of lines without a key of their own

	// Guarded by core.mu.
	open      map[string]*bucket // by shard id ("" while the map is unknown)
	openBytes int
	lastEnd   map[uint32]int64 // per source: end of its last line added
	version   uint64           // of the shard map the open aggregates were packed with
	openBound int              // KeyedOptions.OpenBytes
	// skipped are sources whose last line was skipped while no open aggregate held any of
	// their lines: their marks leave in a record of marks only at the next tick.
	skipped map[uint32]struct{}

	hash   *hashPipeline
	sealed chan *bucket // sealed records, in order, to the delivery goroutine
	free   chan *bucket
}

var _ packer = (*Sharded)(nil)

// bucket is one open (then sealed) aggregate of one shard.
type bucket struct {
	shard     string
	ehk       string
	keys      []string
	keyIdx    map[string]int
	buf       []byte // bucketRoom bytes of room, then recs
	recs      []byte // encoded AggregatedRecord.records entries: buf[bucketRoom:]
	tblSize   int    // encoded size of the partition key table
	n         int
	first     []byte // the first line, to send it plain when it is alone
	starts    map[uint32]int64
	ends      map[uint32]int64
	openAt    time.Time
	out       []byte // the record, when its key table does not fit the room before recs
	rec       Record
	plain     bool          // a lone line, sent as it is: not built, not hashed
	hashed    chan struct{} // the hash worker → the delivery goroutine: out is ready
	barrier   chan struct{}
	onlyMarks bool // not an aggregate: the marks of skipped lines (rec.Marks)
}

func (b *bucket) size() int { return magicLen + b.tblSize + len(b.recs) + checksumLen }

// bucketRoom is kept free before a bucket's lines so that a hash worker writes the magic and
// the key table there and the record is built in place (no second buffer, no copy of the
// lines): enough for one key of the largest size, and for a few dozen short ones.
const bucketRoom = 1 << 10

// reserve makes room for n more bytes of lines and the checksum after them, keeping the
// room before them; capped at the largest record, as Add never packs beyond it.
func (b *bucket) reserve(n, maxRecordBytes int) {
	need := len(b.recs) + n + checksumLen
	if cap(b.recs) >= need {
		return
	}
	c := max(min(2*cap(b.recs), maxRecordBytes+checksumLen), need, 4<<10)
	buf := make([]byte, bucketRoom+len(b.recs), bucketRoom+c)
	copy(buf[bucketRoom:], b.recs)
	b.buf, b.recs = buf, buf[bucketRoom:]
}

// NewSharded returns a running Sharded aggregator delivering to out.
func NewSharded(opts KeyedOptions, out Output) (*Sharded, error) {
	return newSharded(opts, out, osHostname)
}

func newSharded(opts KeyedOptions, out Output, hostname func() (string, error)) (*Sharded, error) {
	if opts.Key == nil {
		return nil, errors.New("aggregator: keyed aggregation without a key function")
	}
	c, err := newCore(opts.Options, out)
	if err != nil {
		return nil, err
	}
	if c.opts.MaxRecordBytes <= 2*maxPartitionKeyLen+64 {
		return nil, fmt.Errorf("aggregator: max record bytes %d leaves no room for data with keys of up to %d bytes",
			c.opts.MaxRecordBytes, maxPartitionKeyLen)
	}
	a := &Sharded{core: c, key: opts.Key, shard: opts.Shards, openBound: opts.OpenBytes,
		open: map[string]*bucket{}, lastEnd: map[uint32]int64{}, skipped: map[uint32]struct{}{}, free: make(chan *bucket, 8)}
	if a.openBound <= 0 {
		a.openBound = 8 * c.opts.MaxRecordBytes
	}
	if a.keys, err = newKeySource(opts.Fallback, hostname); err != nil {
		return nil, fmt.Errorf("%w (the fallback of keys taken from the lines)", err)
	}
	if err := c.setLineLimit(MaxKeyedUserRecordBytes(c.opts.MaxRecordBytes)); err != nil {
		return nil, err
	}
	// Last: it may start an MD5 server, which nothing would close after an error.
	a.hash = newHashPipeline(c.opts, 4) // sealed, the one being delivered, the one being sealed
	c.hash = a.hash
	a.sealed = make(chan *bucket, a.hash.workers+2)
	c.run(a)
	return a, nil
}

func (a *Sharded) start() {
	a.hash.start(&a.wg)
	a.wg.Add(1)
	go a.deliverLoop()
}

// addLines is core.AddLines' loop, in the packer so that add is called directly.
func (a *Sharded) addLines(source uint32, lines [][]byte, ends []int64) error {
	ends = ends[:len(lines)]
	for i, line := range lines {
		if errp := a.err.Load(); errp != nil {
			return *errp
		}
		if len(line) > a.lineLimit {
			line = a.cut(line)
		}
		a.add(source, line, ends[i])
	}
	return nil
}

// add packs line into the open aggregate of its shard.
func (a *Sharded) add(source uint32, line []byte, end int64) {
	pk := a.lineKey(line)
	shard, ehk := "", ""
	if a.shard != nil {
		id, e, v, ok := a.shard.Locate(pk)
		if v != a.version {
			a.sealAll()
			a.version = v
		}
		if ok {
			shard, ehk = id, e
		}
	} else {
		shard = pk // no map: aggregates of one key each (still valid for consumers)
	}
	// The largest this record may be: the outer partition key (up to maxPartitionKeyLen) and
	// a new key table entry count against MaxRecordBytes. core.Add cut line to what fits
	// (MaxKeyedUserRecordBytes).
	limit := a.opts.MaxRecordBytes - maxPartitionKeyLen
	keyCost := 1 + protowire.SizeVarint(uint64(len(pk))) + len(pk)
	b := a.open[shard]
	idx, known := 0, false
	if b != nil {
		idx, known = b.keyIdx[pk]
		grow := recordSizeIdx(len(b.keys), len(line))
		if !known {
			grow += keyCost
		}
		if b.size()+grow > limit {
			a.seal(b, true)
			b, known = nil, false
		}
	}
	if b == nil {
		b = a.newBucket(shard, ehk)
	}
	if !known {
		idx = len(b.keys)
		b.keyIdx[pk] = idx
		b.keys = append(b.keys, pk)
		b.tblSize += keyCost
		a.openBytes += keyCost
	}
	before := len(b.recs)
	inner := 1 + protowire.SizeVarint(uint64(idx)) + 1 + protowire.SizeVarint(uint64(len(line))) + len(line)
	b.reserve(1+protowire.SizeVarint(uint64(inner))+inner, a.opts.MaxRecordBytes)
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
		a.seal(b, true)
	}
	for len(a.open) > maxOpenAggregates {
		for _, o := range a.open {
			if o != b {
				a.seal(o, true)
				break
			}
		}
	}
	for a.openBytes > a.openBound {
		var big *bucket
		for _, o := range a.open {
			if big == nil || len(o.recs) > len(big.recs) {
				big = o
			}
		}
		if big == nil {
			break
		}
		a.seal(big, true)
	}
}

// lineKey returns the line's partition key, or the fallback.
func (a *Sharded) lineKey(line []byte) string {
	if k, ok := a.key(line); ok {
		return cleanKey(k)
	}
	a.opts.Metrics.PartitionKeyMissing.Inc()
	return a.keys.next(line)
}

// skip moves source past a line that is not packed: an open aggregate holding the source's
// lines carries the new mark when sealed; otherwise a record of marks only does (tick).
func (a *Sharded) skip(source uint32, end int64) {
	a.lastEnd[source] = end
	if a.holds(source) {
		return
	}
	if len(a.open) == 0 && len(a.skipped) == 0 {
		a.timer.Reset(a.maxAge())
	}
	a.skipped[source] = struct{}{}
}

// holds reports whether an open aggregate has lines of source.
func (a *Sharded) holds(source uint32) bool {
	for _, b := range a.open {
		if _, in := b.ends[source]; in {
			return true
		}
	}
	return false
}

// sealSkipped delivers the marks of skipped sources that no open aggregate holds lines of
// (those are carried by that aggregate's seal). Every line of such a source before its last
// end is in a sealed record, so the mark is that end.
func (a *Sharded) sealSkipped() {
	if len(a.skipped) == 0 {
		return
	}
	var marks []Mark
	for src := range a.skipped {
		if !a.holds(src) {
			marks = append(marks, Mark{Source: src, Offset: a.lastEnd[src]})
		}
	}
	clear(a.skipped)
	if len(marks) > 0 {
		a.hash.releaseBatch() // delivered in order behind any aggregate waiting for peers
		a.sealed <- &bucket{onlyMarks: true, rec: Record{Marks: marks}}
	}
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
		b = &bucket{keyIdx: map[string]int{}, starts: map[uint32]int64{}, ends: map[uint32]int64{},
			hashed: make(chan struct{}, 1)}
	}
	b.shard, b.ehk = shard, ehk
	b.openAt = time.Now()
	if len(a.open) == 0 && a.opts.Aggregate && a.opts.MaxRecords != 1 {
		a.timer.Reset(a.maxAge())
	}
	a.open[shard] = b
	return b
}

// seal takes b out of the open set, computes its marks and queues it for hashing and
// delivery; full says it was sealed for room, not age (see hashPipeline). Called with mu
// held; blocks while the delivery queue is full (backpressure).
func (a *Sharded) seal(b *bucket, full bool) {
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
	b.plain = b.n == 1 && !HasMagic(b.first)
	if b.plain {
		b.rec.Data = b.first // a lone line goes plain, routed by its own key
		// Delivered in order behind any aggregate waiting for peers: let them go.
		a.hash.releaseBatch()
	} else {
		b.rec.ExplicitHashKey = b.ehk
		a.hash.submit(b, full)
	}
	a.sealed <- b
}

// hash builds the record and appends its MD5 (a hash worker, while the packer fills on).
// The magic and key table go in the room before the lines when they fit (the slice's
// capacity ends at the lines, so a table larger than counted cannot overwrite them), else
// the record is copied out.
func (b *bucket) hash(sum summer) {
	head := magicLen + b.tblSize
	if head <= bucketRoom && cap(b.recs)-len(b.recs) >= checksumLen {
		at := bucketRoom - head
		rec := appendHead(b.buf[at:at:bucketRoom], b.keys)
		if len(rec) == head && &rec[0] == &b.buf[at] {
			rec = b.buf[at : bucketRoom+len(b.recs)]
			b.rec.Data = sum.Sum(rec, rec[magicLen:])
			b.hashed <- struct{}{}
			return
		}
	}
	b.out = append(appendHead(b.out[:0], b.keys), b.recs...)
	b.out = sum.Sum(b.out, b.out[magicLen:])
	b.rec.Data = b.out
	b.hashed <- struct{}{}
}

// appendHead appends the magic and the partition key table of keys.
func appendHead(dst []byte, keys []string) []byte {
	dst = append(dst, magic[:]...)
	for _, k := range keys {
		dst = protowire.AppendTag(dst, fieldPKTable, protowire.BytesType)
		dst = protowire.AppendString(dst, k)
	}
	return dst
}

func (a *Sharded) deliverLoop() {
	defer a.wg.Done()
	for b := range a.sealed {
		if b.barrier != nil {
			close(b.barrier)
			continue
		}
		if b.onlyMarks {
			a.put(&b.rec)
			continue
		}
		if !b.plain {
			waitHashed(a.hash, b, b.hashed)
		}
		a.put(&b.rec)
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

// nudged seals what is IdleAge old now. Unlike Aggregator's, there is no fill-rate rule:
// with one aggregate per shard open, an idle shipper at a medium rate gets smaller records
// sooner, which is the trade taken.
func (a *Sharded) nudged(now time.Time) { a.tick(now) }

// maxAge is how old an open aggregate may get now. Called with mu held.
func (a *Sharded) maxAge() time.Duration {
	if a.hungry {
		return a.opts.IdleAge
	}
	return a.opts.MaxAge
}

// tick seals every aggregate older than MaxAge (IdleAge after a Nudge).
func (a *Sharded) tick(now time.Time) {
	due := a.maxAge()
	var next time.Duration
	sealed := false
	for _, b := range a.open {
		if left := due - now.Sub(b.openAt); left <= 0 {
			a.seal(b, false)
			sealed = true
		} else if next == 0 || left < next {
			next = left
		}
	}
	if sealed {
		a.hungry = false // the consumer gets records: it is busy again
	}
	a.sealSkipped()
	if next > 0 {
		a.timer.Reset(next)
	}
}

func (a *Sharded) barrier(done chan struct{}) {
	a.hash.releaseBatch()
	a.sealed <- &bucket{barrier: done}
}

func (a *Sharded) shut() {
	a.hash.shut()
	close(a.sealed)
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
		a.seal(old, false)
	}
	a.sealSkipped()
}

// EncodeUserRecords appends an aggregate of recs to dst, with key tables built from the
// records' own keys. The shipper uses it to re-split an aggregate across shards.
func EncodeUserRecords(dst []byte, recs []UserRecord) []byte { return encodeUserRecords(dst, recs) }
