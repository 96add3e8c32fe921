package aggregator

import (
	"errors"
	"log/slog"
	"time"
)

// Mark says that every line of Source before Offset is in this record or an earlier one.
type Mark struct {
	Source uint32
	Offset int64
}

// Record is one sealed Kinesis record. A Record with UserRecords 0 (and no Data) carries
// only marks, of lines that were skipped (Skip): nothing is to be sent for it.
type Record struct {
	PartitionKey    string
	ExplicitHashKey string // empty unless shard-aware packing set it
	Data            []byte // KPL aggregate, or the plain line when it holds a single user record
	UserRecords     int
	Marks           []Mark
	// Buffer (only with Options.Buffers) is the whole buffer Data was built in, from
	// Options.Buffers.Get: Data lies inside it, Options.Headroom bytes or more after its
	// start, so that the Output may write its own header in front of Data and keep both
	// without a copy. From Put on the Output owns Buffer: it keeps it or gives it back to
	// its pool; the aggregator never touches it again. nil for a record of marks only.
	Buffer []byte
}

// Output receives sealed records, one at a time and in order, from a single goroutine.
// Put may block (that is how backpressure from the spool reaches the tailer). The Record and
// its Data are only valid during the call: the aggregator reuses the buffers afterwards,
// except Record.Buffer (Options.Buffers), which Put takes over.
// An error from Put stops the aggregator; Add, Flush and Close return it from then on.
type Output interface {
	Put(rec *Record) error
}

// Options configure an Aggregator. Zero values take the defaults in brackets.
type Options struct {
	MaxRecordBytes int           // data + partition key of one record [1 MiB]
	MaxRecords     int           // user records per aggregate [0: no limit]
	MaxAge         time.Duration // an open aggregate is sealed this long after its first line [1s]
	PartitionKey   string        // "random" (new random key per aggregate) | "host" | Deterministic (only with Aggregate false) | any fixed string ["random"]
	Aggregate      bool          // false: every line is its own plain record
	Workers        int           // goroutines computing MD5 of sealed aggregates [8 where the CPU has MD5 lanes, else GOMAXPROCS up to 8]
	Metrics        Metrics       // zero: nothing exported
	Logger         *slog.Logger  // says (rate-limited) that lines are being cut; nil: discard

	// TruncatedTerminator ends a line cut because it does not fit in a record (see
	// MaxLineBytes), within the limit. The flow gives the tailer MaxLineBytes as its line
	// limit, so the tailer makes that cut; the aggregator cuts only lines that grew after
	// the tailer (add_metadata, processing), the same way.
	TruncatedTerminator string

	// MD5 hashes the aggregates; one server may serve several aggregators (fuller lanes),
	// and its owner closes it after them [nil: the aggregator starts its own and closes it
	// on Close].
	MD5 *MD5Server

	// JoinBytes > 0: an aggregate takes lines only while their bytes together stay within
	// JoinBytes; a line alone may be longer (up to the record limit) and is not cut to it.
	// The Kinesis Agent's aggregatedRecordSizeBytes for Firehose, whose record is the lines
	// joined: what counts is the joined lines, not the aggregate's framing or key.
	JoinBytes int

	// IdleAge: after Nudge (the consumer is idle), the open aggregate is sealed once it is
	// this old, unless it fills fast enough to be full before MaxAge [20ms; capped at MaxAge].
	IdleAge time.Duration

	// Buffers, when set, gives the buffers aggregates are built in (Aggregate only; NewSharded
	// ignores it): each aggregate takes one when it opens and hands it over with its Record
	// (Record.Buffer), so that slots own no buffer between aggregates and the Output keeps
	// the aggregate where it was built. nil: every slot keeps a buffer of its own.
	Buffers Buffers
	// Headroom (with Buffers) is how many bytes each buffer keeps free in front of the
	// aggregate, for the Output's header.
	Headroom int

	batchWait time.Duration // tests: the longest a needed full aggregate waits for peers [IdleAge]
	onBatch   func(n int)   // tests: told the size of every batch of aggregates hashed together
}

// Buffers is a pool of buffers (Options.Buffers). Get returns a buffer of capacity n or more;
// its contents are not read. Called from the goroutine that calls Add and from the age
// timer's.
type Buffers interface {
	Get(n int) []byte
}

// ErrClosed is returned by Add and Flush after Close.
var ErrClosed = errors.New("aggregator: closed")
