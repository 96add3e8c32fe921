package tailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type gotLine struct {
	src  *Source
	line string
	end  int64
}

// fakeSink collects everything the Tailer hands over. Safe for the test goroutine to read
// while Run calls it.
type fakeSink struct {
	mu     sync.Mutex
	opens  map[*Source]int64
	lines  []gotLine
	closed map[*Source]bool
	onLine func(src *Source, line []byte, end int64) error
}

func newSink() *fakeSink {
	return &fakeSink{opens: map[*Source]int64{}, closed: map[*Source]bool{}}
}

func (s *fakeSink) Open(src *Source, off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens[src] = off
}

func (s *fakeSink) Line(src *Source, line []byte, end int64) error {
	s.mu.Lock()
	s.lines = append(s.lines, gotLine{src, string(line), end})
	f := s.onLine
	s.mu.Unlock()
	if f != nil {
		return f(src, line, end)
	}
	return nil
}

func (s *fakeSink) Close(src *Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed[src] = true
}

// linesOf returns the lines read from sources that started at path, in order.
func (s *fakeSink) linesOf(path string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if l.src.Path == path {
			out = append(out, l.line)
		}
	}
	return out
}

func (s *fakeSink) all() []gotLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]gotLine(nil), s.lines...)
}

func (s *fakeSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// positions is what a checkpointer would store: per open Source, the end of its last line.
func (s *fakeSink) positions() []Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := map[*Source]int64{}
	for src, off := range s.opens {
		last[src] = off
	}
	for _, l := range s.lines {
		last[l.src] = l.end
	}
	var out []Position
	for src, off := range last {
		if !s.closed[src] {
			out = append(out, Position{ID: src.ID, Fingerprint: src.Fingerprint, Path: src.Path, Offset: off})
		}
	}
	return out
}

func (s *fakeSink) closedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.closed)
}

// fast makes the timing seams short so tests run in milliseconds, not seconds.
func fast(t *Tailer) {
	t.goneGrace = 300 * time.Millisecond
	t.goneRecheck = 50 * time.Millisecond
	t.debounce = 10 * time.Millisecond
	t.fallbackPoll = 100 * time.Millisecond
}

// start runs a Tailer until the test ends; the returned stop cancels it and waits.
func start(t *testing.T, opts Options, sink Sink, tweak ...func(*Tailer)) (stop func() error) {
	t.Helper()
	tl, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	fast(tl)
	for _, f := range tweak {
		f(tl)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%05d", prefix, i))
	}
	return out
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d lines, want %d\ngot:  %q\nwant: %q", what, len(got), len(want), trunc(got), trunc(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: line %d = %q, want %q", what, i, got[i], want[i])
		}
	}
}

func trunc(s []string) []string {
	if len(s) > 20 {
		return append(s[:10:10], append([]string{"..."}, s[len(s)-10:]...)...)
	}
	return s
}

func TestLinesExactlyOnceInOrderWithEnds(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendFile(t, a, "a0\na1\n")
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}}, sink)
	appendFile(t, b, "b0\n")
	appendFile(t, a, "a2\na")
	appendFile(t, a, "3\n")
	for i := 0; i < 200; i++ {
		appendFile(t, b, fmt.Sprintf("b%d\n", i+1))
	}
	waitFor(t, "all lines", func() bool { return len(sink.linesOf(a)) == 4 && len(sink.linesOf(b)) == 201 })
	equalLines(t, "a", sink.linesOf(a), []string{"a0", "a1", "a2", "a3"})
	wantB := []string{"b0"}
	for i := 0; i < 200; i++ {
		wantB = append(wantB, fmt.Sprintf("b%d", i+1))
	}
	equalLines(t, "b", sink.linesOf(b), wantB)

	// Every end is the offset just after that line's '\n': the last one is the file size.
	for _, path := range []string{a, b} {
		data, _ := os.ReadFile(path)
		var prev int64
		for _, l := range sink.all() {
			if l.src.Path != path {
				continue
			}
			if want := prev + int64(len(l.line)) + 1; l.end != want {
				t.Fatalf("%s: line %q end %d, want %d", path, l.line, l.end, want)
			}
			prev = l.end
		}
		if prev != int64(len(data)) {
			t.Fatalf("%s: last end %d, size %d", path, prev, len(data))
		}
	}
}

