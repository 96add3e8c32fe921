package spool

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// ownedBuffers is a caller's free list that checks the ownership of every buffer: a buffer
// put back while it is free already (a double put) is an error, and a buffer put back is
// scribbled over at once, so that any reader still holding it (the spool's tail, its cache,
// a commit writing it) would see garbage.
type ownedBuffers struct {
	mu     sync.Mutex
	free   [][]byte
	isFree map[*byte]bool
	errs   []string
	puts   int
}

func newOwnedBuffers() *ownedBuffers { return &ownedBuffers{isFree: map[*byte]bool{}} }

func bufKey(p []byte) *byte { return unsafe.SliceData(p[:cap(p)]) }

func (b *ownedBuffers) Get(n int) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, p := range b.free {
		if cap(p) >= n {
			b.free = append(b.free[:i], b.free[i+1:]...)
			b.isFree[bufKey(p)] = false
			return p[:n]
		}
	}
	p := make([]byte, n, max(n, 1))
	b.isFree[bufKey(p)] = false
	return p
}

func (b *ownedBuffers) Put(p []byte) {
	if cap(p) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := bufKey(p)
	if b.isFree[k] {
		b.errs = append(b.errs, fmt.Sprintf("buffer %p put back twice", k))
		return
	}
	b.isFree[k] = true
	b.puts++
	p = p[:cap(p)]
	for i := range p {
		p[i] = 0xEE
	}
	b.free = append(b.free, p)
}

func (b *ownedBuffers) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		t.Error(e)
	}
}

// The path users run, under stress: payloads from the caller's free list handed over with
// AppendShared, taken by Next while commits write them, acknowledged out of order from
// several goroutines while frames are young, pinned, rolled and rewritten after failed
// fsyncs; every payload the spool lets the caller reuse is scribbled over at once. Every
// frame Next hands out, and every frame on disk after a reopen, must be intact, and no
// buffer may come back twice.
//
// With a cache, and without one as the flow runs backlog mode: then every frame a commit
// wrote before Next took it goes back to Buffers the moment it is durable.
func TestBacklogRecycledBuffersStayIntact(t *testing.T) {
	for _, cache := range []int64{256 << 10, 0} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) { testBacklogRecycledBuffersStayIntact(t, cache) })
	}
}

