package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// minimalFlowDefaults is the flow the smallest useful file describes, every default spelled out.
func minimalFlowDefaults(pos Pos) Flow {
	return Flow{
		Name:               "app",
		Paths:              []string{"/var/log/app/*.log"},
		StartAt:            "beginning",
		MaxLineBytes:       MiB,
		PollInterval:       Duration(10 * time.Second),
		CloseInactive:      Duration(5 * time.Minute),
		PartialLineTimeout: Duration(5 * time.Second),
		Kinesis: &Kinesis{
			Stream:          "app-logs",
			PartitionKey:    "random",
			Aggregate:       true,
			MaxRecordBytes:  MiB,
			MaxRequestBytes: 5 * MiB,
			MaxInFlight:     4,
			Compression:     "none",
			Protocol:        "cbor",
		},
		Batch: Batch{MaxAge: Duration(time.Second), MaxBytes: MiB, MaxRecords: 0},
		Spool: Spool{
			MaxBytes:      GiB,
			WhenFull:      "block",
			FsyncInterval: Duration(100 * time.Millisecond),
			SegmentBytes:  64 * MiB,
			Compression:   "s2",
			Write:         "backlog",
		},
		Pos: pos,
	}
}

func TestSmallestUsefulFile(t *testing.T) {
	path := filepath.Join("testdata", "minimal.yaml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		StateDir: "/var/lib/kinship",
		Metrics:  Metrics{CloudWatch: CloudWatch{Namespace: DefaultCloudWatchNamespace, Interval: DefaultCloudWatchInterval}},
		Flows:    []Flow{minimalFlowDefaults(Pos{File: path, Line: 2, Column: 5})},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", dump(cfg), dump(want))
	}
}

