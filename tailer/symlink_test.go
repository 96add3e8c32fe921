package tailer

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// With follow_symlinks, a release directory behind a "current" link, as deploy tools lay out logs: the files in the
// link's target are read, growth and new files in the target are seen through events (the
// safety-net poll is an hour away), and a file reachable through the link and its real path
// is read once.
func TestSymlinkedDirectoryIsFollowed(t *testing.T) {
	for _, tc := range []struct{ name, pattern, real string }{
		{"star", "app/*/x*.log", "app/v2"}, // the target is matched under its own name too
		{"doublestar", "app/**/*.log", "app/v2"},
		{"star-outside", "app/*/x*.log", "releases/v2"}, // only the link leads to it
		{"doublestar-outside", "app/**/*.log", "releases/v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			real := filepath.Join(dir, tc.real)
			mkdirs(t, filepath.Join(dir, "app"))
			mkdirs(t, real)
			symlink(t, real, filepath.Join(dir, "app", "current"))
			appendFile(t, filepath.Join(real, "x.log"), "x-1\n")
			sink := newSink()
			start(t, Options{Paths: []string{filepath.Join(dir, tc.pattern)}, PollInterval: time.Hour, FollowSymlinks: true}, sink)
			waitFor(t, "file in the linked directory", func() bool { return sink.count() == 1 })

			appendFile(t, filepath.Join(real, "x.log"), "x-2\n")
			waitFor(t, "growth", func() bool { return sink.count() == 2 })
			appendFile(t, filepath.Join(real, "xnew.log"), "new-1\n")
			waitFor(t, "new file in the target", func() bool { return sink.count() == 3 })
			appendFile(t, filepath.Join(real, "xnew.log"), "new-2\n")
			waitFor(t, "new file grows", func() bool { return sink.count() == 4 })
			time.Sleep(100 * time.Millisecond) // a second reading would show up now

			// Each file once, under the first path the walk reached it by ("current" < "v2").
			got := map[string][]string{}
			for _, l := range sink.all() {
				got[l.src.Path] = append(got[l.src.Path], l.line)
			}
			if len(got) != 2 {
				t.Fatalf("want 2 sources, got %q", got)
			}
			link := filepath.Join(dir, "app", "current")
			equalLines(t, "x.log", got[filepath.Join(link, "x.log")], []string{"x-1", "x-2"})
			equalLines(t, "xnew.log", got[filepath.Join(link, "xnew.log")], []string{"new-1", "new-2"})
		})
	}
}

// With follow_symlinks, links to an ancestor and to the directory itself under "**" end the descent: the scan
// terminates, every file is read once, and the Tailer keeps working.
func TestSymlinkLoopTerminates(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	mkdirs(t, filepath.Join(a, "b"))
	symlink(t, dir, filepath.Join(a, "b", "up"))
	symlink(t, a, filepath.Join(a, "self"))
	symlink(t, "..", filepath.Join(a, "b", "parent"))
	appendFile(t, filepath.Join(a, "x.log"), "x\n")
	appendFile(t, filepath.Join(a, "b", "y.log"), "y\n")

	once, err := New(Options{Paths: []string{filepath.Join(dir, "**", "*.log")}, Once: true, FollowSymlinks: true}, newSink())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- once.Run(t.Context()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a scan through a symlink loop did not finish")
	}

	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "**", "*.log")}, PollInterval: time.Hour, FollowSymlinks: true}, sink)
	waitFor(t, "both files", func() bool { return sink.count() == 2 })
	appendFile(t, filepath.Join(a, "b", "z.log"), "z\n")
	waitFor(t, "a new file", func() bool { return sink.count() == 3 })
	time.Sleep(100 * time.Millisecond)
	if n := sink.count(); n != 3 {
		t.Fatalf("files read more than once: %+v", sink.all())
	}
	equalLines(t, "x", sink.linesOf(filepath.Join(a, "x.log")), []string{"x"})
	equalLines(t, "y", sink.linesOf(filepath.Join(a, "b", "y.log")), []string{"y"})
}

