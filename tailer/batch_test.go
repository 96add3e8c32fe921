package tailer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// batchSink is a fakeSink that also takes lines in batches, keeping them in the same list
// (copied during the call) and counting the batches and their sizes.
type batchSink struct {
	*fakeSink
	batches, most int
}

func (s *batchSink) Lines(src *Source, lines [][]byte, ends []int64) error {
	if len(lines) != len(ends) {
		return fmt.Errorf("%d lines, %d ends", len(lines), len(ends))
	}
	s.batches++
	s.most = max(s.most, len(lines))
	for i, l := range lines {
		if err := s.Line(src, l, ends[i]); err != nil {
			return err
		}
	}
	return nil
}

// randomLog writes lines of random lengths over several read chunks: empty lines, "\r\n"
// ends, lines longer than maxLine (cut), one spanning a chunk boundary, and an unterminated
// last line.
func randomLog(t *testing.T, rng *rand.Rand, path string, maxLine int) {
	t.Helper()
	var b strings.Builder
	for b.Len() < 3*readBufferSize {
		var n int
		switch r := rng.IntN(50); {
		case r == 0:
			n = 0
		case r == 1:
			n = maxLine + rng.IntN(3*maxLine)
		case r == 2:
			n = readBufferSize / 2
		default:
			n = rng.IntN(400)
		}
		for range n {
			b.WriteByte('a' + byte(rng.IntN(26)))
		}
		if rng.IntN(10) == 0 {
			b.WriteByte('\r')
		}
		b.WriteByte('\n')
	}
	b.WriteString("unterminated")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBatchSinkGetsWhatLineGets: a sink taking batches receives the same lines with the same
// ends, in the same order, as one taking them line by line: lines cut (with and without a
// terminator, in a batch and across chunks), CR kept or not, header lines skipped, the held
// start of a line finished in the next chunk, the unterminated last line.
func TestBatchSinkGetsWhatLineGets(t *testing.T) {
	for seed := range uint64(4) {
		for c, opts := range []Options{
			{MaxLineBytes: 3000, TruncatedTerminator: "[cut]"},
			{MaxLineBytes: 3000, KeepCR: true, SkipHeaderLines: 3},
			{MaxLineBytes: 100000},
		} {
			t.Run(fmt.Sprintf("seed=%d/case=%d", seed, c), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "app.log")
				randomLog(t, rand.New(rand.NewPCG(seed, 3)), path, opts.MaxLineBytes)
				run := func(sink Sink) {
					o := opts
					o.Paths, o.Once = []string{path}, true
					tl, err := New(o, sink)
					if err != nil {
						t.Fatal(err)
					}
					if err := tl.Run(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				one := newSink()
				run(one)
				batched := &batchSink{fakeSink: newSink()}
				run(batched)
				want, got := one.all(), batched.all()
				if batched.most < 10 {
					t.Fatalf("batches of at most %d lines: the tailer does not batch", batched.most)
				}
				if len(want) != len(got) {
					t.Fatalf("line by line %d lines, batched %d", len(want), len(got))
				}
				for i := range want {
					if want[i].line != got[i].line || want[i].end != got[i].end {
						t.Fatalf("line %d: line by line %d bytes ending at %d, batched %d bytes ending at %d",
							i, len(want[i].line), want[i].end, len(got[i].line), got[i].end)
					}
				}
				if last := got[len(got)-1]; last.line != "unterminated" {
					t.Fatalf("last line %q", last.line)
				}
			})
		}
	}
}

// TestBatchSinkNotUsedForMultiline: events are joined line by line, so a multiline flow
// hands each event over with Line.
func TestBatchSinkNotUsedForMultiline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte("S 1\n a\n b\nS 2\nS 3\n c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sink := &batchSink{fakeSink: newSink()}
	tl, err := New(Options{Paths: []string{path}, Once: true, Multiline: regexp.MustCompile(`^S`)}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range sink.all() {
		got = append(got, l.line)
	}
	if want := []string{"S 1\n a\n b", "S 2", "S 3\n c"}; !slices.Equal(got, want) || sink.batches != 0 {
		t.Fatalf("got %q in %d batches, want %q line by line", got, sink.batches, want)
	}
}

// TestBatchSinkErrorStops: an error from Lines stops the tailer with that error.
func TestBatchSinkErrorStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte(strings.Repeat("line\n", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	sink := &batchSink{fakeSink: newSink()}
	boom := errors.New("spool gone")
	sink.onLine = func(*Source, []byte, int64) error { return boom }
	tl, err := New(Options{Paths: []string{path}, Once: true}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "spool gone") {
		t.Fatalf("Run: %v, want the sink's error", err)
	}
}
