package aggregator

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// batchOp is one step of a scenario: a line added, or skipped (processing dropped it).
type batchOp struct {
	skip bool
	src  uint32
	line []byte
	end  int64
}

// lineFeeder is what AddLines is compared on: Aggregator and Sharded.
type lineFeeder interface {
	Add(source uint32, line []byte, end int64) error
	AddLines(source uint32, lines [][]byte, ends []int64) error
	Skip(source uint32, end int64) error
	Flush() error
	Close() error
}

// randomOps makes lines of random lengths (empty, short, around and beyond what fits a
// record of maxRecordBytes, some that look like an aggregate, some with a key byte from
// keys), over a few sources, with skipped lines among them.
func randomOps(rng *rand.Rand, n, maxRecordBytes int, keys string) []batchOp {
	ends := map[uint32]int64{}
	ops := make([]batchOp, 0, n)
	src := uint32(1)
	for range n {
		if rng.IntN(8) == 0 {
			src = 1 + rng.Uint32N(3) // lines mostly come in runs of one source, as from a chunk
		}
		var size int
		switch r := rng.IntN(20); {
		case r == 0:
			size = 0
		case r == 1:
			size = maxRecordBytes - 40 + rng.IntN(80) // around the limit: cut or alone
		case r == 2:
			size = maxRecordBytes + rng.IntN(maxRecordBytes) // cut
		default:
			size = 1 + rng.IntN(maxRecordBytes/4)
		}
		line := make([]byte, size)
		for i := range line {
			line[i] = 'a' + byte(rng.IntN(26))
		}
		if size > 0 && keys != "" {
			line[0] = keys[rng.IntN(len(keys))]
		}
		if size >= magicLen && rng.IntN(30) == 0 {
			copy(line, magic[:]) // sent plain only when it is not mistaken for an aggregate
		}
		ends[src] += int64(size) + 1
		ops = append(ops, batchOp{skip: rng.IntN(15) == 0, src: src, line: line, end: ends[src]})
	}
	return ops
}

