package aggregator

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// collector is an Output keeping deep copies of what it is given.
type collector struct {
	mu   sync.Mutex
	recs []Record
	put  func(*Record) error // optional fault injection, called before keeping the record
	got  chan struct{}       // optional, signalled after each record
}

func (c *collector) Put(r *Record) error {
	if c.put != nil {
		if err := c.put(r); err != nil {
			return err
		}
	}
	cp := *r
	cp.Data = bytes.Clone(r.Data)
	cp.Marks = slices.Clone(r.Marks)
	c.mu.Lock()
	c.recs = append(c.recs, cp)
	c.mu.Unlock()
	if c.got != nil {
		c.got <- struct{}{}
	}
	return nil
}

func (c *collector) records() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recs)
}

type line struct {
	src  uint32
	data []byte
	end  int64
}

// variedLines covers the shapes of input a log file can hold: empty lines, one byte, binary
// with NUL and invalid UTF-8, a line that looks like a KPL aggregate, lines near and above the
// record limit, and random sizes, spread over several sources.
func variedLines(rng *rand.Rand, n, limit int, nsrc uint32) []line {
	ends := map[uint32]int64{}
	var out []line
	add := func(d []byte) {
		src := rng.Uint32N(nsrc)
		if rng.IntN(4) != 0 && len(out) > 0 {
			src = out[len(out)-1].src // runs of one source, as a tailer gives them
		}
		ends[src] += int64(len(d)) + 1
		out = append(out, line{src: src, data: d, end: ends[src]})
	}
	add([]byte{})
	add([]byte{'x'})
	add([]byte("bin\x00\xff\xfe\xc3\x28 nul and invalid utf-8"))
	add(append(append([]byte{}, magic[:]...), "looks aggregated"...))
	add(bytes.Repeat([]byte{'n'}, limit-1))
	add(bytes.Repeat([]byte{'e'}, limit))
	add([]byte{})
	add(bytes.Repeat([]byte{'o'}, limit+10)) // truncated
	for len(out) < n {
		var sz int
		switch rng.IntN(10) {
		case 0:
			sz = 0
		case 1:
			sz = rng.IntN(limit + 1)
		default:
			sz = rng.IntN(300)
		}
		d := make([]byte, sz)
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		add(d)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
	}{
		{"random key", Options{MaxRecordBytes: 4096, Aggregate: true, MaxAge: time.Hour}},
		{"host key", Options{MaxRecordBytes: 4096, Aggregate: true, MaxAge: time.Hour, PartitionKey: "host"}},
		{"fixed key one worker", Options{MaxRecordBytes: 4096, Aggregate: true, MaxAge: time.Hour, PartitionKey: "k", Workers: 1}},
		{"four workers", Options{MaxRecordBytes: 4096, Aggregate: true, MaxAge: time.Hour, Workers: 4}},
		{"max records 3", Options{MaxRecordBytes: 4096, Aggregate: true, MaxAge: time.Hour, MaxRecords: 3}},
		{"no aggregation", Options{MaxRecordBytes: 4096, Aggregate: false, PartitionKey: "plain"}},
		{"default 1 MiB", Options{Aggregate: true, MaxAge: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tt.name))))
			m := Metrics{}.withDefaults()
			tt.opts.Metrics = m
			c := &collector{}
			a, err := New(tt.opts, c)
			if err != nil {
				t.Fatal(err)
			}
			maxBytes := tt.opts.MaxRecordBytes
			if maxBytes == 0 {
				maxBytes = 1 << 20
			}
			pkLen := map[string]int{"": 32, "host": len(host)}[tt.opts.PartitionKey]
			if pkLen == 0 {
				pkLen = len(tt.opts.PartitionKey)
			}
			limit := maxBytes - pkLen
			n := 3000
			if maxBytes > 4096 {
				n = 300
			}
			in := variedLines(rng, n, limit, 5)
			truncated := 0
			for _, l := range in {
				if err := a.Add(l.src, l.data, l.end); err != nil {
					t.Fatal(err)
				}
				if len(l.data) > limit {
					truncated++
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if got := counterValue(t, m.LinesTruncated); got != truncated {
				t.Errorf("lines truncated = %d, want %d", got, truncated)
			}

			i := 0 // next expected input line
			keys := map[string]bool{}
			recs := c.records()
			for ri, r := range recs {
				if sz := len(r.Data) + len(r.PartitionKey); sz > maxBytes {
					t.Fatalf("record %d: %d bytes with its key, over the %d limit", ri, sz, maxBytes)
				}
				switch tt.opts.PartitionKey {
				case "":
					if len(r.PartitionKey) != 32 || keys[r.PartitionKey] {
						t.Fatalf("record %d: random key %q is not 32 fresh hex digits", ri, r.PartitionKey)
					}
					keys[r.PartitionKey] = true
				case "host":
					if r.PartitionKey != host {
						t.Fatalf("record %d: key %q, want the host name %q", ri, r.PartitionKey, host)
					}
				default:
					if r.PartitionKey != tt.opts.PartitionKey {
						t.Fatalf("record %d: key %q, want %q", ri, r.PartitionKey, tt.opts.PartitionKey)
					}
				}
				users, aggregated, err := Deaggregate(r.Data, r.PartitionKey)
				if err != nil {
					t.Fatal(err)
				}
				if _, derr := DecodeAggregate(r.Data); r.UserRecords > 1 && derr != nil {
					t.Fatalf("record %d: %v", ri, derr)
				}
				if len(users) != r.UserRecords {
					t.Fatalf("record %d: %d user records, Record says %d", ri, len(users), r.UserRecords)
				}
				lonePlain := r.UserRecords == 1 && !HasMagic(in[i].data)
				if aggregated == lonePlain {
					t.Fatalf("record %d with %d user records: aggregated = %v", ri, r.UserRecords, aggregated)
				}
				if tt.opts.MaxRecords > 0 && r.UserRecords > tt.opts.MaxRecords {
					t.Fatalf("record %d: %d user records, over MaxRecords", ri, r.UserRecords)
				}
				if !tt.opts.Aggregate && r.UserRecords != 1 {
					t.Fatalf("record %d: %d user records without aggregation", ri, r.UserRecords)
				}
				var wantMarks []Mark
				for _, u := range users {
					if i >= len(in) {
						t.Fatalf("more user records than lines added")
					}
					want := in[i].data
					if len(want) > limit {
						want = want[:limit]
					}
					if !bytes.Equal(u.Data, want) {
						t.Fatalf("record %d: line %d: got %d bytes %.20q, want %d bytes %.20q", ri, i, len(u.Data), u.Data, len(want), want)
					}
					if u.PartitionKey != r.PartitionKey {
						t.Fatalf("record %d: user record key %q, record key %q", ri, u.PartitionKey, r.PartitionKey)
					}
					j := slices.IndexFunc(wantMarks, func(m Mark) bool { return m.Source == in[i].src })
					if j < 0 {
						wantMarks = append(wantMarks, Mark{Source: in[i].src})
						j = len(wantMarks) - 1
					}
					wantMarks[j].Offset = in[i].end
					i++
				}
				if !slices.Equal(r.Marks, wantMarks) {
					t.Fatalf("record %d: marks %v, want %v", ri, r.Marks, wantMarks)
				}
				// Packing is tight: a record sealed by size had no room for the next line.
				full := tt.opts.Aggregate && tt.opts.MaxRecords == 0 && ri < len(recs)-1
				if full && aggregated {
					next := min(len(in[i].data), limit)
					if len(r.Data)+recordSize(next) <= limit {
						t.Fatalf("record %d sealed with %d bytes though the next line (%d bytes) fitted", ri, len(r.Data), next)
					}
				}
			}
			if i != len(in) {
				t.Fatalf("got %d lines back, added %d", i, len(in))
			}
		})
	}
}

