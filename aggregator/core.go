package aggregator

import (
	"crypto/md5"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// packer is a packing strategy: which open aggregate a line goes into, when aggregates are
// sealed, and how sealed ones reach the Output. The core owns everything else: options, the
// lock, the lifecycle (closed, the first Put error, Close, Flush), the age timer and its
// goroutine, and Nudge. Every method but start is called with core.mu held.
type packer interface {
	start()                                                     // starts the delivery goroutines, counted in core.wg
	add(source uint32, line []byte, end int64)                  // packs line (never longer than core.lineLimit)
	addLines(source uint32, lines [][]byte, ends []int64) error // AddLines' loop: checks errors, cuts, adds
	skip(source uint32, end int64)                              // moves source's mark past a line that is not packed
	sealAll()                                                   // seals every open aggregate, in an order that keeps marks growing
	barrier(done chan struct{})                                 // done is closed once Put returned for everything sealed so far
	shut()                                                      // after sealAll at Close: no more records; let the delivery goroutines end
	tick(now time.Time)                                         // the age timer fired: seal what is due, set the timer for the rest
	nudged(now time.Time)                                       // the consumer just became idle (core.hungry was false)
}

// core is what both packers share. Concurrency: Add from one goroutine; the age goroutine
// (ageLoop) seals old aggregates; both hold mu while they touch open aggregates. mu is held
// while a seal waits for room in the delivery pipeline (backpressure reaches Add that way).
type core struct {
	out  Output
	opts Options // defaults applied
	p    packer
	hash *hashPipeline // the packer's; its MD5 server (if it started one) is closed last

	mu     sync.Mutex
	closed bool
	hungry bool // Nudge was called and no aggregate has been sealed since (per strategy)
	timer  *time.Timer

	lineLimit int // the longest line that fits a record: longer ones are cut (MaxLineBytes)
	log       *slog.Logger
	cutBuf    []byte // a cut line with its terminator, until the packer copied it
	cutLogged time.Time
	cutSince  int // lines cut since cutLogged

	err       atomic.Pointer[error] // the first error from Put; sticky
	stop      chan struct{}
	nudge     chan struct{} // Nudge → ageLoop
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// withDefaults checks opts and fills in the defaults documented on Options.
func (opts Options) withDefaults() (Options, error) {
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = defaultMaxRecordBytes
	}
	if opts.MaxRecords < 0 {
		return opts, fmt.Errorf("aggregator: max records %d is negative", opts.MaxRecords)
	}
	if opts.Headroom < 0 {
		return opts, fmt.Errorf("aggregator: headroom %d is negative", opts.Headroom)
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = defaultMaxAge
	}
	if opts.IdleAge <= 0 {
		opts.IdleAge = defaultIdleAge
	}
	opts.IdleAge = min(opts.IdleAge, opts.MaxAge)
	opts.Metrics = opts.Metrics.withDefaults()
	return opts, nil
}

func newCore(opts Options, out Output) (*core, error) {
	if out == nil {
		return nil, errors.New("aggregator: nil output")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &core{out: out, opts: opts, log: opts.Logger, stop: make(chan struct{}), nudge: make(chan struct{}, 1)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.timer = time.NewTimer(time.Hour)
	c.timer.Stop()
	return c, nil
}

// setLineLimit sets the longest line the packer takes whole; the terminator must leave room
// for data.
func (c *core) setLineLimit(n int) error {
	if t := len(c.opts.TruncatedTerminator); t >= n {
		return fmt.Errorf("aggregator: truncated record terminator of %d bytes leaves no room for data in lines of at most %d bytes", t, n)
	}
	c.lineLimit = n
	return nil
}

// MaxLineBytes is the longest line that fits a record whole: longer lines are cut to it,
// ending with TruncatedTerminator. The flow gives it to the tailer as its line limit (when
// it is below max_line_bytes), so that the one cut is the tailer's.
func (c *core) MaxLineBytes() int { return c.lineLimit }

// MaxUserRecordBytes is how many data bytes one Kinesis record of maxRecordBytes holds next
// to a partition key of keyLen bytes (a random key is RandomKeyBytes long): Kinesis counts
// data and key against the limit. It is the longest line an Aggregator packs whole (alone,
// a line goes plain).
func MaxUserRecordBytes(maxRecordBytes, keyLen int) int { return maxRecordBytes - keyLen }

// MaxKeyedUserRecordBytes is the longest line a Sharded aggregator packs whole in records of
// maxRecordBytes, whatever its key: room is kept for a key of the largest size twice (the
// record's partition key and the key table entry) and the aggregate's framing.
func MaxKeyedUserRecordBytes(maxRecordBytes int) int {
	const maxKeyEntry = 1 + 2 + maxPartitionKeyLen // tag, length, key
	return maxRecordBytes - maxPartitionKeyLen - magicLen - checksumLen - maxKeyEntry - 16
}

// RandomKeyBytes is the length of a random partition key.
const RandomKeyBytes = randomKeyLen

// cutLogEvery spaces the warnings that lines are being cut.
const cutLogEvery = time.Minute

// cut shortens a line that does not fit a record to lineLimit, the terminator included;
// counted, and logged at most once per cutLogEvery. The result is valid until the next cut.
func (c *core) cut(line []byte) []byte {
	term := c.opts.TruncatedTerminator
	c.cutBuf = append(append(c.cutBuf[:0], line[:c.lineLimit-len(term)]...), term...)
	c.opts.Metrics.LinesTruncated.Inc()
	c.cutSince++
	if now := time.Now(); now.Sub(c.cutLogged) >= cutLogEvery {
		c.log.Warn("aggregator: lines longer than a record holds are being cut", "limit", c.lineLimit, "lines_cut", c.cutSince)
		c.cutLogged, c.cutSince = now, 0
	}
	return c.cutBuf
}

// run starts the strategy's goroutines and the age goroutine.
func (c *core) run(p packer) {
	c.p = p
	p.start()
	c.wg.Add(1)
	go c.ageLoop()
}

// Add appends a copy of line, from source, whose end in that source is end. A line that
// cannot fit in a record even on its own is cut (counted, logged), never dropped.
func (c *core) Add(source uint32, line []byte, end int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if errp := c.err.Load(); errp != nil {
		return *errp
	}
	if len(line) > c.lineLimit {
		line = c.cut(line)
	}
	c.p.add(source, line, end)
	return nil
}

// AddLines adds lines[i], whose end in source is ends[i], in order: what Add does line by
// line (same records, marks and cuts), under one acquisition of the lock, so that a reader
// handing over a chunk's lines pays for it once instead of per line. A seal waiting for room
// blocks the rest of the batch as it blocks Add. After an error (Put failed, Close), the
// lines from there on are not added. ends must be as long as lines.
func (c *core) AddLines(source uint32, lines [][]byte, ends []int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	// Put fails on the delivery goroutine: each line checks for it, as Add does.
	return c.p.addLines(source, lines, ends)
}

// Skip says that the line of source ending at end is not shipped (processing dropped it)
// while its position must still move past it: the mark travels with the next record that
// carries source's lines, or, when no open aggregate holds any, in a record of marks only
// (UserRecords 0, no Data) delivered at the next age tick, Flush or Close, after every
// record sealed before it.
func (c *core) Skip(source uint32, end int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if errp := c.err.Load(); errp != nil {
		return *errp
	}
	c.p.skip(source, end)
	return nil
}

// timed says whether aggregates wait for more lines at all (else each line is sealed at once).
func (c *core) timed() bool { return c.opts.Aggregate && c.opts.MaxRecords != 1 }

// Nudge tells the aggregator that its consumer is idle: nothing to send, nothing in flight.
// Open aggregates (or the next one) are then sealed once they are IdleAge old instead of
// MaxAge, so that at low rates a line leaves within a few tens of milliseconds; each
// strategy says what it does at high rates. As the consumer is busy again once it has a
// record, early seals come at most once per round trip of the consumer.
// Safe for concurrent use and never blocks (Add may hold the lock while it waits for Put:
// the age goroutine does the work); calling it again before a seal changes nothing.
func (c *core) Nudge() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

// ageLoop seals aggregates MaxAge after their first line (or IdleAge after, see Nudge),
// whether or not Add is called.
func (c *core) ageLoop() {
	defer c.wg.Done()
	for {
		nudged := false
		select {
		case <-c.stop:
			return
		case <-c.nudge:
			nudged = true
		case <-c.timer.C:
		}
		c.mu.Lock()
		switch {
		case c.closed:
		case nudged:
			if !c.hungry {
				c.hungry = true
				c.p.nudged(time.Now())
			}
		default:
			// The timer may have fired for an aggregate that a full buffer already sealed.
			c.p.tick(time.Now())
		}
		c.mu.Unlock()
	}
}

// fail records the first error from Put. Kept out of the delivery loops so that the error
// variable there is not moved to the heap on every record.
func (c *core) fail(err error) {
	err = fmt.Errorf("aggregator: put record: %w", err)
	c.err.CompareAndSwap(nil, &err)
}

// put hands rec to the Output unless an earlier Put failed. After a failed Put, later
// records are dropped: the caller stops on the error and their lines are read again after a
// restart (positions never passed them).
func (c *core) put(rec *Record) {
	if c.err.Load() == nil {
		if err := c.out.Put(rec); err != nil {
			c.fail(err)
		}
	}
}

// Flush seals every open aggregate and returns once Put has returned for every record
// sealed so far, with the first error Put returned, if any.
func (c *core) Flush() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.p.sealAll()
	done := make(chan struct{})
	c.p.barrier(done)
	c.mu.Unlock()
	<-done
	if errp := c.err.Load(); errp != nil {
		return *errp
	}
	return nil
}

// Close seals every open aggregate, delivers everything and stops the goroutines (and the
// MD5 server, unless Options.MD5 gave it). It returns the first error Put returned, if any.
// Calling it again returns the same.
func (c *core) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.p.sealAll()
		c.closed = true
		c.timer.Stop()
		close(c.stop)
		// Every sender holds mu and checks closed first, so nothing is sealed after this.
		c.p.shut()
		c.mu.Unlock()
		c.wg.Wait()
		c.hash.closeServer()
		if errp := c.err.Load(); errp != nil {
			c.closeErr = *errp
		}
	})
	return c.closeErr
}

