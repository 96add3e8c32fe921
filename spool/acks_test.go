package spool

import (
	"testing"
	"time"
)

// An ack reaches the segment file at once, not at the next group commit: a process killed
// (kill -9) right after the destination accepted a frame does not ship it again.
func TestAckWrittenBeforeNextCommit(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.FsyncInterval = time.Hour // no group commit during the test
	s := mustOpen(t, opts)
	for i := uint64(1); i <= 3; i++ {
		mustAppend(t, s, payloadFor(i, 100))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Ack(mustNext(t, s).Seq); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the ack frame in the segment file", func() bool {
		b, err := Inspect(dir)
		return err == nil && b.AckedThrough == 2
	})
	// What a kill -9 now leaves behind: the files as they are (the page cache survives).
	crashed := mustOpen(t, testOptions(copyDir(t, dir)))
	if got := crashed.AckedThrough(); got != 2 {
		t.Fatalf("after a crash the cursor is %d, want 2", got)
	}
	if f := mustNext(t, crashed); f.Seq != 3 {
		t.Fatalf("after a crash frame %d is shipped first, want 3", f.Seq)
	}
}
