package tailer

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// blockAt makes sink's Line block when it is handed line, until release is called: the
// tailer then holds an offset that is behind the file, as it does when the Sink applies
// backpressure while logrotate runs.
func blockAt(sink *fakeSink, line string) (blocked <-chan struct{}, release func()) {
	b, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sink.onLine = func(_ *Source, l []byte, _ int64) error {
		if string(l) == line {
			once.Do(func() {
				close(b)
				<-gate
			})
		}
		return nil
	}
	var rel sync.Once
	return b, func() { rel.Do(func() { close(gate) }) }
}

func lines(s []string) string { return strings.Join(s, "\n") + "\n" }

// copyTruncate does what logrotate's copytruncate does: copy path to dst, then truncate path
// in place (same inode).
func copyTruncate(t *testing.T, path, dst string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

// checkEnds asserts that every Source's line ends advance by the line's length plus its
// newline, from the offset the Source was opened at: the copy's lines continue the old
// Source's offsets.
func checkEnds(t *testing.T, sink *fakeSink) {
	t.Helper()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	prev := map[*Source]int64{}
	for src, off := range sink.opens {
		prev[src] = off
	}
	for _, l := range sink.lines {
		if want := prev[l.src] + int64(len(l.line)) + 1; l.end != want {
			t.Fatalf("source %d: line %q ends at %d, want %d", l.src.Index, l.line, l.end, want)
		}
		prev[l.src] = l.end
	}
}

// The lines the tailer had not read when copytruncate ran are read from the copy, once, in
// order, under the old Source; the new content follows under a new one.
func TestCopyTruncateReadsTheCopy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		polling bool // no fsnotify: the truncation is found by the poll
		// regrown: the file is written past the old offset before the tailer looks, so only
		// the fingerprint check (checkContent) shows the truncation.
		regrown bool
	}{
		{name: "shorter"},
		{name: "shorter-polling", polling: true},
		{name: "regrown-polling", polling: true, regrown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			old := numbered("line", 0, 200)
			appendFile(t, path, lines(old[:100]))
			m := Metrics{}.withDefaults()
			sink := newSink()
			blocked, release := blockAt(sink, "line-00010")
			start(t, Options{Paths: []string{path}, Metrics: m}, sink, func(tl *Tailer) { tl.noFsnotify = tc.polling })
			<-blocked
			appendFile(t, path, lines(old[100:]))
			copyTruncate(t, path, path+".1")
			fresh := numbered("new", 0, 2)
			if tc.regrown {
				fresh = numbered("new-content-that-is-longer-than-what-was-read", 0, 40)
			}
			appendFile(t, path, lines(fresh))
			release()

			want := append(append([]string(nil), old...), fresh...)
			waitFor(t, "every line", func() bool { return sink.count() >= len(want) })
			equalLines(t, "app.log", sink.linesOf(path), want)
			if got := value(m.Truncations); got != 1 {
				t.Fatalf("Truncations = %v, want 1", got)
			}
			checkEnds(t, sink)
			all := sink.all()
			if all[199].src != all[0].src || all[200].src == all[0].src {
				t.Fatal("copy's lines not under the old Source, or new content not under a new one")
			}
			if size := int64(len(lines(old))); all[199].end != size {
				t.Fatalf("last line of the copy ends at %d, want the copy's size %d", all[199].end, size)
			}
			if n := sink.closedCount(); n != 1 {
				t.Fatalf("%d Sources closed, want the old one", n)
			}
		})
	}
}

