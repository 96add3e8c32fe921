package tailer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file renamed away after the walk listed it and before it was opened (logrotate running as
// the agent starts) is still read to its end, whether or not a new file took its path, with
// fsnotify and without it.
func TestRenamedBetweenWalkAndOpenIsRead(t *testing.T) {
	for _, tc := range []struct {
		name              string
		replace, noNotify bool
	}{
		{"rotated", true, false},
		{"renamed", false, false},
		{"rotated-polling", true, true},
		{"renamed-polling", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			old := numbered("old", 0, 2000)
			appendFile(t, path, strings.Join(old, "\n")+"\n")
			var fresh []string
			if tc.replace {
				fresh = numbered("new", 0, 10)
			}
			sink := newSink()
			start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}}, sink, func(tl *Tailer) {
				tl.noFsnotify = tc.noNotify
				done := false
				tl.beforeTrack = func(p string) { // runs on Run's goroutine: no race
					if done || p != path {
						return
					}
					done = true
					if err := os.Rename(path, path+".1"); err != nil {
						t.Error(err)
					}
					if tc.replace {
						appendFile(t, path, strings.Join(fresh, "\n")+"\n")
					}
				}
			})
			waitFor(t, "every line", func() bool { return sink.count() == len(old)+len(fresh) })
			waitFor(t, "renamed file retired", func() bool { return sink.closedCount() == 1 })
			equalLines(t, "renamed", sink.linesOf(path+".1"), old)
			equalLines(t, "new", sink.linesOf(path), fresh)
		})
	}
}
