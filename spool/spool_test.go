package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRoundTripAndPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s := mustOpen(t, testOptions(dir))
	size := func(i uint64) int { return int(i) * 1000 } // spans the scratch and direct write paths
	for i := uint64(1); i <= 100; i++ {
		if seq := mustAppend(t, s, payloadFor(i, size(i))); seq != i {
			t.Fatalf("Append returned seq %d, want %d", seq, i)
		}
	}
	// Nothing is durable before a commit, except in backlog mode what Append had to write
	// once the frames no Next took reached MaxHeldBytes (~5 MB are appended here).
	wantDurable := func(d uint64) bool { return d == 0 }
	if s.opts.Write == WriteAlways {
		noNext(t, s)
	} else {
		wantDurable = func(d uint64) bool { return d < 100 }
	}
	if !wantDurable(s.Durable()) || s.LastSeq() != 100 {
		t.Fatalf("Durable %d LastSeq %d, want 0 (backlog: below 100) and 100", s.Durable(), s.LastSeq())
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 100 {
		t.Fatalf("Pending %d, want 100", s.Pending())
	}
	got := nextFrames(t, s, 100)
	checkFrames(t, got, seqRange(1, 100), size)
	noNext(t, s)

	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
	for _, f := range segFiles(t, dir) {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if _, err := Open(testOptions(dir)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestGroupCommitInBackground(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.FsyncInterval = 5 * time.Millisecond
	s := mustOpen(t, opts)
	mustAppend(t, s, []byte("a"))
	waitFor(t, "durable", func() bool { return s.Durable() == 1 })

	opts = testOptions(t.TempDir())
	opts.FsyncInterval = time.Hour
	opts.SyncBytes = 4096
	// In backlog mode SyncBytes commits nothing early: a young frame is written once it is a
	// backlog (TestBacklogCommitWritesFramesOnceTheyAreABacklog).
	opts.Write = WriteAlways
	s = mustOpen(t, opts)
	mustAppend(t, s, make([]byte, 5000))
	waitFor(t, "durable by SyncBytes", func() bool { return s.Durable() == 1 })
}

// TestRecoveryEveryCut cuts the segment at every byte offset inside its last frame: every
// complete frame survives exactly, nothing else appears, and seqs keep growing.
func TestRecoveryEveryCut(t *testing.T) {
	src := t.TempDir()
	s := mustOpen(t, testOptions(src))
	size := func(i uint64) int { return 20 + int(i)*13 } // the last one needs padding
	const n = 6
	for i := uint64(1); i <= n; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := segFiles(t, src)[0]
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	lastStart := int64(len(full)) - frameSize(size(n))
	for cut := lastStart; cut <= int64(len(full)); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(seg)), full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(testOptions(dir))
		if err != nil {
			t.Fatalf("cut %d: Open: %v", cut, err)
		}
		want := uint64(n - 1)
		if cut == int64(len(full)) {
			want = n
		}
		checkFrames(t, replayAll(t, s, 0), seqRange(1, want), size)
		seq := mustAppend(t, s, payloadFor(want+1, size(want+1)))
		if seq <= want {
			t.Fatalf("cut %d: new seq %d not above %d", cut, seq, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = mustOpen(t, testOptions(dir))
		checkFrames(t, replayAll(t, s, 0), seqRange(1, want+1), size)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		broken, _ := filepath.Glob(filepath.Join(dir, "*.broken"))
		if hasTail := cut != lastStart && cut != int64(len(full)); hasTail != (len(broken) == 1) {
			t.Fatalf("cut %d: broken files %v", cut, broken)
		}
	}
}

func TestRecoveryDamagedTail(t *testing.T) {
	size := func(i uint64) int { return 3000 }
	const n = 5
	src := t.TempDir()
	s := mustOpen(t, testOptions(src))
	for i := uint64(1); i <= n; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Base(segFiles(t, src)[0])
	full, _ := os.ReadFile(filepath.Join(src, seg))
	lastStart := len(full) - int(frameSize(size(n)))
	garbage := make([]byte, 5000)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	tests := []struct {
		name   string
		damage func(b []byte) []byte
		keep   uint64
	}{
		{"zeroed pages appended", func(b []byte) []byte { return append(b, make([]byte, 8192)...) }, n},
		{"garbage appended", func(b []byte) []byte { return append(b, garbage...) }, n},
		{"last frame zeroed", func(b []byte) []byte { clear(b[lastStart:]); return b }, n - 1},
		{"bit flipped in last payload", func(b []byte) []byte { b[lastStart+100] ^= 0x10; return b }, n - 1},
		{"bit flipped in last length", func(b []byte) []byte { b[lastStart+5] ^= 0x01; return b }, n - 1},
		{"bit flipped in last seq", func(b []byte) []byte { b[lastStart+8] ^= 0x04; return b }, n - 1},
		// The newest segment is cut at bad bytes even with valid frames after them: a power
		// loss may have kept later pages without an earlier one (see the package doc).
		{"bit flipped in second frame", func(b []byte) []byte { b[segHeaderSize+int(frameSize(3000))+30] ^= 1; return b }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := tc.damage(append([]byte(nil), full...))
			if err := os.WriteFile(filepath.Join(dir, seg), b, 0o600); err != nil {
				t.Fatal(err)
			}
			opts := testOptions(dir)
			s := mustOpen(t, opts)
			checkFrames(t, replayAll(t, s, 0), seqRange(1, tc.keep), size)
			if got := metricValue(t, opts.Metrics.SpoolCorrupt); got != 1 {
				t.Errorf("SpoolCorrupt = %v, want 1", got)
			}
			if got := metricValue(t, opts.Metrics.SpoolBytes); got != float64(s.Stats().Bytes) {
				t.Errorf("SpoolBytes = %v, want %d", got, s.Stats().Bytes)
			}
			if seq := mustAppend(t, s, payloadFor(tc.keep+1, size(0))); seq <= tc.keep {
				t.Fatalf("new seq %d not above %d", seq, tc.keep)
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			for i := uint64(1); i <= tc.keep+1; i++ {
				if f := mustNext(t, s); f.Seq != i {
					t.Fatalf("Next seq %d, want %d", f.Seq, i)
				}
			}
		})
	}
}

func TestStaleTempSweptAndBadHeaderSetAside(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir))
	mustAppend(t, s, []byte("one"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segName(50)+".tmp"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segName(40)), make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, testOptions(dir))
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, segName(40)+".0.broken")); err != nil {
		t.Fatalf("bad segment not set aside: %v", err)
	}
	if got := replayAll(t, s, 0); len(got) != 1 || got[0].Seq != 1 || string(got[0].Payload) != "one" {
		t.Fatalf("Replay: %+v", got)
	}
	// Seqs never go below a segment that existed, even an unreadable one.
	if seq := mustAppend(t, s, []byte("two")); seq < 40 {
		t.Fatalf("seq %d after a set-aside segment named 40", seq)
	}
}

