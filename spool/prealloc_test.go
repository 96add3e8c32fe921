package spool

import (
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// diskUse is the bytes of disk a file holds, and its size.
func diskUse(t testing.TB, path string) (used, size int64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512, st.Size
}

// A backlog reserves the active segment's disk ahead of the frames (cheaper writes) without
// changing its size, so recovery and the readers see only what was written; sealing the
// segment, and closing the spool, give the reserve back.
func TestPreallocKeepsSizeAndIsReleased(t *testing.T) {
	eachWriteMode(t, testPreallocKeepsSizeAndIsReleased)
}

func testPreallocKeepsSizeAndIsReleased(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentBytes = 1 << 20
	s := mustOpen(t, opts)
	size := func(uint64) int { return 10 << 10 }
	for i := uint64(1); i <= 10; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.wmu.Lock()
	act, end, noPrealloc := s.act.path, s.act.end, s.noPrealloc
	s.wmu.Unlock()
	if noPrealloc {
		t.Skipf("the file system of %s does not fallocate", dir)
	}
	used, fsize := diskUse(t, act)
	if fsize != end {
		t.Fatalf("active segment is %d bytes, want %d: preallocation must not change the size", fsize, end)
	}
	if used < opts.SegmentBytes {
		t.Fatalf("active segment holds %d bytes of disk, want the segment's %d reserved ahead", used, opts.SegmentBytes)
	}
	for i := uint64(11); i <= 150; i++ { // past one segment
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, dir)
	if len(files) < 2 {
		t.Fatalf("%d segments, want a sealed one", len(files))
	}
	used, fsize = diskUse(t, files[0])
	if used > fsize+64<<10 {
		t.Fatalf("sealed segment of %d bytes holds %d bytes of disk: its reserve was not given back", fsize, used)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range segFiles(t, dir) {
		if used, fsize := diskUse(t, f); used > fsize+64<<10 {
			t.Fatalf("after Close %s of %d bytes holds %d bytes of disk", f, fsize, used)
		}
	}
	s = mustOpen(t, testOptions(dir))
	if r := s.Recovery(); r != (Recovery{}) {
		t.Fatalf("recovery after a clean close: %+v", r)
	}
	checkFrames(t, replayAll(t, s, 0), seqRange(1, 150), size)
}

// After a power loss the size of a segment written into reserved blocks may cover bytes whose
// data never reached the disk: they read as zeros. Recovery cuts them as a torn tail that
// held nothing: no frame is reported lost, the durable ones are all there, and appends go on
// after them.
func TestPreallocZeroTailAfterPowerLoss(t *testing.T) {
	eachWriteMode(t, testPreallocZeroTailAfterPowerLoss)
}

func testPreallocZeroTailAfterPowerLoss(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentBytes = 1 << 20
	s := mustOpen(t, opts)
	size := func(uint64) int { return 10 << 10 }
	for i := uint64(1); i <= 5; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	image := copyDir(t, dir)
	files := segFiles(t, image)
	last := files[len(files)-1]
	_, fsize := diskUse(t, last)
	// Frames 6 and 7 were appended and their size journaled, their data lost.
	if err := os.Truncate(last, fsize+2*frameSize(size(6))); err != nil {
		t.Fatal(err)
	}
	p := mustOpen(t, testOptions(image))
	if r := p.Recovery(); r.LostFrames != 0 || r.FirstLost != 0 {
		t.Fatalf("recovery of a zero tail: %+v, want nothing lost", r)
	}
	checkFrames(t, replayAll(t, p, 0), seqRange(1, 5), size)
	for i := uint64(6); i <= 8; i++ {
		if seq := mustAppend(t, p, payloadFor(i, size(i))); seq != i {
			t.Fatalf("append after recovery: seq %d, want %d", seq, i)
		}
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, replayAll(t, p, 0), seqRange(1, 8), size)
}

// Preallocation is best effort: when it fails (no room) the frames are written as they would
// have been, nothing counts as a write error, and it is tried once per chunk, not per frame.
func TestFailedPreallocIsHarmless(t *testing.T) { eachWriteMode(t, testFailedPreallocIsHarmless) }

func testFailedPreallocIsHarmless(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{failAllocate: true}
	opts := testOptions(dir)
	opts.fs = ffs
	s := mustOpen(t, opts)
	size := func(uint64) int { return 100 << 10 }
	const n = 200 // 20 MiB: three chunks
	for i := uint64(1); i <= n; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.WriteError != "" {
		t.Fatalf("Stats: %+v", st)
	}
	if v := metricValue(t, opts.Metrics.SpoolWriteErrors); v != 0 {
		t.Fatalf("write errors counted: %v", v)
	}
	ffs.mu.Lock()
	calls := ffs.allocCalls
	ffs.mu.Unlock()
	if calls < 1 || calls > n/10 {
		t.Fatalf("%d fallocate calls for %d frames, want one per chunk", calls, n)
	}
	reopenAndReplay(t, s, dir, seqRange(1, n), size)
}

// A process killed while its active segment held a reserve leaves those blocks allocated past
// the file's end. The next Open reopens the segment as the active one; while the destination
// keeps up, backlog mode writes only stubs into it, which reserve nothing, so nothing would
// give the blocks back before the segment is sealed, 64 MiB of stubs later. Open gives them
// back.
func TestPreallocLeftByACrashIsReleased(t *testing.T) {
	eachWriteMode(t, testPreallocLeftByACrashIsReleased)
}

func testPreallocLeftByACrashIsReleased(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	s := mustOpen(t, opts)
	for i := uint64(1); i <= 3; i++ {
		mustAppend(t, s, payloadFor(i, 10<<10))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, dir)
	act := files[len(files)-1]
	// What the killed process left: the reserve preallocLocked made, never released.
	f, err := os.OpenFile(act, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, size := diskUse(t, act)
	err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, size, preallocChunk)
	_ = f.Close()
	if err != nil {
		t.Skipf("the file system of %s does not fallocate: %v", dir, err)
	}
	if used, _ := diskUse(t, act); used < size+preallocChunk {
		t.Fatalf("reserve not made: %d bytes of disk for %d", used, size)
	}
	s = mustOpen(t, testOptions(dir))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if used, fsize := diskUse(t, act); used > fsize+64<<10 {
		t.Fatalf("after a reopen %s of %d bytes still holds %d bytes of disk: the reserve a crash left is never given back", act, fsize, used)
	}
	checkFrames(t, replayAll(t, mustOpen(t, testOptions(dir)), 0), seqRange(1, 3), func(uint64) int { return 10 << 10 })
}
