package shipper

import (
	"bytes"
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
)

// BenchmarkAggregationEfficiencyIdleConsumer is BenchmarkAggregationEfficiency with a
// consumer that reports itself idle all the time (aggregator.Nudge every 1,000 lines, the
// worst case for the early flush): records per MB must stay what full records give.
//
//	go test -run '^$' -bench AggregationEfficiency -benchtime 3x ./shipper
func BenchmarkAggregationEfficiencyIdleConsumer(b *testing.B) {
	line := bytes.Repeat([]byte("l"), 100)
	const lines = 100_000 // 10 MB of lines
	for range b.N {
		out := &collect{}
		a, err := aggregator.New(aggregator.Options{Aggregate: true}, out)
		if err != nil {
			b.Fatal(err)
		}
		for i := range lines {
			if i%1000 == 0 {
				a.Nudge()
			}
			if err := a.Add(0, line, int64(i+1)*101); err != nil {
				b.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			b.Fatal(err)
		}
		mb := float64(lines*len(line)) / 1e6
		b.ReportMetric(float64(out.records)/mb, "records/MB-of-lines")
		b.ReportMetric(float64(out.bytes)/float64(lines*len(line)), "shipped-bytes/line-byte")
	}
}
