package flow

import (
	"encoding/json"
	"testing"

	"github.com/kinship-agent/kinship/config"
)

func TestLineWrapperIsValidJSONForAnyLine(t *testing.T) {
	w := newLineWrapper(&config.AddMetadata{Hostname: true, InstanceID: true, Region: true, FilePath: true},
		Metadata{Host: "web-1", InstanceID: "i-0abc", Region: "eu-west-1"})
	type rec struct {
		Data       string `json:"data"`
		Host       string `json:"host"`
		InstanceID string `json:"instance_id"`
		Region     string `json:"region"`
		Path       string `json:"path"`
	}
	for _, line := range []string{
		"plain", `quotes " and \ backslash`, "tab\tnul\x00del\x7fesc\x1b", "caf\xc3\xa9 ünïcode 日本",
		"invalid \xff\xfe utf8", "cut \xe6\x97", "",
	} {
		for _, path := range []string{"/var/log/a.log", "/var/log/\"odd\".log"} {
			b := w.wrap([]byte(line), path)
			var r rec
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("%q: not JSON: %v: %s", line, err, b)
			}
			var want string
			_ = json.Unmarshal(must(json.Marshal(line)), &want) // encoding/json's view of the line
			if r.Data != want || r.Host != "web-1" || r.InstanceID != "i-0abc" || r.Region != "eu-west-1" || r.Path != path {
				t.Errorf("%q at %s: got %+v", line, path, r)
			}
		}
	}
	// Unknown values (IMDS unreachable) are left out, not sent empty.
	w = newLineWrapper(&config.AddMetadata{Hostname: true, Region: true}, Metadata{Host: "h"})
	if got := string(w.wrap([]byte("x"), "/p")); got != `{"data":"x","host":"h"}` {
		t.Errorf("wrap = %s", got)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkLineWrapper(b *testing.B) {
	w := newLineWrapper(&config.AddMetadata{Hostname: true, InstanceID: true, Region: true, FilePath: true},
		Metadata{Host: "ip-10-0-0-1", InstanceID: "i-0abc", Region: "eu-west-1"})
	line := []byte(`10.0.0.7 - - [27/Nov/2026:21:51:38 +0000] "GET /api/v1/items?page=2 HTTP/1.1" 200 1532 "-" "Mozilla/5.0"`)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		w.wrap(line, "/var/log/app/access.log")
	}
}