func TestSizeBoundRandom(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 7))
		maxBytes := 200 + rng.IntN(3000)
		m := Metrics{}.withDefaults()
		c := &collector{}
		a, err := New(Options{MaxRecordBytes: maxBytes, Aggregate: true, PartitionKey: "some-key", MaxAge: time.Hour, Metrics: m}, c)
		if err != nil {
			t.Fatal(err)
		}
		limit := maxBytes - len("some-key")
		truncated, lines := 0, 0
		for range 2000 {
			sz := rng.IntN(3 * maxBytes)
			if rng.IntN(2) == 0 {
				sz = rng.IntN(64)
			}
			if sz > limit {
				truncated++
			}
			lines++
			if err := a.Add(0, make([]byte, sz), int64(lines)); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		users := 0
		for _, r := range c.records() {
			if sz := len(r.Data) + len(r.PartitionKey); sz > maxBytes {
				t.Fatalf("seed %d: record of %d bytes over the limit %d", seed, sz, maxBytes)
			}
			users += r.UserRecords
		}
		if users != lines {
			t.Fatalf("seed %d: %d user records, %d lines", seed, users, lines)
		}
		if got := counterValue(t, m.LinesTruncated); got != truncated {
			t.Fatalf("seed %d: truncated %d, want %d", seed, got, truncated)
		}
	}
}