func TestFraming(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name      string
		data      string
		max       int
		want      []string
		truncated float64
	}{
		{"plain", "a\nb\n", 0, []string{"a", "b"}, 0},
		{"crlf", "a\r\nb\r\n\r\n", 0, []string{"a", "b", ""}, 0},
		{"lone cr kept", "a\rb\n", 0, []string{"a\rb"}, 0},
		{"empty lines", "\n\na\n\n", 0, []string{"", "", "a", ""}, 0},
		{"unterminated last line in once mode", "a\nb", 0, []string{"a", "b"}, 0},
		{"long line truncated", long + "\nshort\n", 10, []string{long[:10], "short"}, 1},
		{"exactly max", "0123456789\n", 10, []string{"0123456789"}, 0},
		{"max plus cr", "0123456789\r\n", 10, []string{"0123456789"}, 0},
		{"line spanning read chunks", strings.Repeat("z", 600<<10) + "\nnext\n", 0, []string{strings.Repeat("z", 600<<10), "next"}, 0},
		{"line spanning chunks truncated", strings.Repeat("z", 600<<10) + "\nnext\n", 300 << 10, []string{strings.Repeat("z", 300<<10), "next"}, 1},
		{"binary", "\x00\xff\xfe\x01bin\x00\n\xc3\x28\n", 0, []string{"\x00\xff\xfe\x01bin\x00", "\xc3\x28"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.log")
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			m := Metrics{}.withDefaults()
			sink := newSink()
			tl, err := New(Options{Paths: []string{path}, Once: true, MaxLineBytes: tc.max, Metrics: m}, sink)
			if err != nil {
				t.Fatal(err)
			}
			if err := tl.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			equalLines(t, tc.name, sink.linesOf(path), tc.want)
			if got := value(m.LinesTruncated); got != tc.truncated {
				t.Fatalf("LinesTruncated = %v, want %v", got, tc.truncated)
			}
			if got := value(m.BytesRead); got != float64(len(tc.data)) {
				t.Fatalf("BytesRead = %v, want %d", got, len(tc.data))
			}
		})
	}
}

func TestPartialLineHeldUntilComplete(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.log")
	appendFile(t, path, "first\nsec")
	m := Metrics{}.withDefaults()
	sink := newSink()
	start(t, Options{Paths: []string{path}, MaxLineBytes: 8, Metrics: m}, sink)
	waitFor(t, "first", func() bool { return sink.count() == 1 })
	time.Sleep(100 * time.Millisecond)
	if got := sink.linesOf(path); len(got) != 1 {
		t.Fatalf("partial line emitted early: %q", got)
	}
	appendFile(t, path, "ond\r\nthis-is-too-long-for")
	appendFile(t, path, "-eight-bytes\nend\n")
	waitFor(t, "all", func() bool { return sink.count() == 4 })
	equalLines(t, "f", sink.linesOf(path), []string{"first", "second", "this-is-", "end"})
	if got := value(m.LinesTruncated); got != 1 {
		t.Fatalf("LinesTruncated = %v, want 1", got)
	}
	all := sink.all()
	if all[2].end != int64(len("first\nsecond\r\nthis-is-too-long-for-eight-bytes\n")) {
		t.Fatalf("end of truncated line = %d", all[2].end)
	}
}

