package tailer

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A watched directory cannot be listed for longer than the retire delay (chmod 711 during a
// package upgrade, EIO or ESTALE on NFS, EMFILE). Its files are not taken for gone: no line is
// read twice, none is lost, no Source is closed (which would drop its stored position), the
// failure is logged once, and a restart from the stored positions reads nothing again.
func TestUnlistableDirectoryKeepsItsFiles(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 3 {
		l := numbered(fmt.Sprintf("f%d", i), 0, 100)
		want = append(want, l...)
		appendFile(t, filepath.Join(dir, fmt.Sprintf("f%d.log", i)), lines(l))
	}
	var denied atomic.Bool
	h := &recordingHandler{}
	sink := newSink()
	opts := Options{Paths: []string{filepath.Join(dir, "*.log")}, PollInterval: 200 * time.Millisecond, Logger: slog.New(h)}
	stop := start(t, opts, sink, func(tl *Tailer) {
		tl.readDir = func(d string) ([]os.DirEntry, error) {
			if denied.Load() && d == dir {
				return nil, &os.PathError{Op: "open", Path: d, Err: syscall.EACCES}
			}
			return os.ReadDir(d)
		}
	})
	waitFor(t, "every line", func() bool { return sink.count() == 300 })
	denied.Store(true)
	appendFile(t, filepath.Join(dir, "unrelated.txt"), "x\n") // the directory changed: the next poll lists it
	time.Sleep(4 * 300 * time.Millisecond)                    // four times the retire delay, several polls
	for i := range 3 {
		l := numbered(fmt.Sprintf("f%d", i), 100, 110)
		want = append(want, l...)
		appendFile(t, filepath.Join(dir, fmt.Sprintf("f%d.log", i)), lines(l))
	}
	waitFor(t, "lines written while unlistable", func() bool { return sink.count() == 330 })
	denied.Store(false)
	time.Sleep(300 * time.Millisecond)
	if n := sink.count(); n != 330 {
		t.Fatalf("%d lines, want 330 (each once)", n)
	}
	if n := sink.closedCount(); n != 0 {
		t.Fatalf("%d sources closed: their positions would be forgotten", n)
	}
	if n := h.count("cannot list directory"); n != 1 {
		t.Fatalf("listing failure logged %d times, want once: %q", n, h.msgs)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	pos := sink.positions()
	if len(pos) != 3 {
		t.Fatalf("positions of %d files stored, want 3: %+v", len(pos), pos)
	}
	again := newSink()
	opts.Positions = pos
	start(t, opts, again)
	time.Sleep(200 * time.Millisecond)
	if n := again.count(); n != 0 {
		t.Fatalf("restart read %d lines again", n)
	}
	got := map[string]bool{}
	for _, l := range sink.all() {
		got[l.line] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Fatalf("line %q lost", w)
		}
	}
}

// A file that left its matching path, was read to its end and retired, and then comes back
// (renamed back, or its directory listed again after a long failure) goes on from where it
// was retired: it is recognised by device, inode and fingerprint, not read from 0 again.
func TestRetiredFileThatComesBackIsNotReadAgain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, lines(numbered("a", 0, 50)))
	sink := newSink()
	start(t, Options{Paths: []string{path}, PollInterval: 20 * time.Millisecond}, sink)
	waitFor(t, "first lines", func() bool { return sink.count() == 50 })
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retired", func() bool { return sink.closedCount() == 1 })
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(numbered("a", 50, 60)))
	waitFor(t, "new lines", func() bool { return sink.count() >= 60 })
	time.Sleep(200 * time.Millisecond)
	var got []string
	for _, l := range sink.all() {
		got = append(got, l.line)
	}
	equalLines(t, "all", got, numbered("a", 0, 60))
}

// state_dir under a flow's pattern: its positions file and spool are never read, also not
// through a link to it, while the application's files are.
func TestStateDirIsNeverRead(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "kinship")
	app := filepath.Join(dir, "app")
	mkdirs(t, filepath.Join(state, "flows", "app", "spool"), app)
	appendFile(t, filepath.Join(state, "flows", "app", "positions.json"), "{\"state\":1}\n")
	appendFile(t, filepath.Join(state, "flows", "app", "spool", "0001.json"), "{\"spool\":1}\n")
	appendFile(t, filepath.Join(app, "a.json"), "{\"app\":1}\n")
	symlink(t, state, filepath.Join(app, "state-link"))
	symlink(t, filepath.Join(state, "flows", "app", "positions.json"), filepath.Join(app, "p.json"))
	m := Metrics{}.withDefaults()
	for _, tc := range []struct {
		name    string
		exclude string
		pattern string
	}{
		{"under-pattern", state, filepath.Join(dir, "**", "*.json")},
		{"pattern-inside", state, filepath.Join(state, "**", "*.json")},
		{"excluded-by-link", filepath.Join(app, "state-link"), filepath.Join(dir, "**", "*.json")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newSink()
			start(t, Options{Paths: []string{tc.pattern}, ExcludeDirs: []string{tc.exclude}, FollowSymlinks: true,
				PollInterval: 20 * time.Millisecond, Metrics: m}, sink)
			if tc.name != "pattern-inside" {
				waitFor(t, "the app's line", func() bool { return sink.count() == 1 })
			}
			appendFile(t, filepath.Join(state, "flows", "app", "positions.json"), "{\"state\":2}\n")
			time.Sleep(200 * time.Millisecond)
			for _, l := range sink.all() {
				if !strings.Contains(l.line, "app") {
					t.Fatalf("read the agent's state: %+v", l)
				}
			}
		})
	}
	if skippedCount(m, "state_dir") == 0 {
		t.Fatal("skipping the state directory was not counted")
	}
}

// A pattern that matches nothing says so once, and again only when that changes.
func TestPatternMatchingNothingLoggedOnChange(t *testing.T) {
	dir := t.TempDir()
	h := &recordingHandler{}
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}, PollInterval: 20 * time.Millisecond, Logger: slog.New(h)}, sink)
	time.Sleep(150 * time.Millisecond)
	if n := h.count("matches no file"); n != 1 {
		t.Fatalf("logged %d times, want once: %q", n, h.msgs)
	}
	appendFile(t, filepath.Join(dir, "a.log"), "a\n")
	waitFor(t, "line", func() bool { return sink.count() == 1 })
	if err := os.Remove(filepath.Join(dir, "a.log")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if n := h.count("matches no file"); n != 2 {
		t.Fatalf("logged %d times, want twice (at start, after the file went): %q", n, h.msgs)
	}
}

// procfs files report size 0: they are not tailed, and the tailer says so once.
func TestProcFilesNotTailedSaidOnce(t *testing.T) {
	h := &recordingHandler{}
	m := Metrics{}.withDefaults()
	start(t, Options{Paths: []string{"/proc/self/stat*"}, PollInterval: 20 * time.Millisecond, Logger: slog.New(h), Metrics: m}, newSink())
	time.Sleep(150 * time.Millisecond)
	if n := h.count("procfs"); n != 1 {
		t.Fatalf("logged %d times, want once: %q", n, h.msgs)
	}
	if n := skippedCount(m, "special"); n != 1 {
		t.Fatalf("kinship_files_skipped_total{reason=special} = %v, want 1", n)
	}
}