// Two patterns, one through the link and one through the real path, reach the same file: it
// is one file, read once.
func TestFileUnderLinkAndRealPathReadOnce(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "releases", "v2")
	mkdirs(t, real, filepath.Join(dir, "app"))
	symlink(t, real, filepath.Join(dir, "app", "current"))
	appendFile(t, filepath.Join(real, "x.log"), "x-1\n")
	sink := newSink()
	start(t, Options{Paths: []string{
		filepath.Join(dir, "app", "current", "*.log"),
		filepath.Join(dir, "releases", "*", "*.log"),
	}, PollInterval: time.Hour}, sink)
	waitFor(t, "first line", func() bool { return sink.count() == 1 })
	appendFile(t, filepath.Join(real, "x.log"), "x-2\n")
	waitFor(t, "growth", func() bool { return sink.count() == 2 })
	time.Sleep(100 * time.Millisecond)
	if n := sink.count(); n != 2 {
		t.Fatalf("read more than once: %+v", sink.all())
	}
}

// With follow_symlinks, a deploy switches "current" to a new release (ln -sfn: a new link renamed over the old):
// the new release's files are read and watched, the old release's file is read to its end.
func TestSymlinkedDirectoryRetargeted(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "releases", "v1"), filepath.Join(dir, "releases", "v2")
	mkdirs(t, v1, v2, filepath.Join(dir, "app"))
	link := filepath.Join(dir, "app", "current")
	symlink(t, v1, link)
	appendFile(t, filepath.Join(v1, "x.log"), "v1-1\n")
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "app", "*", "*.log")}, PollInterval: time.Hour, FollowSymlinks: true}, sink)
	waitFor(t, "v1", func() bool { return sink.count() == 1 })

	appendFile(t, filepath.Join(v2, "x.log"), "v2-1\n")
	symlink(t, v2, link+".tmp")
	if err := os.Rename(link+".tmp", link); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v2", func() bool { return sink.count() == 2 })
	waitFor(t, "v1 retired", func() bool { return sink.closedCount() == 1 })
	appendFile(t, filepath.Join(v2, "y.log"), "v2-y\n")
	waitFor(t, "new file in v2", func() bool { return sink.count() == 3 })
	got := []string{}
	for _, l := range sink.all() {
		got = append(got, l.line)
	}
	equalLines(t, "all", got, []string{"v1-1", "v2-1", "v2-y"})
}

// skippedCount is kinship_files_skipped_total for one reason.
func skippedCount(m Metrics, reason string) float64 {
	return value(m.FilesSkipped.WithLabelValues(reason))
}

// An application user who owns its log directory plants links to what only the agent (in
// group adm) can read: a file, a directory, and / under "**". Without follow_symlinks none of
// them is read; each link is logged once and counted once, however many scans see it.
func TestPlantedSymlinksAreNotFollowed(t *testing.T) {
	dir := t.TempDir()
	app, secret := filepath.Join(dir, "app"), filepath.Join(dir, "secret")
	mkdirs(t, app, secret)
	appendFile(t, filepath.Join(secret, "auth.log"), "secret-1\n")
	appendFile(t, filepath.Join(app, "a.log"), "a-1\n")
	symlink(t, filepath.Join(secret, "auth.log"), filepath.Join(app, "x.log"))
	symlink(t, secret, filepath.Join(app, "archive"))
	symlink(t, "/", filepath.Join(app, "root"))
	h := &recordingHandler{}
	m := Metrics{}.withDefaults()
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(app, "*.log"), filepath.Join(app, "**", "*.log")},
		PollInterval: 20 * time.Millisecond, Metrics: m, Logger: slog.New(h)}, sink)
	waitFor(t, "the app's line", func() bool { return sink.count() == 1 })
	appendFile(t, filepath.Join(app, "a.log"), "a-2\n")
	appendFile(t, filepath.Join(secret, "auth.log"), "secret-2\n")
	waitFor(t, "growth", func() bool { return sink.count() == 2 })
	time.Sleep(300 * time.Millisecond) // many polls
	for _, l := range sink.all() {
		if strings.HasPrefix(l.line, "secret") {
			t.Fatalf("read through a planted link: %+v", l)
		}
	}
	equalLines(t, "app", sink.linesOf(filepath.Join(app, "a.log")), []string{"a-1", "a-2"})
	if n := skippedCount(m, "symlink"); n != 3 {
		t.Fatalf("kinship_files_skipped_total{reason=symlink} = %v, want 3 (x.log, archive, root)", n)
	}
	if n := h.count("symbolic link"); n != 3 {
		t.Fatalf("skipped links logged %d times, want once each: %q", n, h.msgs)
	}
}