func TestRestartResumesWithoutLossOrRepeat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	want := numbered("l", 0, 300)
	appendFile(t, path, strings.Join(want[:100], "\n")+"\n")
	opts := Options{Paths: []string{filepath.Join(dir, "*.log")}, FirstStart: true}

	sink1 := newSink()
	stop := start(t, opts, sink1)
	waitFor(t, "first batch", func() bool { return sink1.count() == 100 })
	appendFile(t, path, strings.Join(want[100:150], "\n")+"\n")
	waitFor(t, "second batch", func() bool { return sink1.count() == 150 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Written while the agent was down.
	appendFile(t, path, strings.Join(want[150:200], "\n")+"\n")

	opts.FirstStart = false
	opts.Positions = sink1.positions()
	sink2 := newSink()
	start(t, opts, sink2)
	appendFile(t, path, strings.Join(want[200:], "\n")+"\n")
	waitFor(t, "rest", func() bool { return sink2.count() == 150 })
	got := append(sink1.linesOf(path), sink2.linesOf(path)...)
	equalLines(t, "across restart", got, want)
}

func TestStartAt(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.log")
	appendFile(t, old, "old-1\nold-2\n")
	glob := filepath.Join(dir, "*.log")

	t.Run("first start at end skips existing content", func(t *testing.T) {
		sink := newSink()
		start(t, Options{Paths: []string{glob}, FirstStart: true, StartAt: "end"}, sink)
		waitFor(t, "open", func() bool { return len(sink.positions()) == 1 })
		if p := sink.positions()[0]; p.Offset != 12 {
			t.Fatalf("Open offset %d, want 12 (the size)", p.Offset)
		}
		appendFile(t, old, "new-1\n")
		created := filepath.Join(dir, "created.log")
		appendFile(t, created, "c-1\n")
		waitFor(t, "new lines", func() bool { return sink.count() == 2 })
		equalLines(t, "old", sink.linesOf(old), []string{"new-1"})
		equalLines(t, "created after start reads from 0", sink.linesOf(created), []string{"c-1"})
	})
	t.Run("not first start reads unknown files from 0", func(t *testing.T) {
		sink := newSink()
		start(t, Options{Paths: []string{glob}, FirstStart: false, StartAt: "end"}, sink)
		waitFor(t, "lines", func() bool { return len(sink.linesOf(old)) == 3 })
		equalLines(t, "old", sink.linesOf(old), []string{"old-1", "old-2", "new-1"})
	})
}

// start_at end in a file whose last line is being written starts at that line's start:
// the line is handed over whole once finished, not its tail as a line (the Kinesis Agent's
// AbstractParserTest.testStartParsingWithInitialPositionEndOfFileAndPartialRecord); a file
// that is one unfinished line is read from 0; a complete last line is skipped.
func TestStartAtEndWithALineBeingWritten(t *testing.T) {
	tests := []struct {
		name, before, after string
		offset              int64
		want                []string
	}{
		{"partial last line", "old-1\nold-2\npart", "ial\nnew\n", 12, []string{"partial", "new"}},
		{"one unfinished line", "part", "ial\n", 0, []string{"partial"}},
		{"complete last line", "old-1\n", "new\n", 6, []string{"new"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			appendFile(t, path, tc.before)
			sink := newSink()
			start(t, Options{Paths: []string{path}, FirstStart: true, StartAt: "end", PartialLineTimeout: time.Hour}, sink)
			waitFor(t, "open", func() bool { return len(sink.positions()) == 1 })
			if p := sink.positions()[0]; p.Offset != tc.offset {
				t.Errorf("Open offset %d, want %d", p.Offset, tc.offset)
			}
			appendFile(t, path, tc.after)
			waitFor(t, "lines", func() bool { return sink.count() == len(tc.want) })
			equalLines(t, "lines", sink.linesOf(path), tc.want)
		})
	}
}

func TestInodeReuseFingerprintMismatchReadsFromZero(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "new-file-1\nnew-file-2\n")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	id := fileID(fi)
	tests := []struct {
		name string
		fp   Fingerprint
		want []string
	}{
		{"fingerprint of another file", Fingerprint{Len: 11, Sum: 42}, []string{"new-file-1", "new-file-2"}},
		{"fingerprint longer than the file", Fingerprint{Len: 1000, Sum: 42}, []string{"new-file-1", "new-file-2"}},
		{"matching fingerprint resumes", fpOf(t, path, 11), []string{"new-file-2"}},
		{"empty fingerprint matches anything", Fingerprint{}, []string{"new-file-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := newSink()
			tl, err := New(Options{Paths: []string{path}, Once: true,
				Positions: []Position{{ID: id, Fingerprint: tc.fp, Path: path, Offset: 11}}}, sink)
			if err != nil {
				t.Fatal(err)
			}
			if err := tl.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			equalLines(t, tc.name, sink.linesOf(path), tc.want)
		})
	}
}

