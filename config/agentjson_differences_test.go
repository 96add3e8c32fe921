package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Each agent.json flow lists what kinship does differently from the Kinesis Agent with it,
// and a flow that behaves the same lists nothing.
func TestAgentJSONDifferences(t *testing.T) {
	type diff struct{ key, kinship, agent string } // substrings
	tests := []struct {
		name  string
		top   string // top-level members before "flows"
		flow  string // the flow's members besides filePattern and the stream
		file  string // filePattern ["/var/log/app.log"]
		fh    bool   // a Firehose flow
		diffs []diff
	}{
		{name: "plain file, no options: the same"},
		{name: "initialPosition, partition key and terminator: the same",
			flow: `"initialPosition": "START_OF_FILE", "truncatedRecordTerminator": "...\n", "minTimeBetweenFilePollsMillis": 100`},
		// SourceFile takes the directory literally (SourceFileTest: "/var/log/message*" is
		// directory /var/log, file message*); so does the translation (escaped glob).
		{name: "glob in the directory part: taken literally by both", file: "/var/log/*/app.log"},
		{name: "wildcard in the file name: links", file: "/var/log/app/*.log",
			diffs: []diff{{"filePattern", "does not follow symbolic links", "follows them"}}},
		{name: "brace alternatives in the file name: links", file: "/var/log/{a,b}.log",
			diffs: []diff{{"filePattern", "does not follow", "follows"}}},
		{name: "KPL aggregation", top: `"kinship.aggregate": true,`,
			diffs: []diff{{"kinship.aggregate", "packs lines into KPL aggregated records", "one line per Kinesis record"}}},
		{name: "aggregation with buffer sizes", top: `"kinship.aggregate": true,`,
			flow: `"maxBufferSizeBytes": 65536, "maxBufferSizeRecords": 100, "maxBufferAgeMillis": 2000`,
			diffs: []diff{
				{"kinship.aggregate", "KPL", "one line per Kinesis record"},
				{"maxBufferSizeBytes", "aggregates of up to 65536 bytes, and cuts a longer line", "request once 65536 bytes"},
				{"maxBufferSizeRecords", "up to 100 lines in one KPL aggregate", "request once 100 records"},
			}},
		{name: "buffer sizes of a flow sending a line per record",
			flow: `"maxBufferSizeBytes": 1000, "maxBufferSizeRecords": 10, "maxBufferAgeMillis": 60000`,
			diffs: []diff{
				{"maxBufferAgeMillis", "without waiting to fill a request", "up to 1m0s"},
				{"maxBufferSizeBytes", "fills each request up to the service's limits", "once 1000 bytes"},
				{"maxBufferSizeRecords", "500 records", "once 10 records"},
			}},
		{name: "firehose, a record per line, buffer size", fh: true, flow: `"maxBufferSizeBytes": 4194304`,
			diffs: []diff{{"maxBufferSizeBytes", "service's limits", "once 4194304 bytes"}}},
		{name: "firehose joining lines: the same", fh: true, flow: `"aggregatedRecordSizeBytes": 5120, "maxBufferAgeMillis": 1000`},
		{name: "firehose joining lines up to the record limit: the same", fh: true, flow: `"aggregatedRecordSizeBytes": 1024000`},
		// KinesisRecord.generatePartitionKey hashes data.array().
		{name: "deterministic keys of unprocessed records", flow: `"partitionKeyOption": "DETERMINISTIC"`,
			diffs: []diff{{"partitionKeyOption", "MD5 of the record", "whole read buffer"}}},
		{name: "deterministic keys of converted records: the same",
			flow: `"partitionKeyOption": "DETERMINISTIC", "dataProcessingOptions": [{"optionName": "SINGLELINE"}]`},
		{name: "deterministic keys, processing skipped", top: `"kinship.dataProcessingOptions": "skip",`,
			flow:  `"partitionKeyOption": "DETERMINISTIC", "dataProcessingOptions": [{"optionName": "SINGLELINE"}]`,
			diffs: []diff{{"partitionKeyOption", "MD5 of the record", "whole read buffer"}}},
		{name: "instance tags",
			flow:  `"dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}, {"optionName": "ADDEC2METADATA", "logFormat": "SYSLOG"}]`,
			diffs: []diff{{"dataProcessingOptions[1] ADDEC2METADATA", "instance metadata (tags/instance", "ec2:DescribeTags"}}},
		{name: "multi-line records", flow: `"multiLineStartPattern": "\\d{4}-"`,
			diffs: []diff{{"multiLineStartPattern", "after 1s without a new line or at 500 lines", `at once when the file's end is reached after a '\n'`}}},
		{name: "header lines", flow: `"skipHeaderLines": 2`,
			diffs: []diff{{"skipHeaderLines", "not in one read again from 0 after a copytruncate", "whenever it reads a file from offset 0"}}},
		{name: "no header lines: the same", flow: `"skipHeaderLines": 0`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "/var/log/app.log"
			}
			dest := `"kinesisStream": "app"`
			if tc.fh {
				dest = `"deliveryStream": "app"`
			}
			flow := fmt.Sprintf(`{"filePattern": %q, %s`, file, dest)
			if tc.flow != "" {
				flow += ", " + tc.flow
			}
			doc := fmt.Sprintf(`{%s "cloudwatch.emitMetrics": false, "flows": [%s}]}`, tc.top, flow)
			cfg, err := Parse("agent.json", []byte(doc))
			if err != nil {
				t.Fatalf("%s\n%v", doc, err)
			}
			got := cfg.Differences
			if len(got) != len(tc.diffs) {
				t.Errorf("%d differences, want %d:\n%s", len(got), len(tc.diffs), differencesText(got))
			}
			for _, w := range tc.diffs {
				if !slices.ContainsFunc(got, func(d Difference) bool {
					return d.Flow == "app" && d.Key == w.key && strings.Contains(d.Kinship, w.kinship) && strings.Contains(d.Agent, w.agent)
				}) {
					t.Errorf("no difference %q (kinship %q, agent %q) in:\n%s", w.key, w.kinship, w.agent, differencesText(got))
				}
			}
		})
	}
}

func differencesText(ds []Difference) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintln(&b, d)
	}
	return b.String()
}

// A maxBufferSizeBytes below a line's length once cut every longer line of a flow sending a
// line per record: it became the record size (batch.max_bytes), though in the Kinesis Agent
// it only says when to send a request, and that agent never cuts such a line.
func TestAgentJSONBufferSizeDoesNotCutLines(t *testing.T) {
	cfg, err := Parse("agent.json", []byte(`{"cloudwatch.emitMetrics": false, "flows": [
  {"filePattern": "/var/log/a.log", "kinesisStream": "s", "maxBufferSizeBytes": 1000, "maxBufferSizeRecords": 10},
  {"filePattern": "/var/log/b.log", "deliveryStream": "d", "maxBufferSizeBytes": 1000, "maxBufferSizeRecords": 10}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cfg.Flows {
		if f.EffectiveMaxLineBytes() < 900*KiB || f.Batch.MaxRecords != 0 {
			t.Errorf("flow %s: lines cut at %s, batch %+v", f.Name, f.EffectiveMaxLineBytes(), f.Batch)
		}
	}
}

// Native configurations have no differences to list: they are not the Kinesis Agent's.
func TestNativeHasNoDifferences(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte("flows: [{name: a, paths: [/var/log/*.log], kinesis: {stream: s}}]\n"))
	if err != nil || len(cfg.Differences) != 0 {
		t.Errorf("%v %v", err, cfg.Differences)
	}
}
