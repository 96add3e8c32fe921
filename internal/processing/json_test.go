package processing

import (
	"math"
	"strings"
	"testing"
)

func TestJavaDouble(t *testing.T) {
	cases := map[float64]string{
		0: "0.0", math.Copysign(0, -1): "-0.0", 1: "1.0", 100: "100.0", 1.5: "1.5", -2.25: "-2.25",
		0.001: "0.001", 0.0001: "1.0E-4", 1234567: "1234567.0", 1e7: "1.0E7", 12345678.9: "1.23456789E7",
		0.1: "0.1", 1e21: "1.0E21", 1.7976931348623157e308: "1.7976931348623157E308", 5e-324: "4.9E-324",
		123.456: "123.456", 9999999.999: "9999999.999",
	}
	for f, want := range cases {
		if got := string(appendJavaDouble(nil, f)); got != want {
			t.Errorf("appendJavaDouble(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestJacksonRoundTrip(t *testing.T) {
	cases := []struct{ in, compact string }{
		{`{"b":1,"a":2}`, `{"b":1,"a":2}`},
		{`{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{`{"n":-0,"big":123456789012345678901234567890,"f":-0.0,"e":1E2,"inf":1e400,"tiny":1e-400}`, `{"n":0,"big":123456789012345678901234567890,"f":-0.0,"e":100.0,"inf":"Infinity","tiny":0.0}`},
		{`{"s":"\u00e9\/\u0001\ud83d\ude00\ud800x"}`, `{"s":"é/\u0001😀?x"}`},
		{` {"a":[]} trailing junk`, `{"a":[]}`},
		{`{"t":true,"f":false,"z":null,"o":{}}`, `{"t":true,"f":false,"z":null,"o":{}}`},
	}
	for _, tc := range cases {
		v, err := parseJSONObject([]byte(tc.in))
		if err != nil {
			t.Errorf("parse %q: %v", tc.in, err)
			continue
		}
		if got := string(appendJSONValue(nil, v, false, 0)); got != tc.compact {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.compact)
		}
	}
	for _, bad := range []string{``, ` `, `[1]`, `"s"`, `null`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{'a':1}`, `{"a":1,}`,
		`{"a":"x` + "\n" + `"}`, `{"a":tru}`, `{"a":truex}`, `{"a":1x}`, `{"a":"\x"}`, `{"a" 1}`, `{"a":NaN}`, `{/*c*/"a":1}`} {
		if v, err := parseJSONObject([]byte(bad)); err == nil {
			t.Errorf("parse %q = %q, want an error", bad, appendJSONValue(nil, v, false, 0))
		}
	}
}

func TestJavaUTF8Replacement(t *testing.T) {
	cases := map[string]string{
		"ok\u00e9":         "ok\u00e9",
		"\xff":             "\uFFFD",
		"\xc0\x80":         "\uFFFD\uFFFD",             // overlong: each byte
		"\xe2\x82A":        "\uFFFDA",                  // truncated 3-byte: one
		"\xe2\x82":         "\uFFFD",                   // truncated at the end: one
		"\xe0\x80\x80":     "\uFFFD\uFFFD\uFFFD",       // overlong 3-byte: each byte
		"\xed\xa0\x80":     "\uFFFD",                   // encoded surrogate: one, as Java
		"\xed\xa0A":        "\uFFFDA",                  // surrogate prefix: one for two bytes, as Java
		"\xf0\x9f\x98":     "\uFFFD",                   // truncated 4-byte
		"\xf0\x9f\x98A":    "\uFFFDA",                  //
		"\xf4\x90\x80\x80": "\uFFFD\uFFFD\uFFFD\uFFFD", // above U+10FFFF
		"\xf5\x80":         "\uFFFD\uFFFD",
		"a\x80\x80b":       "a\uFFFD\uFFFDb",
	}
	for in, want := range cases {
		if got := string(appendJavaUTF8(nil, []byte(in))); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestMetadataAllowsComments(t *testing.T) {
	v, err := parseJSONValue([]byte("/* tags */ {\"a\": 1, // owner\n \"b\": \"x\" /* end */}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(appendJSONValue(nil, v, false, 0)); got != `{"a":1,"b":"x"}` {
		t.Fatalf("got %s", got)
	}
	if _, err := parseJSONObject([]byte(`{"a":1 /* no */}`)); err == nil {
		t.Fatal("records must not allow comments")
	}
	long := `{"n":` + strings.Repeat("1", 1001) + `}`
	if _, err := parseJSONObject([]byte(long)); err == nil {
		t.Fatal("want Jackson's number length limit")
	}
	nested := func(n int) []byte { return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)) }
	if _, err := parseJSONObject(nested(1000)); err != nil {
		t.Fatalf("1000 levels: %v", err)
	}
	if _, err := parseJSONObject(nested(1001)); err == nil {
		t.Fatal("want Jackson's nesting limit")
	}
}