func TestAgeSealsWithoutMoreLines(t *testing.T) {
	c := &collector{got: make(chan struct{}, 16)}
	a, err := New(Options{Aggregate: true, MaxAge: 50 * time.Millisecond}, c)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	wait := func(what string) {
		t.Helper()
		select {
		case <-c.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing delivered 5s after it was added with MaxAge 50ms", what)
		}
	}
	if err := a.Add(1, []byte("lonely"), 7); err != nil {
		t.Fatal(err)
	}
	wait("one line")
	if err := a.Add(1, []byte("two"), 11); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(2, []byte("lines"), 6); err != nil {
		t.Fatal(err)
	}
	wait("two lines")
	recs := c.records()
	if len(recs) != 2 || string(recs[0].Data) != "lonely" || recs[1].UserRecords != 2 {
		t.Fatalf("got %+v", recs)
	}
	if want := []Mark{{1, 11}, {2, 6}}; !slices.Equal(recs[1].Marks, want) {
		t.Fatalf("marks %v, want %v", recs[1].Marks, want)
	}
}

// TestAgeAfterCountSeal checks that the age timer is re-armed for an aggregate opened right
// after another was sealed by count, not left pointing at the old one.
func TestAgeAfterCountSeal(t *testing.T) {
	c := &collector{got: make(chan struct{}, 16)}
	a, err := New(Options{Aggregate: true, MaxRecords: 2, MaxAge: 50 * time.Millisecond}, c)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i, l := range []string{"a", "b", "c"} {
		if err := a.Add(0, []byte(l), int64(2*i+2)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case <-c.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("the third line was not delivered 5s after it was added with MaxAge 50ms")
		}
	}
	recs := c.records()
	if len(recs) != 2 || recs[0].UserRecords != 2 || string(recs[1].Data) != "c" || !slices.Equal(recs[1].Marks, []Mark{{0, 6}}) {
		t.Fatalf("got %+v", recs)
	}
}

func TestFlushAndClose(t *testing.T) {
	c := &collector{}
	a, err := New(Options{Aggregate: true, MaxAge: time.Hour}, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := a.Add(0, fmt.Appendf(nil, "line %d", i), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	recs := c.records()
	if len(recs) != 1 || recs[0].UserRecords != 10 || !slices.Equal(recs[0].Marks, []Mark{{0, 10}}) {
		t.Fatalf("after Flush: %+v", recs)
	}
	if err := a.Flush(); err != nil { // nothing open: a no-op
		t.Fatal(err)
	}
	if err := a.Add(0, []byte("last"), 11); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if recs := c.records(); len(recs) != 2 || string(recs[1].Data) != "last" {
		t.Fatalf("after Close: %+v", recs)
	}
	if err := a.Add(0, []byte("late"), 12); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v, want ErrClosed", err)
	}
	if err := a.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v, want ErrClosed", err)
	}
}

func TestPutErrorStops(t *testing.T) {
	boom := errors.New("spool full of bees")
	calls := 0
	c := &collector{put: func(*Record) error {
		calls++
		if calls == 2 {
			return boom
		}
		return nil
	}}
	a, err := New(Options{Aggregate: true, MaxRecords: 1, MaxAge: time.Hour}, c)
	if err != nil {
		t.Fatal(err)
	}
	var addErr error
	for i := 0; i < 1000 && addErr == nil; i++ {
		addErr = a.Add(0, []byte("x"), int64(i+1))
		if i == 5 {
			// Flush waits for the failed Put and must report it.
			if err := a.Flush(); !errors.Is(err, boom) {
				t.Fatalf("Flush: %v, want %v", err, boom)
			}
		}
	}
	if !errors.Is(addErr, boom) {
		t.Fatalf("Add: %v, want %v", addErr, boom)
	}
	if err := a.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close: %v, want %v", err, boom)
	}
	if err := a.Close(); !errors.Is(err, boom) {
		t.Fatalf("second Close: %v, want %v", err, boom)
	}
	if calls != 2 {
		t.Fatalf("Put called %d times, want it to stop after the failure", calls)
	}
}

