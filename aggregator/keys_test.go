package aggregator

import (
	"regexp"
	"strings"
	"testing"
)

func TestJSONFieldKey(t *testing.T) {
	for _, tc := range []struct {
		path, line, want string
		ok               bool
	}{
		{"user.id", `{"msg":"hi","user":{"name":"a","id":"u-42"},"n":1}`, "u-42", true},
		{"user.id", `{"user":{"id":1234}}`, "1234", true},
		{"user.id", ` { "user" : { "id" : true } } `, "true", true},
		{"user.id", `{"user":{"id":"a\"b\u00e9"}}`, `a"bé`, true},
		{"user.id", `{"us\u0065r":{"id":"x"}}`, "x", true},
		{"user.id", `{"skip":{"id":"no","arr":[1,{"id":"no"},"}"]},"user":{"id":"yes"}}`, "yes", true},
		{"id", `{"id":null}`, "", false},
		{"id", `{"id":""}`, "", false},
		{"id", `{"id":{"a":1}}`, "", false},
		{"id", `{"other":1}`, "", false},
		{"user.id", `{"user":"flat"}`, "", false},
		{"id", `plain text id=3`, "", false},
		{"id", `{"id":"unterminated`, "", false},
		{"id", ``, "", false},
	} {
		got, ok := JSONFieldKey(tc.path)([]byte(tc.line))
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("JSONFieldKey(%q)(%s) = %q, %v; want %q, %v", tc.path, tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRegexKey(t *testing.T) {
	f := RegexKey(regexp.MustCompile(`user=(\w*)`))
	for _, tc := range []struct {
		line, want string
		ok         bool
	}{
		{"GET / user=alice status=200", "alice", true},
		{"GET / status=200", "", false},
		{"GET / user= status=200", "", false}, // an empty key is no key: Kinesis refuses it
	} {
		got, ok := f([]byte(tc.line))
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("RegexKey(%q) = %q, %v; want %q, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCleanKeyCutsToKinesisLimitOnRuneBoundary(t *testing.T) {
	k := cleanKey([]byte(strings.Repeat("é", 200))) // 400 bytes
	if len(k) > maxPartitionKeyLen || len(k) != 256 || !strings.HasPrefix(strings.Repeat("é", 200), k) {
		t.Errorf("cut key has %d bytes, want 256 whole runes", len(k))
	}
	if k := cleanKey([]byte("a\xffb")); k != "a\uFFFDb" {
		t.Errorf("invalid UTF-8 key became %q", k)
	}
}

var benchLine = []byte(`{"ts":"2026-11-27T23:31:14.123Z","level":"info","msg":"request served","path":"/api/v1/items","status":200,"duration_ms":12.5,"user":{"name":"alice","id":"u-1234567"},"trace":"0af7651916cd43dd8448eb211c80319c"}`)

func BenchmarkJSONFieldKey(b *testing.B) {
	f := JSONFieldKey("user.id")
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		if _, ok := f(benchLine); !ok {
			b.Fatal("no key")
		}
	}
}

func BenchmarkRegexKey(b *testing.B) {
	f := RegexKey(regexp.MustCompile(`"id":"([^"]+)"`))
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		if _, ok := f(benchLine); !ok {
			b.Fatal("no key")
		}
	}
}