// keySource gives the partition key of an aggregate (Aggregator) or of a line without one
// of its own (Sharded): a new random key each time, a fixed one, or the MD5 of the line.
type keySource struct {
	fixed         string
	rng           *rand.ChaCha8 // nil for a fixed or deterministic key
	deterministic bool
}

// Deterministic is the partition key setting whose key is the MD5 of each record in lower
// case hex, as the Kinesis Agent's DETERMINISTIC: identical records land on the same shard.
// Each record has its own key, so an Aggregator takes it only without aggregation; keyed
// aggregation (NewSharded with DeterministicKey) packs such records per shard.
const Deterministic = "deterministic"

// newKeySource reads a partition key setting: "random" (or empty), "host" (hostname gives
// it) or a fixed key, which CheckPartitionKey must accept.
func newKeySource(spec string, hostname func() (string, error)) (keySource, error) {
	switch spec {
	case "", "random":
		var seed [32]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return keySource{}, fmt.Errorf("aggregator: seed random partition keys: %w", err)
		}
		return keySource{rng: rand.NewChaCha8(seed)}, nil
	case Deterministic:
		return keySource{deterministic: true}, nil
	case "host":
		h, err := hostname()
		if err != nil {
			return keySource{}, fmt.Errorf("aggregator: partition key from host name: %w", err)
		}
		if err := checkFixedKey(h); err != nil {
			return keySource{}, fmt.Errorf("aggregator: partition key from host name %q: %w", h, err)
		}
		return keySource{fixed: h}, nil
	}
	if err := checkFixedKey(spec); err != nil {
		return keySource{}, fmt.Errorf("aggregator: partition key %q: %w", spec, err)
	}
	return keySource{fixed: spec}, nil
}

