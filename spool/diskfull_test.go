package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/tmpfstest"
)

// fillDisk writes a file until the file system is full and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return path
		}
	}
}

// TestDiskFull: on a full file system Append waits (it neither fails nor crashes), the
// failure shows in Stats and the metric, and once space returns every frame appended before
// and after arrives exactly once; a reopen finds nothing to cut.
func TestDiskFull(t *testing.T) { eachWriteMode(t, testDiskFull) }

func testDiskFull(t *testing.T) {
	mnt := tmpfstest.Mount(t, 2<<20)
	dir := filepath.Join(mnt, "spool")
	opts := testOptions(dir)
	opts.SegmentBytes = 256 << 10
	opts.FsyncInterval = time.Millisecond
	s := mustOpen(t, opts)
	size := func(i uint64) int { return 1000 + int(i%7)*300 }
	const before, total = 50, 400
	for i := uint64(1); i <= before; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	filler := fillDisk(t, mnt)

	done := make(chan error, 1)
	go func() {
		for i := uint64(before + 1); i <= total; i++ {
			seq, err := s.Append(context.Background(), payloadFor(i, size(i)))
			if err != nil {
				done <- err
				return
			}
			if seq != i {
				done <- fmt.Errorf("seq %d, want %d", seq, i)
				return
			}
		}
		done <- nil
	}()
	waitFor(t, "Append to report the full disk", func() bool { return s.Stats().WriteError != "" })
	if e := s.Stats().WriteError; !strings.Contains(e, "no space left") {
		t.Fatalf("write error %q does not say the disk is full", e)
	}
	select {
	case err := <-done:
		t.Fatalf("appends finished on a full disk: %v", err)
	default:
	}
	if v := metricValue(t, opts.Metrics.SpoolWriteErrors); v < 1 {
		t.Fatalf("write errors counted: %v", v)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("appends still blocked after space returned")
	}
	if e := s.Stats().WriteError; e != "" {
		t.Fatalf("write error still reported after recovery: %s", e)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	want := seqRange(1, total)
	got := nextFrames(t, s, len(want))
	checkFrames(t, got, want, size)
	noNext(t, s)
	reopenAndReplay(t, s, dir, want, size)
	if m, _ := filepath.Glob(filepath.Join(dir, "*.broken")); len(m) != 0 {
		t.Fatalf("recovery found garbage to cut: %v", m)
	}
}

// TestFsyncFailsForAWhile: while every fsync fails nothing new is called durable, Append
// waits, and once fsyncs work again the frames written before the first failure are
// rewritten into a new segment and arrive exactly once, also after a reopen.
func TestFsyncFailsForAWhile(t *testing.T) { eachWriteMode(t, testFsyncFailsForAWhile) }

func testFsyncFailsForAWhile(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	opts := testOptions(dir)
	opts.fs = ffs
	opts.FsyncInterval = time.Millisecond
	s := mustOpen(t, opts)
	size := func(i uint64) int { return 100 + int(i%3)*70000 }
	for i := uint64(1); i <= 5; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	waitFor(t, "durable", func() bool { return s.Durable() == 5 })
	ffs.mu.Lock()
	ffs.failSyncs = true
	ffs.mu.Unlock()
	// The commit of frame 6 fails; only the appends after that must wait (those before the
	// background commit ran may all succeed: appends do not fsync).
	mustAppend(t, s, payloadFor(6, size(6)))
	waitFor(t, "the fsync failure to show", func() bool { return s.Stats().WriteError != "" })
	done := make(chan error, 1)
	go func() {
		for i := uint64(7); i <= 12; i++ {
			if _, err := s.Append(context.Background(), payloadFor(i, size(i))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(50 * time.Millisecond) // give a wrong implementation the chance to go on
	if d := s.Durable(); d != 5 {
		t.Fatalf("durable %d while every fsync fails, want 5", d)
	}
	select {
	case err := <-done:
		t.Fatalf("appends went on while the unsynced frames were not rewritten: %v", err)
	default:
	}
	ffs.mu.Lock()
	ffs.failSyncs = false
	ffs.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	want := seqRange(1, 12)
	got := nextFrames(t, s, len(want))
	checkFrames(t, got, want, size)
	noNext(t, s)
	if e := s.Stats().WriteError; e != "" {
		t.Fatalf("write error still reported: %s", e)
	}
	reopenAndReplay(t, s, dir, want, size)
}

// TestRewriteOverlapCutAtOpen: when the segment whose fsync failed cannot be cut back, it
// keeps frames that were rewritten into the next segment; Open keeps one copy of each.
func TestRewriteOverlapCutAtOpen(t *testing.T) { eachWriteMode(t, testRewriteOverlapCutAtOpen) }

func testRewriteOverlapCutAtOpen(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	opts := testOptions(dir)
	opts.fs = ffs
	s := mustOpen(t, opts)
	size := func(i uint64) int { return 500 }
	for i := uint64(1); i <= 3; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := uint64(4); i <= 6; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	ffs.mu.Lock()
	ffs.failNextSync, ffs.failTruncate = true, true
	ffs.mu.Unlock()
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n != 2 {
		t.Fatalf("%d segments, want the sealed one and the rewrite", n)
	}
	s = mustOpen(t, testOptions(dir))
	checkFrames(t, replayAll(t, s, 0), seqRange(1, 6), size)
	got := nextFrames(t, s, 6)
	checkFrames(t, got, seqRange(1, 6), size)
	noNext(t, s)
}

// TestFailedCommitIsRetried: a group commit that fails before its fsync (here the ack frame
// cannot be written, as on a full disk) is tried again by the spool itself: the frames it
// should have made durable become durable once writes work, with no further Append, Ack or
// Sync to trigger a commit, and the failure clears from Stats.
func TestFailedCommitIsRetried(t *testing.T) { eachWriteMode(t, testFailedCommitIsRetried) }

func testFailedCommitIsRetried(t *testing.T) {
	ffs := &faultFS{}
	opts := testOptions(t.TempDir())
	opts.fs = ffs
	opts.FsyncInterval = 200 * time.Millisecond
	s := mustOpen(t, opts)
	mustAppend(t, s, []byte("first"))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	f := mustNext(t, s)
	mustAppend(t, s, []byte("second")) // its commit is due in FsyncInterval
	ffs.mu.Lock()
	ffs.failWrites = true
	ffs.mu.Unlock()
	if err := s.Ack(f.Seq); err != nil { // the commit must write this ack frame first
		t.Fatal(err)
	}
	waitFor(t, "the commit to fail", func() bool { return s.Stats().WriteError != "" })
	ffs.mu.Lock()
	ffs.failWrites = false
	ffs.mu.Unlock()
	waitFor(t, "the second frame to become durable", func() bool { return s.Durable() == 2 })
	waitFor(t, "the write error to clear", func() bool { return s.Stats().WriteError == "" })
}

// scribblingBuffers overwrites every buffer handed back, as a caller reusing it would.
type scribblingBuffers struct{}

func (scribblingBuffers) Get(n int) []byte { return make([]byte, n) }
func (scribblingBuffers) Put(p []byte) {
	for i := range p {
		p[i] = 0xEE
	}
}

// TestFsyncFailureRewritesSharedFrames: the copy a failed fsync is repaired from refers to
// large AppendShared payloads instead of copying them, and holds compressed frames in the
// form they were written. Evicting such a payload from the cache before it is durable must
// not hand it back for reuse, or the rewrite would store the reuser's bytes.
func TestFsyncFailureRewritesSharedFrames(t *testing.T) {
	eachWriteMode(t, testFsyncFailureRewritesSharedFrames)
}

func testFsyncFailureRewritesSharedFrames(t *testing.T) {
	for _, codec := range []Compression{CompressNone, CompressS2, CompressZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			opts := testOptions(dir)
			opts.fs = ffs
			opts.SyncBytes = -1
			opts.Compression = codec
			opts.CompressBacklog = -1 // every frame, whatever the backlog
			opts.CacheBytes = 1       // every frame is evicted as soon as it is appended
			opts.Buffers = scribblingBuffers{}
			s := mustOpen(t, opts)
			size := func(i uint64) int { return 100 + int(i%3)*90000 }
			for i := uint64(1); i <= 3; i++ {
				if _, err := s.AppendShared(context.Background(), payloadFor(i, size(i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			for i := uint64(4); i <= 9; i++ {
				if _, err := s.AppendShared(context.Background(), payloadFor(i, size(i))); err != nil {
					t.Fatal(err)
				}
			}
			ffs.mu.Lock()
			ffs.failNextSync = true
			ffs.mu.Unlock()
			_ = s.Sync() // fails, then the frames are rewritten into a new segment
			waitFor(t, "the rewrite", func() bool { return s.Durable() == 9 })
			want := seqRange(1, 9)
			got := nextFrames(t, s, len(want))
			checkFrames(t, got, want, size)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, testOptions(dir))
			defer s.Close()
			checkFrames(t, replayAll(t, s, 0), want, size)
		})
	}
}
