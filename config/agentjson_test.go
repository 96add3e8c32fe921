package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// agentFlowWant is what a translated flow must be, field by field.
type agentFlowWant struct {
	name, path, stream, startAt, partitionKey string
	deliveryStream                            string // a Firehose flow when set
	aggregate                                 bool
	multiline                                 string
	pollInterval, maxAge                      Duration
	maxBytes                                  Size
	maxRecords                                int
}

func TestAgentJSONExamples(t *testing.T) {
	tests := []struct {
		file string
		// On success: region, endpoint, role and the flows; warnings must each contain one
		// of these substrings, and every substring must be found.
		region, endpoint, role string
		firehoseEndpoint       string
		flows                  []agentFlowWant
		warnings               []string
		// On failure: every substring must be in some error, with file:line:column.
		errs []string
	}{
		{
			// The Kinesis Agent's own configuration/example/agent.json.
			file:   "example.json",
			region: "us-west-2", // from the standard endpoint
			flows: []agentFlowWant{
				{
					name: "aws-kinesis-agent-test1", path: "/tmp/aws-kinesis-agent-test1.log*", stream: "aws-kinesis-agent-test1",
					startAt: "end", partitionKey: "random", pollInterval: DefaultPollInterval, maxAge: DefaultBatchMaxAge, maxBytes: DefaultBatchMaxBytes,
				},
				{
					name: "aws-kinesis-agent-test2", path: "/tmp/aws-kinesis-agent-test2.log*", stream: "aws-kinesis-agent-test2",
					startAt: "beginning", partitionKey: "random", pollInterval: DefaultPollInterval, maxAge: DefaultBatchMaxAge, maxBytes: DefaultBatchMaxBytes,
				},
			},
			warnings: []string{"awsAccessKeyId", "kinship.aggregate: not set"},
		},
		{
			// The AWS guide's "Monitor Multiple File Directories and Write to Multiple Streams":
			// one Kinesis flow and one Firehose flow, each with its endpoint.
			file:             "guide-multiple-streams.json",
			endpoint:         "https://your/kinesis/endpoint",
			firehoseEndpoint: "https://your/firehose/endpoint",
			flows: []agentFlowWant{
				{
					name: "yourkinesisstream", path: "/tmp/app1.log*", stream: "yourkinesisstream", startAt: "end",
					partitionKey: "random", pollInterval: DefaultPollInterval, maxAge: DefaultBatchMaxAge, maxBytes: DefaultBatchMaxBytes,
				},
				{
					name: "yourfirehosedeliverystream", path: "/tmp/app2.log*", deliveryStream: "yourfirehosedeliverystream",
					startAt: "end", pollInterval: DefaultPollInterval, maxAge: DefaultBatchMaxAge, maxBytes: FirehoseMaxRecordBytes,
				},
			},
			warnings: []string{"kinship.aggregate: not set"},
		},
		{
			// A real-world file: endpoints without a scheme, credentials in the file.
			file:   "streams-real-world.json",
			region: "ap-northeast-2",
			flows: []agentFlowWant{{
				name: "transactions", path: "/tmp/transactions.log*", stream: "transactions", startAt: "end",
				partitionKey: "random", pollInterval: DefaultPollInterval, maxAge: Duration(1e9),
				// maxBufferSizeRecords sizes the Kinesis Agent's requests, not records: left out
				// of a flow that sends a line per record (a Difference).
				maxBytes: DefaultBatchMaxBytes,
			}},
			warnings: []string{
				"awsAccessKeyId, awsSecretAccessKey: not supported",
				"kinship.aggregate: not set",
			},
		},
		{
			file: "guide-multiline-processing.json",
			flows: []agentFlowWant{
				{
					name: "my-stream-tmp-app.log", path: "/tmp/app.log*", stream: "my-stream", startAt: "end",
					partitionKey: "random", multiline: `^(?:\[SEQUENCE=)`, pollInterval: Duration(500e6),
					// maxBufferSizeBytes is left out of a flow that sends a line per record, so that
					// it does not cut lines longer than 256KiB (a Difference).
					maxAge: DefaultBatchMaxAge, maxBytes: DefaultBatchMaxBytes,
				},
				{
					name: "my-stream-var-log-httpd-access_log", path: "/var/log/httpd/access_log*", stream: "my-stream",
					startAt: "beginning", partitionKey: "deterministic", pollInterval: DefaultPollInterval,
					maxAge: Duration(30e9), maxBytes: DefaultBatchMaxBytes,
				},
			},
			warnings: []string{
				"maxSendingThreads: not supported",
				"shutdownTimeoutMillis: not supported",
				"flows[0].dataProcessingOptions: SINGLELINE, CSVTOJSON not run: lines of /tmp/app.log* are shipped as read",
				"flows[1].dataProcessingOptions: LOGTOJSON, ADDEC2METADATA not run",
				"kinship.aggregate: not set",
			},
		},
		{
			file:     "vpc-endpoint-role.json",
			region:   "eu-central-1",
			endpoint: "https://vpce-0123456789abcdef0-abcdefgh.kinesis.eu-central-1.vpce.amazonaws.com",
			role:     "arn:aws:iam::123456789012:role/log-writer",
			flows: []agentFlowWant{{
				name: "app-logs", path: "/var/log/app/*.log", stream: "arn:aws:kinesis:eu-central-1:123456789012:stream/app-logs",
				startAt: "end", partitionKey: "random", aggregate: true, pollInterval: DefaultPollInterval,
				maxAge: DefaultBatchMaxAge, maxBytes: DefaultMaxRecordBytes,
			}},
			warnings: []string{
				"sts.endpoint: not supported",
				"flows[0].maxBufferSizeBytes: 5242880 is more than one Kinesis record holds",
				"flows[0].aggregatedRecordSizeBytes: not supported",
				"flows[0].retryInitialBackoffMillis: not supported",
				"flows[0].fileFooterPattern: not supported",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "agentjson", tc.file)
			cfg, err := Load(path)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("loaded, want errors %q", tc.errs)
				}
				for _, want := range tc.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("errors\n%v\ndo not contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.StateDir != DefaultStateDir || cfg.AWS.Region != tc.region || cfg.AWS.Endpoint != tc.endpoint || cfg.AWS.RoleARN != tc.role ||
				cfg.AWS.FirehoseEndpoint != tc.firehoseEndpoint {
				t.Errorf("state_dir %q aws %+v, want %s region %q endpoint %q role %q", cfg.StateDir, cfg.AWS, DefaultStateDir, tc.region, tc.endpoint, tc.role)
			}
			if len(cfg.Flows) != len(tc.flows) {
				t.Fatalf("%d flows, want %d: %s", len(cfg.Flows), len(tc.flows), dump(cfg.Flows))
			}
			for i, w := range tc.flows {
				checkAgentFlow(t, cfg.Flows[i], w)
			}
			want := tc.warnings
			if tc.file == "guide-multiline-processing.json" {
				// Mapped once the native keys exist (another change adds them), warned about until then.
				for native, agent := range map[string]string{"skip_header_lines": "skipHeaderLines", "truncated_record_terminator": "truncatedRecordTerminator"} {
					if !slices.Contains(flowKeys, native) {
						want = append(want, "flows[0]."+agent)
					}
				}
			}
			checkWarnings(t, cfg.Warnings, want)
			for _, w := range cfg.Warnings {
				if strings.Contains(w, "EXAMPLE") {
					t.Errorf("a warning shows a credential: %q", w)
				}
			}
		})
	}
}

