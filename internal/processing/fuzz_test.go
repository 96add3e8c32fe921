package processing

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// checkFlatJSON asserts out is one JSON object with exactly the given keys in order, every
// value a string or null, followed by exactly one "\n" (or, pretty, Jackson's layout).
func checkFlatJSON(t *testing.T, out []byte, keys []string) {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("\n")) || bytes.HasSuffix(out, []byte("\n\n")) && !bytes.HasSuffix(out, []byte("}\n")) {
		t.Fatalf("output does not end in exactly one newline: %q", out)
	}
	body := out[:len(out)-1]
	if !utf8.Valid(body) || !json.Valid(body) {
		t.Fatalf("output is not valid JSON: %q", out)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		t.Fatalf("not an object: %q", out)
	}
	for i := 0; dec.More(); i++ {
		tok, err := dec.Token()
		if err != nil || i >= len(keys) || tok != keys[i] {
			t.Fatalf("key %d = %v (%v), want %v: %q", i, tok, err, keys, out)
		}
		val, err := dec.Token()
		if _, isString := val.(string); err != nil || (val != nil && !isString) {
			t.Fatalf("value of %s = %#v (%v), want a string or null: %q", tok, val, err, out)
		}
	}
}

func FuzzLogToJSON(f *testing.F) {
	for _, s := range []string{
		`123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] "GET /java/javaResources.html HTTP/1.0" 200 10450 "-" "Mozilla/4.6 [en] (X11; U; OpenBSD 2.8 i386; Nav)"` + "\n",
		`[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico`,
		"Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages\r\n",
		"2026-12-07T09:41:05.123+01:00 web-1 nginx[42]: GET / \x00\xff\"\\ 200\n",
		"level=WARN \u2028 msg\n",
	} {
		f.Add([]byte(s))
	}
	var chains []*Chain
	var fields [][]string
	for _, o := range []Options{
		{Name: LogToJSON, LogFormat: "COMMONAPACHELOG"},
		{Name: LogToJSON, LogFormat: "COMBINEDAPACHELOG", JSONFormat: "PRETTYPRINT"},
		{Name: LogToJSON, LogFormat: "APACHEERRORLOG"},
		{Name: LogToJSON, LogFormat: "SYSLOG"},
		{Name: LogToJSON, LogFormat: "RFC3339SYSLOG"},
		{Name: LogToJSON, LogFormat: "SYSLOG", MatchPattern: `(?i)level=(\w+)?\s*(.*)`, CustomFieldNames: []string{"level", "msg"}},
	} {
		c, err := New([]Options{o}, Deps{})
		if err != nil {
			f.Fatal(err)
		}
		chains = append(chains, c)
		names := o.CustomFieldNames
		if names == nil {
			names = logFormats()[o.LogFormat].fields
		}
		fields = append(fields, names)
	}
	f.Fuzz(func(t *testing.T, record []byte) {
		for i, c := range chains {
			out, skip, err := c.Process(nil, record)
			if err != nil {
				t.Fatalf("LOGTOJSON never fails, got %v", err)
			}
			if !skip {
				checkFlatJSON(t, out, fields[i])
			}
		}
	})
}

func FuzzCSVToJSON(f *testing.F) {
	for _, s := range []string{"value1, value2,valu\ne3,    value4\n", "a\tb\t\t\n", ",,\n", "", "\"q,u\"\r\n", "\xed\xa0\x80,\xc3\n", "1 ; 2;;3"} {
		f.Add([]byte(s))
	}
	names := []string{"a", "b", "c", "d"}
	var chains []*Chain
	for _, delim := range []string{"", `\t`, `\s*;\s*`, `|`, `,?`} {
		for _, format := range []string{"COMPACT", "PRETTYPRINT"} {
			c, err := New([]Options{{Name: CSVToJSON, CustomFieldNames: names, Delimiter: delim, JSONFormat: format}}, Deps{})
			if err != nil {
				f.Fatal(err)
			}
			chains = append(chains, c)
		}
	}
	f.Fuzz(func(t *testing.T, record []byte) {
		for _, c := range chains {
			out, skip, err := c.Process(nil, record)
			if err != nil || skip {
				t.Fatalf("CSVTOJSON always converts, got skip %v, %v", skip, err)
			}
			checkFlatJSON(t, out, names)
		}
	})
}

// FuzzJacksonObject feeds records to ADDEC2METADATA's JSON reader: whatever it accepts must
// come out as valid JSON, and what it writes must read back to the same bytes.
func FuzzJacksonObject(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[1.5,true,null,{"c":"\u00e9\ud800"}],"a":2}`, `{} x`, `{"n":-0,"e":1e400}`, `{"s":"\/\b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, record []byte) {
		v, err := parseJSONObject(appendJavaUTF8(nil, record))
		if err != nil {
			return
		}
		for _, pretty := range []bool{false, true} {
			out := appendJSONValue(nil, v, pretty, 0)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON %q from %q", out, record)
			}
			again, err := parseJSONObject(out)
			if err != nil {
				t.Fatalf("cannot read back %q: %v", out, err)
			}
			if out2 := appendJSONValue(nil, again, pretty, 0); !bytes.Equal(out, out2) {
				t.Fatalf("not stable: %q then %q", out, out2)
			}
		}
	})
}
