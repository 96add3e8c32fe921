package spool

import (
	"log/slog"
	"strings"
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

// TestAckWriteFailuresLogOnce: while ack frames cannot be written (a full disk), the acks
// that keep coming log one line, not one per burst.
func TestAckWriteFailuresLogOnce(t *testing.T) {
	ffs := &faultFS{}
	logs := &lockedBuffer{}
	opts := testOptions(t.TempDir())
	opts.fs = ffs
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s := mustOpen(t, opts)
	const n = 20
	for i := range n {
		mustAppend(t, s, []byte{byte(i)})
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	ffs.mu.Lock()
	ffs.failWrites = true
	ffs.mu.Unlock()
	for range n {
		f := mustNext(t, s)
		if err := s.Ack(f.Seq); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // each ack its own burst
	}
	const msg = "writing an ack frame failed"
	waitFor(t, "an ack write failure to be logged", func() bool { return strings.Contains(logs.String(), msg) })
	if c := strings.Count(logs.String(), msg); c != 1 {
		t.Fatalf("%d log lines about failed ack writes for %d acks, want 1", c, n)
	}
}