func checkAgentFlow(t *testing.T, f Flow, w agentFlowWant) {
	t.Helper()
	got := func(field string, g, want any) {
		if fmt.Sprint(g) != fmt.Sprint(want) {
			t.Errorf("flow %q: %s = %v, want %v", w.name, field, g, want)
		}
	}
	got("name", f.Name, w.name)
	got("paths", f.Paths, []string{w.path})
	got("exclude", f.Exclude, agentExclude)
	got("start_at", f.StartAt, w.startAt)
	got("poll_interval", f.PollInterval, w.pollInterval)
	got("batch.max_age", f.Batch.MaxAge, w.maxAge)
	got("batch.max_bytes", f.Batch.MaxBytes, w.maxBytes)
	got("batch.max_records", f.Batch.MaxRecords, w.maxRecords)
	got("max_line_bytes", f.MaxLineBytes, DefaultMaxLineBytes)
	got("spool.max_bytes", f.Spool.MaxBytes, DefaultSpoolMaxBytes)
	if w.deliveryStream != "" {
		if f.Firehose == nil || f.Firehose.DeliveryStream != w.deliveryStream {
			t.Fatalf("flow %q: destination %q %+v, want firehose %s", w.name, f.Destination(), f.Firehose, w.deliveryStream)
		}
		return
	}
	if f.Kinesis == nil || f.Discard != nil {
		t.Fatalf("flow %q: destination %q, want kinesis", w.name, f.Destination())
	}
	got("kinesis.stream", f.Kinesis.Stream, w.stream)
	got("kinesis.partition_key", f.Kinesis.PartitionKey, w.partitionKey)
	got("kinesis.aggregate", f.Kinesis.Aggregate, w.aggregate)
	got("kinesis.max_record_bytes", f.Kinesis.MaxRecordBytes, DefaultMaxRecordBytes)
	if w.multiline == "" {
		if f.Multiline != nil {
			t.Errorf("flow %q: multiline %+v, want none", w.name, f.Multiline)
		}
	} else if f.Multiline == nil || f.Multiline.StartPattern != w.multiline || f.Multiline.Regexp == nil {
		t.Errorf("flow %q: multiline %+v, want start_pattern %q", w.name, f.Multiline, w.multiline)
	}
}