func fpOf(t *testing.T, path string, n int64) Fingerprint {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fp, err := fingerprint(f, n)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestRotationEveryLineOnce(t *testing.T) {
	for _, tc := range []struct {
		polling      bool
		rotatedMatch bool // the rotated names match the pattern too: files stay tracked
	}{{false, false}, {true, false}, {false, true}} {
		polling := tc.polling
		t.Run(fmt.Sprintf("polling=%v,rotatedMatch=%v", tc.polling, tc.rotatedMatch), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			glob := path
			if tc.rotatedMatch {
				glob = path + "*"
			}
			sink := newSink()
			start(t, Options{Paths: []string{glob}}, sink, func(tl *Tailer) { tl.noFsnotify = polling })

			const rotations, perFile, afterRename = 5, 200, 20
			var want []string
			n := 0
			w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			write := func() {
				line := fmt.Sprintf("line-%06d", n)
				n++
				want = append(want, line)
				if _, err := w.WriteString(line + "\n"); err != nil {
					t.Fatal(err)
				}
			}
			for r := 0; r < rotations; r++ {
				for i := 0; i < perFile; i++ {
					write()
					if i%50 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
				if polling {
					// Without events, a file must live at its path for at least one poll to be found.
					last := want[len(want)-1]
					waitFor(t, "current file seen", func() bool {
						for _, l := range sink.all() {
							if l.line == last {
								return true
							}
						}
						return false
					})
				}
				if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
					t.Fatal(err)
				}
				// The writer has not noticed yet: these land in the renamed file.
				for i := 0; i < afterRename; i++ {
					write()
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if w, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < perFile; i++ {
				write()
			}
			_ = w.Close()
			waitFor(t, "every line", func() bool {
				if sink.count() >= len(want) {
					return true
				}
				t.Logf("%d of %d lines", sink.count(), len(want))
				return false
			})
			time.Sleep(100 * time.Millisecond) // duplicates would arrive now
			var got []string
			for _, l := range sink.all() {
				got = append(got, l.line)
			}
			// Files are read concurrently, so order holds only per file: compare as sets with counts.
			seen := map[string]int{}
			for _, l := range got {
				seen[l]++
			}
			for _, l := range want {
				if seen[l] != 1 {
					t.Fatalf("line %s seen %d times", l, seen[l])
				}
			}
			if len(got) != len(want) {
				t.Fatalf("got %d lines, want %d", len(got), len(want))
			}
			if tc.rotatedMatch {
				time.Sleep(500 * time.Millisecond) // longer than the grace: still tracked
				if n := sink.closedCount(); n != 0 {
					t.Fatalf("%d files retired though they still match", n)
				}
			} else {
				waitFor(t, "rotated files retired", func() bool { return sink.closedCount() == rotations })
			}
		})
	}
}

func TestCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "before-1-long-enough\nbefore-2-long-enough\n")
	m := Metrics{}.withDefaults()
	sink := newSink()
	stop := start(t, Options{Paths: []string{path}, Metrics: m}, sink)
	waitFor(t, "before", func() bool { return sink.count() == 2 })
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "truncation noticed", func() bool { return value(m.Truncations) == 1 })
	appendFile(t, path, "after-1\n")
	waitFor(t, "after", func() bool { return sink.count() == 3 })
	equalLines(t, "f", sink.linesOf(path), []string{"before-1-long-enough", "before-2-long-enough", "after-1"})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "after-2\n")
	sink2 := newSink()
	start(t, Options{Paths: []string{path}, Positions: sink.positions()}, sink2)
	waitFor(t, "after restart", func() bool { return sink2.count() == 1 })
	time.Sleep(50 * time.Millisecond)
	equalLines(t, "after restart", sink2.linesOf(path), []string{"after-2"})
	all := sink.all()
	if l := all[2]; l.end != 8 {
		t.Fatalf("end after truncation = %d, want 8", l.end)
	}
	// The old content's Source is closed; the new content has its own, so a position stored
	// for it matches the file after a restart.
	if all[2].src == all[0].src || sink.closedCount() != 1 {
		t.Fatalf("truncation did not start a new Source (closed %d)", sink.closedCount())
	}
}

func TestDeletedWhileOpenIsReadToItsEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sink := newSink()
	start(t, Options{Paths: []string{path}}, sink)
	_, _ = w.WriteString("one\n")
	waitFor(t, "one", func() bool { return sink.count() == 1 })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, _ = w.WriteString("two\nthree\n")
	waitFor(t, "retired", func() bool { return sink.closedCount() == 1 })
	equalLines(t, "deleted", sink.linesOf(path), []string{"one", "two", "three"})
}

func TestUnreadableFileIsRetried(t *testing.T) {
	dir := t.TempDir()
	locked, open := filepath.Join(dir, "locked.log"), filepath.Join(dir, "open.log")
	appendFile(t, locked, "secret\n")
	appendFile(t, open, "public\n")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	m := Metrics{}.withDefaults()
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}, Metrics: m, PollInterval: 100 * time.Millisecond}, sink)
	waitFor(t, "readable file", func() bool { return len(sink.linesOf(open)) == 1 })
	if os.Geteuid() != 0 {
		waitFor(t, "FileErrors", func() bool { return value(m.FileErrors) >= 1 })
		if got := sink.linesOf(locked); len(got) != 0 {
			t.Fatalf("read an unreadable file: %q", got)
		}
	} else {
		t.Log("running as root: chmod 000 does not stop root from reading, so only the recovery is asserted")
	}
	if err := os.Chmod(locked, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "file readable again", func() bool { return len(sink.linesOf(locked)) == 1 })
}

func TestDirectoryCreatedLaterUnderDoubleStar(t *testing.T) {
	dir := t.TempDir()
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "apps", "**", "*.log")}}, sink)
	time.Sleep(50 * time.Millisecond)
	deep := filepath.Join(dir, "apps", "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(deep, "x.log")
	appendFile(t, path, "deep-1\n")
	waitFor(t, "deep file", func() bool { return len(sink.linesOf(path)) == 1 })
	appendFile(t, path, "deep-2\n")
	shallow := filepath.Join(dir, "apps", "y.log")
	appendFile(t, shallow, "shallow\n")
	waitFor(t, "more", func() bool { return sink.count() == 3 })
	equalLines(t, "deep", sink.linesOf(path), []string{"deep-1", "deep-2"})
}

func TestExcludeAndSymlink(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	elsewhere := filepath.Join(dir, "elsewhere")
	for _, d := range []string{logs, elsewhere} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	appendFile(t, filepath.Join(logs, "a.log"), "a\n")
	appendFile(t, filepath.Join(logs, "old.log.gz"), "gz\n")
	appendFile(t, filepath.Join(logs, "skip.log"), "skip\n")
	target := filepath.Join(elsewhere, "real.txt")
	appendFile(t, target, "via-link-1\n")
	link := filepath.Join(logs, "link.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(logs, "*")}, FollowSymlinks: true,
		Exclude: []string{"*.gz", filepath.Join(logs, "skip.*")}}, sink)
	waitFor(t, "lines", func() bool { return sink.count() == 2 })
	appendFile(t, target, "via-link-2\n")
	waitFor(t, "link grows", func() bool { return sink.count() == 3 })
	time.Sleep(50 * time.Millisecond)
	equalLines(t, "link", sink.linesOf(link), []string{"via-link-1", "via-link-2"})
	if sink.count() != 3 {
		t.Fatalf("excluded files read: %+v", sink.all())
	}
}

func TestPollingFallback(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}}, sink, func(tl *Tailer) { tl.noFsnotify = true })
	appendFile(t, path, "one\n")
	waitFor(t, "one", func() bool { return sink.count() == 1 })
	appendFile(t, path, "two\n")
	waitFor(t, "two", func() bool { return sink.count() == 2 })
	equalLines(t, "polled", sink.linesOf(path), []string{"one", "two"})
}

