package config_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/payload"
)

type collect struct {
	mu   sync.Mutex
	recs []aggregator.Record
}

func (c *collect) Put(r *aggregator.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r2 := *r
	r2.Data = bytes.Clone(r.Data)
	c.recs = append(c.recs, r2)
	return nil
}

// aggregatorFor builds the aggregator internal/flow builds for the flow (aggregatorOptions
// and keys.go there); kept by hand here, since config cannot import internal/flow.
func aggregatorFor(t *testing.T, f config.Flow, out aggregator.Output) interface {
	Add(uint32, []byte, int64) error
	Close() error
} {
	o := aggregator.Options{MaxRecordBytes: int(f.Batch.MaxBytes), PartitionKey: "random", Aggregate: true, Workers: 1}
	if k := f.Kinesis; k != nil {
		o.PartitionKey, o.Aggregate = k.PartitionKey, k.Aggregate
		o.MaxRecordBytes = min(o.MaxRecordBytes, int(k.MaxRecordBytes))
		if k.Compression != payload.None {
			o.MaxRecordBytes = min(o.MaxRecordBytes, int(k.MaxRecordBytes)-payload.Overhead(int(k.MaxRecordBytes)))
		}
		if k.PartitionKeyField != "" {
			a, err := aggregator.NewSharded(aggregator.KeyedOptions{Options: o, Key: aggregator.JSONFieldKey(k.PartitionKeyField), Fallback: k.PartitionKey}, out)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
	}
	a, err := aggregator.New(o, out)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// userRecords de-aggregates what the aggregator sent.
func userRecords(t *testing.T, c *collect) [][]byte {
	var out [][]byte
	for _, r := range c.recs {
		urs, _, err := aggregator.Deaggregate(r.Data, r.PartitionKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range urs {
			out = append(out, u.Data)
		}
	}
	return out
}

// A line of EffectiveMaxLineBytes goes through the aggregator whole, and one byte more is
// cut: the tailer, cutting at that length, is then the only one to cut (and its
// truncated_record_terminator reaches the stream).
func TestEffectiveMaxLineBytesIsWhatTheAggregatorKeeps(t *testing.T) {
	for _, tc := range []struct {
		name, flow string
		want       config.Size
	}{
		{"defaults: 1MiB minus a random key", "kinesis: {stream: s}", config.MiB - 32},
		{"fixed key", "kinesis: {stream: s, partition_key: abcdefgh}", config.MiB - 8},
		{"not aggregated", "kinesis: {stream: s, aggregate: false}", config.MiB - 32},
		{"smaller batch", "kinesis: {stream: s}\n    batch: {max_bytes: 64KiB}", 64*config.KiB - 32},
		{"gzip leaves room for incompressible data", "kinesis: {stream: s, compression: gzip}", config.MiB - config.Size(payload.Overhead(int(config.MiB))) - 32},
		{"keys from the line: always an aggregate", "kinesis: {stream: s, partition_key_field: k}", config.MiB - 551},
		{"firehose", "firehose: {delivery_stream: d}", 1000*config.KiB - 32},
		{"max_line_bytes below the record", "kinesis: {stream: s}\n    max_line_bytes: 4KiB", 4 * config.KiB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("k.yaml", []byte("flows:\n  - name: a\n    paths: [/a]\n    "+tc.flow+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			f := cfg.Flows[0]
			got := f.EffectiveMaxLineBytes()
			if got != tc.want {
				room, why := f.LineRoom()
				t.Fatalf("EffectiveMaxLineBytes = %d, want %d (LineRoom %d: %s)", got, tc.want, room, why)
			}
			if room, _ := f.LineRoom(); room != got {
				return // the tailer's own limit is smaller: nothing to check against the aggregator
			}
			for _, n := range []int{int(got), int(got) + 1} {
				line := []byte(strings.Repeat("x", n))
				if f.Kinesis != nil && f.Kinesis.PartitionKeyField != "" {
					// The longest key the aggregator keeps, so the framing is the largest.
					line = []byte(`{"k":"` + strings.Repeat("k", 256) + `","pad":"` + strings.Repeat("x", n-len(`{"k":"`)-256-len(`","pad":"`)-2) + `"}`)
				}
				c := &collect{}
				a := aggregatorFor(t, f, c)
				if err := a.Add(1, line, int64(n)); err != nil {
					t.Fatal(err)
				}
				if err := a.Close(); err != nil {
					t.Fatal(err)
				}
				urs := userRecords(t, c)
				if len(urs) != 1 {
					t.Fatalf("%d user records", len(urs))
				}
				if keep := min(n, int(got)); len(urs[0]) != keep {
					t.Errorf("a line of %d bytes reached the stream as %d bytes, want %d", n, len(urs[0]), keep)
				}
			}
		})
	}
}
