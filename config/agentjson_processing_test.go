package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// Every processing option of the Kinesis Agent becomes a native processor, keys and enum
// values translated, metadata kept as the JSON it was written as.
func TestAgentJSONProcessingOptions(t *testing.T) {
	cfg, err := Parse("agent.json", []byte(`{"cloudwatch.emitMetrics": false, "flows": [{
  "filePattern": "/var/log/app.log", "kinesisStream": "s",
  "dataProcessingOptions": [
    {"optionName": "SINGLELINE", "parseOptions": ["NO_TRIM", "ESCAPE_NEW_LINE"]},
    {"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"], "delimiter": "\\t", "jsonFormat": "PRETTYPRINT"},
    {"optionName": "LOGTOJSON", "logFormat": "RFC3339SYSLOG"},
    {"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG", "matchPattern": "(\\S+) (.*)", "customFieldNames": ["h", "rest"]},
    {"optionName": "ADDMETADATA", "timestamp": "true", "metadata": {"z": 1, "a": ["x", null, true, 1.50], "m": {"k": "v"}}},
    {"optionName": "ADDEC2METADATA", "logFormat": "SYSLOG", "metadataTTL": 60},
    {"optionName": "ADDBRACKETS"}
  ]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.Flows[0].Processors
	if len(ps) != 7 {
		t.Fatalf("%d processors: %s", len(ps), dump(ps))
	}
	if p := ps[0]; p.Type != ProcSingleLine || !p.NoTrim || !p.EscapeNewline {
		t.Errorf("SINGLELINE: %s", dump(p))
	}
	if p := ps[1]; p.Type != ProcCSVToJSON || p.Delimiter != `\t` || !p.DelimiterRegexp.MatchString("\t") ||
		p.JSONFormat != JSONPretty || strings.Join(p.FieldNames, ",") != "a,b" {
		t.Errorf("CSVTOJSON: %s", dump(p))
	}
	if p := ps[2]; p.Type != ProcLogToJSON || p.LogFormat != LogRFC3339Syslog || p.OnParseError != ParseErrorSkip {
		t.Errorf("LOGTOJSON: %s", dump(p))
	}
	if p := ps[3]; p.MatchPattern != `(\S+) (.*)` || !p.MatchRegexp.MatchString("host GET /") || len(p.FieldNames) != 2 {
		t.Errorf("LOGTOJSON with a pattern: %s", dump(p))
	}
	if p := ps[4]; p.Type != ProcAddMetadata || !p.Timestamp || string(p.Metadata) != `{"z":1,"a":["x",null,true,1.50],"m":{"k":"v"}}` {
		t.Errorf("ADDMETADATA: %s %s", dump(p), p.Metadata)
	}
	if p := ps[5]; p.Type != ProcAddEC2Metadata || p.MetadataTTL != Duration(60e9) || p.LogFormat != "" {
		t.Errorf("ADDEC2METADATA: %s", dump(p))
	}
	if p := ps[6]; p.Type != ProcAddBrackets || p.Pos.Line != 10 {
		t.Errorf("ADDBRACKETS: %s", dump(p))
	}
	// The Kinesis Agent reads timestamp as the string "true"; anything else is false.
	cfg, err = Parse("agent.json", []byte(`{"flows": [{"filePattern": "/a", "kinesisStream": "s",
  "dataProcessingOptions": [{"optionName": "ADDMETADATA", "timestamp": "yes", "metadata": "m"}]}]}`))
	if err != nil || cfg.Flows[0].Processors[0].Timestamp || string(cfg.Flows[0].Processors[0].Metadata) != `"m"` {
		t.Errorf("timestamp \"yes\": %v %s", err, dump(cfg))
	}
}

func TestAgentJSONProcessingErrors(t *testing.T) {
	for _, tc := range []struct{ name, options, want string }{
		{"plug-in", `{"optionName": "USINGPLUGGIN", "className": "com.example.X"}`,
			`a.json:2:19: flows[0].dataProcessingOptions[0].optionName: USINGPLUGGIN loads a Java class into the Kinesis Agent; kinship cannot run Java plug-ins`},
		{"unknown", `{"optionName": "TOUPPER"}`, `flows[0].dataProcessingOptions[0].optionName: "TOUPPER": not a processing option of the Kinesis Agent (ADDBRACKETS, ADDEC2METADATA, ADDMETADATA, CSVTOJSON, LOGTOJSON, SINGLELINE)`},
		{"case", `{"optionName": "csvToJson", "customFieldNames": ["a"]}`, `"csvToJson": not a processing option of the Kinesis Agent (ADDBRACKETS, ADDEC2METADATA, ADDMETADATA, CSVTOJSON, LOGTOJSON, SINGLELINE); did you mean "CSVTOJSON"? (option names are case-sensitive`},
		{"log format case", `{"optionName": "LOGTOJSON", "logFormat": "syslog"}`, `flows[0].dataProcessingOptions[0].logFormat: "syslog": must be one of APACHEERRORLOG, COMBINEDAPACHELOG, COMMONAPACHELOG, RFC3339SYSLOG, SYSLOG (case-sensitive`},
		{"log format missing", `{"optionName": "ADDEC2METADATA"}`, `a.json:2:4: flows[0].dataProcessingOptions[0]: ADDEC2METADATA needs logFormat`},
		{"fields missing", `{"optionName": "CSVTOJSON"}`, `flows[0].dataProcessingOptions[0]: CSVTOJSON needs customFieldNames`},
		{"json format", `{"optionName": "CSVTOJSON", "customFieldNames": ["a"], "jsonFormat": "pretty"}`, `jsonFormat: "pretty": must be one of COMPACT, PRETTYPRINT`},
		{"lookahead", `{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "(a)(?=b)(c)", "customFieldNames": ["x", "y"]}`,
			`a.json:2:71: flows[0].dataProcessingOptions[0].matchPattern (kinship's processors[0].match_pattern): "(a)(?=b)(c)": the lookahead (?=...) at offset 3 is Java regexp syntax that Go's RE2 engine does not support`},
		{"possessive delimiter", `{"optionName": "CSVTOJSON", "customFieldNames": ["a"], "delimiter": ",++"}`,
			`flows[0].dataProcessingOptions[0].delimiter (kinship's processors[0].delimiter): ",++": the possessive quantifier ++ at offset 1`},
		{"field count", `{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG", "customFieldNames": ["a"]}`,
			`flows[0].dataProcessingOptions[0].customFieldNames (kinship's processors[0].field_names): 1 names for the 7 fields of common_apache_log`},
		{"not an object", `"SINGLELINE"`, `flows[0].dataProcessingOptions[0]: expected an object with "optionName", got the string "SINGLELINE"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("a.json", []byte(`{"flows": [{"filePattern": "/a", "kinesisStream": "s", "dataProcessingOptions":
  [`+tc.options+`]}]}`))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant %q", err, tc.want)
			}
		})
	}
}

// dataProcessingOptions written as an object is ignored by the Kinesis Agent without a word;
// kinship ignores it too, and says so. Unknown keys of an option are named, not refused.
func TestAgentJSONProcessingIgnored(t *testing.T) {
	cfg, err := Parse("a.json", []byte(`{"kinship.aggregate": true, "cloudwatch.emitMetrics": false, "flows": [
  {"filePattern": "/a", "kinesisStream": "s", "dataProcessingOptions": {"optionName": "SINGLELINE"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Flows[0].Processors) != 0 || len(cfg.Warnings) != 1 ||
		!strings.Contains(cfg.Warnings[0], "flows[0].dataProcessingOptions: an object, not a list: the Kinesis Agent ignores it without a word, and so does kinship") {
		t.Errorf("processors %v, warnings %q", cfg.Flows[0].Processors, cfg.Warnings)
	}
	cfg, err = Parse("a.json", []byte(`{"kinship.aggregate": true, "cloudwatch.emitMetrics": false, "flows": [
  {"filePattern": "/a", "kinesisStream": "s", "dataProcessingOptions": [{"optionName": "SINGLELINE", "parseOptions": ["TRIM"], "delimiter": ","}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	checkWarnings(t, cfg.Warnings, []string{
		"flows[0].dataProcessingOptions[0].parseOptions: the string \"TRIM\" is not NO_TRIM or ESCAPE_NEW_LINE, ignored",
		"flows[0].dataProcessingOptions[0].delimiter: not a key of SINGLELINE, ignored",
	})
}

// The Kinesis Agent's CloudWatch settings, with its defaults (on, AWSKinesisAgent, 30s),
// become metrics.cloudwatch; its checkpoint file and TTL are kept for an import.
func TestAgentJSONCloudWatchAndCheckpoints(t *testing.T) {
	flows := `"flows": [{"filePattern": "/a", "kinesisStream": "s"}]`
	cfg, err := Parse("agent.json", []byte(`{`+flows+`}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (CloudWatch{Enabled: true, Namespace: "AWSKinesisAgent", Interval: DefaultCloudWatchInterval}); cfg.Metrics.CloudWatch != want {
		t.Errorf("defaults: %+v, want %+v", cfg.Metrics.CloudWatch, want)
	}
	if c := cfg.AgentCheckpoints; c == nil || *c != (AgentCheckpoints{File: "/var/run/aws-kinesis-agent/checkpoints", TTL: Duration(7 * 24 * time.Hour)}) {
		t.Errorf("checkpoints: %+v", c)
	}

	cfg, err = Parse("agent.json", []byte(`{"cloudwatch.emitMetrics": "yes", "cloudwatch.namespace": "Fleet/Logs",
  "cloudwatch.endpoint": "monitoring.eu-west-1.amazonaws.com", "cloudwatch.tagInstance": "t",
  "cloudwatch.metricsBufferTimeMillis": 60000, "checkpointFile": "/var/lib/aws-kinesis-agent/cp",
  "checkpointTimeToLiveDays": "3", `+flows+`}`))
	if err != nil {
		t.Fatal(err)
	}
	want := CloudWatch{Enabled: true, Namespace: "Fleet/Logs", Endpoint: "https://monitoring.eu-west-1.amazonaws.com",
		TagInstance: true, Interval: Duration(time.Minute)}
	if cfg.Metrics.CloudWatch != want {
		t.Errorf("got %+v, want %+v", cfg.Metrics.CloudWatch, want)
	}
	if c := cfg.AgentCheckpoints; c == nil || *c != (AgentCheckpoints{File: "/var/lib/aws-kinesis-agent/cp", TTL: Duration(3 * 24 * time.Hour)}) {
		t.Errorf("checkpoints: %+v", c)
	}

	cfg, err = Parse("agent.json", []byte(`{"cloudwatch.emitMetrics": false, `+flows+`}`))
	if err != nil || cfg.Metrics.CloudWatch.Enabled || slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.Contains(w, "CloudWatch") }) {
		t.Errorf("emitMetrics false: %v %+v %q", err, cfg.Metrics.CloudWatch, cfg.Warnings)
	}

	_, err = Parse("agent.json", []byte(`{"cloudwatch.emitMetrics": "maybe", "cloudwatch.namespace": "AWS/Mine",
  "cloudwatch.metricsBufferTimeMillis": 0, "checkpointTimeToLiveDays": -1, "checkpointFile": "", `+flows+`}`))
	for _, want := range []string{
		`agent.json:1:28: cloudwatch.emitMetrics: expected true or false, got the string "maybe"`,
		`agent.json:1:61: cloudwatch.namespace: "AWS/Mine": AWS/ is reserved`,
		"agent.json:2:41: cloudwatch.metricsBufferTimeMillis: 0: must be 1 or more",
		"agent.json:2:72: checkpointTimeToLiveDays: -1: must be 1 or more",
		"agent.json:2:94: checkpointFile: must not be empty",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %q", err, want)
		}
	}
}