// feedOneByOne gives ops to a line by line.
func feedOneByOne(t *testing.T, a lineFeeder, ops []batchOp) {
	t.Helper()
	for _, op := range ops {
		var err error
		if op.skip {
			err = a.Skip(op.src, op.end)
		} else {
			err = a.Add(op.src, op.line, op.end)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// feedBatched gives ops to a in batches of random length: a batch ends where the source
// changes, at a skipped line, or at random, as the tailer's chunks do.
func feedBatched(t *testing.T, rng *rand.Rand, a lineFeeder, ops []batchOp) (batches int) {
	t.Helper()
	var lines [][]byte
	var ends []int64
	flush := func(src uint32) {
		if len(lines) == 0 {
			return
		}
		if err := a.AddLines(src, lines, ends); err != nil {
			t.Fatal(err)
		}
		batches++
		clear(lines) // the caller's bytes are reused: the aggregator must have copied them
		lines, ends = lines[:0], ends[:0]
	}
	for i, op := range ops {
		if op.skip {
			if err := a.Skip(op.src, op.end); err != nil {
				t.Fatal(err)
			}
			continue
		}
		lines = append(lines, op.line)
		ends = append(ends, op.end)
		if i+1 == len(ops) || ops[i+1].skip || ops[i+1].src != op.src || rng.IntN(40) == 0 {
			flush(op.src)
		}
	}
	return batches
}

// canonical sorts each record's marks by source (Sharded computes them from a map) and,
// when byKey, orders records by partition key, keeping each key's order: Sharded's final
// seal goes oldest first, which two runs may tie on.
func canonical(recs []Record, byKey bool) []Record {
	for _, r := range recs {
		slices.SortFunc(r.Marks, func(a, b Mark) int { return cmp.Compare(a.Source, b.Source) })
	}
	if byKey {
		slices.SortStableFunc(recs, func(a, b Record) int { return cmp.Compare(a.PartitionKey, b.PartitionKey) })
	}
	return recs
}

func sameRecordsAs(t *testing.T, oneByOne, batched []Record) {
	t.Helper()
	if len(oneByOne) != len(batched) {
		t.Fatalf("line by line gave %d records, batched %d", len(oneByOne), len(batched))
	}
	for i := range oneByOne {
		x, y := oneByOne[i], batched[i]
		if x.PartitionKey != y.PartitionKey || x.ExplicitHashKey != y.ExplicitHashKey || x.UserRecords != y.UserRecords ||
			!bytes.Equal(x.Data, y.Data) || !slices.Equal(x.Marks, y.Marks) {
			t.Fatalf("record %d differs:\nline by line: key %q/%q, %d lines, %d bytes, marks %v\nbatched:      key %q/%q, %d lines, %d bytes, marks %v",
				i, x.PartitionKey, x.ExplicitHashKey, x.UserRecords, len(x.Data), x.Marks,
				y.PartitionKey, y.ExplicitHashKey, y.UserRecords, len(y.Data), y.Marks)
		}
	}
}

// aggregatorVariants are the packings whose seal rules differ: by size, by count, by joined
// bytes (Firehose), one record per line, and lines cut with a terminator.
var aggregatorVariants = []Options{
	{MaxRecordBytes: 700, Aggregate: true},
	{MaxRecordBytes: 700, Aggregate: true, MaxRecords: 3},
	{MaxRecordBytes: 700, Aggregate: true, JoinBytes: 250},
	{MaxRecordBytes: 700, Aggregate: false},
	{MaxRecordBytes: 700, Aggregate: true, TruncatedTerminator: "...cut"},
}

// checkAggregatorBatches runs ops line by line and batched through Aggregators of opts and
// requires the same records (data, keys, counts, marks, in order).
func checkAggregatorBatches(t *testing.T, seed uint64, opts Options, ops []batchOp) {
	t.Helper()
	run := func(batched bool) ([]Record, int) {
		opts := opts
		opts.PartitionKey, opts.MaxAge, opts.Workers = "k", time.Hour, 2
		out := &collector{}
		a, err := New(opts, out)
		if err != nil {
			t.Fatal(err)
		}
		batches := 0
		if batched {
			batches = feedBatched(t, rand.New(rand.NewPCG(seed, 2)), a, ops)
		} else {
			feedOneByOne(t, a, ops)
		}
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.AddLines(1, [][]byte{[]byte("late")}, []int64{1}); !errors.Is(err, ErrClosed) {
			t.Fatalf("AddLines after Close: %v, want ErrClosed", err)
		}
		return out.records(), batches
	}
	one, _ := run(false)
	batched, batches := run(true)
	if batches == 0 || len(one) < 2 {
		t.Fatalf("scenario too small to compare: %d batches, %d records", batches, len(one))
	}
	sameRecordsAs(t, canonical(one, false), canonical(batched, false))
}

func TestAddLinesSameRecordsAsAdd(t *testing.T) {
	for i, opts := range aggregatorVariants {
		t.Run(fmt.Sprintf("variant=%d", i), func(t *testing.T) {
			for seed := range uint64(20) {
				rng := rand.New(rand.NewPCG(seed, 1))
				checkAggregatorBatches(t, seed, opts, randomOps(rng, 300, opts.MaxRecordBytes, ""))
			}
		})
	}
}

// TestAddLinesAcrossRecordBoundary: one batch fills several records; they are the same
// records, with the same marks, as the lines added one by one give.
func TestAddLinesAcrossRecordBoundary(t *testing.T) {
	var ops []batchOp
	var end int64
	for i := range 40 {
		line := []byte(fmt.Sprintf("line %02d %s", i, bytes.Repeat([]byte("x"), 60)))
		end += int64(len(line)) + 1
		ops = append(ops, batchOp{src: 7, line: line, end: end})
	}
	run := func(batched bool) []Record {
		out := &collector{}
		a, err := New(Options{MaxRecordBytes: 500, PartitionKey: "k", Aggregate: true, MaxAge: time.Hour}, out)
		if err != nil {
			t.Fatal(err)
		}
		if batched {
			lines, ends := make([][]byte, len(ops)), make([]int64, len(ops))
			for i, op := range ops {
				lines[i], ends[i] = op.line, op.end
			}
			if err := a.AddLines(7, lines, ends); err != nil {
				t.Fatal(err)
			}
		} else {
			feedOneByOne(t, a, ops)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		return out.records()
	}
	one, batched := run(false), run(true)
	if len(one) < 4 {
		t.Fatalf("only %d records: the batch does not cross record boundaries", len(one))
	}
	sameRecordsAs(t, one, batched)
	var lines int
	for i, r := range batched {
		// Each record's mark is the end of its own last line: every line before it is in it
		// or an earlier record.
		lines += r.UserRecords
		if want := []Mark{{Source: 7, Offset: ops[lines-1].end}}; !slices.Equal(r.Marks, want) {
			t.Fatalf("record %d marks %v, want %v", i, r.Marks, want)
		}
	}
}

// TestAddLinesCutsLongLines: a line of a batch that does not fit a record is cut with the
// terminator and counted, as Add cuts it, and the lines after it are whole.
func TestAddLinesCutsLongLines(t *testing.T) {
	out := &collector{}
	a, err := New(Options{MaxRecordBytes: 300, PartitionKey: "k", Aggregate: true, MaxAge: time.Hour, TruncatedTerminator: "[cut]"}, out)
	if err != nil {
		t.Fatal(err)
	}
	long := bytes.Repeat([]byte("L"), 1000)
	lines := [][]byte{[]byte("before"), long, []byte("after")}
	if err := a.AddLines(1, lines, []int64{7, 1008, 1014}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for _, r := range out.records() {
		users, _, err := Deaggregate(r.Data, r.PartitionKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			got = append(got, u.Data)
		}
	}
	if len(got) != 3 || string(got[0]) != "before" || string(got[2]) != "after" {
		t.Fatalf("got %q", got)
	}
	if len(got[1]) != a.MaxLineBytes() || !bytes.HasSuffix(got[1], []byte("[cut]")) || !bytes.HasPrefix(got[1], []byte("LLL")) {
		t.Fatalf("long line became %d bytes %q..., want %d ending with the terminator", len(got[1]), got[1][:10], a.MaxLineBytes())
	}
}

// shardedVariants: per key (no shard map), per shard, by count, one record per line, and
// lines cut with a terminator.
var shardedVariants = []struct {
	name   string
	shards ShardLocator
	opts   Options
}{
	{"per-key", nil, Options{MaxRecordBytes: 2048, Aggregate: true}},
	{"per-shard", quarterShards{}, Options{MaxRecordBytes: 2048, Aggregate: true}},
	{"max-records", quarterShards{}, Options{MaxRecordBytes: 2048, Aggregate: true, MaxRecords: 4}},
	{"plain", quarterShards{}, Options{MaxRecordBytes: 2048}},
	{"cut", nil, Options{MaxRecordBytes: 2048, Aggregate: true, TruncatedTerminator: "...cut"}},
}

func checkShardedBatches(t *testing.T, seed uint64, shards ShardLocator, opts Options, ops []batchOp) {
	t.Helper()
	run := func(batched bool) []Record {
		opts := opts
		opts.MaxAge, opts.Workers = time.Hour, 2
		out := &collector{}
		firstByte := func(line []byte) ([]byte, bool) { return line[:min(1, len(line))], len(line) > 0 }
		a, err := NewSharded(KeyedOptions{Options: opts, Key: firstByte, Shards: shards, Fallback: "no-key"}, out)
		if err != nil {
			t.Fatal(err)
		}
		if batched {
			feedBatched(t, rand.New(rand.NewPCG(seed, 2)), a, ops)
		} else {
			feedOneByOne(t, a, ops)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		return out.records()
	}
	one, batched := run(false), run(true)
	if len(one) < 2 {
		t.Fatalf("only %d records", len(one))
	}
	sameRecordsAs(t, canonical(one, true), canonical(batched, true))
}

// TestShardedAddLinesMixedKeys: a batch whose lines go to different keys and shards gives
// the same records and marks as the lines added one by one.
func TestShardedAddLinesMixedKeys(t *testing.T) {
	for _, v := range shardedVariants {
		t.Run(v.name, func(t *testing.T) {
			for seed := range uint64(10) {
				rng := rand.New(rand.NewPCG(seed, 1))
				checkShardedBatches(t, seed, v.shards, v.opts, randomOps(rng, 400, v.opts.MaxRecordBytes, "abcdefgh"))
			}
		})
	}
}

// FuzzAddLinesSameAsAdd: whatever the line lengths, sources, skips and batch boundaries,
// AddLines packs exactly what Add does line by line.
func FuzzAddLinesSameAsAdd(f *testing.F) {
	f.Add(uint64(1), uint8(0), uint16(200))
	f.Add(uint64(2), uint8(3), uint16(50))
	f.Add(uint64(3), uint8(6), uint16(300))
	f.Add(uint64(4), uint8(8), uint16(300))
	f.Fuzz(func(t *testing.T, seed uint64, variant uint8, n uint16) {
		n = 20 + n%400
		rng := rand.New(rand.NewPCG(seed, 1))
		i := int(variant) % (len(aggregatorVariants) + len(shardedVariants))
		if i < len(aggregatorVariants) {
			opts := aggregatorVariants[i]
			checkAggregatorBatches(t, seed, opts, randomOps(rng, int(n), opts.MaxRecordBytes, ""))
			return
		}
		v := shardedVariants[i-len(aggregatorVariants)]
		checkShardedBatches(t, seed, v.shards, v.opts, randomOps(rng, int(n), v.opts.MaxRecordBytes, "abcdefgh"))
	})
}