func TestOnceReadsEverythingAndReturns(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := 0; i < 3; i++ {
		lines := numbered(fmt.Sprint(i), 0, 5000)
		want = append(want, lines...)
		appendFile(t, filepath.Join(dir, fmt.Sprintf("%d.log", i)), strings.Join(lines, "\n")) // no final '\n'
	}
	sink := newSink()
	tl, err := New(Options{Paths: []string{filepath.Join(dir, "*.log")}, Once: true}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		path := filepath.Join(dir, fmt.Sprintf("%d.log", i))
		equalLines(t, path, sink.linesOf(path), want[i*5000:(i+1)*5000])
		fi, _ := os.Stat(path)
		var last int64
		for _, l := range sink.all() {
			if l.src.Path == path {
				last = l.end
			}
		}
		if last != fi.Size() {
			t.Fatalf("%s: last end %d, size %d", path, last, fi.Size())
		}
	}
}

func TestSinkErrorStopsRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	appendFile(t, path, "a\nb\n")
	boom := errors.New("boom")
	sink := newSink()
	sink.onLine = func(*Source, []byte, int64) error { return boom }
	tl, err := New(Options{Paths: []string{path}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Run(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want boom", err)
	}
}

func TestMultiline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "2024-01-01 ok\n2024-01-01 boom\n\tat a()\n\tat b()\n2024-01-02 next\n\tat c()\n")
	sink := newSink()
	start(t, Options{Paths: []string{path}, Multiline: regexp.MustCompile(`^\d{4}-`),
		MultilineTimeout: 200 * time.Millisecond}, sink)
	waitFor(t, "events", func() bool { return sink.count() == 3 })
	equalLines(t, "events", sink.linesOf(path), []string{
		"2024-01-01 ok", "2024-01-01 boom\n\tat a()\n\tat b()", "2024-01-02 next\n\tat c()"})
	// The last event was emitted by the timeout, and its end covers its last line.
	fi, _ := os.Stat(path)
	if l := sink.all()[2]; l.end != fi.Size() {
		t.Fatalf("last event end %d, size %d", l.end, fi.Size())
	}
}

func TestMultilineMaxLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "S1\nc\nc\nc\nc\nS2\n")
	sink := newSink()
	tl, err := New(Options{Paths: []string{path}, Once: true, Multiline: regexp.MustCompile(`^S`), MultilineMaxLines: 3}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	equalLines(t, "events", sink.linesOf(path), []string{"S1\nc\nc", "c\nc", "S2"})
}

func TestNewValidates(t *testing.T) {
	for _, opts := range []Options{
		{},
		{Paths: []string{"relative/*.log"}},
		{Paths: []string{"/var/log/[.log"}},
		{Paths: []string{"/var/log/*.log"}, Exclude: []string{"[x"}},
		{Paths: []string{"/var/log/*.log"}, StartAt: "middle"},
	} {
		if _, err := New(opts, newSink()); err == nil {
			t.Errorf("New(%+v) accepted invalid options", opts)
		}
	}
}

// A bounded, allocation-free read path is the point: a second Run over the same bytes must not
// allocate per line.
func TestNoAllocationPerLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	line := bytes.Repeat([]byte("y"), 199)
	var data []byte
	for i := 0; i < 10000; i++ {
		data = append(append(data, line...), '\n')
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(3, func() {
		tl, _ := New(Options{Paths: []string{path}, Once: true}, nopSink{})
		_ = tl.Run(context.Background())
	})
	if allocs > 1000 {
		t.Fatalf("%v allocations for 10000 lines", allocs)
	}
}

type nopSink struct{}

func (nopSink) Open(*Source, int64)               {}
func (nopSink) Line(*Source, []byte, int64) error { return nil }
func (nopSink) Close(*Source)                     {}

// value reads a counter or gauge without the testutil package (and its extra dependency).
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