func TestAcksOutOfOrderAndPersisted(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir))
	for i := uint64(1); i <= 10; i++ {
		mustAppend(t, s, payloadFor(i, 20))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		mustNext(t, s)
	}
	if err := s.Ack(11); err == nil {
		t.Fatal("Ack of a frame never returned by Next succeeded")
	}
	for _, step := range []struct{ ack, cursor uint64 }{{3, 0}, {1, 1}, {2, 3}, {5, 3}, {4, 5}, {4, 5}, {2, 5}, {7, 5}} {
		if err := s.Ack(step.ack); err != nil {
			t.Fatalf("Ack(%d): %v", step.ack, err)
		}
		if got := s.AckedThrough(); got != step.cursor {
			t.Fatalf("after Ack(%d): cursor %d, want %d", step.ack, got, step.cursor)
		}
	}
	if st := s.Stats(); st.Unacked != 5 || st.AckedThrough != 5 || st.Durable != 10 {
		t.Fatalf("Stats %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if _, err := s.Append(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}

	s = mustOpen(t, testOptions(dir))
	if got := s.AckedThrough(); got != 5 {
		t.Fatalf("cursor after reopen %d, want 5", got)
	}
	for i := uint64(6); i <= 10; i++ { // 7 was acked, but only the cursor is persisted
		if f := mustNext(t, s); f.Seq != i {
			t.Fatalf("Next seq %d, want %d", f.Seq, i)
		}
	}
	noNext(t, s)
	if seq := mustAppend(t, s, nil); seq != 11 {
		t.Fatalf("seq after reopen %d, want 11", seq)
	}
}

// TestAckCursorSurvivesCrash copies a live spool's directory (a crash that kept the page
// cache) and a durable-only image of it (power loss).
func TestAckCursorSurvivesCrash(t *testing.T) { eachWriteMode(t, testAckCursorSurvivesCrash) }

func testAckCursorSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir))
	for i := uint64(1); i <= 10; i++ {
		mustAppend(t, s, payloadFor(i, 100))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		mustNext(t, s)
		if i <= 4 {
			if err := s.Ack(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Sync(); err != nil { // the ack frame for 4 is durable
		t.Fatal(err)
	}
	durableImage := copyDir(t, dir)
	for i := uint64(5); i <= 6; i++ { // acked, never committed
		if err := s.Ack(i); err != nil {
			t.Fatal(err)
		}
	}
	crashImage := copyDir(t, dir)

	for _, img := range []string{durableImage, crashImage} {
		c := mustOpen(t, testOptions(img))
		got := c.AckedThrough()
		// The ack frame for 6 is written (not fsynced) soon after the ack: a kill -9 image
		// may hold it, a power-loss image never does.
		if got != 4 && (img == durableImage || got != 6) {
			t.Fatalf("cursor after crash %d, want 4 (or 6 after kill -9)", got)
		}
		for i := got + 1; i <= 10; i++ {
			if f := mustNext(t, c); f.Seq != i {
				t.Fatalf("Next after crash: seq %d, want %d", f.Seq, i)
			}
		}
		noNext(t, c)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSegmentDeletionNeedsAckAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentBytes = 4096
	s := mustOpen(t, opts)
	size := func(uint64) int { return 1000 }
	const n = 20 // 4 frames per segment: segments start at 1, 5, 9, 13, 17
	for i := uint64(1); i <= n; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := len(segFiles(t, dir)); got != 5 {
		t.Fatalf("%d segments, want 5", got)
	}
	for range n {
		mustNext(t, s)
	}
	for i := uint64(1); i <= 14; i++ {
		if err := s.Ack(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := len(segFiles(t, dir)); got != 5 {
		t.Fatalf("%d segments without a checkpoint, want 5", got)
	}
	s.Checkpoint(7) // segment 1..4 goes; 5..8 holds 8 > 7
	waitFor(t, "first segment deleted", func() bool { return s.Stats().Segments == 4 })
	if got := len(segFiles(t, dir)); got != 4 {
		t.Fatalf("%d segment files, want 4", got)
	}
	// A crash now: Replay must still find every frame after the positions checkpoint.
	crashed := mustOpen(t, testOptions(copyDir(t, dir)))
	checkFrames(t, replayAll(t, crashed, 8), seqRange(8, n), size)
	if err := crashed.Close(); err != nil {
		t.Fatal(err)
	}
	s.Checkpoint(100) // acks stop at 14: segments up to 9..12 go, 13..16 stays
	waitFor(t, "acked segments deleted", func() bool { return s.Stats().Segments == 2 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, opts)
	checkFrames(t, replayAll(t, s, 8), seqRange(13, n), size)
	for i := uint64(15); i <= n; i++ {
		if f := mustNext(t, s); f.Seq != i {
			t.Fatalf("Next seq %d, want %d", f.Seq, i)
		}
		if err := s.Ack(i); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, s, payloadFor(n+1, size(0))) // rolls: 17..20 is full
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Checkpoint(n)
	waitFor(t, "all sealed segments deleted", func() bool { return s.Stats().Segments == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, opts)
	if seq := mustAppend(t, s, nil); seq != n+2 {
		t.Fatalf("seq after deleting every old segment %d, want %d", seq, n+2)
	}
	if f := mustNext(t, s); f.Seq != n+1 {
		t.Fatalf("Next %d, want %d", f.Seq, n+1)
	}
}

func TestMaxBytesBlocksUntilAckFreesSpace(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.SegmentBytes = 4096
	opts.MaxBytes = 3 * 4096
	opts.FsyncInterval = time.Millisecond
	s := mustOpen(t, opts)
	s.Checkpoint(1 << 40) // positions are not this test's concern
	var appended uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := s.Append(ctx, make([]byte, 1000))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if appended++; appended > 100 {
			t.Fatal("Append never blocked")
		}
	}
	if b := s.Stats().Bytes; b < opts.MaxBytes || b > opts.MaxBytes+4096 {
		t.Fatalf("blocked at %d bytes, MaxBytes %d", b, opts.MaxBytes)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := s.Append(ctx, []byte("x")); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Append: %v", err)
	}

	done := make(chan error, 1)
	go func() { _, err := s.Append(context.Background(), []byte("y")); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("Append returned %v while full", err)
	case <-time.After(30 * time.Millisecond):
	}
	for range 4 { // the first segment
		f := mustNext(t, s)
		if err := s.Ack(f.Seq); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still blocked after acks freed a segment")
	}
}

func TestFaultsLeaveNoHalfFrame(t *testing.T) {
	size := func(i uint64) int {
		if i%2 == 0 {
			return 100 // scratch path
		}
		return 200 << 10 // direct path: header, payload, padding written separately
	}
	for _, truncFails := range []bool{false, true} {
		t.Run(map[bool]string{false: "truncate works", true: "truncate fails"}[truncFails], func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			opts := testOptions(dir)
			opts.Write = WriteAlways // the backlog mode's writes fail in commits: TestBacklogCommitWriteFaults
			opts.fs = ffs
			s := mustOpen(t, opts)
			for i := uint64(1); i <= 3; i++ {
				mustAppend(t, s, payloadFor(i, size(i)))
			}
			for _, i := range []uint64{4, 5} {
				ffs.mu.Lock()
				ffs.failNextWrite, ffs.failTruncate = true, truncFails
				ffs.mu.Unlock()
				// Append retries the failed write itself (the fault hits one write only).
				if seq := mustAppend(t, s, payloadFor(i, size(i))); seq != i {
					t.Fatalf("Append across a failed write: seq %d, want %d", seq, i)
				}
				ffs.mu.Lock()
				ffs.failTruncate = false
				ffs.mu.Unlock()
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			want := seqRange(1, 5)

			// A failed fsync is never retried on the same file: the unsynced frames are
			// rewritten from memory into a new segment, with their seqs.
			for i := uint64(6); i <= 7; i++ {
				mustAppend(t, s, payloadFor(i, size(i)))
			}
			ffs.mu.Lock()
			ffs.failNextSync = true
			ffs.mu.Unlock()
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync with one failing fsync: %v", err)
			}
			if d := s.Durable(); d != 7 {
				t.Fatalf("durable %d after the rewrite, want 7", d)
			}
			if seq := mustAppend(t, s, payloadFor(8, size(8))); seq != 8 {
				t.Fatalf("seq after the rewrite %d, want 8", seq)
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			want = seqRange(1, 8)
			got := nextFrames(t, s, len(want))
			checkFrames(t, got, want, size)
			noNext(t, s)
			reopenAndReplay(t, s, dir, want, size)
			if m, _ := filepath.Glob(filepath.Join(dir, "*.broken")); !truncFails && len(m) != 0 {
				t.Fatalf("recovery had to cut something: %v", m)
			}
		})
	}
}

func TestBackgroundSyncFailureRewritesFrames(t *testing.T) {
	ffs := &faultFS{failNextSync: false}
	opts := testOptions(t.TempDir())
	opts.fs = ffs
	opts.FsyncInterval = time.Millisecond
	s := mustOpen(t, opts)
	ffs.mu.Lock()
	ffs.failNextSync = true
	ffs.mu.Unlock()
	mustAppend(t, s, []byte("first"))
	if seq := mustAppend(t, s, []byte("next")); seq != 2 {
		t.Fatalf("seq %d, want 2", seq)
	}
	waitFor(t, "durable", func() bool { return s.Durable() == 2 })
	for i, want := range []string{"first", "next"} {
		if f := mustNext(t, s); f.Seq != uint64(i+1) || string(f.Payload) != want {
			t.Fatalf("Next: %d %q", f.Seq, f.Payload)
		}
	}
	if v := metricValue(t, opts.Metrics.SpoolWriteErrors); v < 1 {
		t.Fatalf("write errors counted: %v", v)
	}
}

func TestErrorsNameThePlace(t *testing.T) {
	ffs := &faultFS{}
	opts := testOptions(t.TempDir())
	opts.Write = WriteAlways // in backlog mode Append waits only past pendLimit: TestBacklogCommitWriteFaults
	opts.fs = ffs
	s := mustOpen(t, opts)
	ffs.failWrites = true
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Append(ctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append on a failing disk returned %v, want it to wait until ctx is done", err)
	}
	if e := s.Stats().WriteError; !strings.Contains(e, "spool: segment 00000000000000000001.seg: frame at 32") {
		t.Fatalf("write error %q does not name segment and offset", e)
	}
}

// TestMaxBytesSmallerThanASegment: when only the active segment is left, a waiting Append
// seals it once it is acked and checkpointed, so that it can be deleted.
func TestMaxBytesSmallerThanASegment(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.Write = WriteAlways // in backlog mode frames acked before the commit take no room
	opts.SegmentBytes = 1 << 20
	opts.MaxBytes = 8 << 10
	opts.FsyncInterval = time.Millisecond
	s := mustOpen(t, opts)
	for range 8 {
		mustAppend(t, s, make([]byte, 1000))
	}
	done := make(chan error, 1)
	go func() { _, err := s.Append(context.Background(), []byte("z")); done <- err }()
	for range 8 {
		f := mustNext(t, s)
		if err := s.Ack(f.Seq); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Append returned %v before the checkpoint covered the frames", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.Checkpoint(8)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still blocked")
	}
	waitFor(t, "sealed segment deleted", func() bool { return s.Stats().Segments == 1 })
	if f := mustNext(t, s); f.Seq != 9 || string(f.Payload) != "z" {
		t.Fatalf("Next %d %q", f.Seq, f.Payload)
	}
}

func TestCloseUnblocksNextAndAppend(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MaxBytes = 1 // every Append after the first waits for room
	s := mustOpen(t, opts)
	mustAppend(t, s, []byte("a"))
	nextErr, appendErr := make(chan error, 1), make(chan error, 1)
	go func() {
		f, err := s.Next(context.Background())
		if err == nil {
			_, err = s.Next(context.Background()) // "a" is not durable yet, so this is the one that waits
			_ = f
		}
		nextErr <- err
	}()
	go func() { _, err := s.Append(context.Background(), []byte("b")); appendErr <- err }()
	time.Sleep(30 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]chan error{"Next": nextErr, "Append": appendErr} {
		select {
		case err := <-c:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("%s after Close: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still blocked after Close", name)
		}
	}
	s = mustOpen(t, testOptions(opts.Dir))
	if got := replayAll(t, s, 0); len(got) != 1 || string(got[0].Payload) != "a" {
		t.Fatalf("after Close: %+v", got)
	}
}