// CheckPartitionKey says whether a partition key setting ("random", "host" or a fixed key)
// is one the aggregator accepts, so that configuration can refuse what New would. A fixed
// key (also the fallback of keys taken from the lines) must be valid UTF-8 of 1 to 256
// bytes: Kinesis allows 256 characters, but counts the key's bytes against the record limit,
// and the aggregator bounds keys in bytes. "host" is checked when the aggregator starts.
func CheckPartitionKey(spec string) error {
	switch spec {
	case "random", "host", Deterministic:
		return nil
	}
	if err := checkFixedKey(spec); err != nil {
		return fmt.Errorf("aggregator: partition key %q: %w", spec, err)
	}
	return nil
}

func checkFixedKey(k string) error {
	switch {
	case k == "":
		return errors.New("empty")
	case len(k) > maxPartitionKeyLen:
		return fmt.Errorf("%d bytes is longer than Kinesis's %d", len(k), maxPartitionKeyLen)
	case !utf8.ValidString(k):
		return errors.New("not valid UTF-8")
	}
	return nil
}

// maxLen is the longest key next can return.
func (k *keySource) maxLen() int {
	if k.rng != nil || k.deterministic {
		return randomKeyLen
	}
	return len(k.fixed)
}

// next returns the key for line: the fixed key, the line's MD5 in hex, or a new random one:
// 128 random bits in hex, so that Kinesis's MD5 of the key falls anywhere in the hash key
// space.
func (k *keySource) next(line []byte) string {
	if k.deterministic {
		return md5Hex(line)
	}
	if k.rng == nil {
		return k.fixed
	}
	var raw [randomKeyLen / 2]byte
	var b [randomKeyLen]byte
	binary.LittleEndian.PutUint64(raw[:8], k.rng.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], k.rng.Uint64())
	hex.Encode(b[:], raw[:])
	return string(b[:]) // the one allocation per record; it is small
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	var h [2 * md5.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:])
}

// osHostname is the host name source of New and NewSharded; tests pass their own to
// newKeySource.
func osHostname() (string, error) { return os.Hostname() }
