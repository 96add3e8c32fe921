package spool

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A directory fsync that fails while a roll creates the next segment is a write failure like
// any other: Append waits and tries again (shown in Stats meanwhile) and, once the directory
// syncs again, every frame is there, in order, after a reopen.
func TestFailedDirSyncOnRollWaitsAndRetries(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	opts := testOptions(dir)
	opts.fs = ffs
	opts.SegmentBytes = 8 << 10
	s := mustOpen(t, opts)
	size := func(uint64) int { return 1000 }
	for i := uint64(1); i <= 7; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	ffs.mu.Lock()
	ffs.failSyncDir = true
	ffs.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		var err error
		for i := uint64(8); i <= 12 && err == nil; i++ {
			_, err = s.Append(context.Background(), payloadFor(i, size(i)))
		}
		done <- err
	}()
	waitFor(t, "the failure in Stats", func() bool { return s.Stats().WriteError != "" })
	ffs.mu.Lock()
	ffs.failSyncDir = false
	ffs.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("Append: %v", err)
	}
	if st := s.Stats(); st.WriteError != "" {
		t.Fatalf("Stats after recovery: %+v", st)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	reopenAndReplay(t, s, dir, seqRange(1, 12), size)
}

// A segment whose delete fails is forgotten by the running spool (its frames are
// acknowledged and covered by the checkpoint) and deleted after the next Open, without
// shipping its frames again.
func TestFailedDeleteIsCleanedUpAfterReopen(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	opts := testOptions(dir)
	opts.fs = ffs
	opts.SegmentBytes = 8 << 10
	s := mustOpen(t, opts)
	size := func(uint64) int { return 1000 }
	for i := uint64(1); i <= 20; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, f := range nextFrames(t, s, 20) {
		if err := s.Ack(f.Seq); err != nil {
			t.Fatal(err)
		}
	}
	ffs.mu.Lock()
	ffs.failRemove = true
	ffs.mu.Unlock()
	if err := s.Sync(); err != nil { // the ack frame becomes durable
		t.Fatal(err)
	}
	onDisk := len(segFiles(t, dir))
	s.Checkpoint(20)
	waitFor(t, "the acknowledged segments forgotten", func() bool { return s.Stats().Segments == 1 })
	if n := len(segFiles(t, dir)); n != onDisk || n < 2 {
		t.Fatalf("%d segment files, want the %d whose deletes failed still there", n, onDisk)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, testOptions(dir))
	noNext(t, s)
	s.Checkpoint(20)
	waitFor(t, "the leftover segments deleted", func() bool { return len(segFiles(t, dir)) == 1 })
	if _, err := os.Stat(filepath.Join(dir, segName(1))); !os.IsNotExist(err) {
		t.Fatalf("first segment: %v, want it deleted", err)
	}
}