func TestIdleFileClosedAndReopenedOnGrowth(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "one\n")
	m := Metrics{}.withDefaults()
	sink := newSink()
	start(t, Options{Paths: []string{path}, Metrics: m}, sink, func(x *Tailer) { x.idleClose = 50 * time.Millisecond })
	waitFor(t, "one", func() bool { return sink.count() == 1 })
	waitFor(t, "files watched", func() bool { return value(m.FilesWatched) == 1 })
	waitFor(t, "descriptor closed for idleness", func() bool { return fdsTo(t, path) == 0 })
	appendFile(t, path, "two\n")
	waitFor(t, "two", func() bool { return sink.count() == 2 })
	equalLines(t, "reopened", sink.linesOf(path), []string{"one", "two"})
	s := sink.all()
	if s[0].src != s[1].src {
		t.Fatalf("reopening made a new Source: %+v then %+v", s[0].src, s[1].src)
	}
}

// fdsTo counts this process's read-only descriptors open on path (Linux /proc); the test's
// own writers are write-only, so they are not counted.
func fdsTo(t *testing.T, path string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || target != path {
			continue
		}
		info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			continue
		}
		var flags int
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "flags:"); ok {
				_, _ = fmt.Sscanf(strings.TrimSpace(v), "%o", &flags)
			}
		}
		if flags&3 == os.O_RDONLY {
			n++
		}
	}
	return n
}

func TestEmptyFileTrackedOnceItHasAFingerprint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "")
	sink := newSink()
	start(t, Options{Paths: []string{path}, FirstStart: true, StartAt: "end"}, sink)
	time.Sleep(50 * time.Millisecond)
	appendFile(t, path, "first line after start\n")
	waitFor(t, "line", func() bool { return sink.count() == 1 })
	// The file was empty when first seen, so start_at end skipped nothing; and the identity
	// carries a real fingerprint, so a later file reusing the inode is told apart.
	if fp := sink.all()[0].src.Fingerprint; fp.Len == 0 {
		t.Fatalf("fingerprint of zero bytes: %+v", fp)
	}
}

func TestCanDescend(t *testing.T) {
	tests := []struct {
		pattern, dir string
		want         bool
	}{
		{"/var/log/*.log", "/var", true},
		{"/var/log/*.log", "/var/log", true},
		{"/var/log/*.log", "/var/log/sub", false},
		{"/var/log/*.log", "/etc", false},
		{"/var/log/**", "/var/log/a/b", true},
		{"/var/log/**/*.json", "/var/log/a/b", true},
		{"/var/*/app/*.log", "/var/x/app", true},
		{"/var/*/app/*.log", "/var/x/other", false},
		{"/var/{a,b}/*.log", "/var/b", true},
		{"/var/{a,b}/*.log", "/var/c", false},
		{"/var/log/*.log", "/", true},
	}
	for _, tc := range tests {
		p, err := newPattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.canDescend(tc.dir); got != tc.want {
			t.Errorf("canDescend(%q, %q) = %v, want %v", tc.pattern, tc.dir, got, tc.want)
		}
	}
}

func TestWatchLimitFallsBackToPolling(t *testing.T) {
	dir := t.TempDir()
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "**", "*.log")}}, sink, func(tl *Tailer) {
		tl.addWatch = func(string) error { return syscall.ENOSPC } // inotify's max_user_watches
	})
	sub := filepath.Join(dir, "new")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "a.log")
	appendFile(t, path, "polled\n")
	waitFor(t, "line found by polling", func() bool { return sink.count() == 1 })
	appendFile(t, path, "again\n")
	waitFor(t, "growth found by polling", func() bool { return sink.count() == 2 })
}

