package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLockSurvivesUnlink: deleting whatever file an operator finds in the spool directory
// must not let a second agent open it too; two writers would interleave segments and ship
// every line twice (issue 13.6).
func TestLockSurvivesUnlink(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir))
	mustAppend(t, s, []byte("held"))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !isSegmentName(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s2, err := Open(testOptions(dir)); !errors.Is(err, ErrLocked) {
		if err == nil {
			_ = s2.Close()
		}
		t.Fatalf("second Open after deleting the non-segment files: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, testOptions(dir)) // released by Close
	if got := s2.LastSeq(); got != 1 {
		t.Fatalf("LastSeq %d after reopen, want 1", got)
	}
}

func isSegmentName(name string) bool { return filepath.Ext(name) == ".seg" }

// Removing the whole directory under a running spool (its lock then guards nothing: a second
// agent would create a new directory under the path) stops appends loudly instead of writing
// on into files no one will read.
func TestRemovedDirectoryStopsAppends(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	opts := testOptions(dir)
	opts.FsyncInterval = time.Millisecond
	s := mustOpen(t, opts)
	mustAppend(t, s, []byte("before"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	var err error
	waitFor(t, "Append to fail", func() bool {
		_, err = s.Append(context.Background(), []byte("after"))
		return err != nil
	})
	if !errors.Is(err, ErrLockLost) {
		t.Fatalf("Append: %v, want ErrLockLost", err)
	}
	if st := s.Stats(); st.WriteError == "" {
		t.Fatalf("Stats: %+v, want the loss shown", st)
	}
	// A new spool under the path is another directory: it opens.
	s2 := mustOpen(t, testOptions(dir))
	if got := s2.LastSeq(); got != 0 {
		t.Fatalf("new spool LastSeq %d, want 0", got)
	}
}
