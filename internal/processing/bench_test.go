package processing

import (
	"encoding/json"
	"testing"
	"time"
)

type benchCase struct {
	name   string
	opts   []Options
	record string
	allocs float64 // most allocations a record may cost
}

func benchCases() []benchCase {
	const apache = `123.45.67.89 - frank [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450 "http://example.com/start" "Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)"` + "\n"
	return []benchCase{
		{"SINGLELINE", []Options{{Name: SingleLine}}, "  a line of about eighty bytes of ordinary log text, with a few words in it  \n", 0},
		{"SINGLELINE_ESCAPE_multiline", []Options{{Name: SingleLine, ParseOptions: []string{"ESCAPE_NEW_LINE"}}}, "Exception in thread main\n\tat a.b.C.d(C.java:1)\n\tat a.b.C.e(C.java:2)\n", 0},
		{"CSVTOJSON", []Options{{Name: CSVToJSON, CustomFieldNames: []string{"ts", "level", "user", "action", "latency_ms", "status"}}}, "2026-12-07T09:41:05Z,INFO,alice,login,12,ok\n", 0},
		{"CSVTOJSON_regex", []Options{{Name: CSVToJSON, CustomFieldNames: []string{"ts", "level", "user", "action", "latency_ms", "status"}, Delimiter: `\s*;\s*`}}, "2026-12-07T09:41:05Z ; INFO;alice ;login;12; ok\n", 7},
		{"LOGTOJSON_COMBINEDAPACHELOG", []Options{{Name: LogToJSON, LogFormat: "COMBINEDAPACHELOG"}}, apache, 1},
		{"LOGTOJSON_SYSLOG", []Options{{Name: LogToJSON, LogFormat: "SYSLOG"}}, "Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)\n", 1},
		{"LOGTOJSON_APACHEERRORLOG", []Options{{Name: LogToJSON, LogFormat: "APACHEERRORLOG"}}, "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico\n", 1},
		{"ADDMETADATA", []Options{{Name: AddMetadata, Timestamp: "true", Metadata: json.RawMessage(`{"app":"checkout","env":"prod"}`)}}, "a line of about eighty bytes of ordinary log text, with a few words in it\n", 0},
		{"ADDBRACKETS", []Options{{Name: AddBrackets}}, `"k":"v","n":"1"` + "\n", 0},
		{"include", []Options{{Name: Include, MatchPattern: `ERROR|WARN`}}, "2026-12-07 09:41:05 WARN disk at 91%\n", 0},
		{"chain_LOGTOJSON_ADDMETADATA", []Options{{Name: LogToJSON, LogFormat: "COMBINEDAPACHELOG"}, {Name: AddMetadata, Metadata: json.RawMessage(`{"app":"web"}`)}}, apache, 1},
	}
}

// TestAllocationsPerRecord keeps the record path allocation-free where the processor
// allows it. The regexp package has no append forms: LOGTOJSON pays one allocation
// (FindSubmatchIndex), a CSVTOJSON delimiter that is not a fixed string one per column
// (FindAllIndex).
func TestAllocationsPerRecord(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, bc := range benchCases() {
		c, err := New(bc.opts, Deps{Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, 4096)
		record := []byte(bc.record)
		got := testing.AllocsPerRun(200, func() {
			if _, _, err := c.Process(buf[:0], record); err != nil {
				t.Fatal(err)
			}
		})
		if got > bc.allocs {
			t.Errorf("%s: %.1f allocations per record, want at most %.0f", bc.name, got, bc.allocs)
		}
	}
}

func BenchmarkProcessors(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.name, func(b *testing.B) {
			c, err := New(bc.opts, Deps{Now: time.Now})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 4096)
			record := []byte(bc.record)
			b.SetBytes(int64(len(record)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.Process(buf[:0], record); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

func BenchmarkAddEC2Metadata(b *testing.B) {
	c, err := New([]Options{{Name: AddEC2Metadata, LogFormat: "SYSLOG"}}, Deps{IMDS: fakeIMDS(b)})
	if err != nil {
		b.Fatal(err)
	}
	record := []byte(`{"ts":"2026-12-07T09:41:05Z","level":"INFO","msg":"user logged in","latency_ms":12}` + "\n")
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(record)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Process(buf[:0], record); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
