package e2e

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/shardmap"
	"github.com/kinship-agent/kinship/internal/testenv/imdstest"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// startAgentEnv is startAgent with extra environment variables (later ones win).
func startAgentEnv(t *testing.T, env []string, args ...string) *agent {
	t.Helper()
	return startAgentWith(t, env, nil, args...)
}

// processedFlow is one agent.json flow of the processing test: its file, its
// dataProcessingOptions (JSON), and the records the Kinesis Agent sends for that file, in
// order (from internal/processing's table tests, which reproduce the Kinesis Agent's own).
type processedFlow struct {
	file    string
	extra   string // more flow keys, JSON, with a leading comma
	options string
	content string
	want    []string
}

func q(s string) string { b, _ := json.Marshal(s); return string(b) }

const (
	commonLine = `123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450`
	commonWant = `{"host":"123.45.67.89","ident":null,"authuser":null,"datetime":"27/Oct/2000:09:27:09 -0400","request":"GET /java/javaResources.html HTTP/1.0","response":"200","bytes":"10450"}` + "\n"
)

var processedFlows = []processedFlow{
	{
		file: "singleline.log",
		// "^": kinship's multiline start pattern is a search, not the Kinesis Agent's lookingAt
		// (reported; the translation of multiLineStartPattern should anchor it).
		extra:   `, "multiLineStartPattern": "^\\{"`,
		options: `[{"optionName": "SINGLELINE", "parseOptions": ["ESCAPE_NEW_LINE"]}]`,
		content: "{\n   \"a\": {\n           \"b\": 1,\n           \"c\": null,\n           \"d\": true\n    },\n   \"e\": \"f\",\n   \"g\": 2\n     }\n" +
			"{\n  \"x\": 1\n}\n",
		want: []string{`{\\n"a": {\\n"b": 1,\\n"c": null,\\n"d": true\\n},\\n"e": "f",\\n"g": 2\\n}` + "\n", `{\\n"x": 1\\n}` + "\n"},
	},
	{
		file:    "tsv.log",
		options: `[{"optionName": "CSVTOJSON", "customFieldNames": ["column1", "column2", "column3", "column4"], "delimiter": "\\t"}]`,
		content: "value1\t value2\tvalue3\t    value4\nvalue1,value2\n",
		want: []string{`{"column1":"value1","column2":" value2","column3":"value3","column4":"    value4"}` + "\n",
			`{"column1":"value1,value2","column2":null,"column3":null,"column4":null}` + "\n"},
	},
	{
		file:    "pretty.log",
		options: `[{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"], "jsonFormat": "PRETTYPRINT"}]`,
		content: "1\n",
		want:    []string{"{\n  \"a\" : \"1\",\n  \"b\" : null\n}\n"},
	},
	{
		// The last line does not parse: skipped, and the checkpoint moves past it.
		file:    "common.log",
		options: `[{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG"}]`,
		content: commonLine + "\n" + strings.TrimSuffix(commonLine, " 10450") + "\n",
		want:    []string{commonWant},
	},
	{
		file:    "combined.log",
		options: `[{"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"}]`,
		content: commonLine + ` "-" "Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)" "ANY_RANDOM_DATA"` + "\n",
		want:    []string{`{"host":"123.45.67.89","ident":null,"authuser":null,"datetime":"27/Oct/2000:09:27:09 -0400","request":"GET /java/javaResources.html HTTP/1.0","response":"200","bytes":"10450","referer":null,"agent":"Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)"}` + "\n"},
	},
	{
		file:    "error.log",
		options: `[{"optionName": "LOGTOJSON", "logFormat": "APACHEERRORLOG"}]`,
		content: "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico\n" +
			"[Fri Sep 09 10:42:29 2011] [core:error] [pid 35708] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico\n",
		want: []string{
			`{"timestamp":"Fri Sep 09 10:42:29.902022 2011","module":"core","severity":"error","processid":"35708","threadid":"4328636416","client":"72.15.99.187","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}` + "\n",
			`{"timestamp":"Fri Sep 09 10:42:29 2011","module":"core","severity":"error","processid":"35708","threadid":null,"client":"72.15.99.187","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}` + "\n",
		},
	},
	{
		// A skipped record between two that are sent.
		file:    "syslog.log",
		options: `[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}]`,
		content: "Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds) \n<13>Mar  1 00:00:00 host prog: m\nMar 12 12:01:02 server4 snort: Ports to decode telnet on: 21 23 25 119\n",
		want: []string{
			`{"timestamp":"Mar 12 12:00:08","hostname":"server2","program":"rcd","processid":"308","message":"Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds) "}` + "\n",
			`{"timestamp":"Mar 12 12:01:02","hostname":"server4","program":"snort","processid":null,"message":"Ports to decode telnet on: 21 23 25 119"}` + "\n",
		},
	},
	{
		file:    "rfc3339.log",
		options: `[{"optionName": "LOGTOJSON", "logFormat": "RFC3339SYSLOG"}]`,
		content: "2026-12-07T09:41:05.123+01:00 web-1 nginx[42]: GET / 200\n",
		want:    []string{`{"timestamp":"2026-12-07T09:41:05.123+01:00","hostname":"web-1","program":"nginx","processid":"42","message":"GET / 200"}` + "\n"},
	},
	{
		file: "custom.log",
		options: `[{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG", "matchPattern": ` + q(`^([\d.]+) (\S+) (\S+) \[([\w:/]+\s[+\-]\d{4})\] "(.+?)" (\d{3})`) +
			`, "customFieldNames": ["column1", "column2", "column3", "column4", "column5", "column6"]}]`,
		content: strings.TrimSuffix(commonLine, " 10450") + "\n",
		want:    []string{`{"column1":"123.45.67.89","column2":null,"column3":null,"column4":"27/Oct/2000:09:27:09 -0400","column5":"GET /java/javaResources.html HTTP/1.0","column6":"200"}` + "\n"},
	},
	{
		file:    "metadata.log",
		options: `[{"optionName": "ADDMETADATA", "timestamp": "true", "metadata": {"foo": {"bar": "bas"}, "key": "value"}}]`,
		content: "This is the data\n",
		want:    []string{`{"ts":"TS","metadata":{"foo":{"bar":"bas"},"key":"value"},"data":"This is the data"}` + "\n"},
	},
	{
		// A record that is not a JSON object makes ADDEC2METADATA fail: sent as read.
		file:    "ec2.log",
		options: `[{"optionName": "ADDEC2METADATA", "logFormat": "COMMONAPACHELOG"}]`,
		content: `{"msg":"hi","n":1.50}` + "\nnot json\n",
		want: []string{
			`{"msg":"hi","n":1.5,"privateIp":"10.1.2.3","availabilityZone":"us-east-1b","instanceId":"i-0123456789abcdef0","instanceType":"m7g.large","accountId":"123456789012","amiId":"ami-0abc","region":"us-east-1","metadataTimestamp":"TS"}` + "\n",
			"not json\n",
		},
	},
	{
		file:    "brackets.log",
		options: `[{"optionName": "ADDBRACKETS"}]`,
		content: "hello there!! :)\n",
		want:    []string{"{hello there!! :)\n}"},
	},
}