func testBacklogRecycledBuffersStayIntact(t *testing.T, cacheBytes int64) {
	ffs := &faultFS{}
	opts := backlogOptions(t.TempDir())
	opts.fs = ffs
	opts.FsyncInterval = 2 * time.Millisecond
	opts.SegmentBytes = 512 << 10
	opts.CacheBytes = cacheBytes
	bufs := newOwnedBuffers()
	opts.Buffers = bufs
	s := mustOpen(t, opts)
	const n = 1500
	size := func(i uint64) int {
		if i%3 == 0 {
			return scratchBytes + 1000 + int(i%5)*4096 // written by reference, pinned
		}
		return 200 + int(i*7919%6000)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	failures := newFirstFailure(cancel)
	fail := failures.fail
	wg.Go(func() {
		for i := uint64(1); i <= n; i++ {
			p := bufs.Get(size(i))
			copy(p, payloadFor(i, size(i)))
			seq, err := s.AppendShared(ctx, p)
			if err != nil {
				fail(err)
				return
			}
			if seq != i {
				fail(fmt.Errorf("seq %d, want %d", seq, i))
				return
			}
		}
	})
	var kept atomic.Int64   // payloads AckFrame kept for the spool to recycle
	var reused atomic.Int64 // payloads AckFrame let the caller recycle
	acks := make(chan Frame, 64)
	wg.Go(func() {
		defer close(acks)
		for i := uint64(1); i <= n; i++ {
			f, err := s.Next(ctx)
			if err != nil {
				fail(err)
				return
			}
			if f.Seq != i || !bytes.Equal(f.Payload, payloadFor(i, size(i))) {
				fail(fmt.Errorf("Next: seq %d (len %d) damaged or out of order, want %d", f.Seq, len(f.Payload), i))
				return
			}
			acks <- f
		}
	})
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for f := range acks {
				if r.IntN(4) == 0 {
					time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond) // in flight across commits
				}
				if !bytes.Equal(f.Payload, payloadFor(f.Seq, size(f.Seq))) {
					fail(fmt.Errorf("payload of %d changed while in flight", f.Seq))
					return
				}
				reuse, err := s.AckFrame(f.Seq)
				if err != nil {
					fail(err)
					return
				}
				if reuse {
					reused.Add(1)
					bufs.Put(f.Payload)
				} else {
					kept.Add(1)
				}
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	// Fsyncs fail now and then for a while: the frames commits wrote stay pinned (the
	// rewrite is retried with a backoff) while the shipper acknowledges them.
	faults := make(chan struct{})
	go func() {
		defer close(faults)
		setFail := func(v bool) {
			ffs.mu.Lock()
			ffs.failSyncs = v
			ffs.mu.Unlock()
		}
		defer setFail(false)
		for {
			select {
			case <-finished:
				return
			case <-time.After(30 * time.Millisecond):
			}
			setFail(true)
			time.Sleep(10 * time.Millisecond)
			setFail(false)
		}
	}()
	// Crash images (kill -9: the page cache survives) taken while all this runs: every frame
	// up to the Durable read before the image is in it, intact, as data or as a stub.
	images := 0
	for running := true; running; {
		select {
		case <-finished:
			running = false
		case <-time.After(20 * time.Millisecond):
			d := s.Durable()
			checkCrashImage(t, copyDir(t, opts.Dir), d, size)
			images++
		}
	}
	t.Logf("%d crash images checked", images)
	<-faults
	failures.check(t)
	bufs.check(t)
	if kept.Load() == 0 || testutil.ToFloat64(opts.Metrics.SpoolWriteErrors) == 0 {
		t.Fatalf("%d payloads kept by AckFrame, %v failed fsyncs: the test did not reach what it is about",
			kept.Load(), testutil.ToFloat64(opts.Metrics.SpoolWriteErrors))
	}
	bufs.mu.Lock()
	spoolPuts := int64(bufs.puts) - reused.Load() // payloads the spool recycled itself
	bufs.mu.Unlock()
	t.Logf("kept %d, recycled by the spool %d, write errors %v, delivered %d",
		kept.Load(), spoolPuts, testutil.ToFloat64(opts.Metrics.SpoolWriteErrors), s.Stats().Delivered)
	if spoolPuts <= kept.Load() {
		t.Fatalf("the spool recycled %d payloads, %d of them kept by AckFrame: it recycled none that Next had not handed out", spoolPuts, kept.Load())
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, backlogOptions(opts.Dir))
	for _, f := range replayAll(t, r, 1) {
		if !f.Delivered && !bytes.Equal(f.Payload, payloadFor(f.Seq, size(f.Seq))) {
			t.Fatalf("frame %d damaged on disk", f.Seq)
		}
	}
	if r.AckedThrough() != n {
		t.Fatalf("cursor %d after reopen, want %d", r.AckedThrough(), n)
	}
}

// checkCrashImage opens dir and checks that frames 1..durable are all there, the data frames
// intact.
func checkCrashImage(t *testing.T, dir string, durable uint64, size func(uint64) int) {
	t.Helper()
	r := mustOpen(t, backlogOptions(dir))
	defer r.Close()
	want := uint64(1)
	for _, f := range replayAll(t, r, 1) {
		if f.Seq != want && f.Seq <= durable {
			t.Fatalf("crash image: frame %d follows %d, Durable was %d", f.Seq, want-1, durable)
		}
		if !f.Delivered && !bytes.Equal(f.Payload, payloadFor(f.Seq, size(f.Seq))) {
			t.Fatalf("crash image: frame %d damaged", f.Seq)
		}
		want = f.Seq + 1
	}
	if want <= durable {
		t.Fatalf("crash image ends at frame %d, Durable was %d", want-1, durable)
	}
}
