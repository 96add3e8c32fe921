package config

import (
	"strings"
	"testing"
	"time"
)

func TestFirehoseAndHTTPDestinations(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte(`flows:
  - name: fh
    paths: [/var/log/a.log]
    firehose: {delivery_stream: app-logs}
  - name: web
    paths: [/var/log/b.log]
    http:
      url: https://logs.example.com/ingest
      format: raw
      compression: zstd
      headers: {authorization: "Bearer x", X-Source: kinship}
      timeout: 5s
      tls: {ca_file: /etc/kinship/ca.pem, insecure_skip_verify: false}
  - name: defaults
    paths: [/var/log/c.log]
    http: {url: "http://127.0.0.1:8080/"}
`))
	if err != nil {
		t.Fatal(err)
	}
	fh, web, def := cfg.Flows[0], cfg.Flows[1], cfg.Flows[2]
	if fh.Destination() != "firehose" || fh.Firehose.DeliveryStream != "app-logs" {
		t.Errorf("firehose flow: %q %+v", fh.Destination(), fh.Firehose)
	}
	if fh.Batch.MaxBytes != FirehoseMaxRecordBytes {
		t.Errorf("firehose flow: default batch.max_bytes %s, want %s (one Firehose record)", fh.Batch.MaxBytes, FirehoseMaxRecordBytes)
	}
	h := web.HTTP
	if web.Destination() != "http" || h.URL != "https://logs.example.com/ingest" || h.Format != "raw" || h.Compression != "zstd" ||
		h.Timeout.D() != 5*time.Second || h.TLS.CAFile != "/etc/kinship/ca.pem" ||
		h.Headers["Authorization"] != "Bearer x" || h.Headers["X-Source"] != "kinship" {
		t.Errorf("http flow: %+v", h)
	}
	if d := def.HTTP; d.Format != "ndjson" || d.Compression != "none" || d.Timeout != DefaultHTTPTimeout {
		t.Errorf("http defaults: %+v", d)
	}
}

func TestFirehoseAndHTTPErrors(t *testing.T) {
	_, err := Parse("k.yaml", []byte(`flows:
  - name: a
    paths: [/a]
    firehose: {delivery_stream: "bad name!"}
    batch: {max_bytes: 1MiB}
  - name: b
    paths: [/a]
    http:
      url: /relative/path
      format: xml
      compression: brotli
      headers: {Content-Encoding: br, "bad header": x}
      timeout: 0s
  - name: c
    paths: [/a]
    http: {url: "ftp://example.com/"}
    firehose: {delivery_stream: x}
`))
	if err == nil {
		t.Fatal("parsed without error")
	}
	got := errorLines(t, err, "k.yaml")
	want := []string{
		`4:33: firehose.delivery_stream: "bad name!": not a delivery stream name`,
		`5:24: batch.max_bytes: 1MiB is larger than the largest Firehose record (1000KiB)`,
		`9:12: http.url: "/relative/path": must be an absolute http(s) URL`,
		`10:15: http.format: "xml": must be ndjson`,
		`11:20: http.compression: "brotli": must be none, gzip or zstd`,
		`12:17: http.headers: Content-Encoding is set by kinship`,
		`12:39: http.headers: "bad header" is not a header name`,
		`13:16: http.timeout: "0s": must be positive`,
		`16:17: http.url: "ftp://example.com/": must be an absolute http(s) URL`,
		`17:5: flow "c": more than one destination (http, firehose); a flow has exactly one`,
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("missing problem %q", want[i])
		case i >= len(want):
			t.Errorf("unexpected problem %q", got[i])
		default:
			pos, frag, _ := strings.Cut(want[i], ": ")
			if !strings.HasPrefix(got[i], pos+": ") || !strings.Contains(got[i], frag) {
				t.Errorf("problem %d:\n got %q\nwant %q", i, got[i], want[i])
			}
		}
	}
	if strings.Contains(err.Error(), "Bearer") {
		t.Error("an error message repeats a header value")
	}
}