// A link in the part of the pattern the operator wrote (a log directory on a data volume) is
// the operator's choice: it is followed without follow_symlinks.
func TestSymlinkInFixedPartIsFollowed(t *testing.T) {
	dir := t.TempDir()
	volume := filepath.Join(dir, "data", "app-logs")
	mkdirs(t, volume, filepath.Join(dir, "var"))
	symlink(t, volume, filepath.Join(dir, "var", "app"))
	appendFile(t, filepath.Join(volume, "a.log"), "a-1\n")
	appendFile(t, filepath.Join(dir, "data", "one.log"), "one-1\n")
	symlink(t, filepath.Join(dir, "data", "one.log"), filepath.Join(dir, "var", "one.log"))
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "var", "app", "*.log"), filepath.Join(dir, "var", "one.log")},
		PollInterval: time.Hour}, sink)
	waitFor(t, "both files", func() bool { return sink.count() == 2 })
	appendFile(t, filepath.Join(volume, "a.log"), "a-2\n")
	waitFor(t, "growth", func() bool { return sink.count() == 3 })
	equalLines(t, "a", sink.linesOf(filepath.Join(dir, "var", "app", "a.log")), []string{"a-1", "a-2"})
	equalLines(t, "one", sink.linesOf(filepath.Join(dir, "var", "one.log")), []string{"one-1"})
}

// The walk saw a regular file or a real directory; between the walk and the open (or between
// a directory's stat and its listing), the directory's owner swaps it for a link to a secret.
// The open must not read the secret.
func TestSymlinkSwappedInAfterTheWalkIsNotRead(t *testing.T) {
	swapDir := func(t *testing.T, app, secret string) {
		sub := filepath.Join(app, "sub")
		if err := os.Rename(sub, filepath.Join(app, "was")); err != nil {
			t.Fatal(err)
		}
		symlink(t, secret, sub)
	}
	for _, tc := range []struct {
		name          string
		beforeListing bool // the directory is swapped after its stat and before its listing
		swap          func(t *testing.T, app, secret string)
	}{
		{"directory", false, swapDir},
		{"directory-before-listing", true, swapDir},
		{"file", false, func(t *testing.T, app, secret string) {
			path := filepath.Join(app, "sub", "x.log")
			if err := os.Rename(path, path+".old"); err != nil {
				t.Fatal(err)
			}
			symlink(t, filepath.Join(secret, "x.log"), path)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			app, secret := filepath.Join(dir, "app"), filepath.Join(dir, "secret")
			mkdirs(t, filepath.Join(app, "sub"), secret)
			appendFile(t, filepath.Join(secret, "x.log"), "secret\n")
			appendFile(t, filepath.Join(app, "sub", "x.log"), "app\n")
			m := Metrics{}.withDefaults()
			sink := newSink()
			var once sync.Once
			start(t, Options{Paths: []string{filepath.Join(app, "*", "x.log")}, PollInterval: 20 * time.Millisecond, Metrics: m}, sink,
				func(tl *Tailer) {
					if tc.beforeListing {
						tl.readDir = func(dir string) ([]os.DirEntry, error) {
							if dir == filepath.Join(app, "sub") {
								once.Do(func() { tc.swap(t, app, secret) })
							}
							return os.ReadDir(dir)
						}
						return
					}
					tl.beforeTrack = func(path string) {
						if path == filepath.Join(app, "sub", "x.log") {
							once.Do(func() { tc.swap(t, app, secret) })
						}
					}
				})
			time.Sleep(300 * time.Millisecond)
			for _, l := range sink.all() {
				if l.line == "secret" {
					t.Fatalf("read through a link swapped in after the walk: %+v", l)
				}
			}
			if skippedCount(m, "symlink") == 0 {
				t.Fatal("the swapped-in link was not counted")
			}
		})
	}
}

// With follow_symlinks the operator accepts the risk: a link a wildcard finds is read.
func TestFollowSymlinksReadsLinks(t *testing.T) {
	dir := t.TempDir()
	app, other := filepath.Join(dir, "app"), filepath.Join(dir, "other")
	mkdirs(t, app, other)
	appendFile(t, filepath.Join(other, "o.log"), "o-1\n")
	symlink(t, filepath.Join(other, "o.log"), filepath.Join(app, "x.log"))
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(app, "*.log")}, FollowSymlinks: true, PollInterval: time.Hour}, sink)
	waitFor(t, "the linked file", func() bool { return sink.count() == 1 })
	equalLines(t, "x", sink.linesOf(filepath.Join(app, "x.log")), []string{"o-1"})
}
