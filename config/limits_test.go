package config

import (
	"strings"
	"testing"
)

// Every destination bounds its requests in flight, default 4; zero or negative is refused.
func TestMaxInFlightPerDestination(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`flows:
  - name: k
    paths: [/a]
    kinesis: {stream: s, max_in_flight: 7}
  - name: fh
    paths: [/a]
    firehose: {delivery_stream: d, max_in_flight: 2}
  - name: web
    paths: [/a]
    http: {url: "http://127.0.0.1:8080/", max_in_flight: 16}
  - name: fh-default
    paths: [/a]
    firehose: {delivery_stream: d}
  - name: web-default
    paths: [/a]
    http: {url: "http://127.0.0.1:8080/"}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Flows
	if f[0].Kinesis.MaxInFlight != 7 || f[1].Firehose.MaxInFlight != 2 || f[2].HTTP.MaxInFlight != 16 ||
		f[3].Firehose.MaxInFlight != DefaultMaxInFlight || f[4].HTTP.MaxInFlight != DefaultMaxInFlight {
		t.Errorf("max_in_flight: kinesis %d, firehose %d, http %d, defaults %d %d", f[0].Kinesis.MaxInFlight,
			f[1].Firehose.MaxInFlight, f[2].HTTP.MaxInFlight, f[3].Firehose.MaxInFlight, f[4].HTTP.MaxInFlight)
	}

	_, err = Parse("k.yaml", []byte(`flows:
  - name: fh
    paths: [/a]
    firehose: {delivery_stream: d, max_in_flight: 0}
  - name: web
    paths: [/a]
    http: {url: "http://127.0.0.1:8080/", max_in_flight: -1}
`))
	for _, want := range []string{"k.yaml:4:51: firehose.max_in_flight: 0: must be positive",
		"k.yaml:7:58: http.max_in_flight: -1: must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// Streams whose record limit was raised with UpdateMaxRecordSize take records up to 10 MiB,
// and PutRecords requests up to 10 MiB; the defaults stay at 1 MiB and 5 MiB.
func TestKinesisLargeRecordLimits(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`flows:
  - name: big
    paths: [/a]
    kinesis: {stream: s, max_record_bytes: 10MiB, max_request_bytes: 10MiB}
    batch: {max_bytes: 10MiB}
  - name: default
    paths: [/a]
    kinesis: {stream: s}
`))
	if err != nil {
		t.Fatal(err)
	}
	big, def := cfg.Flows[0], cfg.Flows[1]
	if big.Kinesis.MaxRecordBytes != 10*MiB || big.Kinesis.MaxRequestBytes != 10*MiB || big.Batch.MaxBytes != 10*MiB {
		t.Errorf("raised limits: record %s, request %s, batch %s", big.Kinesis.MaxRecordBytes, big.Kinesis.MaxRequestBytes, big.Batch.MaxBytes)
	}
	if def.Kinesis.MaxRecordBytes != MiB || def.Kinesis.MaxRequestBytes != 5*MiB || def.Batch.MaxBytes != MiB {
		t.Errorf("defaults: record %s, request %s, batch %s", def.Kinesis.MaxRecordBytes, def.Kinesis.MaxRequestBytes, def.Batch.MaxBytes)
	}

	_, err = Parse("k.yaml", []byte(`flows:
  - name: big
    paths: [/a]
    kinesis: {stream: s, max_record_bytes: 10MiB, max_request_bytes: 11MiB}
`))
	if err == nil || !strings.Contains(err.Error(), "max_request_bytes: 11MiB is larger") {
		t.Errorf("11MiB request: %v", err)
	}
}
