package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Each want entry is "line:column: fragment" (or "line: fragment" when the YAML parser
// gives no column); the problems must match in number, order, position and wording.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{"empty file", ``, []string{
			`1:1: the file is empty; the smallest useful file is: flows: [{name: app, paths: ["/var/log/app/*.log"], kinesis: {stream: app-logs}}]`,
		}},
		{"only comments", "# nothing yet\n", []string{`1:1: the file is empty; the smallest useful file is: flows:`}},
		{"no flows", "state_dir: /srv/kinship\nflows: []\n", []string{`2:1: no flows configured; the smallest useful file is: flows: [{name: app`}},
		{"delete_after_shipped naming the live files", `flows:
  - name: app
    paths: ["/var/log/app/*.log"]
    delete_after_shipped: ["/var/log/app/*.log", "/var/log/app/app.log.1", "var/log/*.1"]
    discard: {}
`, []string{
			`4:28: delete_after_shipped: "/var/log/app/*.log" is also in paths: it would name the live files`,
			`4:50: delete_after_shipped: "/var/log/app/app.log.1": names one file, not rotated ones: use a glob such as "/var/log/app/*.log.[0-9]"`,
			`4:76: delete_after_shipped: "var/log/*.1": must be an absolute path pattern`,
		}},
		{"no flows key", "aws: {region: eu-west-1}\n", []string{`1:1: no flows configured`}},
		{"top level is a list", "- a\n", []string{`1:1: expected a mapping of settings (state_dir, aws, metrics, spool, flows), got a list`}},
		{"syntax error", "flows:\n  - name: app\n    paths: [/a\n", []string{`2: yaml: did not find expected ',' or ']'`}},
		{"tab indentation", "flows:\n\t- name: app\n", []string{`2: yaml: found character that cannot start any token`}},
		{"top-level typo", "flow:\n  - name: app\n", []string{
			`1:1: unknown key "flow" at the top level (known: state_dir, aws, metrics, spool, flows); did you mean "flows"?`,
			`1:1: no flows configured`,
		}},
		{"flow key typo", `flows:
  - name: app
    paths: ["/var/log/a.log"]
    kinesiss:
      stream: s
`, []string{
			`2:5: flow "app": no destination; add one of kinesis, firehose, http or discard`,
			`4:5: unknown key "kinesiss" in flow "app" (known: name, paths, exclude, start_at, multiline, max_line_bytes, poll_interval, close_inactive, partial_line_timeout, skip_header_lines, truncated_record_terminator, follow_symlinks, delete_after_shipped, kinesis, firehose, http, discard, batch, spool, add_metadata, processors); did you mean "kinesis"?`,
		}},
		{"bad size", `flows:
  - name: app
    paths: ["/var/log/a.log"]
    discard: {}
    spool: {max_bytes: 1GB2}
`, []string{`5:24: spool.max_bytes: "1GB2": not a size (use e.g. 512MiB)`}},
		{"names", `flows:
  - paths: [/a]
    discard: {}
  - name: a/b
    paths: [/a]
    discard: {}
  - name: ..
    paths: [/a]
    discard: {}
`, []string{
			`2:5: flow #1: name is required`,
			`4:11: name: "a/b": use 1 to 128 of A-Z a-z 0-9 _ . - (it names a directory under state_dir)`,
			`7:11: name: "..": use 1 to 128`,
		}},
		{"duplicate flow name", `flows:
  - name: app
    paths: [/a]
    discard: {}
  - name: app
    paths: [/b]
    discard: {}
`, []string{`5:5: flow "app" is already defined at k.yaml:2:5`}},
		{"paths", `flows:
  - name: app
    discard: {}
  - name: b
    paths: [var/log/a.log, '/var/log/[a.log', '']
    exclude: ['[x']
    discard: {}
  - name: c
    paths: /var/log/c.log
    discard: {}
  - name: d
    paths: []
    discard: {}
`, []string{
			`2:5: flow "app": paths is required (e.g. paths: ["/var/log/app/*.log"])`,
			`5:13: paths: "var/log/a.log": must be an absolute path pattern`,
			`5:28: paths: "/var/log/[a.log": not a valid glob pattern`,
			`5:47: paths: empty pattern`,
			`6:15: exclude: "[x": not a valid glob pattern`,
			`9:12: paths: expected a list of path patterns (e.g. ["/var/log/app/*.log"]), got "/var/log/c.log"`,
			`12:12: paths: must list at least one absolute path pattern`,
		}},
		{"reading options", `flows:
  - name: app
    paths: [/a]
    discard: {}
    start_at: middle
    multiline: {start_pattern: '(', max_lines: 0, timeout: 5}
    max_line_bytes: 0
    poll_interval: -1s
    close_inactive: 0s
    partial_line_timeout: 5
    skip_header_lines: -1
    truncated_record_terminator: [x]
  - name: b
    paths: [/a]
    discard: {}
    max_line_bytes: 8
    truncated_record_terminator: 12345678
    multiline: {start_pattern: x, max_bytes: 4}
  - name: c
    paths: [/a]
    discard: {}
    truncated_record_terminator: "[cut]"
    multiline: {start_pattern: x, max_bytes: 5B}
`, []string{
			`5:15: start_at: "middle": must be beginning or end`,
			`6:32: multiline.start_pattern: "(": missing closing )`,
			`6:48: multiline.max_lines: 0: must be positive`,
			`6:60: multiline.timeout: "5": a duration needs a unit (e.g. 5s or 5ms)`,
			`7:21: max_line_bytes: "0": must be positive`,
			`8:20: poll_interval: "-1s": must be positive`,
			`9:21: close_inactive: "0s": must be positive`,
			`10:27: partial_line_timeout: "5": a duration needs a unit`,
			`11:24: skip_header_lines: -1: must be 0 (none) or more`,
			`12:34: truncated_record_terminator: expected a string, got a list`,
			`16:21: truncated_record_terminator: 8 bytes do not fit in max_line_bytes (8B) with room for data`,
			`22:34: truncated_record_terminator: 5 bytes do not fit in multiline.max_bytes (5B) with room for data`,
		}},
		{"destinations", `flows:
  - name: app
    paths: [/a]
    multiline: {max_lines: 3}
    max_line_bytes: 1.5B
    poll_interval: soon
    firehose: {stream: x}
  - name: b
    paths: [/a]
    http: {}
  - name: c
    paths: [/a]
    kinesis: {stream: s}
    discard: {}
`, []string{
			`4:5: multiline.start_pattern is required`,
			`5:21: max_line_bytes: "1.5B": not a whole number of bytes`,
			`6:20: poll_interval: "soon": not a duration (use e.g. 500ms, 10s, 1m)`,
			`7:5: firehose.delivery_stream is required`,
			`7:16: unknown key "stream" in firehose of flow "app" (known: delivery_stream, max_in_flight)`,
			`10:5: http.url is required`,
			`14:5: flow "c": more than one destination (kinesis, discard); a flow has exactly one`,
		}},
		{"kinesis", `flows:
  - name: app
    paths: [/a]
    kinesis:
      partition_key: ''
      aggregate: maybe
      max_record_bytes: 11MiB
      max_in_flight: 0
  - name: b
    paths: [/a]
    kinesis:
      stream: 'bad stream'
      max_request_bytes: 512KiB
      max_in_flight: four
      streem: x
  - name: c
    paths: [/a]
    kinesis: {stream: s, max_request_bytes: 20MiB, partition_key: ` + strings.Repeat("k", 257) + `}
`, []string{
			`4:5: kinesis.stream is required`,
			`5:22: kinesis.partition_key: must be random, host or a fixed key of 1 to 256 characters (got 0)`,
			`6:18: kinesis.aggregate: expected true or false, got "maybe"`,
			`7:25: kinesis.max_record_bytes: 11MiB is larger than Kinesis allows (10MiB)`,
			`8:22: kinesis.max_in_flight: 0: must be positive`,
			`12:15: kinesis.stream: "bad stream": not a stream name`,
			`13:26: kinesis.max_request_bytes: 512KiB is smaller than kinesis.max_record_bytes (1MiB)`,
			`14:22: kinesis.max_in_flight: expected a whole number, got "four"`,
			`15:7: unknown key "streem" in kinesis of flow "b" (known: stream, partition_key, partition_key_field, partition_key_regex, aggregate, max_record_bytes, max_request_bytes, max_in_flight, compression, protocol); did you mean "stream"?`,
			`18:45: kinesis.max_request_bytes: 20MiB is larger than a PutRecords request may be (10MiB)`,
			`18:67: kinesis.partition_key: must be random, host or a fixed key of 1 to 256 characters (got 257)`,
		}},
		{"batch and spool", `flows:
  - name: app
    paths: [/a]
    kinesis: {stream: s}
    batch: {max_bytes: 2MiB, max_records: -1, max_age: 0s}
  - name: b
    paths: [/a]
    discard: {}
    spool: {when_full: drop_newest, segment_bytes: 2GiB, fsync_interval: 0}
  - name: c
    paths: [/a]
    discard: {}
    spool: {max_bytes: 512KiB}
  - name: d
    paths: [/a]
    discard: {}
    batch: {max_bytes: 11MiB}
  - name: e
    paths: [/a]
    discard: {}
    spool: {compression: lz4}
  - name: f
    paths: [/a]
    discard: {}
    spool: {write: sometimes}
`, []string{
			`5:24: batch.max_bytes: 2MiB is larger than kinesis.max_record_bytes (1MiB): an aggregated record must fit in one Kinesis record`,
			`5:43: batch.max_records: -1: must be 0 (no limit) or more`,
			`5:56: batch.max_age: "0s": must be positive`,
			`9:24: spool.when_full: "drop_newest": must be block or drop_oldest`,
			`9:52: spool.segment_bytes: 2GiB is larger than spool.max_bytes (1GiB)`,
			`9:74: spool.fsync_interval: "0": a duration needs a unit`,
			`13:24: spool.max_bytes: 512KiB is smaller than batch.max_bytes (1MiB): one record must fit in the spool`,
			`17:24: batch.max_bytes: 11MiB is larger than the largest Kinesis record (10MiB)`,
			`21:26: spool.compression: "lz4": must be s2, zstd or none`,
			`25:20: spool.write: "sometimes": must be backlog or always`,
		}},
		{"top-level values", `state_dir: var/lib
metrics: {listen: '9780'}
aws: {endpoint: '127.0.0.1:4567', role_arn: role/x}
flows:
  - name: app
    paths: [/a]
    discard: {x: 1}
`, []string{
			`1:12: state_dir: "var/lib": must be an absolute path`,
			`2:19: metrics.listen: "9780": not host:port (e.g. 127.0.0.1:9780)`,
			`3:17: aws.endpoint: "127.0.0.1:4567": must be an absolute http(s) URL (e.g. http://127.0.0.1:4567)`,
			`3:45: aws.role_arn: "role/x": not an IAM role ARN`,
			`7:15: unknown key "x" in discard of flow "app" (it takes no keys)`,
		}},
		{"repeated key, second document", `metrics: {listen: 'localhost:99999'}
aws: {endpoint: 'ftp://x'}
flows:
  - name: app
    name: app2
    paths: [/a]
    discard: {}
---
flows: []
`, []string{
			`1:19: metrics.listen: "localhost:99999": port must be a number from 0 to 65535`,
			`2:17: aws.endpoint: "ftp://x": must be an absolute http(s) URL`,
			`5:5: key "name" repeated (first at line 4)`,
			`8:1: a second YAML document (after ---) is not supported`,
		}},
		{"assume-role options", `aws: {external_id: "x", role_session_name: "has space"}
flows: [{name: app, paths: [/a], discard: {}}]
`, []string{
			`1:20: aws.external_id: "x": want 2 to 1224 characters`,
			`1:25: aws.role_session_name: only used to assume aws.role_arn, which is not set`,
			`1:44: aws.role_session_name: "has space": want 2 to 64 characters`,
		}},
		{"flows not a list", "flows: {name: app}\n", []string{`1:8: flows: expected a list of flows (- name: ...), got a mapping`}},
		{"wrong types", `aws:
  region: [a]
flows:
  - name: app
    paths: [/a]
    discard: {}
    batch: 5
  - just a string
  - name: {a: 1}
    paths: [/a, [b]]
    discard: []
    aggregate: true
`, []string{
			`2:11: aws.region: expected a string, got a list`,
			`7:12: batch: expected a mapping (max_age, max_bytes, max_records), got "5"`,
			`8:5: flows[1]: expected a flow (a mapping with name, paths and a destination), got "just a string"`,
			`9:11: name: expected a string, got a mapping`,
			`10:17: paths: expected a string, got a list`,
			`11:14: discard: expected {}, got a list`,
			`12:5: unknown key "aggregate" in flow #3 (known:`,
		}},
		{"unknown key in a merged mapping is reported once", `flows:
  - &base
    name: app
    paths: [/a]
    discard: {}
    spool: {max_byte: 1MiB}
  - <<: *base
    name: b
  - <<: *base
    name: c
`, []string{`6:13: unknown key "max_byte" in spool of flow "app" (known: max_bytes, when_full, fsync_interval, segment_bytes, compression, write); did you mean "max_bytes"?`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("k.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("parsed without error: %s", dump(cfg))
			}
			if cfg != nil {
				t.Errorf("got a config along with the error")
			}
			got := errorLines(t, err, "k.yaml")
			for i := range max(len(got), len(tc.want)) {
				switch {
				case i >= len(got):
					t.Errorf("missing problem %q", tc.want[i])
				case i >= len(tc.want):
					t.Errorf("unexpected problem %q", got[i])
				default:
					pos, frag, _ := strings.Cut(tc.want[i], ": ")
					if !strings.HasPrefix(got[i], pos+": ") || !strings.Contains(got[i], frag) {
						t.Errorf("problem %d:\n got %q\nwant %q", i, got[i], tc.want[i])
					}
				}
			}
		})
	}
}

// Aliases and merge keys can expand a small document exponentially; Parse must give up
// with an error, not spin.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("flows:\n  - &m0 {name: b0, paths: [/a], discard: {}}\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "  - &m%d {name: b%d, <<: [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "bomb.yaml: document too large or too many aliases") {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v", el)
	}
}

// cmd/agent and editors consume problems one by one: *Error is reachable with errors.As.
func TestErrorsAs(t *testing.T) {
	_, err := Parse("k.yaml", []byte("flows:\n  - name: app\n    paths: [/a]\n    discard: {}\n    start_at: 5\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) failed", err)
	}
	if e.Pos != (Pos{File: "k.yaml", Line: 5, Column: 15}) || !strings.Contains(e.Msg, "start_at") {
		t.Fatalf("got %+v", e)
	}
}
