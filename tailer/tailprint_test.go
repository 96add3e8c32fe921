package tailer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// header is a fixed first KiB and more, the same in every version of the file: the
// fingerprint of the first bytes cannot tell the versions apart.
var header = "# " + strings.Repeat("fixed header ", 90) + "\n"

// rewrite truncates path and writes data in its place (same inode), as a program that
// rewrites its log from the start does.
func rewrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A file truncated and written past the read offset again, with the same first KiB, before
// the tailer looked (it was busy with another file): every new line is read, none skipped.
func TestRewrittenPastOffsetWithSameStartIsReadFromZero(t *testing.T) {
	dir := t.TempDir()
	path, other := filepath.Join(dir, "app.log"), filepath.Join(dir, "other.log")
	appendFile(t, path, header+lines(numbered("old", 0, 300)))
	sink := newSink()
	blocked, release := blockAt(sink, "block")
	start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}, PollInterval: time.Hour}, sink)
	waitFor(t, "the first version", func() bool { return sink.count() == 301 })
	appendFile(t, other, "block\n")
	<-blocked
	rewrite(t, path, header+lines(numbered("new", 0, 400)))
	release()
	waitFor(t, "the new version", func() bool { return len(newLines(sink)) >= 400 })
	time.Sleep(100 * time.Millisecond)
	equalLines(t, "new", newLines(sink), numbered("new", 0, 400))
}

// The same while the agent is stopped: the stored position carries the tail print, and the
// rewritten file is read from 0 at the next start.
func TestRewrittenWhileStoppedWithSameStartIsReadFromZero(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, header+lines(numbered("old", 0, 300)))
	sink := newSink()
	opts := Options{Paths: []string{path}, PollInterval: time.Hour}
	stop := start(t, opts, sink)
	waitFor(t, "the first version", func() bool { return sink.count() == 301 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	pos := sink.positions()
	for i := range pos {
		pos[i].Tail = TailPrint(pos[i].Path, pos[i].ID, pos[i].Offset)
		if pos[i].Tail.Len == 0 {
			t.Fatal("no tail print taken")
		}
	}
	rewrite(t, path, header+lines(numbered("new", 0, 400)))
	again := newSink()
	opts.Positions = pos
	start(t, opts, again)
	waitFor(t, "the new version", func() bool { return len(newLines(again)) >= 400 })
	equalLines(t, "new", newLines(again), numbered("new", 0, 400))

	// And an untouched file resumes where it was: the print does not make it read again.
	appendFile(t, path, "more\n")
	waitFor(t, "growth", func() bool { return again.count() == 402 })
}

// newLines is what sink received that is not the header or an old line.
func newLines(sink *fakeSink) []string {
	var out []string
	for _, l := range sink.all() {
		if strings.HasPrefix(l.line, "new-") {
			out = append(out, l.line)
		}
	}
	return out
}
