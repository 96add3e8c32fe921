package tailer

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runOnce reads path to its end with opts (Once mode) and returns its lines.
func runOnce(t *testing.T, opts Options, path string) ([]string, Metrics) {
	t.Helper()
	m := Metrics{}.withDefaults()
	opts.Paths, opts.Once, opts.Metrics = []string{path}, true, m
	sink := newSink()
	tl, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sink.linesOf(path), m
}

func TestTruncatedRecordTerminator(t *testing.T) {
	big := strings.Repeat("z", 600<<10)
	tests := []struct {
		name      string
		data      string
		opts      Options
		want      []string
		truncated float64
	}{
		{"counted within the limit", "0123456789abc\nshort\n", Options{MaxLineBytes: 10, TruncatedTerminator: "[T]"},
			[]string{"0123456[T]", "short"}, 1},
		{"exactly max is not truncated", "0123456789\nx\n", Options{MaxLineBytes: 10, TruncatedTerminator: "[T]"},
			[]string{"0123456789", "x"}, 0},
		{"lines after a cut one are intact", "0123456789abc\n0123456789abc\nok\n", Options{MaxLineBytes: 10, TruncatedTerminator: "…"},
			[]string{"0123456…", "0123456…", "ok"}, 2},
		{"line spanning read chunks", big + "\nnext\n", Options{MaxLineBytes: 300 << 10, TruncatedTerminator: " [cut]"},
			[]string{big[:300<<10-6] + " [cut]", "next"}, 1},
		{"unterminated last line", "ok\n0123456789abc", Options{MaxLineBytes: 10, TruncatedTerminator: "[T]"},
			[]string{"ok", "0123456[T]"}, 1},
		{"no terminator configured", "0123456789abc\n", Options{MaxLineBytes: 10}, []string{"0123456789"}, 1},
		{"multiline event over max_bytes", "S 1\n cont-a\n cont-b\nS 2\n",
			Options{Multiline: regexp.MustCompile(`^S`), MultilineMaxBytes: 12, TruncatedTerminator: "[T]"},
			[]string{"S 1\n cont[T]", "S 2"}, 1},
		{"first line of an event over max_bytes", "S 0123456789abcdef\nS 2\n",
			Options{Multiline: regexp.MustCompile(`^S`), MultilineMaxBytes: 8, TruncatedTerminator: "[T]"},
			[]string{"S 012[T]", "S 2"}, 1},
		{"multiline max_bytes above max_line_bytes", "S 1\n 0123456789\n 0123456789\n",
			Options{Multiline: regexp.MustCompile(`^S`), MaxLineBytes: 12, MultilineMaxBytes: 100},
			[]string{"S 1\n 0123456789\n 0123456789"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.log")
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			got, m := runOnce(t, tc.opts, path)
			equalLines(t, tc.name, got, tc.want)
			if v := value(m.LinesTruncated); v != tc.truncated {
				t.Fatalf("LinesTruncated = %v, want %v", v, tc.truncated)
			}
			limit := tc.opts.MaxLineBytes
			if tc.opts.Multiline != nil {
				limit = tc.opts.MultilineMaxBytes
			}
			for _, l := range got {
				if limit > 0 && len(l) > limit {
					t.Fatalf("line of %d bytes over the limit %d", len(l), limit)
				}
			}
		})
	}
}

func TestNewRejectsATerminatorWithoutRoom(t *testing.T) {
	for _, opts := range []Options{
		{Paths: []string{"/a"}, MaxLineBytes: 3, TruncatedTerminator: "[T]"},
		{Paths: []string{"/a"}, Multiline: regexp.MustCompile("x"), MultilineMaxBytes: 2, TruncatedTerminator: "[T]"},
		{Paths: []string{"/a"}, SkipHeaderLines: -1},
	} {
		if _, err := New(opts, newSink()); err == nil {
			t.Errorf("New(%+v) accepted", opts)
		}
	}
}

func TestSkipHeaderLines(t *testing.T) {
	tests := []struct {
		name string
		data string
		skip int
		want []string
	}{
		{"first lines skipped", "h1\nh2\nd1\nd2\n", 2, []string{"d1", "d2"}},
		{"none", "h1\nd1\n", 0, []string{"h1", "d1"}},
		{"fewer lines than the header", "h1\n", 3, nil},
		{"empty header lines count", "\n\nd1\n", 2, []string{"d1"}},
		{"crlf", "h1\r\nd1\r\n", 1, []string{"d1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.csv")
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			got, _ := runOnce(t, Options{SkipHeaderLines: tc.skip}, path)
			equalLines(t, tc.name, got, tc.want)
		})
	}
}

func TestSkipHeaderLinesAcrossRestartAndRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.csv")
	appendFile(t, path, "h1\n") // the agent stops in the middle of the header
	opts := Options{Paths: []string{path}, FirstStart: true, SkipHeaderLines: 2}
	sink1 := newSink()
	stop := start(t, opts, sink1)
	appendFile(t, path, "h2\nd1\n")
	waitFor(t, "d1", func() bool { return sink1.count() == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	equalLines(t, "first run", sink1.linesOf(path), []string{"d1"})

	// Resumed at a stored offset past the header: nothing more is skipped.
	appendFile(t, path, "d2\nd3\n")
	opts.FirstStart, opts.Positions = false, sink1.positions()
	sink2 := newSink()
	start(t, opts, sink2)
	waitFor(t, "d2 d3", func() bool { return sink2.count() == 2 })
	equalLines(t, "after restart", sink2.linesOf(path), []string{"d2", "d3"})

	// A new file at the path (rotation) has a header of its own.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "h1\nh2\ne1\n")
	waitFor(t, "e1", func() bool { return sink2.count() == 3 })
	equalLines(t, "new file", sink2.linesOf(path), []string{"d2", "d3", "e1"})
}

func TestSkipHeaderLinesNotAppliedAfterTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.csv")
	appendFile(t, path, "header-long-enough\nd1-long-enough\n")
	m := Metrics{}.withDefaults()
	sink := newSink()
	start(t, Options{Paths: []string{path}, SkipHeaderLines: 1, Metrics: m}, sink)
	waitFor(t, "d1", func() bool { return sink.count() == 1 })
	// copytruncate: the writer goes on without writing a header; skipping would lose a line.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "truncation noticed", func() bool { return value(m.Truncations) == 1 })
	appendFile(t, path, "d2\n")
	waitFor(t, "d2", func() bool { return sink.count() == 2 })
	equalLines(t, "f", sink.linesOf(path), []string{"d1-long-enough", "d2"})
}

