package jsonstr

import (
	"encoding/json"
	"testing"
)

// Lines with quotes, control characters and invalid UTF-8 are valid JSON on the wire and
// read back as encoding/json reads them (invalid bytes as U+FFFD).
func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, l := range []string{"", "plain", `q"uo\te`, "tab\there\r\n", "\x00\x1f\x7f", "héllo ☃ 𝄞", "bad \xff\xfe utf8", "trunc \xe2\x98", "<html>&amp;"} {
		enc := Append(nil, []byte(l))
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Errorf("%q encoded as invalid JSON %s: %v", l, enc, err)
			continue
		}
		want, _ := json.Marshal(l)
		var back string
		_ = json.Unmarshal(want, &back)
		if got != back {
			t.Errorf("%q read back as %q, encoding/json gives %q", l, got, back)
		}
	}
}
