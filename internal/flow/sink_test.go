package flow

import (
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

// TestSinkLinesBatchesOnlyUntouchedLines: lines nothing transforms reach the aggregator as
// the tailer's batch; with processors (filters included) or add_metadata each line is
// processed, skipped lines move the position (Skip), the others are added transformed.
func TestSinkLinesBatchesOnlyUntouchedLines(t *testing.T) {
	src := &tailer.Source{Index: 3, Path: "/var/log/app.log"}
	lines := [][]byte{[]byte("keep a"), []byte("drop b"), []byte("keep c")}
	ends := []int64{7, 14, 21}
	m := metrics.New(prometheus.NewRegistry()).Flow("t")

	plain := &callsAggregator{}
	if err := (sink{agg: plain}).Lines(src, lines, ends); err != nil {
		t.Fatal(err)
	}
	if want := []string{"batch 3 keep a 7 drop b 14 keep c 21"}; !slices.Equal(plain.calls, want) {
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
	if err := (sink{agg: processed, stage: st}).Lines(src, lines, ends); err != nil {
		t.Fatal(err)
	}
	if want := []string{"add 3 {keep a} 7", "skip 3 14", "add 3 {keep c} 21"}; !slices.Equal(processed.calls, want) {
		t.Errorf("with processors: %q, want %q", processed.calls, want)
	}

	wrapped := &callsAggregator{}
	w := newLineWrapper(&config.AddMetadata{Hostname: true}, Metadata{Host: "h"})
	if err := (sink{agg: wrapped, wrap: w}).Lines(src, lines[:1], ends[:1]); err != nil {
		t.Fatal(err)
	}
	if want := []string{`add 3 {"data":"keep a","host":"h"} 7`}; !slices.Equal(wrapped.calls, want) {
		t.Errorf("with add_metadata: %q, want %q", wrapped.calls, want)
	}
}
