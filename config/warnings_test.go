package config

import (
	"strings"
	"testing"
)

func TestPatternReachesStateDir(t *testing.T) {
	for _, tc := range []struct {
		pattern, stateDir string
		want              bool
	}{
		{"/var/log/**/*.json", "/var/log/kinship", true},     // the case
		{"/var/lib/kinship/*.log", "/var/lib/kinship", true}, // state_dir is an ancestor of the pattern's prefix
		{"/var/lib/kinship/flows/app/*", "/var/lib/kinship", true},
		{"/var/log/*/*.json", "/var/log/kinship", true},
		{"/var/log/kin*/*", "/var/log/kinship", true},
		{"/var/{log,lib}/**", "/var/lib/kinship", true},
		{"/**", "/var/lib/kinship", true},
		{"/var/log/*.json", "/var/log/kinship", false}, // one level too shallow
		{"/var/log/*", "/var/log/kinship", false},      // state_dir itself, not below it
		{"/var/log/app/*.log", "/var/log/kinship", false},
		{"/var/log/app/**", "/var/log/kinship", false},
		{"/srv/**/*.log", "/var/lib/kinship", false},
		{"/var/log/nginx/*.log", "/var/lib/kinship", false},
	} {
		if got := patternReaches(tc.pattern, tc.stateDir); got != tc.want {
			t.Errorf("patternReaches(%q, %q) = %v, want %v", tc.pattern, tc.stateDir, got, tc.want)
		}
	}
}

// validate says when a flow's pattern covers state_dir, naming the flow, the pattern and
// state_dir, and that the agent skips its own state; it is a warning, not an error.
func TestStateDirUnderAPatternIsAWarning(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`state_dir: /var/log/kinship
flows:
  - name: all-json
    paths: ["/var/log/app/*.log", "/var/log/**/*.json"]
    kinesis: {stream: s}
  - name: elsewhere
    paths: ["/var/log/app/*.log"]
    kinesis: {stream: s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("warnings %q, want one", cfg.Warnings)
	}
	for _, want := range []string{`flow "all-json" (k.yaml:3:5)`, `"/var/log/**/*.json"`, "state_dir /var/log/kinship", "skips its own state"} {
		if !strings.Contains(cfg.Warnings[0], want) {
			t.Errorf("warning %q does not say %q", cfg.Warnings[0], want)
		}
	}
}

// An agent.json whose filePattern reaches the default state_dir gets the warning too.
func TestStateDirWarningAgentJSON(t *testing.T) {
	cfg, err := Parse("agent.json", []byte(`{"kinship.aggregate": true, "cloudwatch.emitMetrics": false,
  "flows": [{"filePattern": "/var/lib/kinship/flows/x/*", "kinesisStream": "s"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "state_dir /var/lib/kinship") {
		t.Errorf("warnings %q", cfg.Warnings)
	}
}

// max_line_bytes larger than a record is explained with the numbers; at the defaults
// (1MiB lines, 1MiB records) there is nothing to say.
func TestMaxLineBytesLargerThanARecord(t *testing.T) {
	for _, tc := range []struct {
		name, flow string
		want       []string // substrings of the one warning; none: no warning
	}{
		{"defaults", "kinesis: {stream: s}", nil},
		{"defaults written out", "max_line_bytes: 1MiB\n    kinesis: {stream: s}", nil},
		{"firehose at its defaults", "firehose: {delivery_stream: d}", nil},
		{"lines larger than records", "max_line_bytes: 2MiB\n    kinesis: {stream: s}", []string{
			`flow "a" (k.yaml:4:21): max_line_bytes: 2MiB (2097152 bytes) is more than one record holds`,
			"lines are cut at 1048544 bytes, kinesis.max_record_bytes (1MiB) minus a random partition key (32 bytes)",
			"truncated_record_terminator is written within those 1048544 bytes",
		}},
		{"smaller batch", "kinesis: {stream: s}\n    batch: {max_bytes: 64KiB}", []string{
			"max_line_bytes: 1MiB (1048576 bytes)", "cut at 65504 bytes, batch.max_bytes (64KiB) minus a random partition key (32 bytes)",
		}},
		{"keys from the line", "max_line_bytes: 2MiB\n    kinesis: {stream: s, partition_key_field: user.id}", []string{
			"cut at 1048025 bytes", "minus a partition key of up to 256 bytes and 295 bytes of KPL aggregate framing",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("k.yaml", []byte("flows:\n  - name: a\n    paths: [/a]\n    "+tc.flow+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(cfg.Warnings) != 0 {
					t.Errorf("warnings %q, want none", cfg.Warnings)
				}
				return
			}
			if len(cfg.Warnings) != 1 {
				t.Fatalf("warnings %q, want one", cfg.Warnings)
			}
			for _, w := range tc.want {
				if !strings.Contains(cfg.Warnings[0], w) {
					t.Errorf("warning %q does not say %q", cfg.Warnings[0], w)
				}
			}
		})
	}
}

// Many ** elements against a deep state_dir take time in proportion to their product, not
// exponential time.
func TestPatternReachesManyDoubleStars(t *testing.T) {
	pattern := strings.Repeat("/**", 60) + "/x"
	dir := strings.Repeat("/d", 60)
	if !patternReaches(pattern, dir) {
		t.Error("want a match")
	}
	if patternReaches(strings.Repeat("/d", 59)+"/*", dir) {
		t.Error("a pattern one element shorter than state_dir matched below it")
	}
}
