package spool

import (
	"bytes"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// poolBuffers is a free list like the flow's: Get takes a free buffer or allocates one, and
// counts the allocations; a buffer never handed back shows up as one more allocation later.
type poolBuffers struct {
	mu     sync.Mutex
	free   [][]byte
	allocs int
	reads  int // Gets: payloads read from disk
}

func (b *poolBuffers) Get(n int) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	for i, p := range b.free {
		if cap(p) >= n {
			b.free = append(b.free[:i], b.free[i+1:]...)
			return p[:n]
		}
	}
	b.allocs++
	return make([]byte, n)
}

func (b *poolBuffers) Put(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free = append(b.free, p)
}

// A backlog drained while new frames keep coming: the shipper takes some frames from
// memory (the reader stops) and others from disk (it starts again). Each frame read back is
// read once, into a recycled buffer: the buffers drawn from the caller's pool stay bounded
// by what is in flight, however long the backlog, and the reader does not read again from
// the start of the segment every frame it already handed out.
func TestBacklogDrainRecyclesReadBuffers(t *testing.T) {
	opts := backlogOptions(t.TempDir())
	opts.SegmentBytes = 1 << 30 // one segment: every restart of the reader would go back to its start
	bufs := &poolBuffers{}
	opts.Buffers = bufs
	s := mustOpen(t, opts)
	const rounds = 40
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 64<<10) }
	ship := func(want int) {
		t.Helper()
		f := mustNext(t, s)
		if !bytes.Equal(f.Payload, payload(want)) {
			t.Fatalf("frame %d: wrong payload", f.Seq)
		}
		reuse, err := s.AckFrame(f.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if reuse {
			bufs.Put(f.Payload)
		}
	}
	for i := 0; i < rounds; i++ {
		// One frame the shipper takes from memory before any commit (the reader stops),
		// one a commit writes first, which it must read back from disk.
		mustAppend(t, s, payload(2*i))
		ship(2 * i)
		mustAppend(t, s, payload(2*i+1))
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		ship(2*i + 1)
	}
	if bufs.reads != rounds {
		t.Errorf("%d payloads read from disk for %d frames written before the shipper took them", bufs.reads, rounds)
	}
	if bufs.allocs > 1 {
		t.Errorf("%d buffers allocated for %d frames read back one at a time, want 1", bufs.allocs, rounds)
	}
}

// A frame handed out, then written by a commit whose fsync fails: the rewrite moves it into a
// new segment, and the reader, starting again after it, finds the next frame where the
// rewrite put it, without a corrupt frame on the way.
func TestReaderResumesAfterRewrittenFrame(t *testing.T) {
	ffs := &faultFS{}
	opts := backlogOptions(t.TempDir())
	opts.fs = ffs
	s := mustOpen(t, opts)
	size := func(i uint64) int { return 1000 + int(i)*3000 }
	mustAppend(t, s, payloadFor(1, size(1)))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, []Frame{mustNext(t, s)}, []uint64{1}, size)
	mustAppend(t, s, payloadFor(2, size(2)))
	checkFrames(t, []Frame{mustNext(t, s)}, []uint64{2}, size) // from memory: the reader stops
	mustAppend(t, s, payloadFor(3, size(3)))
	mustAppend(t, s, payloadFor(4, size(4)))
	ffs.mu.Lock()
	ffs.failNextSync = true
	ffs.mu.Unlock()
	_ = s.Sync() // writes 2 to 4, fails, rewrites them into a new segment
	waitFor(t, "the rewrite", func() bool { return s.Durable() == 4 })
	if n := len(segFiles(t, opts.Dir)); n != 2 {
		t.Fatalf("%d segments, want the first one cut and the rewrite", n)
	}
	checkFrames(t, nextFrames(t, s, 2), []uint64{3, 4}, size)
	if n := testutil.ToFloat64(opts.Metrics.SpoolCorrupt); n != 0 {
		t.Errorf("%v corrupt frames skipped by the reader", n)
	}
}