// checkWarnings wants every expected substring in some warning and every warning
// expected: nothing is said that the test did not think about.
func checkWarnings(t *testing.T, got, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			t.Errorf("no warning contains %q; warnings:\n%s", w, strings.Join(got, "\n"))
		}
	}
	for _, g := range got {
		if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(g, w) }) {
			t.Errorf("unexpected warning %q", g)
		}
	}
}

// Every key the Kinesis Agent reads that kinship does not honour is named in a warning,
// and so is every key nobody knows, with a hint when it is a near miss.
func TestAgentJSONUnsupportedKeysAreNamed(t *testing.T) {
	flow := `{"filePattern": "/var/log/a.log", "kinesisStream": "s"}`
	for key := range agentTopUnsupported {
		doc := fmt.Sprintf(`{%q: "x", "flows": [%s]}`, key, flow)
		if key == "cloudwatch.emitMetrics" || strings.HasPrefix(key, "use") {
			doc = fmt.Sprintf(`{%q: true, "flows": [%s]}`, key, flow)
		}
		cfg, err := Parse("agent.json", []byte(doc))
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if !slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.Contains(w, key) }) {
			t.Errorf("top-level %s: no warning names it: %q", key, cfg.Warnings)
		}
	}
	for key := range agentFlowUnsupported {
		doc := fmt.Sprintf(`{"flows": [{"filePattern": "/var/log/a.log", "kinesisStream": "s", %q: 1}]}`, key)
		cfg, err := Parse("agent.json", []byte(doc))
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if !slices.Contains(cfg.Warnings, "flows[0]."+key+": not supported, ignored: "+agentFlowUnsupported[key]) {
			t.Errorf("flow %s: no warning names it: %q", key, cfg.Warnings)
		}
	}
	cfg, err := Parse("agent.json", []byte(`{"kinesis.endpoimt": "", "flows": [{"filePattern": "/var/log/a.log", "kinesisStream": "s", "initialPositon": "START_OF_FILE", "x": 1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	checkWarnings(t, cfg.Warnings, []string{
		`kinesis.endpoimt: unknown key, ignored (the Kinesis Agent ignores it too); did you mean "kinesis.endpoint"?`,
		`flows[0].initialPositon: unknown key, ignored (the Kinesis Agent ignores it too); did you mean "initialPosition"?`,
		"flows[0].x: unknown key, ignored (the Kinesis Agent ignores it too)",
		"kinship.aggregate: not set",
	})
	if cfg.Flows[0].StartAt != "end" {
		t.Errorf("start_at %q: a misspelt initialPosition must leave the Kinesis Agent's default (end)", cfg.Flows[0].StartAt)
	}
}

func TestAgentJSONErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"syntax", "{\n  \"flows\": [\n    {\"filePattern\": \"/a\" \"kinesisStream\": \"s\"}\n  ]\n}", `a.json:3:26: json: invalid character '"' after object key:value pair`},
		{"trailing comma", "{\"flows\": [],\n}", "a.json:2:1: json: invalid character '}' looking for beginning of object key string"},
		{"truncated", "{\"flows\": [\n", "a.json:2:1: json: unexpected end of the file"},
		{"trailing data", `{"flows": []} {}`, "a.json:1:15: json: unexpected data after the top-level JSON object"},
		{"not an object", `[1]`, "a.json:1:1: expected a JSON object"},
		{"no flows", `{"cloudwatch.emitMetrics": false}`, `a.json:1:1: no "flows"`},
		{"no flows listed", `{"flows": []}`, "no flows configured"},
		{"flows not a list", `{"flows": {}}`, "a.json:1:11: flows: expected a list of flows, got an object"},
		{"no file pattern", `{"flows": [{"kinesisStream": "s"}]}`, "a.json:1:12: flows[0]: filePattern is required"},
		{"relative pattern", `{"flows": [{"filePattern": "logs/*.log", "kinesisStream": "s"}]}`, `a.json:1:28: flows[0].filePattern: "logs/*.log": must be an absolute path pattern`},
		{"no destination", `{"flows": [{"filePattern": "/a"}]}`, "a.json:1:12: flows[0]: kinesisStream or deliveryStream is required"},
		{"two destinations", `{"flows": [{"filePattern": "/a", "kinesisStream": "s", "deliveryStream": "d"}]}`, "a.json:1:56: flows[0]: both kinesisStream and deliveryStream"},
		{"bad stream", `{"flows": [{"filePattern": "/a", "kinesisStream": "my stream"}]}`, `a.json:1:51: flows[0].kinesisStream (kinship's kinesis.stream): "my stream": not a stream name`},
		{"java regexp", `{"flows": [{"filePattern": "/a", "kinesisStream": "s", "multiLineStartPattern": "(?<=x)"}]}`, "a.json:1:81: flows[0].multiLineStartPattern (kinship's multiline.start_pattern)"},
		{"initial position", `{"flows": [{"filePattern": "/a", "kinesisStream": "s", "initialPosition": "TRIM_HORIZON"}]}`, `a.json:1:75: flows[0].initialPosition: "TRIM_HORIZON": must be START_OF_FILE or END_OF_FILE`},
		{"partition key", `{"flows": [{"filePattern": "/a", "kinesisStream": "s", "partitionKeyOption": "HOST"}]}`, `flows[0].partitionKeyOption: "HOST": must be RANDOM or DETERMINISTIC`},
		{"millis", `{"flows": [{"filePattern": "/a", "kinesisStream": "s", "maxBufferAgeMillis": "1s"}]}`, `a.json:1:78: flows[0].maxBufferAgeMillis: expected a whole number, got the string "1s"`},
		{"zero millis", `{"flows": [{"filePattern": "/a", "kinesisStream": "s", "minTimeBetweenFilePollsMillis": 0}]}`, "flows[0].minTimeBetweenFilePollsMillis: 0: must be 1 or more"},
		{"processor list", `{"flows": [{"filePattern": "/a", "kinesisStream": "s", "dataProcessingOptions": [{"delimiter": ","}]}]}`, `a.json:1:82: flows[0].dataProcessingOptions[0]: optionName is required`},
		{"skip value", `{"kinship.dataProcessingOptions": "yes", "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}`, `kinship.dataProcessingOptions: "yes": the only value is "skip"`},
		{"role", `{"assumeRoleARN": "log-writer", "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}`, `a.json:1:19: assumeRoleARN: "log-writer": not an IAM role ARN`},
		{"external id without role", `{"assumeRoleExternalId": "fleet-7", "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}`, `a.json:1:2: assumeRoleExternalId: only used to assume aws.role_arn, which is not set`},
		{"endpoint", `{"kinesis.endpoint": "ftp://x", "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}`, `kinesis.endpoint: "ftp://x": not an endpoint`},
		{"deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), "nested more than 64 levels deep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("a.json", []byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted: %s", dump(cfg))
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("%T, want *ValidationError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("errors\n%v\ndo not contain\n%s", err, tc.want)
			}
		})
	}
}

func TestAgentJSONEndpoints(t *testing.T) {
	tests := []struct{ endpoint, region, url string }{
		{"", "", ""},
		{"https://kinesis.us-west-2.amazonaws.com", "us-west-2", ""},
		{"kinesis.ap-northeast-2.amazonaws.com", "ap-northeast-2", ""},
		{"https://kinesis.cn-north-1.amazonaws.com.cn/", "cn-north-1", ""},
		{"https://kinesis-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1", ""},
		{"http://127.0.0.1:4567", "", "http://127.0.0.1:4567"},
		{"https://vpce-1-a.kinesis.us-east-1.vpce.amazonaws.com", "us-east-1", "https://vpce-1-a.kinesis.us-east-1.vpce.amazonaws.com"},
	}
	for _, tc := range tests {
		cfg, err := Parse("agent.json", []byte(fmt.Sprintf(`{"kinesis.endpoint": %q, "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}`, tc.endpoint)))
		if err != nil {
			t.Errorf("%q: %v", tc.endpoint, err)
			continue
		}
		if cfg.AWS.Region != tc.region || cfg.AWS.Endpoint != tc.url {
			t.Errorf("%q: region %q endpoint %q, want %q %q", tc.endpoint, cfg.AWS.Region, cfg.AWS.Endpoint, tc.region, tc.url)
		}
	}
	// kinesis.region names the region even when the endpoint does too.
	cfg, err := Parse("agent.json", []byte(`{"kinesis.endpoint": "https://kinesis.us-west-2.amazonaws.com", "kinesis.region": "eu-west-1", "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}`))
	if err != nil || cfg.AWS.Region != "eu-west-1" {
		t.Errorf("region %v, err %v; want kinesis.region's", cfg, err)
	}
}

// The Kinesis Agent reads numbers and booleans written as strings, comments and repeated
// keys (the last wins); so does the translation.
func TestAgentJSONLenientLikeTheKinesisAgent(t *testing.T) {
	doc := `// written by configuration management
{
  "kinship.aggregate": "true", /* a string, as Jackson accepts */
  "flows": [
    {"filePattern": "/var/log/a.log", "kinesisStream": "s", "maxBufferSizeRecords": "100",
     "initialPosition": "end_of_file", "maxBufferAgeMillis": 1000, "maxBufferAgeMillis": 2000}
  ]
}`
	cfg, err := Parse("agent.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Flows[0]
	if !f.Kinesis.Aggregate || f.Batch.MaxRecords != 100 || f.StartAt != "end" || f.Batch.MaxAge != Duration(2e9) {
		t.Errorf("flow %s", dump(f))
	}
	checkWarnings(t, cfg.Warnings, []string{"flows[0].maxBufferAgeMillis: repeated; the last value is used"})
}

// multiLineStartPattern is a Java pattern that must match at the start of a line
// (Matcher.lookingAt): a line that merely contains it continues the record.
func TestAgentJSONMultilineStartsAtTheLineStart(t *testing.T) {
	cfg, err := Parse("agent.json", []byte(`{"flows": [{"filePattern": "/a", "kinesisStream": "s", "multiLineStartPattern": "\\{|\\p{Upper}\\d"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	re := cfg.Flows[0].Multiline.Regexp
	for line, starts := range map[string]bool{`{"a": 1,`: true, `  "b": {`: false, `A1 x`: true, `xA1`: false, `é`: false} {
		if re.MatchString(line) != starts {
			t.Errorf("%q starts a record: %v, want %v (pattern %s)", line, !starts, starts, re)
		}
	}
}

func TestAgentJSONFlowNames(t *testing.T) {
	doc := `{"flows": [
	  {"filePattern": "/var/log/a/*.log", "kinesisStream": "shared"},
	  {"filePattern": "/var/log/b/*.log", "kinesisStream": "shared"},
	  {"filePattern": "/var/log/b/*.log", "kinesisStream": "shared"},
	  {"filePattern": "/var/log/[x]/` + strings.Repeat("long", 40) + `*.log", "kinesisStream": "other"}
	]}`
	cfg, err := Parse("agent.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range cfg.Flows {
		names = append(names, f.Name)
	}
	want := []string{"shared-var-log-a-.log", "shared-var-log-b-.log", "shared-var-log-b-.log-2", "other"}
	if !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
	if !slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.Contains(w, "flows[2]: same kinesisStream and filePattern") }) {
		t.Errorf("no warning about the duplicate flow: %q", cfg.Warnings)
	}
	// The directory of a filePattern is literal in the Kinesis Agent.
	if got := cfg.Flows[3].Paths[0]; !strings.HasPrefix(got, `/var/log/\[x\]/`) {
		t.Errorf("path %q: glob characters of the directory must be escaped", got)
	}
	long := safeFlowName(strings.Repeat("x", 300))
	if len(long) != maxFlowNameLen || long != safeFlowName(strings.Repeat("x", 300)) || !flowNameRE.MatchString(long) {
		t.Errorf("long name %q: want a stable, valid name of %d characters", long, maxFlowNameLen)
	}
}

// Load finds an agent.json by extension or by content, and leaves a native file alone
// even when it is written as JSON.
func TestAgentJSONDetection(t *testing.T) {
	dir := t.TempDir()
	agent := `{"flows": [{"filePattern": "/var/log/a.log", "kinesisStream": "s"}]}`
	native := `{"flows": [{"name": "a", "paths": ["/var/log/a.log"], "kinesis": {"stream": "s"}}]}`
	for _, tc := range []struct {
		file, data string
		agent      bool
	}{
		{"agent.json", agent, true},
		{"agent.conf", agent, true},
		{"kinship.yaml", native, false},
		{"kinship.json", native, false},
		{"flow-style.yaml", `{flows: [{name: a, paths: [/var/log/a.log], discard: {}}]}`, false},
	} {
		path := filepath.Join(dir, tc.file)
		writeFile(t, path, tc.data)
		cfg, err := Load(path)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if isAgent := cfg.Flows[0].Name == "s"; isAgent != tc.agent || (len(cfg.Warnings) > 0) != tc.agent {
			t.Errorf("%s: read as agent.json = %v, want %v (%s)", tc.file, isAgent, tc.agent, dump(cfg))
		}
	}
	// A .json file that is not JSON gets a JSON error, with its position.
	bad := filepath.Join(dir, "broken.json")
	writeFile(t, bad, "{\n  flows: []\n}")
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad+":2:3: json: invalid character 'f'") {
		t.Errorf("err = %v, want a JSON error at 2:3", err)
	}
}

// Warnings never carry the values of credentials, even misspelt ones.
func TestAgentJSONNeverShowsSecrets(t *testing.T) {
	doc := `{"awsAccessKeyId": "AKIASECRETVALUE1", "awsSecretAccessKey": "SECRETVALUE2", "awsSecretAcessKey": "SECRETVALUE3",
	  "flows": [{"filePattern": "/var/log/a.log", "kinesisStream": "s"}]}`
	cfg, err := Parse("agent.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(cfg.Warnings, "\n"); regexp.MustCompile(`SECRETVALUE`).MatchString(all) || !strings.Contains(all, "awsSecretAcessKey") {
		t.Errorf("warnings show a secret or miss the misspelt key:\n%s", all)
	}
}

func FuzzAgentJSON(f *testing.F) {
	files, err := filepath.Glob("testdata/agentjson/*.json")
	if err != nil || len(files) == 0 {
		f.Fatal("no seeds", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"flows": [{"filePattern": "/a/*", "kinesisStream": "s", "dataProcessingOptions": [{"optionName": 1}]}]} // x`))
	f.Add([]byte(`{"flows": [{"filePattern": "/a/*", "deliveryStream": "d", "aggregatedRecordSizeBytes": 100, "dataProcessingOptions": [
  {"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "(a)(?=b)", "customFieldNames": ["x"]},
  {"optionName": "ADDMETADATA", "metadata": {"a": [1, {"b": null}]}, "timestamp": "true"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Processors are checked even though this build refuses them afterwards.
		cfg, err := Parse("a.json", data)
		if err != nil {
			var ve *ValidationError
			if cfg != nil || !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("cfg %v, err %v: want nil and a non-empty *ValidationError", cfg, err)
			}
			for _, e := range ve.Errors {
				if !strings.HasPrefix(e.Error(), "a.json") || strings.Contains(e.Msg, "\n") {
					t.Fatalf("malformed problem %q", e.Error())
				}
			}
			return
		}
		if len(cfg.Flows) == 0 {
			t.Fatal("accepted without flows")
		}
		seen := map[string]bool{}
		for _, fl := range cfg.Flows {
			recordLimit := FirehoseMaxRecordBytes
			if fl.Kinesis != nil {
				recordLimit = fl.Kinesis.MaxRecordBytes
			}
			if seen[fl.Name] || !flowNameRE.MatchString(fl.Name) || len(fl.Paths) == 0 || (fl.Kinesis == nil) == (fl.Firehose == nil) || fl.Batch.MaxBytes > recordLimit {
				t.Fatalf("accepted an invalid flow: %s", dump(fl))
			}
			seen[fl.Name] = true
		}
		for _, w := range cfg.Warnings {
			if strings.Contains(w, "\n") {
				t.Fatalf("warning on several lines: %q", w)
			}
		}
	})
}

// assumeRoleExternalId becomes aws.external_id, for the role assumeRoleARN names.
func TestAgentJSONExternalID(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "agentjson", "vpc-endpoint-role.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AWS.ExternalID != "example-external-id" || cfg.AWS.RoleARN == "" {
		t.Errorf("aws = %+v, want the role with external id example-external-id", cfg.AWS)
	}
}

// deliveryStream flows become firehose flows; firehose.endpoint is honoured for Firehose
// only (a standard regional endpoint gives the region), and the buffer size of a flow that
// sends a line per record bounds nothing.
func TestAgentJSONFirehose(t *testing.T) {
	tests := []struct {
		endpoint, region, url string
		warn                  string
	}{
		{"", "", "", ""},
		{"https://firehose.eu-west-1.amazonaws.com", "eu-west-1", "", ""},
		{"firehose.ap-northeast-2.amazonaws.com", "ap-northeast-2", "", ""},
		{"http://127.0.0.1:4573", "", "http://127.0.0.1:4573", ""},
		{"https://vpce-1-a.firehose.us-east-1.vpce.amazonaws.com", "us-east-1", "https://vpce-1-a.firehose.us-east-1.vpce.amazonaws.com", ""},
	}
	for _, tc := range tests {
		cfg, err := Parse("agent.json", fmt.Appendf(nil, `{"cloudwatch.emitMetrics": false, "firehose.endpoint": %q,
 "flows": [{"filePattern": "/a/*.log", "deliveryStream": "logs-to-s3", "maxBufferSizeBytes": 4194304}]}`, tc.endpoint))
		if err != nil {
			t.Errorf("%q: %v", tc.endpoint, err)
			continue
		}
		if cfg.AWS.Region != tc.region || cfg.AWS.FirehoseEndpoint != tc.url || cfg.AWS.Endpoint != "" {
			t.Errorf("%q: aws %+v, want region %q firehose endpoint %q", tc.endpoint, cfg.AWS, tc.region, tc.url)
		}
		f := cfg.Flows[0]
		if f.Destination() != "firehose" || f.Firehose.DeliveryStream != "logs-to-s3" || f.Name != "logs-to-s3" || f.Batch.MaxBytes != FirehoseMaxRecordBytes {
			t.Errorf("%q: flow %s: destination %s %+v, batch %s", tc.endpoint, f.Name, f.Destination(), f.Firehose, f.Batch.MaxBytes)
		}
		// A record per line: maxBufferSizeBytes sized the Kinesis Agent's requests; it is no
		// record limit here, and named as a difference rather than warned about.
		checkWarnings(t, cfg.Warnings, nil)
		if !slices.ContainsFunc(cfg.Differences, func(d Difference) bool { return d.Key == "maxBufferSizeBytes" }) {
			t.Errorf("%q: differences %+v", tc.endpoint, cfg.Differences)
		}
	}

	// Kinesis keys name the one region; a Firehose endpoint in another region is named.
	cfg, err := Parse("agent.json", []byte(`{"cloudwatch.emitMetrics": false, "kinship.aggregate": true,
 "kinesis.endpoint": "https://kinesis.us-west-2.amazonaws.com", "firehose.endpoint": "https://firehose.eu-west-1.amazonaws.com",
 "flows": [{"filePattern": "/a/*.log", "kinesisStream": "s"}, {"filePattern": "/b/*.log", "deliveryStream": "d"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AWS.Region != "us-west-2" || cfg.Flows[0].Destination() != "kinesis" || cfg.Flows[1].Destination() != "firehose" {
		t.Errorf("aws %+v, flows %s %s", cfg.AWS, cfg.Flows[0].Destination(), cfg.Flows[1].Destination())
	}
	checkWarnings(t, cfg.Warnings, []string{"firehose.endpoint: region eu-west-1 differs from us-west-2"})

	// Both destinations in one flow stay an error.
	_, err = Parse("agent.json", []byte(`{"flows": [{"filePattern": "/a/*.log", "kinesisStream": "s", "deliveryStream": "d"}]}`))
	if err == nil || !strings.Contains(err.Error(), "both kinesisStream and deliveryStream") {
		t.Errorf("both destinations: %v", err)
	}
}

// aws.firehose_endpoint is the native form of firehose.endpoint.
func TestNativeFirehoseEndpoint(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`aws: {endpoint: "http://127.0.0.1:4567", firehose_endpoint: "http://127.0.0.1:4573"}
flows: [{name: f, paths: [/a], firehose: {delivery_stream: d}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AWS.Endpoint != "http://127.0.0.1:4567" || cfg.AWS.FirehoseEndpoint != "http://127.0.0.1:4573" {
		t.Errorf("aws %+v", cfg.AWS)
	}
	_, err = Parse("k.yaml", []byte(`aws: {firehose_endpoint: "not a url"}
flows: [{name: f, paths: [/a], firehose: {delivery_stream: d}}]
`))
	if err == nil || !strings.Contains(err.Error(), "aws.firehose_endpoint") {
		t.Errorf("bad firehose_endpoint: %v", err)
	}
}
