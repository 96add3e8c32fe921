package processing

import (
	"errors"
	"strings"
	"testing"

	"github.com/kinship-agent/kinship/internal/javaregex"
)

func TestNewRefusesWhatTheKinesisAgentRefuses(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want string // in the error
	}{
		{"unknown option", Options{Name: "TOJSON"}, `unknown optionName "TOJSON"`},
		{"case-sensitive option", Options{Name: "singleline"}, "case-sensitive: SINGLELINE"},
		{"missing option name", Options{}, "optionName is missing"},
		{"plugin", Options{Name: UsingPlugin}, "cannot run Java converters"},
		{"csv without fields", Options{Name: CSVToJSON}, "customFieldNames is required"},
		{"csv lookahead delimiter", Options{Name: CSVToJSON, CustomFieldNames: []string{"a"}, Delimiter: `,(?=x)`}, "lookahead"},
		{"bad jsonFormat", Options{Name: CSVToJSON, CustomFieldNames: []string{"a"}, JSONFormat: "pretty"}, `jsonFormat "pretty"`},
		{"log without format", Options{Name: LogToJSON}, "logFormat is required"},
		{"log format case", Options{Name: LogToJSON, LogFormat: "syslog"}, `logFormat "syslog"`},
		{"pattern without fields", Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: "(.*)"}, "customFieldNames must be specified when matchPattern is specified"},
		{"wrong field count", Options{Name: LogToJSON, LogFormat: "SYSLOG", CustomFieldNames: []string{"a"}}, "customFieldNames has 1 names, logFormat SYSLOG has 5 fields"},
		{"backreference", Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(a)\1`, CustomFieldNames: []string{"a"}}, `backreference \1`},
		{"possessive", Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(a*+)`, CustomFieldNames: []string{"a"}}, "possessive quantifier"},
		{"atomic", Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(?>a)`, CustomFieldNames: []string{}}, "atomic group"},
		{"lookbehind", Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(?<=a)b`, CustomFieldNames: []string{}}, "lookbehind"},
		{"ec2 without logFormat", Options{Name: AddEC2Metadata}, "logFormat is required"},
		{"metadata not JSON", Options{Name: AddMetadata, Metadata: []byte(`{"a":}`)}, "metadata: json"},
		{"include without pattern", Options{Name: Include}, "include needs a pattern"},
		{"exclude bad RE2", Options{Name: Exclude, MatchPattern: `(`}, "exclude pattern"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]Options{{Name: SingleLine}, tc.opts}, Deps{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "option 2") {
				t.Errorf("err = %v, want the option's position", err)
			}
		})
	}
}

func TestUnsupportedRegexErrorIsTyped(t *testing.T) {
	_, err := New([]Options{{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(\w+)(?!x)`, CustomFieldNames: []string{"a"}}}, Deps{})
	var unsupported *javaregex.UnsupportedError
	if !errors.As(err, &unsupported) || unsupported.Construct != "negative lookahead (?!...)" || unsupported.Offset != 5 {
		t.Fatalf("err = %#v", err)
	}
}

func TestLiteralDelimiterFastPath(t *testing.T) {
	for delim, want := range map[string]string{",": ",", `\t`: "\t", `\|`: "|", "::": "::", `\Q.\E`: "."} {
		sp, err := newJavaSplitter(delim)
		if err != nil || string(sp.literal) != want {
			t.Errorf("delimiter %q: literal %q, %v; want %q", delim, sp.literal, err, want)
		}
	}
	for _, delim := range []string{`|`, `\s+`, `(?i)a`, `,?`} {
		sp, err := newJavaSplitter(delim)
		if err != nil || sp.literal != nil {
			t.Errorf("delimiter %q: want the regex path, got literal %q, %v", delim, sp.literal, err)
		}
	}
}

func TestChain(t *testing.T) {
	t.Run("runs in order", func(t *testing.T) {
		c, err := New([]Options{{Name: SingleLine}, {Name: AddBrackets}, {Name: AddBrackets}}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		out, skip, err := c.Process([]byte("prefix:"), []byte(" a\n b \n"))
		if err != nil || skip || string(out) != "prefix:{{ab\n}}" {
			t.Fatalf("got %q, %v, %v", out, skip, err)
		}
	})
	t.Run("skip stops the chain", func(t *testing.T) {
		c, err := New([]Options{{Name: LogToJSON, LogFormat: "SYSLOG"}, {Name: AddBrackets}}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		out, skip, err := c.Process([]byte("kept"), []byte("not syslog\n"))
		if err != nil || !skip || string(out) != "kept" {
			t.Fatalf("got %q, %v, %v", out, skip, err)
		}
	})
	t.Run("empty chain copies", func(t *testing.T) {
		var c Chain
		out, skip, err := c.Process(nil, []byte("x\n"))
		if err != nil || skip || string(out) != "x\n" {
			t.Fatalf("got %q, %v, %v", out, skip, err)
		}
	})
	t.Run("filters", func(t *testing.T) {
		c, err := New([]Options{{Name: Include, MatchPattern: `ERROR|WARN`}, {Name: Exclude, MatchPattern: `healthcheck$`}}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		for in, wantSkip := range map[string]bool{
			"ERROR disk\n": false, "INFO ok\n": true, "WARN healthcheck\n": true, "WARN healthcheck later\n": false,
		} {
			out, skip, err := c.Process(nil, []byte(in))
			if err != nil || skip != wantSkip || (!skip && string(out) != in) {
				t.Errorf("%q: got %q, skip %v, %v; want skip %v", in, out, skip, err, wantSkip)
			}
		}
	})
	t.Run("error names the option and leaves dst", func(t *testing.T) {
		c, err := New([]Options{{Name: AddBrackets}, {Name: AddEC2Metadata, LogFormat: "SYSLOG"}}, Deps{IMDS: fakeIMDS(t)})
		if err != nil {
			t.Fatal(err)
		}
		out, skip, err := c.Process([]byte("dst"), []byte("x\n"))
		if err == nil || skip || string(out) != "dst" || !strings.Contains(err.Error(), "ADDEC2METADATA") {
			t.Fatalf("got %q, %v, %v", out, skip, err)
		}
	})
}
