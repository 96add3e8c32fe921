package spool

import (
	"bytes"
	"context"
	"sync"
	"testing"
)

// Frames appended with AppendShared come back from Next in order and intact, from memory
// while they are cached and from disk once evicted, with ack frames between them stepped over.
func TestAppendSharedServesRecentFramesFromMemory(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.CacheBytes = 3 * 1000
	s := mustOpen(t, opts)
	const n = 12
	sent := make([][]byte, 0, n)
	for i := range n {
		p := payloadFor(uint64(i+1), 1000)
		sent = append(sent, p)
		if _, err := s.AppendShared(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			// An ack frame lands between data frames.
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				f := mustNext(t, s)
				if err := s.Ack(f.Seq); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	fromMemory := 0
	for i := 3; i < n; i++ {
		f := mustNext(t, s)
		if f.Seq != uint64(i+1) || !bytes.Equal(f.Payload, sent[i]) {
			t.Fatalf("frame %d: seq %d, payload equal %v", i+1, f.Seq, bytes.Equal(f.Payload, sent[i]))
		}
		if &f.Payload[0] == &sent[i][0] {
			fromMemory++
		}
	}
	// Only the last three fit in the cache.
	if fromMemory != 3 {
		t.Errorf("%d frames served from memory, want the 3 that fit in CacheBytes", fromMemory)
	}
}

// A frame that is cached but not yet durable is not handed out (WriteAlways: in backlog
// mode handing it out before it is durable is the point).
func TestCachedFrameWaitsForDurability(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.Write = WriteAlways
	opts.CacheBytes = 1 << 20
	s := mustOpen(t, opts)
	if _, err := s.AppendShared(context.Background(), []byte("not yet durable")); err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 0 {
		t.Fatalf("Pending = %d before Sync", s.Pending())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Next(ctx); err == nil {
		t.Fatal("Next returned a frame that was not durable")
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if f := mustNext(t, s); string(f.Payload) != "not yet durable" {
		t.Fatalf("payload %q", f.Payload)
	}
}

type countingBuffers struct {
	mu       sync.Mutex
	gets     int
	returned [][]byte
}

func (b *countingBuffers) Get(n int) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gets++
	return make([]byte, n)
}

func (b *countingBuffers) Put(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.returned = append(b.returned, p)
}

// Payloads evicted from the cache go back to the caller, and frames read from disk are read
// into the caller's buffers: a steady stream of frames allocates nothing in the spool.
func TestBuffersRecycleEvictedAndReadPayloads(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.CacheBytes = 2 * 100
	bufs := &countingBuffers{}
	opts.Buffers = bufs
	s := mustOpen(t, opts)
	var sent [][]byte
	for i := range 5 {
		p := payloadFor(uint64(i+1), 100)
		sent = append(sent, p)
		if _, err := s.AppendShared(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if f := mustNext(t, s); !bytes.Equal(f.Payload, sent[i]) {
			t.Fatalf("frame %d differs", i+1)
		}
	}
	if bufs.gets != 3 {
		t.Errorf("%d disk reads used the caller's buffers, want 3 (the evicted frames)", bufs.gets)
	}
	if len(bufs.returned) != 3 || &bufs.returned[0][0] != &sent[0][0] {
		t.Errorf("%d evicted payloads returned, want the first 3", len(bufs.returned))
	}
}
