package flow

import (
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/payload"
)

// With kinesis.compression the stream's record limit applies to the compressed bytes: the
// aggregator leaves room for what compression can add to incompressible data.
func TestCompressionLeavesRoomInRecords(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`flows:
  - {name: z, paths: [/a], kinesis: {stream: s, compression: zstd}}
  - {name: g, paths: [/a], kinesis: {stream: s, compression: gzip, max_record_bytes: 10MiB}, batch: {max_bytes: 10MiB}}
  - {name: n, paths: [/a], kinesis: {stream: s}}
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, limit := range []int{1 << 20, 10 << 20, 1 << 20} {
		want := limit
		if i < 2 {
			want -= payload.Overhead(limit)
		}
		if got := aggregatorOptions(cfg.Flows[i], aggregator.Metrics{}).MaxRecordBytes; got != want {
			t.Errorf("flow %s: aggregates up to %d bytes, want %d", cfg.Flows[i].Name, got, want)
		}
	}
}
