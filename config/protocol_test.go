package config

import (
	"strings"
	"testing"
)

func TestKinesisProtocol(t *testing.T) {
	for doc, want := range map[string]string{
		`kinesis: {stream: s}`:                 "cbor",
		`kinesis: {stream: s, protocol: json}`: "json",
		`kinesis: {stream: s, protocol: cbor}`: "cbor",
	} {
		cfg, err := Parse("k.yaml", []byte("flows:\n  - name: a\n    paths: [/a]\n    "+doc+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if got := cfg.Flows[0].Kinesis.Protocol; got != want {
			t.Errorf("%s: protocol %q, want %q", doc, got, want)
		}
	}
	_, err := Parse("k.yaml", []byte("flows:\n  - name: a\n    paths: [/a]\n    kinesis: {stream: s, protocol: xml}\n"))
	if want := `k.yaml:4:36: kinesis.protocol: "xml": must be cbor or json`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("protocol xml: got %v, want %s", err, want)
	}
}
