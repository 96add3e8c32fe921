package tailer

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// A tailer built without metrics, or with only some of them, reads as one with all of them:
// the missing instruments count into nothing, and the given ones still count.
func TestPartialAndZeroMetricsRead(t *testing.T) {
	lines := prometheus.NewCounter(prometheus.CounterOpts{Name: "lines"})
	for name, m := range map[string]Metrics{"zero": {}, "lines only": {LinesRead: lines}} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.log")
			// A line over MaxLineBytes, a symlink the patterns find: truncation and skip counters.
			if err := os.WriteFile(path, []byte("short\nmuch too long a line\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			symlink(t, path, filepath.Join(dir, "link.log"))
			sink := newSink()
			tl, err := New(Options{Paths: []string{filepath.Join(dir, "*.log")}, Once: true, MaxLineBytes: 8, Metrics: m}, sink)
			if err != nil {
				t.Fatal(err)
			}
			if err := tl.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			equalLines(t, name, sink.linesOf(path), []string{"short", "much too"})
		})
	}
	if got := value(lines); got != 2 {
		t.Errorf("LinesRead = %v, want 2", got)
	}
}
