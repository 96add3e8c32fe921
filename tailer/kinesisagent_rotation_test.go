package tailer

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The rotations of the Kinesis Agent's TrackedFileRotationAnalyzerTest (its CreateFileRotator:
// rename app.log to app.log.1, older ones shifted, new app.log; TruncateFileRotator: copy
// app.log to app.log.1, truncate app.log), once and several times while the tailer is
// stopped, with the pattern matching the rotated files (app.log*): after the restart from
// the saved positions every line is handed over exactly once, none of those read before
// the stop again (testInitializeAnalyzer, testNoRotationCheckWhenFalse,
// testCurrentOpenFileTruncatedAfterRotation, testFindCurrentOpenFileAfterTruncation). A
// deleted oldest file changes nothing (testNoRotationCheckWhenOldFilesAreCleanedUp).
func TestKinesisAgentRotationsWhileStopped(t *testing.T) {
	tests := []struct {
		name      string
		truncate  bool // copytruncate rather than rename
		rotations int
		deleteOld bool
		pattern   string // the flow's pattern, after the directory
	}{
		{"CreateFileRotator single rotation", false, 1, false, "app.log*"},
		{"CreateFileRotator multiple rotations", false, 3, false, "app.log*"},
		{"CreateFileRotator oldest file cleaned up", false, 3, true, "app.log*"},
		{"CreateFileRotator, rotated files not matched", false, 3, false, "app.log"},
		// The copies not matched: the unread end of the copied content is read from the copy.
		{"TruncateFileRotator single rotation", true, 1, false, "app.log"},
		{"TruncateFileRotator multiple rotations", true, 3, false, "app.log"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			n := 0
			write := func(count int) (lines []string) {
				for range count {
					l := fmt.Sprintf("line-%04d-%s", n, "padding-so-that-fingerprints-differ")
					n++
					appendFile(t, path, l+"\n")
					lines = append(lines, l)
				}
				return lines
			}
			read := write(10)
			sink := newSink()
			glob := filepath.Join(dir, tc.pattern)
			stop := start(t, Options{Paths: []string{glob}}, sink)
			waitFor(t, "lines before the stop", func() bool { return sink.count() == len(read) })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			unread := write(5)  // written before the rotation, not read yet
			var copied []string // in copies no pattern matches, after the first
			for r := 0; r < tc.rotations; r++ {
				for i := tc.rotations; i >= 1; i-- {
					old := fmt.Sprintf("%s.%d", path, i)
					if _, err := os.Stat(old); err == nil {
						if err := os.Rename(old, fmt.Sprintf("%s.%d", path, i+1)); err != nil {
							t.Fatal(err)
						}
					}
				}
				if tc.truncate {
					data, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path+".1", data, 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Truncate(path, 0); err != nil {
						t.Fatal(err)
					}
				} else if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
				if lines := write(5); r < tc.rotations-1 && tc.pattern == "app.log" {
					copied = append(copied, lines...) // renamed or copied away, never matched
				} else {
					unread = append(unread, lines...)
				}
			}
			var deleted []string
			if tc.deleteOld {
				// The oldest file holds only lines read before the stop and the first 5 after.
				oldest := fmt.Sprintf("%s.%d", path, tc.rotations)
				if err := os.Remove(oldest); err != nil {
					t.Fatal(err)
				}
				deleted, unread = unread[:5], unread[5:]
			}
			sink2 := newSink()
			start(t, Options{Paths: []string{glob}, Positions: sink.positions()}, sink2)
			waitFor(t, "lines after the restart", func() bool { return sink2.count() >= len(unread) })
			time.Sleep(100 * time.Millisecond) // lines read twice would arrive now
			seen := map[string]int{}
			for _, l := range sink2.all() {
				seen[l.line]++
			}
			for _, l := range unread {
				if seen[l] != 1 {
					t.Errorf("%s handed over %d times, want once", l, seen[l])
				}
			}
			for _, l := range append(append(read, deleted...), copied...) {
				if seen[l] != 0 {
					t.Errorf("%s (read before the stop, or deleted) handed over again", l)
				}
			}
			if sink2.count() != len(unread) {
				t.Errorf("%d lines after the restart, want %d", sink2.count(), len(unread))
			}
		})
	}
}
