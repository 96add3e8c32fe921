package config

import (
	"strings"
	"testing"
)

func TestPartitionKeyFromLine(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`flows:
  - name: j
    paths: [/a]
    kinesis: {stream: s, partition_key_field: user.id, partition_key: host}
  - name: r
    paths: [/a]
    kinesis: {stream: s, partition_key_regex: 'user=(\w+)'}
`))
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.Flows[0].Kinesis; k.PartitionKeyField != "user.id" || k.PartitionKey != "host" || k.PartitionKeyRegex != nil {
		t.Errorf("field flow: %+v", k)
	}
	if k := cfg.Flows[1].Kinesis; k.PartitionKeyRegex == nil || k.PartitionKeyPattern != `user=(\w+)` || k.PartitionKey != "random" {
		t.Errorf("regex flow: %+v", k)
	}
}

func TestPartitionKeyFromLineErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`kinesis: {stream: s, partition_key_field: user.id, partition_key_regex: 'u=(\w+)'}`,
			`k.yaml:4:77: kinesis.partition_key_regex: only one of partition_key_field and partition_key_regex may be set`},
		{`kinesis: {stream: s, partition_key_regex: 'u=\w+'}`,
			`k.yaml:4:47: kinesis.partition_key_regex: "u=\\w+": must have exactly one capture group (the key), has 0`},
		{`kinesis: {stream: s, partition_key_regex: '(a)(b)'}`, `has 2`},
		{`kinesis: {stream: s, partition_key_regex: 'u=(\w+'}`, `kinesis.partition_key_regex: "u=(\\w+": missing closing )`},
		{`kinesis: {stream: s, partition_key_field: "user..id"}`, `k.yaml:4:47: kinesis.partition_key_field: "user..id": must be a dotted path`},
		{`kinesis: {stream: s, partition_key_field: ""}`, `kinesis.partition_key_field`},
		{`kinesis: {stream: s, partition_key_field: user.id, compression: zstd}`,
			`k.yaml:4:69: kinesis.compression: zstd cannot be combined with a partition key taken from the line`},
	} {
		_, err := Parse("k.yaml", []byte("flows:\n  - name: a\n    paths: [/a]\n    "+tc.doc+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.doc, err, tc.want)
		}
	}
}
