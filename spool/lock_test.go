package spool

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
