package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestNativeProcessors(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`flows:
  - name: app
    paths: [/var/log/app.log]
    kinesis: {stream: s}
    processors:
      - {type: include, patterns: ['ERROR|WARN', '^\d{4}']}
      - {type: exclude, patterns: [healthcheck]}
      - {type: single_line, no_trim: true, escape_newline: true}
      - {type: csv_to_json, field_names: [a, b], delimiter: '\t', json_format: pretty_print}
      - {type: log_to_json, log_format: common_apache_log}
      - {type: log_to_json, log_format: syslog, match_pattern: '(\w+) (\w+)', field_names: [x, y], on_parse_error: raw}
      - type: add_metadata
        timestamp: true
        metadata: {zeta: 1, alpha: [true, null, "s", 2.5], nested: {b: x, a: y}}
      - {type: add_ec2_metadata, metadata_ttl: 10m}
      - {type: add_brackets}
`))
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.Flows[0].Processors
	if len(ps) != 9 {
		t.Fatalf("%d processors: %s", len(ps), dump(ps))
	}
	if p := ps[0]; p.Type != ProcInclude || len(p.Regexps) != 2 || !p.Regexps[1].MatchString("2024-01-01") || p.Pos.Line != 6 {
		t.Errorf("include: %s", dump(p))
	}
	if p := ps[1]; p.Type != ProcExclude || p.Patterns[0] != "healthcheck" {
		t.Errorf("exclude: %s", dump(p))
	}
	if p := ps[2]; !p.NoTrim || !p.EscapeNewline {
		t.Errorf("single_line: %s", dump(p))
	}
	if p := ps[3]; p.Delimiter != `\t` || !p.DelimiterRegexp.MatchString("\t") || p.JSONFormat != JSONPretty || strings.Join(p.FieldNames, ",") != "a,b" {
		t.Errorf("csv_to_json: %s", dump(p))
	}
	if p := ps[4]; p.LogFormat != LogCommonApache || p.OnParseError != ParseErrorSkip || p.JSONFormat != JSONCompact || p.MatchRegexp != nil {
		t.Errorf("log_to_json defaults: %s", dump(p))
	}
	// The pattern must match the whole record, like Java's matches().
	if p := ps[5]; p.OnParseError != ParseErrorRaw || !p.MatchRegexp.MatchString("ab cd") || p.MatchRegexp.MatchString("ab cd ef") {
		t.Errorf("log_to_json: %s", dump(p))
	}
	if p := ps[6]; !p.Timestamp || string(p.Metadata) != `{"zeta":1,"alpha":[true,null,"s",2.5],"nested":{"b":"x","a":"y"}}` {
		t.Errorf("add_metadata: %s %s", dump(p), p.Metadata)
	}
	if p := ps[7]; p.MetadataTTL.D() != 10*time.Minute {
		t.Errorf("add_ec2_metadata: %s", dump(p))
	}
	if p := ps[8]; p.Type != ProcAddBrackets {
		t.Errorf("add_brackets: %s", dump(p))
	}
}

func TestNativeProcessorErrors(t *testing.T) {
	_, err := Parse("k.yaml", []byte(`flows:
  - name: app
    paths: [/var/log/app.log]
    kinesis: {stream: s}
    processors:
      - {type: csv_to_json}
      - {type: csvtojson}
      - {type: csv_to_json, field_names: [a], delimiter: '(?<=a),'}
      - {type: log_to_json}
      - {type: log_to_json, log_format: SYSLOG}
      - {type: log_to_json, log_format: syslog, match_pattern: '(a)(b)', field_names: [x]}
      - {type: log_to_json, log_format: syslog, field_names: [x]}
      - {type: log_to_json, log_format: syslog, match_pattern: '(\w)\1', field_names: [x], on_parse_error: drop}
      - {type: include, patterns: ['a++']}
      - {type: exclude}
      - {type: add_metadata, json_format: PRETTYPRINT, timestamp: maybe}
      - {type: add_brackets, delimiter: x}
      - just-a-string
`))
	for _, want := range []string{
		"k.yaml:6:9: processors[0]: field_names is required for csv_to_json",
		`k.yaml:7:16: processors[1].type: "csvtojson": must be one of single_line, csv_to_json`,
		`k.yaml:8:58: processors[2].delimiter: "(?<=a),": the lookbehind (?<=...) at offset 0 is Java regexp syntax that Go's RE2 engine does not support`,
		"k.yaml:9:9: processors[3]: log_format is required for log_to_json",
		`k.yaml:10:41: processors[4].log_format: "SYSLOG": must be one of common_apache_log, combined_apache_log, apache_error_log, syslog, rfc3339_syslog`,
		"k.yaml:11:64: processors[5].match_pattern: has 2 capture groups for 1 field_names",
		"k.yaml:12:62: processors[6].field_names: 1 names for the 5 fields of syslog (timestamp, hostname, program, processid, message)",
		`k.yaml:13:64: processors[7].match_pattern: "(\\w)\\1": the backreference \1 at offset 4 is Java regexp syntax`,
		`k.yaml:13:108: processors[7].on_parse_error: "drop": must be skip`,
		`k.yaml:14:36: processors[8].patterns[0]: "a++": the possessive quantifier ++ at offset 1 is Java regexp syntax`,
		"k.yaml:15:9: processors[9]: patterns is required for exclude",
		`k.yaml:16:43: processors[10].json_format: "PRETTYPRINT": must be compact or pretty_print`,
		`k.yaml:16:67: processors[10].timestamp: expected true or false`,
		`k.yaml:17:30: unknown key "delimiter" in processors[11] (add_brackets)`,
		"k.yaml:18:9: processors[12]: expected a processor",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "k.yaml:13:87") {
		t.Errorf("a pattern that does not compile is reported once, not again as a field count: %v", err)
	}
}

