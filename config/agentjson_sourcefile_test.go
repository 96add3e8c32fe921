package config

import (
	"slices"
	"strings"
	"testing"
)

// The Kinesis Agent's SourceFileTest: a filePattern is a directory, taken literally, and a
// glob on the file name in it (testConstructorFileNameParsing, testConfigurability), and
// patterns without a directory or without a file name are refused
// (testConfigurationWithEmptyDirectory, testConfigurationWithEmptyFileName).
func TestAgentJSONFilePatternLikeSourceFile(t *testing.T) {
	tests := []struct {
		pattern string
		path    string // the translated paths pattern; "" for an error
		err     string
	}{
		{"/var/log/message*", "/var/log/message*", ""},
		{"/log.*", "/log.*", ""},
		{"/tmp/testfile.log.*", "/tmp/testfile.log.*", ""},
		// Glob characters in the directory part are the name of a directory (SourceFile's
		// getParent is a literal path).
		{"/var/log/*/app[0-9].log", `/var/log/\*/app[0-9].log`, ""},
		{"messages*", "", `flows[0].filePattern: "messages*": must be an absolute path pattern`},
		{"/var/log/", "", `flows[0].filePattern: "/var/log/": names a directory, not files`},
	}
	for _, tc := range tests {
		cfg, err := Parse("agent.json", []byte(`{"flows": [{"filePattern": "`+tc.pattern+`", "kinesisStream": "s"}]}`))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.pattern, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.pattern, err)
			continue
		}
		if got := cfg.Flows[0].Paths; !slices.Equal(got, []string{tc.path}) {
			t.Errorf("%s: paths %q, want %q", tc.pattern, got, tc.path)
		}
	}
}
