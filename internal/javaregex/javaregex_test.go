package javaregex

import (
	"regexp"
	"testing"
)

func TestTranslateJavaRegex(t *testing.T) {
	cases := []struct{ java, re2 string }{
		{`a.b`, `a[^\n\r\x{85}\x{2028}\x{2029}]b`},
		{`(?s)a.b`, `(?s)a(?s:.)b`},
		{`(?d)a.b`, `a[^\n]b`},
		{`(?s:.)(.)`, `(?s:(?s:.))([^\n\r\x{85}\x{2028}\x{2029}])`},
		{`\s\S[\s,]`, `[\t\n\x0B\f\r ][^\t\n\x0B\f\r ][\t\n\x0B\f\r ,]`},
		{`[^\S]`, `[^\x00-\x08\x0E-\x1F\x21-\x{10FFFF}]`},
		{`\u00e9\x41\x{1F600}\0101\cA\e`, `é\x41\x{1F600}A\x{1}\x1B`},
		{`\uD83D\uDE00`, "\U0001F600"},
		{`\Q.*\E+`, `\.\*+`},
		{`\p{Lower}\P{Digit}[\p{Alpha}_]\p{L}\p{IsLatin}`, `[a-z][^0-9][a-zA-Z_]\p{L}\p{Latin}`},
		{`(?<year>\d{4})-x{2,}`, `(?P<year>\d{4})-x{2,}`},
		{`a+?b*?`, `a+?b*?`},
		{`\t\|\\`, `\t\|\\`},
		{`(?i-m:x)`, `(?i-m:x)`},
		{`\Z`, `\z`},
	}
	for _, tc := range cases {
		got, err := Translate(tc.java)
		if err != nil || got != tc.re2 {
			t.Errorf("Translate(%q) = %q, %v; want %q", tc.java, got, err, tc.re2)
		}
	}
	for _, bad := range []string{`(?=a)`, `(?!a)`, `(?<=a)`, `(?<!a)`, `(?>a)`, `(a)\1`, `\k<n>`, `a++`, `a?+`, `a{2}+`,
		`\G`, `\X`, `[a[b]]`, `[a&&b]`, `(?x)a`, `(?U)\w`, `a{x}`, `\p{InGreek}`, `[\P{Digit}]`, `\`, `a)`, `(a`} {
		if got, err := Translate(bad); err == nil {
			t.Errorf("Translate(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzTranslate: any pattern either translates or is refused, never a panic; and
// a translation RE2 accepts stays one balanced expression, so anchoring it for a whole-record
// match changes neither what compiles nor the group count (LOGTOJSON pairs groups with
// fields by number).
func FuzzTranslate(f *testing.F) {
	for _, s := range []string{`^(\S+) (\S+) \[([^\]]+)\] "([^"]*)"`, `^(?<ts>\d{4}-\d\d-\d\dT[^ ]+) (\S+) ([\w.-]+)(?:\[(\d+)\])?: (.*)`, `(?<n>a)\Q(\E[\s\S]\u0041\0101\cA(?s:.)`, `(?=x)`, `[a&&b]`, `)|(`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		re2, err := Translate(pattern)
		if err != nil {
			return
		}
		plain, plainErr := regexp.Compile(re2)
		whole, wholeErr := Compile(pattern, true)
		if (plainErr == nil) != (wholeErr == nil) {
			t.Fatalf("%q -> %q: compiles alone: %v, anchored: %v", pattern, re2, plainErr, wholeErr)
		}
		if plainErr == nil && plain.NumSubexp() != whole.NumSubexp() {
			t.Fatalf("%q -> %q: anchoring changed the group count", pattern, re2)
		}
	})
}