// TestBackpressure checks that a stalled output stalls Add with a bounded number of records
// held, and that everything flows once the output resumes.
func TestBackpressure(t *testing.T) {
	release := make(chan struct{})
	c := &collector{put: func(*Record) error { <-release; return nil }}
	const workers = 2
	a, err := New(Options{Aggregate: true, MaxRecords: 1, Workers: workers, MaxAge: time.Hour}, c)
	if err != nil {
		t.Fatal(err)
	}
	added := make(chan int, 100)
	go func() {
		for i := range 100 {
			if err := a.Add(0, []byte("y"), int64(i+1)); err != nil {
				t.Error(err)
				break
			}
			added <- i
		}
		close(added)
	}()
	time.Sleep(200 * time.Millisecond)
	// Workers+2 slots, one of them inside Put: nothing more can be held.
	if n := len(added); n > workers+2 {
		t.Fatalf("%d lines accepted while the output was stalled; want at most %d", n, workers+2)
	}
	close(release)
	for range added {
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(c.records()); n != 100 {
		t.Fatalf("%d records delivered, want 100", n)
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{MaxRecordBytes: 32, PartitionKey: "random"}, // no room for data after a 32-byte key
		{PartitionKey: string(make([]byte, 257))},
		{MaxRecords: -1},
	} {
		if a, err := New(o, &collector{}); err == nil {
			a.Close()
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) int {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return int(m.GetCounter().GetValue())
}

// TestRandomKeysSpread checks that random keys land all over the hash key space (Kinesis
// maps a key to a shard by the MD5 of the key), so that aggregates use every shard.
func TestRandomKeysSpread(t *testing.T) {
	c := &collector{}
	a, err := New(Options{Aggregate: true, MaxRecords: 2, MaxAge: time.Hour}, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 800 {
		if err := a.Add(0, []byte("l"), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var quarters [4]int
	for _, r := range c.records() {
		h := md5.Sum([]byte(r.PartitionKey))
		quarters[h[0]>>6]++
	}
	for q, n := range quarters {
		if n < 50 { // 100 expected per quarter out of 400 records
			t.Fatalf("hash key quarter %d got %d of 400 aggregates: %v", q, n, quarters)
		}
	}
}

// TestAgeSealsRaceWithAdd runs the age timer against a busy Add (MaxAge 1ms) and checks that
// every line still arrives exactly once, in order, with marks matching the lines.
func TestAgeSealsRaceWithAdd(t *testing.T) {
	c := &collector{}
	a, err := New(Options{Aggregate: true, MaxAge: time.Millisecond, Workers: 2}, c)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for i := range n {
		if err := a.Add(uint32(i%3), fmt.Appendf(nil, "%d", i), int64(i)); err != nil {
			t.Fatal(err)
		}
		if i%2000 == 0 {
			time.Sleep(3 * time.Millisecond) // let the timer seal a half-full aggregate
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	next := 0
	recs := c.records()
	for ri, r := range recs {
		users, _, _ := Deaggregate(r.Data, r.PartitionKey)
		last := map[uint32]int64{}
		var order []uint32
		for _, u := range users {
			if string(u.Data) != fmt.Sprint(next) {
				t.Fatalf("record %d: line %q, want %d", ri, u.Data, next)
			}
			src := uint32(next % 3)
			if _, ok := last[src]; !ok {
				order = append(order, src)
			}
			last[src] = int64(next)
			next++
		}
		var want []Mark
		for _, s := range order {
			want = append(want, Mark{s, last[s]})
		}
		if !slices.Equal(r.Marks, want) {
			t.Fatalf("record %d: marks %v, want %v", ri, r.Marks, want)
		}
	}
	if next != n {
		t.Fatalf("got %d lines back, added %d", next, n)
	}
	if len(recs) < 5 {
		t.Fatalf("only %d records: the timer never sealed while Add was busy", len(recs))
	}
}
