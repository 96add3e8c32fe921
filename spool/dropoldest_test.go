package spool

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A full drop_oldest spool with nothing acknowledged never blocks Append: it gives up its
// oldest frames, counts and logs them, and the reader, the acks, Replay and a restart all
// agree on what survived.
func TestDropOldestNeverBlocks(t *testing.T) {
	for _, tc := range []struct {
		name          string
		segment, max  int64
		frame, frames int
	}{
		{"several segments", 4096, 3 * 4096, 1000, 200},
		// Only the active segment ever holds data: it is sealed, then dropped whole.
		{"bound below one segment", 1 << 20, 8192, 1000, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logs := &lockedBuffer{}
			opts := testOptions(dir)
			opts.SegmentBytes = tc.segment
			opts.MaxBytes = tc.max
			opts.DropOldest = true
			opts.Metrics = Metrics{}.withDefaults()
			opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
			s := mustOpen(t, opts)
			size := func(uint64) int { return tc.frame }

			// Three frames in flight when the drops happen; the second one already acked
			// out of order (delivered, so not counted as dropped).
			for i := uint64(1); i <= 3; i++ {
				mustAppend(t, s, payloadFor(i, tc.frame))
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			for i := uint64(1); i <= 3; i++ {
				mustNext(t, s)
			}
			if err := s.Ack(2); err != nil {
				t.Fatal(err)
			}

			n := uint64(tc.frames)
			for i := uint64(4); i <= n; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				seq, err := s.Append(ctx, payloadFor(i, tc.frame))
				cancel()
				if err != nil {
					t.Fatalf("Append %d: %v (drop_oldest must never block)", i, err)
				}
				if seq != i {
					t.Fatalf("Append seq %d, want %d", seq, i)
				}
				if b := s.Stats().Bytes; b > opts.MaxBytes+opts.SegmentBytes {
					t.Fatalf("after frame %d: %d bytes on disk, bound %d + one segment", i, b, opts.MaxBytes)
				}
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			// Acks of frames dropped while in flight are no-ops, never errors.
			for _, seq := range []uint64{1, 3} {
				if err := s.Ack(seq); err != nil {
					t.Fatalf("ack of dropped in-flight frame %d: %v", seq, err)
				}
			}

			first := s.AckedThrough() + 1
			if first <= 3 {
				t.Fatalf("cursor %d did not move past the dropped frames", first-1)
			}
			survivors := n - first + 1
			if st := s.Stats(); st.Unacked != survivors || s.Pending() != int(survivors) {
				t.Fatalf("Unacked %d, Pending %d, want %d", st.Unacked, s.Pending(), survivors)
			}
			// Appended n, frame 2 delivered, the survivors still readable: the rest dropped.
			dropped := metricValue(t, opts.Metrics.SpoolDropped)
			if want := float64(n - 1 - survivors); dropped != want {
				t.Fatalf("dropped counter %v, want %v (appended %d, survivors %d)", dropped, want, n, survivors)
			}
			if b := metricValue(t, opts.Metrics.SpoolDroppedBytes); b < dropped*float64(tc.frame) {
				t.Fatalf("dropped bytes %v for %v frames of %d bytes", b, dropped, tc.frame)
			}
			lines := strings.Count(logs.String(), "dropped oldest")
			if lines == 0 || float64(lines) >= dropped {
				t.Fatalf("%d drop log lines for %v dropped frames: want one per drop event", lines, dropped)
			}

			checkFrames(t, replayAll(t, s, 1), seqRange(first, n), size)
			got := nextFrames(t, s, int(survivors))
			checkFrames(t, got, seqRange(first, n), size)
			noNext(t, s)

			// Half the survivors delivered, then a restart: the dropped frames stay gone and
			// the reader resumes after the last ack.
			mid := first + survivors/2
			for seq := first; seq < mid; seq++ {
				if err := s.Ack(seq); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			opts.Metrics = Metrics{}.withDefaults()
			s2 := mustOpen(t, opts)
			if a := s2.AckedThrough(); a != mid-1 {
				t.Fatalf("cursor after restart %d, want %d", a, mid-1)
			}
			for _, f := range replayAll(t, s2, 1) {
				if f.Seq < first {
					t.Fatalf("dropped frame %d reappeared after restart", f.Seq)
				}
			}
			got = got[:0]
			for seq := mid; seq <= n; seq++ {
				got = append(got, mustNext(t, s2))
			}
			checkFrames(t, got, seqRange(mid, n), size)
			noNext(t, s2)
		})
	}
}

// The reader, several ackers and a stats poller run while Append drops segments under them.
func TestDropOldestConcurrent(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.SegmentBytes = 16 << 10
	opts.MaxBytes = 64 << 10
	opts.FsyncInterval = time.Millisecond
	opts.DropOldest = true
	opts.CacheBytes = 32 << 10 // cached frames of dropped segments must not be handed out
	s := mustOpen(t, opts)
	const n = 3000
	size := func(i uint64) int { return 1 + int(i*7919%3000) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	// The reader starts once the committer is far beyond MaxBytes, so drops surely happen;
	// from then on everything runs at once.
	ahead := make(chan struct{})
	failures := newFirstFailure(cancel)
	fail := failures.fail
	wg.Go(func() { // committer
		for i := uint64(1); i <= n; i++ {
			var seq uint64
			var err error
			if i%2 == 0 {
				seq, err = s.AppendShared(ctx, payloadFor(i, size(i)))
			} else {
				seq, err = s.Append(ctx, payloadFor(i, size(i)))
			}
			if err != nil {
				fail(fmt.Errorf("Append %d: %w", i, err))
				return
			}
			if seq != i {
				fail(fmt.Errorf("Append seq %d, want %d", seq, i))
				return
			}
			if i == 500 {
				close(ahead)
			}
		}
		if err := s.Sync(); err != nil {
			fail(err)
		}
	})
	acks := make(chan uint64, 64)
	var read int
	wg.Go(func() { // reader
		defer close(acks)
		select {
		case <-ahead:
		case <-ctx.Done():
			return
		}
		var last uint64
		for last < n {
			f, err := s.Next(ctx)
			if err != nil {
				fail(fmt.Errorf("Next after %d: %w", last, err))
				return
			}
			if f.Seq <= last {
				fail(fmt.Errorf("Next returned %d after %d", f.Seq, last))
				return
			}
			if !bytes.Equal(f.Payload, payloadFor(f.Seq, size(f.Seq))) {
				fail(fmt.Errorf("frame %d: payload differs", f.Seq))
				return
			}
			last = f.Seq
			if read++; read%64 == 0 {
				time.Sleep(time.Millisecond) // lag behind the committer: drops under the reader
			}
			acks <- f.Seq
		}
	})
	for range 3 {
		wg.Go(func() { // ackers, slower than the committer so that drops happen
			for seq := range acks {
				if seq%7 == 0 {
					time.Sleep(50 * time.Microsecond)
				}
				if err := s.Ack(seq); err != nil {
					fail(fmt.Errorf("Ack %d: %w", seq, err))
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var poll sync.WaitGroup
	poll.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			st := s.Stats()
			if st.AckedThrough > st.Durable && st.AckedThrough > s.LastSeq() {
				fail(fmt.Errorf("cursor %d beyond last seq", st.AckedThrough))
			}
			_ = s.Pending()
			time.Sleep(100 * time.Microsecond)
		}
	})
	wg.Wait()
	close(stop)
	poll.Wait()
	failures.check(t)
	waitFor(t, "every read frame acknowledged", func() bool { return s.AckedThrough() == n })
	dropped := metricValue(t, opts.Metrics.SpoolDropped)
	// A frame dropped while in flight is counted as dropped and was read too.
	if dropped == 0 {
		t.Fatal("nothing dropped although the reader started 500 frames behind a 64 KiB bound")
	}
	if float64(read)+dropped < n {
		t.Fatalf("read %d + dropped %v < appended %d: frames vanished uncounted", read, dropped, n)
	}
	t.Logf("read %d, dropped %v of %d", read, dropped, n)
}
