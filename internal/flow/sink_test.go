package flow

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/processing"
	"github.com/kinship-agent/kinship/tailer"
)

// callsAggregator records what the sink asks of the aggregator, as text.
type callsAggregator struct{ calls []string }

func (a *callsAggregator) Add(src uint32, line []byte, end int64) error {
	a.calls = append(a.calls, fmt.Sprintf("add %d %s %d", src, line, end))
	return nil
}

func (a *callsAggregator) AddLines(src uint32, lines [][]byte, ends []int64) error {
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, " %s %d", l, ends[i])
	}
	a.calls = append(a.calls, fmt.Sprintf("batch %d%s", src, b.String()))
	return nil
}

func (a *callsAggregator) Skip(src uint32, end int64) error {
	a.calls = append(a.calls, fmt.Sprintf("skip %d %d", src, end))
	return nil
}

func (a *callsAggregator) Close() error      { return nil }
func (a *callsAggregator) Nudge()            {}
func (a *callsAggregator) MaxLineBytes() int { return 1 << 20 }

// TestSinkLinesInBatches: a chunk's lines reach the aggregator in one AddLines call as
// read; with processors (filters included) or add_metadata, as processing left them, in one
// call per run of lines between skipped ones, each skip (Skip) after the lines before it.
func TestSinkLinesInBatches(t *testing.T) {
	src := &tailer.Source{Index: 3, Path: "/var/log/app.log"}
	lines := [][]byte{[]byte("keep a"), []byte("drop b"), []byte("keep c"), []byte("keep d")}
	ends := []int64{7, 14, 21, 28}
	m := metrics.New(prometheus.NewRegistry()).Flow("t")

	plain := &callsAggregator{}
	if err := (sink{agg: plain}).Lines(src, lines, ends); err != nil {
		t.Fatal(err)
	}
	if want := []string{"batch 3 keep a 7 drop b 14 keep c 21 keep d 28"}; !slices.Equal(plain.calls, want) {
		t.Errorf("without processing: %q, want %q", plain.calls, want)
	}

	cfg, err := config.Parse("k.yaml", []byte(`flows:
  - name: t
    paths: ["/var/log/*.log"]
    discard: {}
    processors:
      - {type: exclude, patterns: ["drop"]}
      - {type: add_brackets}
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := newStage(cfg.Flows[0], processing.Deps{}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	processed := &callsAggregator{}
	sk := sink{agg: processed, stage: st, done: &doneLines{}}
	for range 2 { // the second batch reuses the buffers of the first
		if err := sk.Lines(src, lines, ends); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"batch 3 {keep a} 7", "skip 3 14", "batch 3 {keep c} 21 {keep d} 28"}
	if want = append(want, want...); !slices.Equal(processed.calls, want) {
		t.Errorf("with processors: %q, want %q", processed.calls, want)
	}

	wrapped := &callsAggregator{}
	w := newLineWrapper(&config.AddMetadata{Hostname: true}, Metadata{Host: "h"})
	if err := (sink{agg: wrapped, wrap: w, done: &doneLines{}}).Lines(src, lines[:2], ends[:2]); err != nil {
		t.Fatal(err)
	}
	if want := []string{`batch 3 {"data":"keep a","host":"h"} 7 {"data":"drop b","host":"h"} 14`}; !slices.Equal(wrapped.calls, want) {
		t.Errorf("with add_metadata: %q, want %q", wrapped.calls, want)
	}

	// Lines that processing made long go in several calls: what is gathered stays bounded.
	long := &callsAggregator{}
	big := [][]byte{bytes.Repeat([]byte("a"), 600<<10), bytes.Repeat([]byte("b"), 600<<10), []byte("c")}
	if err := (sink{agg: long, wrap: w, done: &doneLines{}}).Lines(src, big, []int64{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if len(long.calls) != 2 || !strings.HasSuffix(long.calls[0], " 2") || !strings.HasSuffix(long.calls[1], `{"data":"c","host":"h"} 3`) {
		t.Errorf("long lines: %d calls, want the first two lines, then the third", len(long.calls))
	}
}
