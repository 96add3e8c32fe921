package spool

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentAppendNextAck runs the committer, the shipper's reader, several ackers and a
// stats poller at once, through segment rolls, deletions and MaxBytes backpressure.
func TestConcurrentAppendNextAck(t *testing.T) { eachWriteMode(t, testConcurrentAppendNextAck) }

func testConcurrentAppendNextAck(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.SegmentBytes = 64 << 10
	opts.MaxBytes = 256 << 10
	opts.FsyncInterval = time.Millisecond
	s := mustOpen(t, opts)
	s.Checkpoint(1 << 62)
	const n = 3000
	size := func(i uint64) int { return 1 + int(i*7919%9000) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	failures := newFirstFailure(cancel)
	fail := failures.fail
	wg.Go(func() { // committer
		for i := uint64(1); i <= n; i++ {
			seq, err := s.Append(ctx, payloadFor(i, size(i)))
			if err != nil {
				fail(err)
				return
			}
			if seq != i {
				fail(fmt.Errorf("Append seq %d, want %d", seq, i))
				return
			}
			if i%500 == 0 {
				if err := s.Sync(); err != nil {
					fail(err)
					return
				}
			}
		}
	})
	acks := make(chan uint64, 64)
	wg.Go(func() { // shipper's reader
		defer close(acks)
		for i := uint64(1); i <= n; i++ {
			f, err := s.Next(ctx)
			if err != nil {
				fail(err)
				return
			}
			if f.Seq != i || !bytes.Equal(f.Payload, payloadFor(i, size(i))) {
				fail(fmt.Errorf("Next returned seq %d (len %d), want %d", f.Seq, len(f.Payload), i))
				return
			}
			acks <- f.Seq
		}
	})
	for range 4 {
		wg.Go(func() {
			for seq := range acks {
				if err := s.Ack(seq); err != nil {
					fail(err)
				}
			}
		})
	}
	stop := make(chan struct{})
	var pollWG sync.WaitGroup
	pollWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			st := s.Stats()
			if s.opts.Write == WriteAlways && st.AckedThrough > st.Durable {
				// (In backlog mode frames are handed out before they are durable.)
				fail(fmt.Errorf("acked %d beyond durable %d", st.AckedThrough, st.Durable))
			}
			_ = s.Pending()
			time.Sleep(100 * time.Microsecond)
		}
	})
	wg.Wait()
	close(stop)
	pollWG.Wait()
	failures.check(t)
	if got := s.AckedThrough(); got != n {
		t.Fatalf("cursor %d, want %d", got, n)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "acked segments deleted", func() bool { return s.Stats().Bytes < opts.SegmentBytes+frameSize(9000) })
}
