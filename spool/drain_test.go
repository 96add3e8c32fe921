package spool

import (
	"bytes"
	"sync"
	"testing"
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
