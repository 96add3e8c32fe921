package aggregator

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// freshBuffers hands out a new buffer for every Get, or one given back when recycle is set.
type freshBuffers struct {
	mu    sync.Mutex
	gets  int
	minN  int
	spare [][]byte
}

func (p *freshBuffers) Get(n int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gets++
	if p.minN == 0 || n < p.minN {
		p.minN = n
	}
	if k := len(p.spare); k > 0 {
		b := p.spare[k-1]
		p.spare = p.spare[:k-1]
		return b
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xAA // garbage: the aggregator must not read what it did not write
	}
	return b[:0]
}

func (p *freshBuffers) put(b []byte) {
	p.mu.Lock()
	p.spare = append(p.spare, b)
	p.mu.Unlock()
}

type outputFunc func(*Record) error

func (f outputFunc) Put(r *Record) error { return f(r) }

// keptRecord is what an Output saw at Put: a copy, and the slices themselves.
type keptRecord struct {
	copy Record
	data []byte
}

// Built in the Output's buffers, records are the ones a slot's own buffer makes, byte for
// byte, the plain lone lines and the records of marks only included; Data lies in Buffer
// behind the headroom; and the aggregator never writes a buffer after Put handed it over.
func TestBuffersGiveTheSameRecords(t *testing.T) {
	const headroom = 100
	for _, recycle := range []bool{false, true} {
		run := func(pool *freshBuffers) []keptRecord {
			var kept []keptRecord
			out := outputFunc(func(r *Record) error {
				cp := *r
				cp.Data = bytes.Clone(r.Data)
				cp.Marks = slices.Clone(r.Marks)
				cp.Buffer = nil
				kept = append(kept, keptRecord{copy: cp, data: r.Data})
				if pool == nil {
					return nil
				}
				if r.UserRecords == 0 {
					if r.Buffer != nil {
						t.Errorf("a record of marks only has a buffer")
					}
					return nil
				}
				off := cap(r.Buffer) - cap(r.Data)
				if r.Buffer == nil || off < headroom || off+len(r.Data) > len(r.Buffer) || &r.Buffer[off] != &r.Data[:1][0] {
					t.Fatalf("record data is not inside its buffer behind %d bytes of headroom (at %d)", headroom, off)
				}
				if recycle {
					kept[len(kept)-1].data = nil // about to be reused: checked through the copy only
					pool.put(r.Buffer)
				}
				return nil
			})
			opts := Options{MaxRecordBytes: 4096, Aggregate: true, MaxAge: time.Hour, PartitionKey: "k", Workers: 4}
			if pool != nil {
				opts.Buffers, opts.Headroom = pool, headroom
			}
			a, err := New(opts, out)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 7))
			in := variedLines(rng, 3000, 4096-1, 5)
			for i, l := range in {
				if i%500 == 499 {
					if err := a.Flush(); err != nil {
						t.Fatal(err)
					}
					if err := a.Skip(l.src, l.end); err != nil { // nothing open: marks only
						t.Fatal(err)
					}
					if err := a.Flush(); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := a.Add(l.src, l.data, l.end); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			return kept
		}
		want := run(nil)
		pool := &freshBuffers{}
		got := run(pool)
		if len(got) != len(want) {
			t.Fatalf("recycle %v: %d records with buffers, %d without", recycle, len(got), len(want))
		}
		plain, marksOnly := 0, 0
		for i := range want {
			w, g := want[i].copy, got[i].copy
			if !bytes.Equal(w.Data, g.Data) || w.PartitionKey != g.PartitionKey || w.UserRecords != g.UserRecords || !slices.Equal(w.Marks, g.Marks) {
				t.Fatalf("recycle %v: record %d differs with buffers", recycle, i)
			}
			if d := got[i].data; d != nil && !bytes.Equal(d, g.Data) {
				t.Fatalf("recycle %v: record %d was written after Put handed its buffer over", recycle, i)
			}
			switch {
			case g.UserRecords == 0:
				marksOnly++
			case !HasMagic(g.Data):
				plain++
			}
		}
		if plain == 0 || marksOnly == 0 {
			t.Fatalf("recycle %v: %d plain records, %d of marks only: the test covers neither", recycle, plain, marksOnly)
		}
		if pool.minN < headroom+4096+64 {
			t.Errorf("asked for buffers of %d bytes, want room for %d of headroom and a full record", pool.minN, headroom)
		}
		if aggregates := len(got) - marksOnly; pool.gets != aggregates {
			t.Errorf("recycle %v: %d buffers taken for %d records with data: want one each", recycle, pool.gets, aggregates)
		}
	}
}
