package processing

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// run builds a one-option chain and processes record.
func run(t *testing.T, o Options, record string) (out string, skip bool, err error) {
	t.Helper()
	c, err := New([]Options{o}, Deps{Now: fixedNow})
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	b, skip, err := c.Process(nil, []byte(record))
	return string(b), skip, err
}

func fixedNow() time.Time { return time.Date(2026, 12, 7, 9, 41, 5, 123456789, time.UTC) }

type compatCase struct {
	name   string
	opts   Options
	in     string
	want   string
	skip   bool
	hasErr bool
}

func runCompat(t *testing.T, cases []compatCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, skip, err := run(t, tc.opts, tc.in)
			if (err != nil) != tc.hasErr {
				t.Fatalf("err = %v, want error %v", err, tc.hasErr)
			}
			if skip != tc.skip {
				t.Fatalf("skip = %v, want %v (output %q)", skip, tc.skip, got)
			}
			if !tc.skip && !tc.hasErr && got != tc.want {
				t.Errorf("output\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestKinesisAgentDataConverterTest holds every input/expected-output pair of the Kinesis
// Agent's own DataConverterTest (release 2.0.13).
func TestKinesisAgentDataConverterTest(t *testing.T) {
	csv4 := Options{Name: CSVToJSON, CustomFieldNames: []string{"column1", "column2", "column3", "column4"}}
	tsv4 := csv4
	tsv4.Delimiter = `\t`
	combined := Options{Name: LogToJSON, LogFormat: "COMBINEDAPACHELOG"}
	common := Options{Name: LogToJSON, LogFormat: "COMMONAPACHELOG"}
	errorLog := Options{Name: LogToJSON, LogFormat: "APACHEERRORLOG"}
	syslog := Options{Name: LogToJSON, LogFormat: "SYSLOG"}
	const commonWant = `{"host":"123.45.67.89","ident":null,"authuser":null,"datetime":"27/Oct/2000:09:27:09 -0400","request":"GET /java/javaResources.html HTTP/1.0","response":"200","bytes":"10450"}` + "\n"
	runCompat(t, []compatCase{
		{name: "brackets", opts: Options{Name: AddBrackets}, in: "hello there!! :)", want: "{hello there!! :)}"},
		{
			name: "singleline escape new line",
			opts: Options{Name: SingleLine, ParseOptions: []string{"ESCAPE_NEW_LINE"}},
			in:   "{\n   \"a\": {\n           \"b\": 1,\n           \"c\": null,\n           \"d\": true\n    },\n   \"e\": \"f\",\n   \"g\": 2\n     }\n",
			want: `{\\n"a": {\\n"b": 1,\\n"c": null,\\n"d": true\\n},\\n"e": "f",\\n"g": 2\\n}` + "\n",
		},
		{
			name: "csv", opts: csv4, in: "value1, value2,valu\ne3,    value4\n",
			want: `{"column1":"value1","column2":" value2","column3":"valu\ne3","column4":"    value4"}` + "\n",
		},
		{
			name: "csv fewer values than columns", opts: csv4, in: "value1, value2,value3\n",
			want: `{"column1":"value1","column2":" value2","column3":"value3","column4":null}` + "\n",
		},
		{
			name: "csv more values than columns", opts: csv4, in: "value1,value2,value3,value4,value5\n",
			want: `{"column1":"value1","column2":"value2","column3":"value3","column4":"value4"}` + "\n",
		},
		{
			name: "tsv", opts: tsv4, in: "value1\t value2\tvalue3\t    value4\n",
			want: `{"column1":"value1","column2":" value2","column3":"value3","column4":"    value4"}` + "\n",
		},
		{
			name: "combined apache log", opts: combined,
			in:   `123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450 "-" "Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)" "ANY_RANDOM_DATA"`,
			want: `{"host":"123.45.67.89","ident":null,"authuser":null,"datetime":"27/Oct/2000:09:27:09 -0400","request":"GET /java/javaResources.html HTTP/1.0","response":"200","bytes":"10450","referer":null,"agent":"Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)"}` + "\n",
		},
		{
			name: "common apache log with additional fields", opts: common,
			in:   `123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450 "-" "Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)"`,
			want: commonWant,
		},
		{
			name: "common apache log", opts: common,
			in:   `123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450`,
			want: commonWant,
		},
		{
			name: "common apache log with hostname", opts: common,
			in:   `lj1036.inktomisearch.com - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450`,
			want: `{"host":"lj1036.inktomisearch.com","ident":null,"authuser":null,"datetime":"27/Oct/2000:09:27:09 -0400","request":"GET /java/javaResources.html HTTP/1.0","response":"200","bytes":"10450"}` + "\n",
		},
		{
			name: "apache error log", opts: errorLog,
			in:   `[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico`,
			want: `{"timestamp":"Fri Sep 09 10:42:29.902022 2011","module":"core","severity":"error","processid":"35708","threadid":"4328636416","client":"72.15.99.187","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}` + "\n",
		},
		{
			name: "apache error log without tid", opts: errorLog,
			in:   `[Fri Sep 09 10:42:29 2011] [core:error] [pid 35708] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico`,
			want: `{"timestamp":"Fri Sep 09 10:42:29 2011","module":"core","severity":"error","processid":"35708","threadid":null,"client":"72.15.99.187","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}` + "\n",
		},
		{
			name: "apache error log without module", opts: errorLog,
			in:   `[Fri Sep 09 10:42:29.902022 2011] [error] [pid 35708:tid 4328636416] [client 72.15.99.187:12345] File does not exist: /usr/local/apache2/htdocs/favicon.ico`,
			want: `{"timestamp":"Fri Sep 09 10:42:29.902022 2011","module":null,"severity":"error","processid":"35708","threadid":"4328636416","client":"72.15.99.187:12345","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}` + "\n",
		},
		{
			name: "invalid common apache log is skipped", opts: common,
			in:   `123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200`,
			skip: true,
		},
		{
			name: "common apache log with custom field names",
			opts: Options{Name: LogToJSON, LogFormat: "COMMONAPACHELOG", CustomFieldNames: []string{"column1", "column2", "column3", "column4", "column5", "column6", "column7"}},
			in:   `123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450`,
			want: `{"column1":"123.45.67.89","column2":null,"column3":null,"column4":"27/Oct/2000:09:27:09 -0400","column5":"GET /java/javaResources.html HTTP/1.0","column6":"200","column7":"10450"}` + "\n",
		},
		{
			name: "custom pattern",
			opts: Options{Name: LogToJSON, LogFormat: "COMMONAPACHELOG",
				MatchPattern:     `^([\d.]+) (\S+) (\S+) \[([\w:/]+\s[+\-]\d{4})\] "(.+?)" (\d{3})`,
				CustomFieldNames: []string{"column1", "column2", "column3", "column4", "column5", "column6"}},
			in:   `123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200`,
			want: `{"column1":"123.45.67.89","column2":null,"column3":null,"column4":"27/Oct/2000:09:27:09 -0400","column5":"GET /java/javaResources.html HTTP/1.0","column6":"200"}` + "\n",
		},
		{
			name: "syslog with pid", opts: syslog,
			in:   `Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds) `,
			want: `{"timestamp":"Mar 12 12:00:08","hostname":"server2","program":"rcd","processid":"308","message":"Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds) "}` + "\n",
		},
		{
			name: "syslog without pid", opts: syslog,
			in:   `Mar 12 12:01:02 server4 snort: Ports to decode telnet on: 21 23 25 119`,
			want: `{"timestamp":"Mar 12 12:01:02","hostname":"server4","program":"snort","processid":null,"message":"Ports to decode telnet on: 21 23 25 119"}` + "\n",
		},
		{
			// The agent's test builds metadata from Java HashMaps, whose iteration put "foo"
			// first; from agent.json (a LinkedHashMap) the file's order is kept.
			name: "add metadata",
			opts: Options{Name: AddMetadata, Metadata: json.RawMessage(`{"foo":{"bar":"bas"},"key":"value"}`)},
			in:   "This is the data",
			want: `{"metadata":{"foo":{"bar":"bas"},"key":"value"},"data":"This is the data"}` + "\n",
		},
	})
}

// TestKinesisAgentQuirks pins behaviour read from the Kinesis Agent's source that its tests
// do not cover.
func TestKinesisAgentQuirks(t *testing.T) {
	csv3 := Options{Name: CSVToJSON, CustomFieldNames: []string{"a", "b", "c"}}
	common := Options{Name: LogToJSON, LogFormat: "COMMONAPACHELOG"}
	syslog := Options{Name: LogToJSON, LogFormat: "SYSLOG"}
	const apacheLine = `10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326`
	runCompat(t, []compatCase{
		{name: "singleline trims every piece and drops trailing empty ones", opts: Options{Name: SingleLine},
			in: "  a \r\n\tb\n  \n\n\n", want: "ab\n"},
		{name: "singleline escape keeps trimmed-empty inner pieces", opts: Options{Name: SingleLine, ParseOptions: []string{"ESCAPE_NEW_LINE"}},
			in: "a\n  \nb\n", want: `a\\n\\nb` + "\n"},
		{name: "singleline keeps leading empty pieces", opts: Options{Name: SingleLine, ParseOptions: []string{"ESCAPE_NEW_LINE"}},
			in: "\n\na\n", want: `\\n\\na` + "\n"},
		{name: "singleline no trim", opts: Options{Name: SingleLine, ParseOptions: []string{"NO_TRIM"}},
			in: " a \r\n b \n", want: " a \r b \n"},
		{name: "singleline empty record", opts: Options{Name: SingleLine}, in: "", want: "\n"},
		{name: "singleline only newlines", opts: Options{Name: SingleLine, ParseOptions: []string{"ESCAPE_NEW_LINE"}}, in: "\n\n", want: "\n"},
		{name: "singleline bad utf8 becomes U+FFFD", opts: Options{Name: SingleLine}, in: "a\xffb\n", want: "a\uFFFDb\n"},

		{name: "csv trailing empty columns dropped", opts: csv3, in: "x,,\n", want: `{"a":"x","b":null,"c":null}` + "\n"},
		{name: "csv inner empty columns kept", opts: csv3, in: "x,,z\n", want: `{"a":"x","b":"","c":"z"}` + "\n"},
		{name: "csv leading empty column kept", opts: csv3, in: ",y\n", want: `{"a":"","b":"y","c":null}` + "\n"},
		{name: "csv empty record is one empty column", opts: csv3, in: "\n", want: `{"a":"","b":null,"c":null}` + "\n"},
		{name: "csv only delimiters gives nulls", opts: csv3, in: ",,\n", want: `{"a":null,"b":null,"c":null}` + "\n"},
		{name: "csv no quote handling, CR kept", opts: csv3, in: "\"q,u\",x\r\n", want: `{"a":"\"q","b":"u\"","c":"x\r"}` + "\n"},
		{name: "csv strips only one newline", opts: csv3, in: "x\n\n", want: `{"a":"x\n","b":null,"c":null}` + "\n"},
		{name: "csv regex delimiter", opts: Options{Name: CSVToJSON, CustomFieldNames: []string{"a", "b", "c"}, Delimiter: `\s*;\s*`},
			in: "1 ; 2;3\n", want: `{"a":"1","b":"2","c":"3"}` + "\n"},
		{name: "csv escaped pipe delimiter", opts: Options{Name: CSVToJSON, CustomFieldNames: []string{"a", "b"}, Delimiter: `\|`},
			in: "1|2\n", want: `{"a":"1","b":"2"}` + "\n"},
		{name: "csv bare pipe is an empty-or-empty regex: splits every character", opts: Options{Name: CSVToJSON, CustomFieldNames: []string{"a", "b", "c", "d"}, Delimiter: `|`},
			in: "1|2\n", want: `{"a":"1","b":"|","c":"2","d":null}` + "\n"},
		{name: "csv multi-char literal delimiter", opts: Options{Name: CSVToJSON, CustomFieldNames: []string{"a", "b"}, Delimiter: `::`},
			in: "1::2\n", want: `{"a":"1","b":"2"}` + "\n"},
		{name: "csv field named twice: first place, last value", opts: Options{Name: CSVToJSON, CustomFieldNames: []string{"a", "b", "a"}},
			in: "1,2,3\n", want: `{"a":"3","b":"2"}` + "\n"},
		{name: "log field named twice: first place, last value", opts: Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(\w) (\w) (\w)`, CustomFieldNames: []string{"x", "y", "x"}},
			in: "1 2 3\n", want: `{"x":"3","y":"2"}` + "\n"},
		{name: "csv empty field list", opts: Options{Name: CSVToJSON, CustomFieldNames: []string{}}, in: "1,2\n", want: "{}\n"},
		{name: "csv escapes", opts: Options{Name: CSVToJSON, CustomFieldNames: []string{"a"}},
			in:   "\x00\x01\x1f\b\f\t\"\\/<>&\x7f\u00e9\u2028\U0001F600\n",
			want: `{"a":"\u0000\u0001\u001F\b\f\t\"\\/<>&` + "\x7f\u00e9\u2028\U0001F600" + `"}` + "\n"},
		{name: "csv pretty", opts: Options{Name: CSVToJSON, CustomFieldNames: []string{"a", "b"}, JSONFormat: "PRETTYPRINT"},
			in: "1\n", want: "{\n  \"a\" : \"1\",\n  \"b\" : null\n}\n"},
		{name: "csv pretty empty", opts: Options{Name: CSVToJSON, CustomFieldNames: []string{}, JSONFormat: "PRETTYPRINT"},
			in: "1\n", want: "{ }\n"},

		{name: "apache strips one newline", opts: common, in: apacheLine + "\n",
			want: `{"host":"10.0.0.1","ident":null,"authuser":"frank","datetime":"10/Oct/2000:13:55:36 -0700","request":"GET /a.gif HTTP/1.0","response":"200","bytes":"2326"}` + "\n"},
		{name: "apache bytes dash is null", opts: common, in: strings.Replace(apacheLine, "2326", "-", 1) + "\n",
			want: `{"host":"10.0.0.1","ident":null,"authuser":"frank","datetime":"10/Oct/2000:13:55:36 -0700","request":"GET /a.gif HTTP/1.0","response":"200","bytes":null}` + "\n"},
		{name: "apache CRLF line fails (. does not match CR)", opts: common, in: apacheLine + "\r\n", skip: true},
		{name: "apache ident outside the USER class fails", opts: common, in: strings.Replace(apacheLine, "frank", "fr@nk", 1), skip: true},
		{name: "apache IPv6 host fails", opts: common, in: strings.Replace(apacheLine, "10.0.0.1", "::1", 1), skip: true},
		{name: "apache U+2028 in trailing data fails", opts: common, in: apacheLine + " x\u2028y", skip: true},
		{name: "apache vertical tab is \\s", opts: common, in: strings.Replace(apacheLine, "13:55:36 -0700", "13:55:36\x0b-0700", 1),
			want: `{"host":"10.0.0.1","ident":null,"authuser":"frank","datetime":"10/Oct/2000:13:55:36\u000B-0700","request":"GET /a.gif HTTP/1.0","response":"200","bytes":"2326"}` + "\n"},
		{name: "apache pretty", opts: Options{Name: LogToJSON, LogFormat: "COMMONAPACHELOG", JSONFormat: "PRETTYPRINT"}, in: apacheLine,
			want: "{\n  \"host\" : \"10.0.0.1\",\n  \"ident\" : null,\n  \"authuser\" : \"frank\",\n  \"datetime\" : \"10/Oct/2000:13:55:36 -0700\",\n  \"request\" : \"GET /a.gif HTTP/1.0\",\n  \"response\" : \"200\",\n  \"bytes\" : \"2326\"\n}\n"},
		{name: "combined line missing agent fails", opts: Options{Name: LogToJSON, LogFormat: "COMBINEDAPACHELOG"}, in: apacheLine + ` "-"`, skip: true},
		{name: "apache error log requires client", opts: Options{Name: LogToJSON, LogFormat: "APACHEERRORLOG"},
			in: `[Fri Sep 09 10:42:29 2011] [core:error] [pid 35708] File does not exist`, skip: true},
		{name: "syslog keeps dash", opts: syslog, in: "Mar  1 00:00:00 host prog: -\n",
			want: `{"timestamp":"Mar  1 00:00:00","hostname":"host","program":"prog","processid":null,"message":"-"}` + "\n"},
		{name: "syslog facility with any char between numbers", opts: syslog, in: "Mar  1 00:00:00 <13x6> host prog[1]: m",
			want: `{"timestamp":"Mar  1 00:00:00","hostname":"host","program":"prog","processid":"1","message":"m"}` + "\n"},
		{name: "syslog leading PRI fails", opts: syslog, in: "<13>Mar  1 00:00:00 host prog: m", skip: true},
		{name: "syslog needs colon space", opts: syslog, in: "Mar  1 00:00:00 host prog:m", skip: true},
		{name: "syslog month needs word boundary", opts: syslog, in: "XMar  1 00:00:00 host prog: m", skip: true},
		{name: "rfc3339 syslog", opts: Options{Name: LogToJSON, LogFormat: "RFC3339SYSLOG"},
			in:   "2026-12-07T09:41:05.123+01:00 web-1 nginx[42]: GET / 200\n",
			want: `{"timestamp":"2026-12-07T09:41:05.123+01:00","hostname":"web-1","program":"nginx","processid":"42","message":"GET / 200"}` + "\n"},
		{name: "rfc3339 syslog Z", opts: Options{Name: LogToJSON, LogFormat: "RFC3339SYSLOG"},
			in:   "2026-12-07T09:41:05Z web-1 cron: x",
			want: `{"timestamp":"2026-12-07T09:41:05Z","hostname":"web-1","program":"cron","processid":null,"message":"x"}` + "\n"},
		{name: "matchPattern must match the whole record", opts: Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(\d+)`, CustomFieldNames: []string{"n"}},
			in: "12 34", skip: true},
		{name: "matchPattern group that did not take part is null, syslog keeps dash", opts: Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(a)?(-)`, CustomFieldNames: []string{"x", "y"}},
			in: "-", want: `{"x":null,"y":"-"}` + "\n"},
		{name: "matchPattern apache format turns dash into null", opts: Options{Name: LogToJSON, LogFormat: "APACHEERRORLOG", MatchPattern: `(a)?(-)`, CustomFieldNames: []string{"x", "y"}},
			in: "-", want: `{"x":null,"y":null}` + "\n"},
		{name: "matchPattern group count differing from fields skips every record", opts: Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(a)(b)`, CustomFieldNames: []string{"x"}},
			in: "ab", skip: true},
		{name: "matchPattern (?i) and named group", opts: Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(?i)level=(?<lvl>WARN|ERROR) (.*)`, CustomFieldNames: []string{"level", "msg"}},
			in: "LEVEL=warn disk\n", want: `{"level":"warn","msg":"disk"}` + "\n"},
		{name: "matchPattern DOTALL lets . match CR", opts: Options{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(?s)(.*)`, CustomFieldNames: []string{"all"}},
			in: "a\r\n", want: `{"all":"a\r"}` + "\n"},

		{name: "metadata timestamp, string value any case", opts: Options{Name: AddMetadata, Timestamp: "TRUE", Metadata: json.RawMessage(`{"z":1,"a":[1.50,true,null,{}],"n":1e3}`)},
			in:   "line\n",
			want: `{"ts":"2026-12-07T09:41:05.123Z","metadata":{"z":1,"a":[1.5,true,null,{}],"n":1000.0},"data":"line"}` + "\n"},
		{name: "metadata absent is null", opts: Options{Name: AddMetadata, Timestamp: "yes"}, in: "x",
			want: `{"metadata":null,"data":"x"}` + "\n"},
		{name: "metadata pretty", opts: Options{Name: AddMetadata, JSONFormat: "PRETTYPRINT", Metadata: json.RawMessage(`{"k":{"n":[1,{"a":"b"}],"e":[]}}`)},
			in:   "x\n",
			want: "{\n  \"metadata\" : {\n    \"k\" : {\n      \"n\" : [ 1, {\n        \"a\" : \"b\"\n      } ],\n      \"e\" : [ ]\n    }\n  },\n  \"data\" : \"x\"\n}\n"},
		{name: "metadata string value", opts: Options{Name: AddMetadata, Metadata: json.RawMessage(`"svc"`)}, in: "x",
			want: `{"metadata":"svc","data":"x"}` + "\n"},

		{name: "brackets keep the newline", opts: Options{Name: AddBrackets}, in: "a\n", want: "{a\n}"},
		{name: "brackets replace bad utf8", opts: Options{Name: AddBrackets}, in: "a\xc3", want: "{a\uFFFD}"},
	})
}
