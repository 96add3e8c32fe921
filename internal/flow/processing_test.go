package flow

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/processing"
	"github.com/kinship-agent/kinship/internal/testenv/imdstest"
	"github.com/kinship-agent/kinship/shipper"
	"github.com/kinship-agent/kinship/tailer"
)

// keptDestination accepts everything and keeps each user record with its partition key.
type keptDestination struct {
	mu   sync.Mutex
	recs []shipper.Record // user records, de-aggregated
}

func (d *keptDestination) Limits() shipper.Limits { return shipper.Limits{}.WithDefaults() }

func (d *keptDestination) Put(_ context.Context, recs []shipper.Record) ([]error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range recs {
		urs, _, err := aggregator.Deaggregate(r.Data, r.PartitionKey)
		if err != nil {
			return nil, err
		}
		for _, u := range urs {
			d.recs = append(d.recs, shipper.Record{PartitionKey: u.PartitionKey, Data: slices.Clone(u.Data)})
		}
	}
	return make([]error, len(recs)), nil
}

func (d *keptDestination) data() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, r := range d.recs {
		out = append(out, string(r.Data))
	}
	return out
}

// runOnce runs the flow of doc (agent.json when name ends in .json) over one file holding
// content, to its end, and returns what reached the destination, the metrics and the
// position saved for the file.
func runOnce(t *testing.T, name, doc, content string, deps Deps) (*keptDestination, *metrics.Flow, int64) {
	t.Helper()
	logs := t.TempDir()
	path := filepath.Join(logs, "app.log")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(name, []byte(strings.ReplaceAll(doc, "LOGS", logs)))
	if err != nil {
		t.Fatal(err)
	}
	dst := &keptDestination{}
	dir := t.TempDir()
	deps.Dir, deps.Destination, deps.Metrics = dir, dst, metrics.New(prometheus.NewRegistry()).Flow("t")
	f, err := New(cfg.Flows[0], deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	id := tailer.FileID{Dev: uint64(st.Dev), Ino: st.Ino}
	off, ok := savedOffset(t, dir, id)
	if !ok {
		t.Fatal("no position saved for the file")
	}
	return dst, deps.Metrics, off
}

// An agent.json flow: each record keeps its '\n' and goes through the processors as the
// Kinesis Agent's does; a record LOGTOJSON does not match is not sent, and the saved
// position still moves past it, even when it is the file's last line.
func TestAgentJSONProcessing(t *testing.T) {
	const doc = `{"cloudwatch.emitMetrics": false, "flows": [{"filePattern": "LOGS/*.log", "kinesisStream": "s",
	  "initialPosition": "START_OF_FILE",
	  "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}, {"optionName": "ADDBRACKETS"}]}]}`
	content := "Mar 12 12:01:02 server4 snort: one\nnot syslog\nMar 12 12:01:03 server4 snort: two\nnot syslog either\n"
	dst, m, off := runOnce(t, "agent.json", doc, content, Deps{})
	want := []string{
		"{" + `{"timestamp":"Mar 12 12:01:02","hostname":"server4","program":"snort","processid":null,"message":"one"}` + "\n}",
		"{" + `{"timestamp":"Mar 12 12:01:03","hostname":"server4","program":"snort","processid":null,"message":"two"}` + "\n}",
	}
	// Records sealed apart may go out in concurrent requests (max_in_flight), in any order:
	// with spool.write: backlog each is handed to the shipper as soon as it is sealed.
	if got := dst.data(); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("records\n%q\nwant\n%q", got, want)
	}
	if off != int64(len(content)) {
		t.Errorf("saved position %d, want %d: the skipped last line must not be read again", off, len(content))
	}
	if n := counterValue(t, m.ProcessingSkipped); n != 2 {
		t.Errorf("kinship_processing_skipped_total %v, want 2", n)
	}
}

// Without processors an agent.json record is the line with its '\n'; a line cut at the
// limit ends with the terminator instead, as the Kinesis Agent cuts records.
func TestAgentJSONKeepsNewline(t *testing.T) {
	const doc = `{"cloudwatch.emitMetrics": false, "flows": [{"filePattern": "LOGS/*.log", "kinesisStream": "s",
	  "initialPosition": "START_OF_FILE", "truncatedRecordTerminator": "~\n"}]}`
	long := strings.Repeat("x", 2<<20)
	dst, _, _ := runOnce(t, "agent.json", doc, "a\n\nb\n"+long+"\n", Deps{})
	// Records sealed apart may travel in concurrent requests: compare them as a set.
	got := dst.data()
	slices.SortFunc(got, func(a, b string) int { return len(a) - len(b) })
	if len(got) != 4 {
		t.Fatalf("%d records, want 4", len(got))
	}
	if short := slices.Sorted(slices.Values(got[:3])); !slices.Equal(short, []string{"\n", "a\n", "b\n"}) {
		t.Fatalf("records %q", short)
	}
	if cut := got[3]; !strings.HasSuffix(cut, "x~\n") || strings.HasSuffix(cut, "~\n\n") || len(cut) > 1<<20 {
		t.Errorf("cut record of %d bytes ends %q", len(cut), cut[max(0, len(cut)-5):])
	}
}

