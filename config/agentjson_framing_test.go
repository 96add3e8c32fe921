package config

import (
	"strings"
	"testing"
)

// agent.json flows frame records as the Kinesis Agent does: each keeps its '\n', a cut one
// still ends in '\n', Firehose sends a line per record unless aggregatedRecordSizeBytes joins
// them, and DETERMINISTIC keys are a mode of their own.
func TestAgentJSONRecordFraming(t *testing.T) {
	cfg, err := Parse("agent.json", []byte(`{"cloudwatch.emitMetrics": false, "flows": [
  {"filePattern": "/var/log/a.log", "kinesisStream": "s", "partitionKeyOption": "DETERMINISTIC"},
  {"filePattern": "/var/log/b.log", "deliveryStream": "d", "maxBufferSizeBytes": 4194304},
  {"filePattern": "/var/log/c.log", "deliveryStream": "d", "aggregatedRecordSizeBytes": 65536, "maxBufferSizeBytes": 4194304},
  {"filePattern": "/var/log/d.log", "kinesisStream": "s", "truncatedRecordTerminator": "...\n"}
]}`))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c, d := cfg.Flows[0], cfg.Flows[1], cfg.Flows[2], cfg.Flows[3]
	for _, f := range cfg.Flows {
		if !f.KeepNewline {
			t.Errorf("flow %s: KeepNewline not set", f.Name)
		}
	}
	if a.Kinesis.PartitionKey != "deterministic" || a.TruncatedRecordTerminator != "\n" {
		t.Errorf("flow a: partition key %q, terminator %q", a.Kinesis.PartitionKey, a.TruncatedRecordTerminator)
	}
	if !b.Firehose.RecordPerLine || b.Batch.MaxBytes != FirehoseMaxRecordBytes {
		t.Errorf("flow b: record per line %v, batch %s", b.Firehose.RecordPerLine, b.Batch.MaxBytes)
	}
	if c.Firehose.RecordPerLine || c.Firehose.JoinBytes != 64*KiB || c.Batch.MaxBytes != FirehoseMaxRecordBytes {
		t.Errorf("flow c: record per line %v, join %s, batch %s", c.Firehose.RecordPerLine, c.Firehose.JoinBytes, c.Batch.MaxBytes)
	}
	if d.TruncatedRecordTerminator != "...\n" {
		t.Errorf("flow d: terminator %q", d.TruncatedRecordTerminator)
	}
	// A native flow keeps its lines as the tailer frames them.
	cfg, err = Parse("k.yaml", []byte("flows: [{name: a, paths: [/a], firehose: {delivery_stream: d}}]\n"))
	if err != nil || cfg.Flows[0].KeepNewline || cfg.Flows[0].Firehose.RecordPerLine {
		t.Errorf("native flow: %v %s", err, dump(cfg))
	}
}

func TestAgentJSONRecordFramingErrors(t *testing.T) {
	_, err := Parse("agent.json", []byte(`{"flows": [
  {"filePattern": "/a", "deliveryStream": "d", "aggregatedRecordSizeBytes": 2000000},
  {"filePattern": "/b", "deliveryStream": "d", "aggregatedRecordSizeBytes": -1}]}`))
	for _, want := range []string{
		"agent.json:2:77: flows[0].aggregatedRecordSizeBytes: 2000000: must be 0 to 1024000 (the largest Firehose record)",
		"agent.json:3:77: flows[1].aggregatedRecordSizeBytes: -1: must be 0 or more",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %q", err, want)
		}
	}
	// Only Firehose flows join records; on a Kinesis flow the key is named and ignored.
	cfg, err := Parse("agent.json", []byte(`{"flows": [{"filePattern": "/a", "kinesisStream": "s", "aggregatedRecordSizeBytes": 1000}]}`))
	if err != nil {
		t.Fatal(err)
	}
	checkWarnings(t, cfg.Warnings, []string{
		"flows[0].aggregatedRecordSizeBytes: not supported, ignored: the Kinesis Agent joins records only for Firehose flows",
		"kinship.aggregate: not set",
	})
}

// partition_key deterministic is kept as it is (the aggregator computes the MD5 of each
// record), never replaced by random keys, and with aggregation takes the keyed line room.
func TestDeterministicKey(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte("flows: [{name: a, paths: [/a], kinesis: {stream: s, partition_key: deterministic}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Flows[0].Kinesis.PartitionKey != "deterministic" || len(cfg.Warnings) != 0 {
		t.Errorf("partition key %q, warnings %q", cfg.Flows[0].Kinesis.PartitionKey, cfg.Warnings)
	}
}
