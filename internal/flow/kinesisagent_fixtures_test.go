package flow

// The input/output pairs of the Amazon Kinesis Agent's tailing tests
// (tst/com/amazon/kinesis/streaming/agent/tailing/ in awslabs/amazon-kinesis-agent), run
// through kinship's real flow (agent.json translation, tailer, processing stage, aggregator,
// destination). Each case names the test method it comes from. The agent's own fixtures are
// under the Amazon Software License, so the inputs here are small ones of the same shape.
// Where kinship deliberately differs (docs/migrating.md), the case asserts kinship's
// behaviour and says so.

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
)

// agentFlowDoc is an agent.json with one flow reading LOGS/<pattern> from its start.
func agentFlowDoc(pattern, dest, extra string) string {
	if dest == "" {
		dest = `"kinesisStream": "s"`
	}
	if extra != "" {
		extra = ", " + extra
	}
	return `{"cloudwatch.emitMetrics": false, "flows": [{"filePattern": "LOGS/` + pattern + `", ` + dest +
		`, "initialPosition": "START_OF_FILE"` + extra + `}]}`
}

// runAgentFiles runs the agent.json doc once over the files (name → content, written in
// order) and returns the destination's records.
func runAgentFiles(t *testing.T, doc string, files [][2]string, dst shipper.Destination) {
	t.Helper()
	logs := t.TempDir()
	for _, f := range files {
		path := filepath.Join(logs, f[0])
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(f[1]), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse("agent.json", []byte(strings.ReplaceAll(doc, "LOGS", logs)))
	if err != nil {
		t.Fatal(err)
	}
	fl, err := New(cfg.Flows[0], Deps{Dir: t.TempDir(), Destination: dst, Metrics: metrics.New(prometheus.NewRegistry()).Flow("t")})
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

// Records as the Kinesis Agent's parsers cut them: SingleLineSplitter (a record per line,
// keeping its '\n'), RegexSplitter (multiLineStartPattern), skipHeaderLines, and
// dataProcessingOptions on multi-line records.
func TestKinesisAgentParserFixtures(t *testing.T) {
	tests := []struct {
		name    string
		extra   string // flow members
		content string
		want    []string
	}{
		// AbstractParserTest.testReadRecordUntilEndOfFile, testContiguousRecordBoundariesSingleFile:
		// every line a record, in order, with its '\n'; an empty line is a record "\n".
		{name: "testReadRecordUntilEndOfFile", content: "a\nbb\n\nccc\n", want: []string{"a\n", "bb\n", "\n", "ccc\n"}},
		// SingleLineSplitter cuts at '\n' only: a record is the bytes as written, '\r' kept.
		{name: "SingleLineSplitter CRLF", content: "a\r\n\r\nb\r\n", want: []string{"a\r\n", "\r\n", "b\r\n"}},
		{name: "RegexSplitter CRLF", extra: `"multiLineStartPattern": "S"`, content: "S1\r\n c\r\nS2\r\n", want: []string{"S1\r\n c\r\n", "S2\r\n"}},
		// AbstractParserTest.testReadRecordWithPartialRecods: the agent keeps a last line
		// without '\n' until its '\n' comes. kinship (deliberately, docs/migrating.md) sends it
		// with a '\n' once it has not grown for partial_line_timeout; a run to the end (once)
		// sends it at once.
		{name: "testReadRecordWithPartialRecods (kinship: partial_line_timeout)", content: "a\nb\npart", want: []string{"a\n", "b\n", "part\n"}},
		// AbstractParserTest.testParsingRecordsOnRegexFromGenerator: records start where the
		// pattern matches at a line's start; the last complete record is sent once the next
		// one starts. The incomplete last record ("...\naaaaa") the agent holds; kinship sends
		// it at the end of a run to the end, as above.
		{name: "testParsingRecordsOnRegexFromGenerator", extra: `"multiLineStartPattern": "\\d{4}-\\d{2}-\\d{2}"`,
			content: "2016-03-03 1\n\tat a\n\tat b\n2016-03-03 2\n2016-03-03 3\nx 2016-03-03 not a start\n2016-03-03 4\naaaaa",
			want:    []string{"2016-03-03 1\n\tat a\n\tat b\n", "2016-03-03 2\n", "2016-03-03 3\nx 2016-03-03 not a start\n", "2016-03-03 4\naaaaa\n"}},
		// AbstractParserTest.testParsingRecordsOnRegexFromRealLog (test_service_log, a line of
		// dashes starting each record): lines before the first start are a record of their own
		// (RegexSplitter never matches a record's first line), and the last record is sent at
		// the end of the file once it ends in '\n'.
		{name: "testParsingRecordsOnRegexFromRealLog", extra: `"multiLineStartPattern": "--------"`,
			content: "Program=X\n--------\nA=1\nEOE\n--------\nB=2\n\nEOE\n",
			want:    []string{"Program=X\n", "--------\nA=1\nEOE\n", "--------\nB=2\n\nEOE\n"}},
		// AbstractParserTest.testConvertingMultiLineDataFromRealLog (pretty_printed_json →
		// parsed_singleline_json): two header lines skipped, records start at "    {"
		// (matched at the line's start only), SINGLELINE trims and joins each record's lines.
		{name: "testConvertingMultiLineDataFromRealLog",
			extra: `"skipHeaderLines": 2, "multiLineStartPattern": "    \\{", "dataProcessingOptions": [{"optionName": "SINGLELINE"}]`,
			content: "{  \n  \"Records\":[  \n    {  \n      \"a\":\"1\",\n      \"b\":{  \n        \"c\":\"2\"\n      }\n    },\n" +
				"    {  \n      \"a\":\"3\"\n    }\n  ]\n}\n",
			want: []string{`{"a":"1","b":{"c":"2"}},` + "\n", `{"a":"3"}]}` + "\n"}},
		// AbstractParserTest.testSkipHeadersSmallerThanBufferSize / LargerThanBufferSize: the
		// first lines of a file read from offset 0 are not sent.
		{name: "testSkipHeadersSmallerThanBufferSize", extra: `"skipHeaderLines": 2`,
			content: "HEADER 1\nHEADER 2\nDATA 1\nDATA 2\n", want: []string{"DATA 1\n", "DATA 2\n"}},
		// AbstractParserTest.testSkipEntireFile: more header lines than the file has.
		{name: "testSkipEntireFile", extra: `"skipHeaderLines": 10`, content: "HEADER 1\nHEADER 2\n"},
		// AbstractParserTest.testBuildingRecordOfConvertedData: ADDBRACKETS wraps the record,
		// its '\n' inside.
		{name: "testBuildingRecordOfConvertedData", extra: `"dataProcessingOptions": [{"optionName": "ADDBRACKETS"}]`,
			content: "a\nb\n", want: []string{"{a\n}", "{b\n}"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := &keptDestination{}
			runAgentFiles(t, agentFlowDoc("app.log", "", tc.extra), [][2]string{{"app.log", tc.content}}, dst)
			// Concurrent requests reach the destination in any order: compare the records as sets.
			got, want := dst.data(), slices.Clone(tc.want)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("records\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// AbstractParserTest.testSkipHeadersWithNewFile: the header lines are skipped in every file
// the flow reads from its start, not once per flow.
func TestKinesisAgentSkipHeadersWithNewFile(t *testing.T) {
	dst := &keptDestination{}
	runAgentFiles(t, agentFlowDoc("app.log*", "", `"skipHeaderLines": 2`), [][2]string{
		{"app.log.1", "HEADER\nHEADER\nDATA 1\n"},
		{"app.log", "HEADER\nHEADER\nDATA 2\n"},
	}, dst)
	got := dst.data()
	slices.Sort(got)
	if want := []string{"DATA 1\n", "DATA 2\n"}; !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

// A record too long for its destination is cut to the largest record and ends with
// truncatedRecordTerminator; the rest of it is dropped and the next records are whole
// (AbstractParserTest.testReadRecordWithOversizedRecords, KinesisRecordTest.testTruncate,
// FirehoseRecordTest.testTruncate). The agent's limit is the record less its partition key
// (about 18 bytes for a RANDOM key, 32 for DETERMINISTIC); kinship reserves 32 bytes for a
// key on every flow, Firehose ones too, so its cut records are up to 32 bytes shorter.
func TestKinesisAgentTruncatedRecords(t *testing.T) {
	tests := []struct {
		name  string
		dest  string
		limit int // kinship's longest record, terminator included
	}{
		{"KinesisRecordTest.testTruncate", `"kinesisStream": "s"`, 1<<20 - 32},
		{"FirehoseRecordTest.testTruncate", `"deliveryStream": "d"`, 1_024_000 - 32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := &keptDestination{}
			long := strings.Repeat("x", 2<<20)
			runAgentFiles(t, agentFlowDoc("app.log", tc.dest, ""), [][2]string{{"app.log", "a\n" + long + "\nb\n"}}, dst)
			got := dst.data()
			slices.SortFunc(got, func(a, b string) int { return len(a) - len(b) })
			if len(got) != 3 || got[0] != "a\n" || got[1] != "b\n" {
				t.Fatalf("%d records, first %q", len(got), got[0])
			}
			if want := strings.Repeat("x", tc.limit-1) + "\n"; got[2] != want {
				t.Errorf("cut record of %d bytes ending %q, want %d bytes ending in the default terminator \\n", len(got[2]), got[2][max(0, len(got[2])-3):], len(want))
			}
		})
	}
}

// KinesisRecordTest.testGeneratePartitionKey: DETERMINISTIC keys are the MD5 of the record
// in lower-case hex (Guava's HashCode.toString). For records no converter rewrote the agent
// hashes its whole read buffer instead (a bug; a difference validate names): kinship hashes
// the record, so equal records share a shard.
func TestKinesisAgentDeterministicKeyOfUnprocessedRecords(t *testing.T) {
	dst := &keptDestination{}
	runAgentFiles(t, agentFlowDoc("app.log", "", `"partitionKeyOption": "DETERMINISTIC"`), [][2]string{{"app.log", "a\nb\na\n"}}, dst)
	if len(dst.recs) != 3 {
		t.Fatalf("%d records", len(dst.recs))
	}
	for _, r := range dst.recs {
		sum := md5.Sum(r.Data)
		if r.PartitionKey != hex.EncodeToString(sum[:]) {
			t.Errorf("record %q key %q, want the md5 of the record", r.Data, r.PartitionKey)
		}
	}
}

// SourceFileTest.testListFiles / testCountFiles (listAndCountFiles): the files a filePattern
// tails. The glob is on the file name in a literal directory; compressed files are never
// tailed, whatever the case of their extension (SourceFile.validateFile lower-cases the path).
func TestKinesisAgentSourceFileFixtures(t *testing.T) {
	tests := []struct {
		name              string
		pattern           string
		matching, nothing []string
	}{
		{"listAndCountFiles[0]", "app.log*",
			[]string{"app.log.1", "app.log.2", "app.log.3", "app.log.4", "app.log"},
			[]string{"another.log", "app.log.1.gz", "app.log.gz", "app.log.zip"}},
		{"listAndCountFiles[1] single file", "app.log*",
			[]string{"app.log"},
			[]string{"another.log", "app.log.1.gz", "app.log.bz2"}},
		{"listAndCountFiles[2] classes", "app[01][123456789].log",
			[]string{"app05.log", "app04.log", "app03.log", "app02.log", "app01.log"},
			[]string{"another.log", "app.log.1", "app.log.2", "app05.log.1.gz"}},
		{"compressed in upper case", "app.log*",
			[]string{"app.log"},
			[]string{"app.log.1.GZ", "app.log.2.Bz2", "app.log.3.ZIP"}},
		{"java glob alternatives and ?", "{app,web}.log.?",
			[]string{"app.log.1", "web.log.2"},
			[]string{"app.log", "app.log.10", "db.log.1"}},
		// testConstructorFileNameParsing: the directory is everything before the last '/':
		// a '*' there is a directory named "*", not a wildcard (both agents).
		{"glob in the directory part is literal", "*/app.log",
			[]string{"*/app.log"},
			[]string{"x/app.log"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var files [][2]string
			for _, n := range append(slices.Clone(tc.matching), tc.nothing...) {
				files = append(files, [2]string{n, n + "\n"})
			}
			dst := &keptDestination{}
			runAgentFiles(t, agentFlowDoc(tc.pattern, "", ""), files, dst)
			got := dst.data()
			var want []string
			for _, n := range tc.matching {
				want = append(want, n+"\n")
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("tailed %q, want %q", got, want)
			}
		})
	}
}

// firehoseRecords keeps the Firehose records a PutRecordBatch sends.
type firehoseRecords struct {
	mu   sync.Mutex
	data []string
}

func (f *firehoseRecords) PutRecordBatch(_ context.Context, in *firehose.PutRecordBatchInput, _ ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &firehose.PutRecordBatchOutput{FailedPutCount: new(int32)}
	for _, r := range in.Records {
		f.data = append(f.data, string(r.Data))
		out.RequestResponses = append(out.RequestResponses, types.PutRecordBatchResponseEntry{RecordId: new(string)})
	}
	return out, nil
}

// AggregationSplitterTest and FirehoseParserTest.testParsingRecordsWithAggregation*: a
// Firehose flow with aggregatedRecordSizeBytes joins whole lines, each with its '\n', into
// one record of at most that size (a line alone may be longer); without it a record is a
// line (FirehoseParser with SingleLineSplitter).
func TestKinesisAgentAggregationSplitterFixtures(t *testing.T) {
	tests := []struct {
		name    string
		hint    int // aggregatedRecordSizeBytes; 0: not set
		content string
		want    []string
	}{
		// FirehoseParser's default splitter, SingleLineSplitter.
		{"no aggregatedRecordSizeBytes: a record per line", 0, "AA\nBB\n", []string{"AA\n", "BB\n"}},
		// AggregationSplitterTest, whose splitter has a hint of 10 bytes.
		{"testLocateNextRecordGivenOneCompleteLineWithinRecordSizeHint", 10, "AA\n", []string{"AA\n"}},
		{"testLocateNextRecordGivenMultipleCompleteLinesWithinRecordSizeHint", 10, "AA\nBB\nCC\n", []string{"AA\nBB\nCC\n"}},
		// The agent holds "CC" until its '\n'; kinship's run to the end sends it with one
		// (partial_line_timeout, docs/migrating.md).
		{"testLocateNextRecordGivenMultipleCompleteLinesAndOneIncompleteLineWithinRecordSizeHint", 10, "AA\nBB\nCC", []string{"AA\nBB\nCC\n"}},
		{"testLocateNextRecordGivenOneCompleteLineBeyondRecordSizeHint", 10, "AAAAAAAAAAAA\n", []string{"AAAAAAAAAAAA\n"}},
		{"testLocateNextRecordGivenMultipleCompleteLinesBeyondRecordSizeHintIndividually", 10,
			"AAAAAAAAAAAA\nBBBBBBBBBBBB\nCCCCCCCCCCCC\n", []string{"AAAAAAAAAAAA\n", "BBBBBBBBBBBB\n", "CCCCCCCCCCCC\n"}},
		{"testLocateNextRecordGivenMultipleCompleteLinesBeyondRecordSizeHintCollectively", 10,
			"AAAA\nBBBB\nCCCC\n", []string{"AAAA\nBBBB\n", "CCCC\n"}},
		{"testLocateNextRecordGivenMultipleCompleteLinesAndOneIncompleteLineBeyondRecordSizeHintCollectively (kinship: partial_line_timeout)", 10,
			"AAAA\nBBBB\nCCCC", []string{"AAAA\nBBBB\n", "CCCC\n"}},
		// FirehoseParserTest.testParsingRecordsWithAggregationFromGeneratorGivenLargeRecordSizeHint:
		// lines of about 1KiB and a 5KiB hint make records of 4 to 6 lines; here exactly 5.
		{"testParsingRecordsWithAggregationFromGeneratorGivenLargeRecordSizeHint", 5 * 1024,
			strings.Repeat(strings.Repeat("a", 1023)+"\n", 12), []string{
				strings.Repeat(strings.Repeat("a", 1023)+"\n", 5), strings.Repeat(strings.Repeat("a", 1023)+"\n", 5), strings.Repeat(strings.Repeat("a", 1023)+"\n", 2)}},
		// ...GivenSmallRecordSizeHint: lines longer than the hint, a record each, whole.
		{"testParsingRecordsWithAggregationFromGeneratorGivenSmallRecordSizeHint", 1024,
			strings.Repeat(strings.Repeat("a", 1100)+"\n", 3), []string{strings.Repeat("a", 1100) + "\n", strings.Repeat("a", 1100) + "\n", strings.Repeat("a", 1100) + "\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &firehoseRecords{}
			extra := ""
			if tc.hint > 0 {
				extra = `"aggregatedRecordSizeBytes": ` + strconv.Itoa(tc.hint)
			}
			runAgentFiles(t, agentFlowDoc("app.log", `"deliveryStream": "d"`, extra), [][2]string{{"app.log", tc.content}}, shipper.NewFirehose(api, "d"))
			got, want := slices.Clone(api.data), slices.Clone(tc.want)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("firehose records\n%q\nwant\n%q", api.data, tc.want)
			}
		})
	}
}