func TestRotatedWhileStoppedIsReadToItsEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "a1\na2\n")
	opts := Options{Paths: []string{path}, FirstStart: true}
	sink1 := newSink()
	stop := start(t, opts, sink1)
	waitFor(t, "first lines", func() bool { return sink1.count() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// While stopped: more lines, a rotation, lines in the new file.
	appendFile(t, path, "a3\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "b1\n")

	opts.FirstStart, opts.Positions = false, sink1.positions()
	sink2 := newSink()
	start(t, opts, sink2)
	waitFor(t, "rest", func() bool { return sink2.count() == 2 })
	waitFor(t, "rotated file retired", func() bool { return sink2.closedCount() == 1 })
	equalLines(t, "rotated", sink2.linesOf(path+".1"), []string{"a3"})
	equalLines(t, "new", sink2.linesOf(path), []string{"b1"})
}

func TestIdleIsBlockedNotPolling(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 20; i++ {
		appendFile(t, filepath.Join(dir, fmt.Sprintf("%d.log", i)), "x\n")
	}
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}}, sink)
	waitFor(t, "lines", func() bool { return sink.count() == 20 })
	time.Sleep(100 * time.Millisecond) // let the post-watch rescan pass
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Skip(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before := cpu()
	time.Sleep(500 * time.Millisecond)
	if used := cpu() - before; used > 50*time.Millisecond {
		t.Fatalf("idle tailer used %v CPU in 500ms", used)
	}
}

func TestInotifyOverflowRescans(t *testing.T) {
	max, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skipf("no inotify: %v", err)
	}
	var queue int
	if _, err := fmt.Sscan(string(max), &queue); err != nil || queue > 100000 {
		t.Skipf("inotify queue of %q events is too long to overflow in a test", max)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendFile(t, a, "a\n")
	appendFile(t, b, "b\n")
	release := make(chan struct{})
	sink := newSink()
	sink.onLine = func(_ *Source, line []byte, _ int64) error {
		if string(line) == "block" {
			<-release // Run stops reading events while the Sink blocks
		}
		return nil
	}
	// Only an overflow rescan (or an event that overflow would drop) can find the late file.
	start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}, PollInterval: time.Hour}, sink)
	waitFor(t, "first lines", func() bool { return sink.count() == 2 })
	time.Sleep(100 * time.Millisecond) // the rescan after adding watches is done
	appendFile(t, a, "block\n")
	waitFor(t, "sink blocked", func() bool { return sink.count() == 3 })
	fa, _ := os.OpenFile(a, os.O_WRONLY|os.O_APPEND, 0)
	fb, _ := os.OpenFile(b, os.O_WRONLY|os.O_APPEND, 0)
	for i := 0; i < queue+1000; i++ { // alternating files: inotify cannot merge the events
		_, _ = fa.WriteString("a\n")
		_, _ = fb.WriteString("b\n")
	}
	_ = fa.Close()
	_ = fb.Close()
	late := filepath.Join(dir, "late.log")
	appendFile(t, late, "late\n")
	close(release)
	waitFor(t, "late file found", func() bool { return len(sink.linesOf(late)) == 1 })
}

func TestCopyTruncateRegrownBeforeNoticed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "old-1\nold-2\n")
	m := Metrics{}.withDefaults()
	sink := newSink()
	// Polling only, so nothing is noticed between the truncation and the rewrite.
	start(t, Options{Paths: []string{path}, Metrics: m}, sink, func(tl *Tailer) { tl.noFsnotify = true })
	waitFor(t, "old", func() bool { return sink.count() == 2 })
	if err := os.WriteFile(path, []byte("new-content-longer-than-before-1\nnew-2\n"), 0o644); err != nil { // O_TRUNC: same inode
		t.Fatal(err)
	}
	waitFor(t, "new", func() bool { return sink.count() == 4 })
	equalLines(t, "f", sink.linesOf(path), []string{"old-1", "old-2", "new-content-longer-than-before-1", "new-2"})
	if got := value(m.Truncations); got != 1 {
		t.Fatalf("Truncations = %v, want 1", got)
	}
}

func TestIdleClosedFileRotatedThenWrittenIsRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, _ = w.WriteString("one\n")
	sink := newSink()
	start(t, Options{Paths: []string{path}}, sink, func(x *Tailer) { x.idleClose = 50 * time.Millisecond })
	waitFor(t, "one", func() bool { return sink.count() == 1 })
	waitFor(t, "descriptor closed for idleness", func() bool { return fdsTo(t, path) == 0 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	_, _ = w.WriteString("two\n") // the writer has not reopened yet
	waitFor(t, "retired", func() bool { return sink.closedCount() == 1 })
	equalLines(t, "rotated", sink.linesOf(path), []string{"one", "two"})
}