// Without a copy next to it (compressed already, or moved elsewhere), the lines not read are
// lost as before: the truncation is counted and the new content read. Files that are not the
// copy are not read, even when they are long enough: a compressed copy, an unrelated file.
func TestCopyTruncateWithoutCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	old := numbered("line", 0, 200)
	appendFile(t, path, lines(old[:100]))
	m := Metrics{}.withDefaults()
	sink := newSink()
	blocked, release := blockAt(sink, "line-00010")
	start(t, Options{Paths: []string{path}, Metrics: m}, sink)
	<-blocked
	appendFile(t, path, lines(old[100:]))
	// Same bytes, but a compressed name: not opened.
	copyTruncate(t, path, path+".1.gz")
	if err := os.WriteFile(filepath.Join(dir, "other.txt"), []byte(lines(numbered("other", 0, 500))), 0o644); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "new-0\n")
	release()
	want := append(append([]string(nil), old[:100]...), "new-0")
	waitFor(t, "new content", func() bool { return sink.count() >= len(want) })
	equalLines(t, "app.log", sink.linesOf(path), want)
	if got := value(m.Truncations); got != 1 {
		t.Fatalf("Truncations = %v, want 1", got)
	}
	checkEnds(t, sink)
}

// After a first truncation noticed while the file was empty, the new Source's fingerprint
// covers no bytes. The copy of the next copytruncate is still told from an older copy and
// from a newer unrelated file of the right size, by the first bytes read since.
func TestCopyTruncateSecondRotationFindsTheRightCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, lines(numbered("first", 0, 10)))
	m := Metrics{}.withDefaults()
	sink := newSink()
	blocked, release := blockAt(sink, "second-00010")
	start(t, Options{Paths: []string{path}, Metrics: m}, sink)
	waitFor(t, "first", func() bool { return sink.count() == 10 })
	copyTruncate(t, path, path+".1")
	waitFor(t, "first truncation", func() bool { return value(m.Truncations) == 1 })

	second := numbered("second", 0, 200)
	appendFile(t, path, lines(second[:100]))
	<-blocked
	appendFile(t, path, lines(second[100:]))
	if err := os.Rename(path+".1", path+".2"); err != nil {
		t.Fatal(err)
	}
	copyTruncate(t, path, path+".1")
	// Newer than the copy and longer than the offset: picked if only the size and the
	// Source's empty fingerprint were looked at.
	if err := os.WriteFile(filepath.Join(dir, "decoy"), []byte(lines(numbered("decoy", 0, 500))), 0o644); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "third-0\n")
	release()

	want := append(append(numbered("first", 0, 10), second...), "third-0")
	waitFor(t, "every line", func() bool { return sink.count() >= len(want) })
	equalLines(t, "app.log", sink.linesOf(path), want)
	if got := value(m.Truncations); got != 2 {
		t.Fatalf("Truncations = %v, want 2", got)
	}
	checkEnds(t, sink)
}

// copytruncate while the agent is stopped: the stored position is past the end of the file
// (or the file's first bytes changed), and the copy holds what had not been read. It is read
// from the stored offset under the stored Source, then the file from 0.
func TestCopyTruncateWhileStopped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh []string
	}{
		{name: "shorter", fresh: numbered("new", 0, 2)},
		{name: "regrown", fresh: numbered("new-content-that-is-longer-than-what-was-read", 0, 60)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			old := numbered("line", 0, 200)
			appendFile(t, path, lines(old[:100]))
			sink := newSink()
			stop := start(t, Options{Paths: []string{path}}, sink)
			waitFor(t, "first half", func() bool { return sink.count() == 100 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			appendFile(t, path, lines(old[100:]))
			copyTruncate(t, path, path+".1")
			appendFile(t, path, lines(tc.fresh))

			m := Metrics{}.withDefaults()
			sink2 := newSink()
			start(t, Options{Paths: []string{path}, Positions: sink.positions(), Metrics: m}, sink2)
			want := append(append([]string(nil), old[100:]...), tc.fresh...)
			waitFor(t, "rest and new", func() bool { return sink2.count() >= len(want) })
			equalLines(t, "after restart", sink2.linesOf(path), want)
			if got := value(m.Truncations); got != 1 {
				t.Fatalf("Truncations = %v, want 1", got)
			}
			checkEnds(t, sink2)
			if all := sink2.all(); all[0].src.Fingerprint != sink.all()[0].src.Fingerprint {
				t.Fatal("the copy's lines are not under the stored Source")
			}
		})
	}
}