// The flow runs processors: a configuration that has them loads.
func TestProcessorsLoad(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`flows:
  - name: app
    paths: [/var/log/app.log]
    kinesis: {stream: s}
    processors: [{type: add_brackets}]
`))
	if err != nil || len(cfg.Flows[0].Processors) != 1 || cfg.Flows[0].Processors[0].Type != ProcAddBrackets {
		t.Errorf("err %v, flow %s", err, dump(cfg))
	}
}

func TestCloudWatchNative(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`metrics:
  cloudwatch: {enabled: true, namespace: Fleet/Logs, endpoint: "https://monitoring.example.com", tag_instance: true, interval: 1m}
flows: [{name: a, paths: [/a], kinesis: {stream: s}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := CloudWatch{Enabled: true, Namespace: "Fleet/Logs", Endpoint: "https://monitoring.example.com", TagInstance: true, Interval: Duration(time.Minute)}
	if cfg.Metrics.CloudWatch != want {
		t.Errorf("got %+v, want %+v", cfg.Metrics.CloudWatch, want)
	}
	_, err = Parse("k.yaml", []byte(`metrics:
  cloudwatch: {enabled: yes please, namespace: "AWS/Kinesis", endpoint: "monitoring", interval: 0s, tag: true}
flows: [{name: a, paths: [/a], kinesis: {stream: s}}]
`))
	for _, want := range []string{
		"k.yaml:2:25: metrics.cloudwatch.enabled: expected true or false",
		`k.yaml:2:48: metrics.cloudwatch.namespace: "AWS/Kinesis": AWS/ is reserved`,
		`k.yaml:2:73: metrics.cloudwatch.endpoint: "monitoring": must be an absolute http(s) URL`,
		`k.yaml:2:97: metrics.cloudwatch.interval: "0s": must be positive`,
		`k.yaml:2:101: unknown key "tag" in metrics.cloudwatch`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %q", err, want)
		}
	}
}

// A drop-in may turn CloudWatch on without repeating the namespace of the main file.
func TestCloudWatchMergesKeyByKey(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/kinship.yaml", "metrics: {cloudwatch: {namespace: Fleet}}\nflows: [{name: a, paths: [/a], kinesis: {stream: s}}]\n")
	writeFile(t, dir+"/conf.d/cw.yaml", "metrics: {cloudwatch: {enabled: true}}\n")
	cfg, err := Load(dir + "/kinship.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cw := cfg.Metrics.CloudWatch; !cw.Enabled || cw.Namespace != "Fleet" || cw.Interval != DefaultCloudWatchInterval {
		t.Errorf("got %+v", cw)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %q", cfg.Warnings)
	}
}

// The processors shown, commented out, in example.yaml are valid as written.
func TestExampleProcessors(t *testing.T) {
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "    # processors:"):
			in = true
		case in && !strings.HasPrefix(line, "    #   "):
			in = false
		}
		if in {
			line = strings.Replace(line, "    # ", "    ", 1)
		}
		out = append(out, line)
	}
	cfg, err := Parse("example.yaml", []byte(strings.Join(out, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Flows[0].Processors); n != 8 {
		t.Errorf("%d processors, want 8", n)
	}
}