var timestamps = regexp.MustCompile(`"(ts|metadataTimestamp)":"([^"]*)"`)

// An agent.json using every processor runs against kinesalite: each record is byte for byte
// what the Kinesis Agent sends (trailing newline included), skipped records are not sent and
// the checkpoint moves past them, a failing processor ships the raw record, and DETERMINISTIC
// keys are the MD5 of each record in hex. A second run sends nothing again.
func TestAgentJSONProcessorsByteForByte(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "processed", 2)
	imds := imdstest.Start(t, "i-0123456789abcdef0", "us-east-1")
	imds.SetIdentity(map[string]string{"privateIp": "10.1.2.3", "availabilityZone": "us-east-1b",
		"instanceType": "m7g.large", "imageId": "ami-0abc"})

	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	var flows []string
	for _, f := range processedFlows {
		path := filepath.Join(logs, f.file)
		if err := os.WriteFile(path, []byte(f.content), 0o600); err != nil {
			t.Fatal(err)
		}
		flows = append(flows, fmt.Sprintf(`{"filePattern": %s, "kinesisStream": "processed", "initialPosition": "START_OF_FILE",
		  "partitionKeyOption": "DETERMINISTIC", "maxBufferAgeMillis": 1000, "dataProcessingOptions": %s%s}`, q(path), f.options, f.extra))
	}
	cfg := filepath.Join(dir, "agent.json")
	doc := `{"cloudwatch.emitMetrics": false, "flows": [` + strings.Join(flows, ",\n") + `]}`
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	// kinship's own keys beside the agent.json: where its state goes.
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "state.yaml"), []byte("state_dir: "+filepath.Join(dir, "state")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(agentEnv(endpoint), "AWS_EC2_METADATA_DISABLED=false", "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds.URL)

	run := func() {
		t.Helper()
		a := startAgentEnv(t, env, "run", "--config", cfg, "--once")
		if err := a.wait(t, 2*time.Minute); err != nil {
			t.Fatalf("kinship run --once: %v\n%s", err, a.stderr)
		}
	}
	run()

	var want []string
	for _, f := range processedFlows {
		want = append(want, f.want...)
	}
	recs := kinesalitetest.ReadAll(t, endpoint, "processed")
	var got []string
	for _, r := range recs {
		sum := md5.Sum(r.Data)
		if key := aws.ToString(r.PartitionKey); key != hex.EncodeToString(sum[:]) {
			t.Errorf("record %q: partition key %q, want the MD5 of the record in hex", r.Data, key)
		}
		data := string(r.Data)
		for _, m := range timestamps.FindAllStringSubmatch(data, -1) {
			if (m[1] == "ts" && !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(m[2])) ||
				(m[1] == "metadataTimestamp" && !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$`).MatchString(m[2])) {
				t.Errorf("%s %q is not in the Kinesis Agent's format", m[1], m[2])
			}
		}
		got = append(got, timestamps.ReplaceAllString(data, `"$1":"TS"`))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("missing record %q", w)
			}
		}
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("unexpected record %q", g)
			}
		}
	}

	// Every file's position is at its end, skipped last records included.
	checkPositionsAtEnd(t, filepath.Join(dir, "state"), logs)

	// A second run reads nothing again and sends nothing again.
	run()
	if n := len(kinesalitetest.ReadAll(t, endpoint, "processed")); n != len(recs) {
		t.Errorf("%d records after a second run, want still %d", n, len(recs))
	}
}

// checkPositionsAtEnd checks that the saved position of every file under logs is its size.
func checkPositionsAtEnd(t *testing.T, stateDir, logs string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(stateDir, "flows", "*", "positions.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no positions.json under %s (%v)", stateDir, err)
	}
	saved := map[string]int64{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pf struct {
			Files []struct {
				Path   string
				Offset int64
			}
		}
		if err := json.Unmarshal(b, &pf); err != nil {
			t.Fatal(err)
		}
		for _, p := range pf.Files {
			saved[p.Path] = p.Offset
		}
	}
	entries, err := os.ReadDir(logs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join(logs, e.Name())
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if off, ok := saved[path]; !ok || off != fi.Size() {
			t.Errorf("%s: saved position %d (found %v), want its size %d", e.Name(), off, ok, fi.Size())
		}
	}
}

// fakeFirehose is a loopback Firehose that keeps every record of every PutRecordBatch, by
// delivery stream (there is no Firehose emulator).
type fakeFirehose struct {
	mu      sync.Mutex
	records map[string][]string
}

func (f *fakeFirehose) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "Firehose_20150804.PutRecordBatch" {
		http.Error(w, `{"__type":"UnknownOperationException"}`, http.StatusBadRequest)
		return
	}
	var in struct {
		DeliveryStreamName string
		Records            []struct{ Data []byte }
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, `{"__type":"SerializationException"}`, http.StatusBadRequest)
		return
	}
	type entry struct{ RecordId string }
	out := struct {
		FailedPutCount   int
		RequestResponses []entry
	}{}
	f.mu.Lock()
	for i, rec := range in.Records {
		f.records[in.DeliveryStreamName] = append(f.records[in.DeliveryStreamName], string(rec.Data))
		out.RequestResponses = append(out.RequestResponses, entry{RecordId: fmt.Sprint(i)})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// Firehose flows of agent.json frame records as the Kinesis Agent does: without
// aggregatedRecordSizeBytes one record per line, with it whole lines joined up to that
// size; every line keeps its one '\n', and arrives once.
func TestAgentJSONFirehoseRecords(t *testing.T) {
	fake := &fakeFirehose{records: map[string][]string{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	for _, d := range []string{logs, filepath.Join(dir, "conf.d")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var content strings.Builder
	for i := range 200 {
		fmt.Fprintf(&content, "line %03d %s\n", i, strings.Repeat("x", i%17))
	}
	for _, name := range []string{"joined.log", "perline.log"} {
		if err := os.WriteFile(filepath.Join(logs, name), []byte(content.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const size = 300
	doc := fmt.Sprintf(`{"cloudwatch.emitMetrics": false, "firehose.endpoint": %s, "flows": [
	  {"filePattern": %s, "deliveryStream": "joined", "initialPosition": "START_OF_FILE", "aggregatedRecordSizeBytes": %d, "maxBufferAgeMillis": 1000, "maxBufferSizeBytes": 4194304},
	  {"filePattern": %s, "deliveryStream": "perline", "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000, "maxBufferSizeBytes": 4194304}]}`,
		q(srv.URL), q(filepath.Join(logs, "joined.log")), size, q(filepath.Join(logs, "perline.log")))
	cfg := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "state.yaml"), []byte("state_dir: "+filepath.Join(dir, "state")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgentEnv(t, agentEnv("http://127.0.0.1:1"), "run", "--config", cfg, "--once")
	if err := a.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, a.stderr)
	}

	fake.mu.Lock()
	defer fake.mu.Unlock()
	// Requests run concurrently, so records arrive in any order: compare as sets.
	lines := strings.SplitAfter(content.String(), "\n")
	lines = lines[:len(lines)-1]
	slices.Sort(lines)
	perLine := slices.Clone(fake.records["perline"])
	slices.Sort(perLine)
	if !slices.Equal(perLine, lines) {
		t.Errorf("perline: %d records, want the %d lines one per record; first %q", len(perLine), len(lines), perLine[:min(3, len(perLine))])
	}
	joined := fake.records["joined"]
	var joinedLines []string
	for _, r := range joined {
		joinedLines = append(joinedLines, strings.SplitAfter(r, "\n")...)
	}
	joinedLines = slices.DeleteFunc(joinedLines, func(s string) bool { return s == "" })
	slices.Sort(joinedLines)
	if !slices.Equal(joinedLines, lines) {
		t.Errorf("joined: the records' lines are not the file's lines, once each")
	}
	multi := 0
	for _, r := range joined {
		if len(r) > size || !strings.HasSuffix(r, "\n") || strings.Contains(r, "\n\n") {
			t.Errorf("joined record of %d bytes (limit %d): %q", len(r), size, r)
		}
		if strings.Count(r, "\n") > 1 {
			multi++
		}
	}
	if multi == 0 || len(joined) >= len(lines) {
		t.Errorf("joined: %d records for %d lines, %d with several lines: nothing was joined", len(joined), len(lines), multi)
	}
}

// DETERMINISTIC with "kinship.aggregate": true goes through keyed aggregation: each user
// record keeps the MD5 of its data (with its '\n') as its key, and every aggregate holds
// only user records of the shard it was read from.
func TestAgentJSONDeterministicAggregated(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "detagg", 3)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	for _, d := range []string{logs, filepath.Join(dir, "conf.d")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var content strings.Builder
	const n = 500
	for i := range n {
		fmt.Fprintf(&content, "line %04d %s\n", i%250, padding) // each line twice
	}
	path := filepath.Join(logs, "app.log")
	if err := os.WriteFile(path, []byte(content.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`{"cloudwatch.emitMetrics": false, "kinship.aggregate": true, "flows": [
	  {"filePattern": %s, "kinesisStream": "detagg", "initialPosition": "START_OF_FILE", "partitionKeyOption": "DETERMINISTIC", "maxBufferAgeMillis": 1000}]}`, q(path))
	cfg := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "state.yaml"), []byte("state_dir: "+filepath.Join(dir, "state")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, endpoint, "run", "--config", cfg, "--once")
	if err := a.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, a.stderr)
	}
	users, aggregates := 0, 0
	shardOf := map[string]string{}
	for _, sr := range kinesalitetest.ReadShards(t, endpoint, "detagg") {
		start, _ := shardmap.ParseHash(aws.ToString(sr.Shard.HashKeyRange.StartingHashKey))
		end, _ := shardmap.ParseHash(aws.ToString(sr.Shard.HashKeyRange.EndingHashKey))
		rng := shardmap.Shard{Start: start, End: end}
		for _, r := range sr.Records {
			urs, aggregated, err := aggregator.Deaggregate(r.Data, aws.ToString(r.PartitionKey))
			if err != nil {
				t.Fatal(err)
			}
			if aggregated {
				aggregates++
			}
			for _, u := range urs {
				users++
				sum := md5.Sum(u.Data)
				if u.PartitionKey != hex.EncodeToString(sum[:]) || !strings.HasSuffix(string(u.Data), "\n") {
					t.Fatalf("user record %q: key %q, want the MD5 of the record (with its newline) in hex", u.Data, u.PartitionKey)
				}
				if !rng.Contains(shardmap.KeyHash(u.PartitionKey)) {
					t.Fatalf("shard %s holds user record %q outside its range", aws.ToString(sr.Shard.ShardId), u.Data)
				}
				if s, ok := shardOf[string(u.Data)]; ok && s != aws.ToString(sr.Shard.ShardId) {
					t.Errorf("identical records %q on shards %s and %s", u.Data, s, aws.ToString(sr.Shard.ShardId))
				}
				shardOf[string(u.Data)] = aws.ToString(sr.Shard.ShardId)
			}
		}
	}
	if users != n || aggregates == 0 {
		t.Errorf("%d user records in %d aggregates, want %d lines aggregated", users, aggregates, n)
	}
}
