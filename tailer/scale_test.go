package tailer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// countingSink groups lines by the path their Source started at; cheap enough for 10,000
// files (fakeSink's linesOf scans every line per call).
type countingSink struct {
	mu     sync.Mutex
	n      int
	byPath map[string][]string
}

func (s *countingSink) Open(*Source, int64) {}
func (s *countingSink) Close(*Source)       {}
func (s *countingSink) Line(src *Source, line []byte, _ int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.byPath[src.Path] = append(s.byPath[src.Path], string(line))
	return nil
}

func (s *countingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// makeFiles writes n files of lines lines each into dir and returns their paths.
func makeFiles(tb testing.TB, dir string, n, lines int) []string {
	tb.Helper()
	paths := make([]string, n)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("f%05d.log", i))
		var data []byte
		for j := range lines {
			data = fmt.Appendf(data, "%d-%d\n", i, j)
		}
		if err := os.WriteFile(paths[i], data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return paths
}

func TestTenThousandFiles(t *testing.T) {
	const files, lines, appended = 10000, 3, 1000
	// Every file is held open until close_inactive: the descriptor limit must allow it (the Go
	// runtime raises the soft limit to the hard one).
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < files+1000 {
		t.Fatalf("open file limit %d (%v): this test needs %d; raise ulimit -n", rl.Cur, err, files+1000)
	}
	dir := t.TempDir()
	paths := makeFiles(t, dir, files, lines)
	sink := &countingSink{byPath: map[string][]string{}}
	start(t, Options{Paths: []string{filepath.Join(dir, "*.log")}}, sink)
	waitFor(t, "every file's lines", func() bool { return sink.count() >= files*lines })

	// 1,000 files appended to at once (one watched directory, one event per write).
	var wg sync.WaitGroup
	errs := make(chan error, appended)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < appended; i += 8 {
				f, err := os.OpenFile(paths[i*files/appended], os.O_WRONLY|os.O_APPEND, 0)
				if err == nil {
					_, err = fmt.Fprintf(f, "%d-new\n", i*files/appended)
					err = errors.Join(err, f.Close())
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "appended lines", func() bool { return sink.count() >= files*lines+appended })

	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.n != files*lines+appended {
		t.Fatalf("got %d lines, want %d", sink.n, files*lines+appended)
	}
	for i, p := range paths {
		got := sink.byPath[p]
		want := lines
		if i%(files/appended) == 0 {
			want++
		}
		if len(got) != want {
			t.Fatalf("%s: %d lines %q, want %d", p, len(got), got, want)
		}
		for j := range lines {
			if w := fmt.Sprintf("%d-%d", i, j); got[j] != w {
				t.Fatalf("%s: line %d = %q, want %q", p, j, got[j], w)
			}
		}
		if want > lines && got[lines] != fmt.Sprintf("%d-new", i) {
			t.Fatalf("%s: appended line = %q", p, got[lines])
		}
	}
}