func TestDesignFullExample(t *testing.T) {
	path := filepath.Join("testdata", "design-full.yaml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	app := minimalFlowDefaults(Pos{File: path, Line: 9, Column: 5})
	app.Paths = []string{"/var/log/app/*.log", "/var/log/app/**/*.json"}
	app.Exclude = []string{"*.gz"}
	app.Multiline = &Multiline{
		StartPattern: `^\d{4}-\d{2}-\d{2}`,
		Regexp:       regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`),
		MaxLines:     500,
		MaxBytes:     MiB,
		Timeout:      Duration(time.Second),
	}
	dry := minimalFlowDefaults(Pos{File: path, Line: 21, Column: 5})
	dry.Name = "dry-run"
	dry.Paths = []string{"/var/log/other.log"}
	dry.Kinesis = nil
	dry.Discard = &Discard{}
	want := &Config{
		StateDir: "/var/lib/kinship",
		AWS:      AWS{Region: "us-east-1", Endpoint: "http://127.0.0.1:4567", RoleARN: "arn:aws:iam::1:role/x"},
		Metrics: Metrics{Listen: "127.0.0.1:9780",
			CloudWatch: CloudWatch{Namespace: DefaultCloudWatchNamespace, Interval: DefaultCloudWatchInterval}},
		Flows: []Flow{app, dry},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got\n%s\nwant\n%s", dump(cfg), dump(want))
	}
	if !cfg.Flows[0].Multiline.Regexp.MatchString("2024-01-31 12:00:00 started") {
		t.Error("multiline regexp does not match a timestamped line")
	}
}

// example.yaml is what operators copy: it must load, and say what it seems to say.
func TestExampleFile(t *testing.T) {
	cfg, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Flows) != 2 {
		t.Fatalf("got %d flows, want 2", len(cfg.Flows))
	}
	app, dry := cfg.Flows[0], cfg.Flows[1]
	if app.Name != "app" || app.Kinesis == nil || app.Kinesis.Stream != "app-logs" || app.Multiline == nil ||
		app.Multiline.MaxLines != 500 || app.Spool.SegmentBytes != 64*MiB || app.Kinesis.MaxRequestBytes != 5*MiB {
		t.Errorf("flow app: %s", dump(app))
	}
	if dry.Name != "dry-run" || dry.Discard == nil || dry.Kinesis != nil || dry.StartAt != "end" {
		t.Errorf("flow dry-run: %s", dump(dry))
	}
	if cfg.AWS.Region != "us-east-1" || cfg.Metrics.Listen != "127.0.0.1:9780" {
		t.Errorf("top level: %+v %+v", cfg.AWS, cfg.Metrics)
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra string // lines added to a minimal kinesis flow, indented to the flow's level
		check func(f Flow) bool
	}{
		{"aggregate absent means true", "", func(f Flow) bool { return f.Kinesis.Aggregate }},
		{"aggregate false honoured", "    kinesis: {stream: s, aggregate: false}", func(f Flow) bool { return !f.Kinesis.Aggregate }},
		{"aggregate no (YAML 1.1) honoured", "    kinesis: {stream: s, aggregate: no}", func(f Flow) bool { return !f.Kinesis.Aggregate }},
		{"aggregate true", "    kinesis: {stream: s, aggregate: true}", func(f Flow) bool { return f.Kinesis.Aggregate }},
		{"smaller record lowers default batch", "    kinesis: {stream: s, max_record_bytes: 256KiB}", func(f Flow) bool {
			return f.Batch.MaxBytes == 256*KiB && f.Kinesis.MaxRequestBytes == 5*MiB
		}},
		{"larger record raises default request", "    kinesis: {stream: s, max_record_bytes: 8MiB}", func(f Flow) bool {
			return f.Kinesis.MaxRequestBytes == 8*MiB && f.Batch.MaxBytes == MiB
		}},
		{"batch up to a raised record", "    kinesis: {stream: s, max_record_bytes: 10MiB}\n    batch: {max_bytes: 10MiB, max_records: 1000, max_age: 250ms}", func(f Flow) bool {
			return f.Batch == Batch{MaxAge: Duration(250 * time.Millisecond), MaxBytes: 10 * MiB, MaxRecords: 1000}
		}},
		{"spool compression defaults to s2", "    max_line_bytes: 1KiB", func(f Flow) bool { return f.Spool.Compression == "s2" }},
		{"spool compression off", "    spool: {compression: none}", func(f Flow) bool { return f.Spool.Compression == "none" }},
		{"spool write defaults to backlog", "    max_line_bytes: 1KiB", func(f Flow) bool { return f.Spool.Write == "backlog" }},
		{"spool write always", "    spool: {write: always}", func(f Flow) bool { return f.Spool.Write == "always" }},
		{"small spool lowers default segment", "    spool: {max_bytes: 16MiB}", func(f Flow) bool { return f.Spool.SegmentBytes == 16*MiB }},
		{"spool settings", "    spool: {when_full: block, fsync_interval: 1s, segment_bytes: 8MiB}", func(f Flow) bool {
			return f.Spool.WhenFull == "block" && f.Spool.FsyncInterval.D() == time.Second && f.Spool.SegmentBytes == 8*MiB
		}},
		{"integer sizes are bytes", "    max_line_bytes: 65536", func(f Flow) bool { return f.MaxLineBytes == 64*KiB }},
		{"partition key host", "    kinesis: {stream: s, partition_key: host}", func(f Flow) bool { return f.Kinesis.PartitionKey == "host" }},
		{"partition key fixed, 256 characters", "    kinesis: {stream: s, partition_key: " + strings.Repeat("é", 256) + "}", func(f Flow) bool {
			return f.Kinesis.PartitionKey == strings.Repeat("é", 256)
		}},
		{"stream ARN", "    kinesis: {stream: 'arn:aws:kinesis:us-east-1:123456789012:stream/app'}", func(f Flow) bool {
			return strings.HasPrefix(f.Kinesis.Stream, "arn:")
		}},
		{"multiline defaults", "    multiline: {start_pattern: '^\\S'}", func(f Flow) bool {
			return f.Multiline.MaxLines == 500 && f.Multiline.Timeout.D() == time.Second && f.Multiline.Regexp.MatchString("x")
		}},
		{"multiline max_bytes defaults to max_line_bytes", "    max_line_bytes: 64KiB\n    multiline: {start_pattern: '^\\S'}", func(f Flow) bool {
			return f.Multiline.MaxBytes == 64*KiB
		}},
		{"multiline max_bytes", "    multiline: {start_pattern: '^\\S', max_bytes: 4MiB}", func(f Flow) bool { return f.Multiline.MaxBytes == 4*MiB }},
		{"reading limits", "    close_inactive: 1m\n    partial_line_timeout: 250ms\n    skip_header_lines: 2\n    truncated_record_terminator: ' [cut]'", func(f Flow) bool {
			return f.CloseInactive.D() == time.Minute && f.PartialLineTimeout.D() == 250*time.Millisecond &&
				f.SkipHeaderLines == 2 && f.TruncatedRecordTerminator == " [cut]"
		}},
		{"terminator must leave room", "    max_line_bytes: 4\n    truncated_record_terminator: '[cut]'", nil},
		{"start_at end, poll interval", "    start_at: end\n    poll_interval: 2s", func(f Flow) bool {
			return f.StartAt == "end" && f.PollInterval.D() == 2*time.Second
		}},
		{"discard as null", "    kinesis: ~\n    discard:", nil}, // kinesis: ~ still names a destination
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "flows:\n  - name: app\n    paths: [/var/log/a.log]\n"
			if !strings.Contains(tc.extra, "kinesis:") {
				doc += "    kinesis: {stream: s}\n"
			}
			doc += tc.extra + "\n"
			cfg, err := Parse("k.yaml", []byte(doc))
			if tc.check == nil {
				if err == nil {
					t.Fatalf("parsed %s", dump(cfg))
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\n%v", doc, err)
			}
			if !tc.check(cfg.Flows[0]) {
				t.Fatalf("%s\ngot %s", doc, dump(cfg.Flows[0]))
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	doc := `flows:
  - &base
    name: app
    paths: [/var/log/app.log]
    kinesis: {stream: app-logs, partition_key: host}
    spool: {max_bytes: 64MiB, when_full: block}
  - <<: *base
    name: web
    paths: [/var/log/web.log]
`
	cfg, err := Parse("k.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	web := cfg.Flows[1]
	if web.Name != "web" || web.Paths[0] != "/var/log/web.log" || web.Kinesis.PartitionKey != "host" ||
		web.Spool.WhenFull != "block" || web.Spool.MaxBytes != 64*MiB {
		t.Fatalf("merged flow: %s", dump(web))
	}
}

// errorLines returns the problems of err without the file name ("line:col: message").
func errorLines(t *testing.T, err error, file string) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(ve.Errors) {
		t.Errorf("Error() has %d lines for %d problems:\n%v", got, len(ve.Errors), err)
	}
	var out []string
	for _, e := range ve.Errors {
		s := e.Error()
		if !strings.HasPrefix(s, file+":") {
			t.Errorf("problem %q does not start with %q", s, file+":")
		}
		out = append(out, strings.TrimPrefix(s, file+":"))
	}
	return out
}

// dump shows pointers' targets, which %+v would print as addresses.
func dump(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHelpers(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "design-full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.FlowDir(&cfg.Flows[1]); got != "/var/lib/kinship/flows/dry-run" {
		t.Errorf("FlowDir = %q", got)
	}
	if a, b := cfg.Flows[0].Destination(), cfg.Flows[1].Destination(); a != "kinesis" || b != "discard" {
		t.Errorf("destinations = %q, %q", a, b)
	}
}

// drop_oldest is honoured by the spool: the value must reach the flow's settings.
func TestDropOldestAccepted(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte("flows:\n  - name: a\n    paths: [/a]\n    discard: {}\n    spool: {when_full: drop_oldest}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Flows[0].Spool.WhenFull; got != "drop_oldest" {
		t.Fatalf("WhenFull = %q, want drop_oldest", got)
	}
}

// The assume-role options reach the configuration with the role they belong to.
func TestAssumeRoleOptions(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`aws:
  role_arn: arn:aws:iam::123456789012:role/kinship
  external_id: "fleet-7f3a:prod"
  role_session_name: web-01.example
flows: [{name: app, paths: [/a], discard: {}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AWS.ExternalID != "fleet-7f3a:prod" || cfg.AWS.RoleSessionName != "web-01.example" {
		t.Errorf("aws = %+v", cfg.AWS)
	}
}

// delete_after_shipped is opt-in, per flow: rotated files' globs, absolute.
func TestDeleteAfterShippedIsPerFlowAndOptIn(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`flows:
  - name: app
    paths: ["/var/log/app/*.log"]
    delete_after_shipped: ["/var/log/app/*.log.[0-9]"]
    discard: {}
  - name: other
    paths: ["/var/log/other/*.log"]
    discard: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Flows[0].DeleteAfterShipped; len(got) != 1 || got[0] != "/var/log/app/*.log.[0-9]" {
		t.Errorf("app: delete_after_shipped = %q", got)
	}
	if got := cfg.Flows[1].DeleteAfterShipped; got != nil {
		t.Errorf("other: delete_after_shipped = %q, want none unless asked for", got)
	}
}