func TestPartialLineTimeout(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.log")
	appendFile(t, path, "a\npart")
	opts := Options{Paths: []string{path}, PartialLineTimeout: 100 * time.Millisecond}
	sink := newSink()
	stop := start(t, opts, sink)
	waitFor(t, "partial line shipped", func() bool { return sink.count() == 2 })
	all := sink.all()
	if all[1].line != "part" || all[1].end != int64(len("a\npart")) {
		t.Fatalf("partial line = %q end %d, want \"part\" end %d", all[1].line, all[1].end, len("a\npart"))
	}
	// The writer finishes the line later: the rest is a line of its own, nothing twice.
	appendFile(t, path, "ial\nnext\n")
	waitFor(t, "continuation", func() bool { return sink.count() == 4 })
	equalLines(t, "f", sink.linesOf(path), []string{"a", "part", "ial", "next"})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The stored position is after the shipped bytes: a restart repeats nothing.
	appendFile(t, path, "last\n")
	opts.Positions = sink.positions()
	sink2 := newSink()
	start(t, opts, sink2)
	waitFor(t, "last", func() bool { return sink2.count() == 1 })
	time.Sleep(150 * time.Millisecond)
	equalLines(t, "after restart", sink2.linesOf(path), []string{"last"})
}

func TestPartialLineTimeoutFeedsMultiline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.log")
	appendFile(t, path, "S boom\n\tat a()")
	sink := newSink()
	start(t, Options{Paths: []string{path}, PartialLineTimeout: 50 * time.Millisecond,
		Multiline: regexp.MustCompile(`^S`), MultilineTimeout: 50 * time.Millisecond}, sink)
	waitFor(t, "event", func() bool { return sink.count() == 1 })
	equalLines(t, "event", sink.linesOf(path), []string{"S boom\n\tat a()"})
	if l := sink.all()[0]; l.end != int64(len("S boom\n\tat a()")) {
		t.Fatalf("event end %d", l.end)
	}
}

func TestCloseInactiveOption(t *testing.T) {
	tests := []struct {
		name   string
		close  time.Duration
		closed bool
	}{
		{"short: the descriptor is released", 100 * time.Millisecond, true},
		{"long: the descriptor is kept", time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			appendFile(t, path, "one\n")
			sink := newSink()
			start(t, Options{Paths: []string{path}, CloseInactive: tc.close}, sink)
			waitFor(t, "one", func() bool { return sink.count() == 1 })
			if tc.closed {
				waitFor(t, "descriptor closed", func() bool { return fdsTo(t, path) == 0 })
			} else {
				time.Sleep(300 * time.Millisecond)
				if n := fdsTo(t, path); n != 1 {
					t.Fatalf("%d descriptors on %s, want 1", n, path)
				}
			}
			appendFile(t, path, "two\n")
			waitFor(t, "two", func() bool { return sink.count() == 2 })
			equalLines(t, "f", sink.linesOf(path), []string{"one", "two"})
			if s := sink.all(); s[0].src != s[1].src {
				t.Fatal("reopening made a new Source")
			}
		})
	}
}

// recordingHandler keeps the messages logged at Warn and above.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) count(sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

func TestPollingFallbackLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b", "c"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		appendFile(t, filepath.Join(dir, d, "x.log"), d+"\n")
	}
	h := &recordingHandler{}
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "**", "*.log")}, Logger: slog.New(h)}, sink, func(tl *Tailer) {
		tl.addWatch = func(string) error { return syscall.ENOSPC } // every directory hits max_user_watches
	})
	waitFor(t, "lines", func() bool { return sink.count() == 3 })
	// Several polls, each trying the watches again and failing again.
	for i := range 3 {
		appendFile(t, filepath.Join(dir, "a", "x.log"), "more\n")
		waitFor(t, "polled line", func() bool { return sink.count() == 4+i })
	}
	if n := h.count("polling"); n != 1 {
		t.Fatalf("polling fallback logged %d times, want once: %q", n, h.msgs)
	}
}

// A write through a hard link in a directory nobody watches gives no event: the full sweep,
// which the safety-net poll runs at least every sweepEvery intervals, finds it.
func TestWriteWithoutEventFoundBySweep(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "one\n")
	link := filepath.Join(other, "link")
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}, PollInterval: 20 * time.Millisecond}, sink)
	waitFor(t, "one", func() bool { return sink.count() == 1 })
	for i := range 3 {
		appendFile(t, link, "via link\n")
		waitFor(t, "line written through the link", func() bool { return sink.count() == 2+i })
	}
	equalLines(t, "f", sink.linesOf(path), []string{"one", "via link", "via link", "via link"})
}