// A native flow: include/exclude drop lines (counted apart), converters' output has no
// trailing '\n' (destinations add the line end), log_to_json with on_parse_error raw ships
// a line it cannot parse as read, and a failing processor ships the line as read.
func TestNativeProcessing(t *testing.T) {
	imds := imdstest.Start(t, "i-0123", "eu-west-1")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	const doc = `flows:
  - name: t
    paths: ["LOGS/*.log"]
    discard: {}
    batch: {max_age: 10ms}
    processors:
      - {type: include, patterns: ["keep", "json"]}
      - {type: exclude, patterns: ["secret"]}
      - {type: log_to_json, log_format: syslog, match_pattern: 'keep (\w+)', field_names: [word], on_parse_error: raw}
      - {type: add_ec2_metadata}
`
	content := "keep one\ndrop me\nkeep secret\nkeep two words\njson {}\n"
	dst, m, off := runOnce(t, "k.yaml", doc, content, Deps{})
	got := dst.data()
	// "keep one" becomes JSON with the instance's identity; "keep two words" and "json {}"
	// do not match log_to_json's pattern and are shipped as read.
	if len(got) != 3 {
		t.Fatalf("records %q, want 3", got)
	}
	// Records sealed apart may travel in concurrent requests: the JSON one first, the two
	// shipped as read after it in their own order.
	slices.SortFunc(got, func(a, b string) int { return strings.Compare(b[:1], a[:1]) })
	slices.Sort(got[1:])
	if !strings.HasPrefix(got[0], `{"word":"one",`) || !strings.Contains(got[0], `"instanceId":"i-0123"`) || strings.HasSuffix(got[0], "\n") {
		t.Errorf("record %q, want the word and the instance id, no trailing newline", got[0])
	}
	if got[1] != "json {}" || got[2] != "keep two words" {
		t.Errorf("records %q, want the unparsed lines as read", got[1:])
	}
	if n := counterValue(t, m.LinesFiltered); n != 2 {
		t.Errorf("kinship_lines_filtered_total %v, want 2", n)
	}
	if n := counterValue(t, m.ProcessingErrors); n != 2 {
		t.Errorf("kinship_processing_errors_total %v, want 2", n)
	}
	if off != int64(len(content)) {
		t.Errorf("saved position %d, want %d", off, len(content))
	}
}

// A processor that fails (ADDEC2METADATA on a record that is not a JSON object) ships the
// record as read, counted.
func TestProcessorErrorShipsRaw(t *testing.T) {
	imds := imdstest.Start(t, "i-0123", "eu-west-1")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	const doc = `{"cloudwatch.emitMetrics": false, "flows": [{"filePattern": "LOGS/*.log", "kinesisStream": "s",
	  "initialPosition": "START_OF_FILE",
	  "dataProcessingOptions": [{"optionName": "ADDBRACKETS"}, {"optionName": "ADDEC2METADATA", "logFormat": "SYSLOG"}]}]}`
	dst, m, _ := runOnce(t, "agent.json", doc, "not json\n", Deps{})
	if got := dst.data(); !slices.Equal(got, []string{"not json\n"}) {
		t.Errorf("records %q, want the line as read", got)
	}
	if n := counterValue(t, m.ProcessingErrors); n != 1 {
		t.Errorf("kinship_processing_errors_total %v, want 1", n)
	}
}

// DETERMINISTIC: the partition key is the MD5 of the record as sent (after processing, with
// its '\n'), with and without aggregation.
func TestDeterministicPartitionKeys(t *testing.T) {
	for _, aggregate := range []string{"false", "true"} {
		doc := `{"cloudwatch.emitMetrics": false, "kinship.aggregate": ` + aggregate + `, "flows": [{"filePattern": "LOGS/*.log", "kinesisStream": "s",
		  "initialPosition": "START_OF_FILE", "partitionKeyOption": "DETERMINISTIC",
		  "dataProcessingOptions": [{"optionName": "ADDBRACKETS"}]}]}`
		dst, _, _ := runOnce(t, "agent.json", doc, "a\nb\na\n", Deps{})
		if len(dst.recs) != 3 {
			t.Fatalf("aggregate %s: %d records", aggregate, len(dst.recs))
		}
		for _, r := range dst.recs {
			sum := md5.Sum(r.Data)
			if r.PartitionKey != hex.EncodeToString(sum[:]) {
				t.Errorf("aggregate %s: record %q key %q, want its md5 hex", aggregate, r.Data, r.PartitionKey)
			}
		}
	}
}

// A flow without processors or kept newlines has no stage: nothing is added per line. The
// kept newline alone costs no allocation per line.
func TestStageCostsNothingWithoutProcessors(t *testing.T) {
	st, err := newStage(config.Flow{}, processing.Deps{}, metrics.New(prometheus.NewRegistry()).Flow("t"), nil)
	if err != nil || st != nil {
		t.Fatalf("stage %v, err %v, want none", st, err)
	}
	st, err = newStage(config.Flow{KeepNewline: true}, processing.Deps{}, metrics.New(prometheus.NewRegistry()).Flow("t"), nil)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte("a log line of some length")
	st.process(line)
	if n := testing.AllocsPerRun(100, func() { st.process(line) }); n != 0 {
		t.Errorf("%v allocations per line with KeepNewline", n)
	}
}
