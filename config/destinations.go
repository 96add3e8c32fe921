package config

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Firehose is the Amazon Data Firehose destination: lines are unpacked from the aggregated
// records and sent newline-terminated, one Firehose record per aggregate.
type Firehose struct {
	DeliveryStream string
	MaxInFlight    int // concurrent PutRecordBatch requests [DefaultMaxInFlight]
	// RecordPerLine: each line is its own Firehose record instead of the aggregate's lines
	// joined into one (agent.json flows without aggregatedRecordSizeBytes, as the Kinesis
	// Agent sends them).
	RecordPerLine bool
	// JoinBytes > 0: lines are joined into one Firehose record while their bytes together
	// stay within it, and a longer line is a record of its own, whole (agent.json's
	// aggregatedRecordSizeBytes, as the Kinesis Agent's AggregationSplitter joins them).
	JoinBytes Size
}

// HTTP is the HTTP destination: batches of lines POSTed to URL.
type HTTP struct {
	URL         string
	Format      string // "ndjson" or "raw"
	Compression string // "none", "gzip" or "zstd"
	Headers     map[string]string
	Timeout     Duration
	TLS         HTTPTLS
	MaxInFlight int // concurrent POSTs [DefaultMaxInFlight]
}

// HTTPTLS configures how the HTTP destination verifies the receiver.
type HTTPTLS struct {
	CAFile             string // PEM bundle used instead of the system roots; empty: system roots
	InsecureSkipVerify bool
}

// Defaults of the firehose and http destinations.
const (
	// FirehoseMaxRecordBytes is the largest Firehose record (1,000 KiB): it bounds
	// batch.max_bytes of a firehose flow, so that one aggregate's lines fit in one record.
	FirehoseMaxRecordBytes = 1000 * KiB
	DefaultHTTPFormat      = "ndjson"
	DefaultHTTPCompression = "none"
	DefaultHTTPTimeout     = Duration(30e9)
)

var (
	firehoseKeys = []string{"delivery_stream", "max_in_flight"}
	httpKeys     = []string{"url", "format", "compression", "headers", "timeout", "tls", "max_in_flight"}
	httpTLSKeys  = []string{"ca_file", "insecure_skip_verify"}

	deliveryStreamRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

func (d *decoder) firehose(fl field, label string) *Firehose {
	f := &Firehose{MaxInFlight: DefaultMaxInFlight}
	set := false
	for _, x := range d.mapping(fl.v, "firehose", "in firehose of "+label, firehoseKeys) {
		if x.key == "max_in_flight" {
			d.maxInFlight(x.v, "firehose.max_in_flight", &f.MaxInFlight)
			continue
		}
		if x.key != "delivery_stream" {
			continue
		}
		set = true
		s, ok := d.str(x.v, "firehose.delivery_stream")
		if !ok {
			continue
		}
		if !deliveryStreamRE.MatchString(s) {
			d.errorf(x.v, "firehose.delivery_stream: %q: not a delivery stream name (1 to 64 of A-Z a-z 0-9 _ . -)", s)
		}
		f.DeliveryStream = s
	}
	if !set {
		d.errorf(fl.k, "firehose.delivery_stream is required (the name of the Firehose delivery stream)")
	}
	return f
}

func (d *decoder) http(fl field, label string) *HTTP {
	h := &HTTP{Format: DefaultHTTPFormat, Compression: DefaultHTTPCompression, Timeout: DefaultHTTPTimeout,
		MaxInFlight: DefaultMaxInFlight}
	set := false
	for _, x := range d.mapping(fl.v, "http", "in http of "+label, httpKeys) {
		switch x.key {
		case "url":
			set = true
			s, ok := d.str(x.v, "http.url")
			if !ok {
				continue
			}
			if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.errorf(x.v, "http.url: %q: must be an absolute http(s) URL (e.g. https://logs.example.com/ingest)", s)
			}
			h.URL = s
		case "format":
			if s, ok := d.str(x.v, "http.format"); ok {
				if s != "ndjson" && s != "raw" {
					d.errorf(x.v, "http.format: %q: must be ndjson (one {\"line\": ...} object per line) or raw (the lines as read)", s)
				}
				h.Format = s
			}
		case "compression":
			if s, ok := d.str(x.v, "http.compression"); ok {
				if s != "none" && s != "gzip" && s != "zstd" {
					d.errorf(x.v, "http.compression: %q: must be none, gzip or zstd", s)
				}
				h.Compression = s
			}
		case "max_in_flight":
			d.maxInFlight(x.v, "http.max_in_flight", &h.MaxInFlight)
		case "headers":
			h.Headers = d.headers(x.v)
		case "timeout":
			d.positiveDuration(x.v, "http.timeout", &h.Timeout)
		case "tls":
			for _, t := range d.mapping(x.v, "http.tls", "in http.tls of "+label, httpTLSKeys) {
				switch t.key {
				case "ca_file":
					if s, ok := d.str(t.v, "http.tls.ca_file"); ok {
						if s == "" {
							d.errorf(t.v, "http.tls.ca_file: must not be empty (omit it to use the system's roots)")
						}
						h.TLS.CAFile = s
					}
				case "insecure_skip_verify":
					if b, ok := d.boolean(t.v, "http.tls.insecure_skip_verify"); ok {
						h.TLS.InsecureSkipVerify = b
					}
				}
			}
		}
	}
	if !set {
		d.errorf(fl.k, "http.url is required (where batches of lines are POSTed)")
	}
	return h
}

// maxInFlight reads a destination's bound on concurrent requests.
func (d *decoder) maxInFlight(n *yaml.Node, what string, dst *int) {
	if v, ok := d.integer(n, what); ok {
		if v <= 0 {
			d.errorf(n, "%s: %d: must be positive", what, v)
		}
		*dst = v
	}
}

// headers reads a mapping of header names to string values. Values are not echoed in
// errors: they are often tokens.
func (d *decoder) headers(n *yaml.Node) map[string]string {
	n = d.resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "http.headers: expected a mapping of header names to values, got %s", kindName(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i]), d.resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || !validHeaderName(k.Value) {
			d.errorf(k, "http.headers: %q is not a header name", k.Value)
			continue
		}
		canon := http.CanonicalHeaderKey(k.Value)
		if _, dup := out[canon]; dup {
			d.errorf(k, "http.headers: %s repeated", canon)
			continue
		}
		switch canon {
		case "Content-Encoding", "Content-Length", "Host", "Transfer-Encoding":
			d.errorf(k, "http.headers: %s is set by kinship (use http.compression for the encoding)", canon)
			continue
		}
		if v.Kind != yaml.ScalarNode || isNull(v) || strings.ContainsAny(v.Value, "\r\n") {
			d.errorf(v, "http.headers.%s: expected a one-line string value", k.Value)
			continue
		}
		out[canon] = v.Value
	}
	return out
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c > 127 || !(c == '-' || c == '_' || c == '!' || c == '#' || c == '$' || c == '%' || c == '&' ||
			c == '\'' || c == '*' || c == '+' || c == '.' || c == '^' || c == '`' || c == '|' || c == '~' ||
			(c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}

func (d *decoder) kinesis(fl field, label string) *Kinesis {
	k := &Kinesis{
		PartitionKey:   DefaultPartitionKey,
		Aggregate:      true,
		MaxRecordBytes: DefaultMaxRecordBytes,
		MaxInFlight:    DefaultMaxInFlight,
		Compression:    "none",
		Protocol:       DefaultKinesisProtocol,
	}
	var streamSet bool
	var requestNode, fieldNode, regexNode, compressionNode *yaml.Node
	for _, x := range d.mapping(fl.v, "kinesis", "in kinesis of "+label, kinesisKeys) {
		switch x.key {
		case "stream":
			s, ok := d.str(x.v, "kinesis.stream")
			streamSet = true
			if !ok {
				continue
			}
			if !strings.HasPrefix(s, "arn:") && !streamNameRE.MatchString(s) {
				d.errorf(x.v, "kinesis.stream: %q: not a stream name (1 to 128 of A-Z a-z 0-9 _ . -) or a stream ARN", s)
			}
			k.Stream = s
		case "partition_key":
			if s, ok := d.str(x.v, "kinesis.partition_key"); ok {
				if n := utf8.RuneCountInString(s); n < 1 || n > maxPartKeyLen {
					d.errorf(x.v, "kinesis.partition_key: must be random, host or a fixed key of 1 to %d characters (got %d)", maxPartKeyLen, n)
				}
				k.PartitionKey = s
			}
		case "partition_key_field":
			fieldNode = x.v
			if s, ok := d.str(x.v, "kinesis.partition_key_field"); ok {
				if !keyFieldRE.MatchString(s) {
					d.errorf(x.v, "kinesis.partition_key_field: %q: must be a dotted path of JSON object keys, like user.id", s)
				}
				k.PartitionKeyField = s
			}
		case "partition_key_regex":
			regexNode = x.v
			if s, ok := d.str(x.v, "kinesis.partition_key_regex"); ok {
				re, err := regexp.Compile(s)
				switch {
				case err != nil:
					d.errorf(x.v, "kinesis.partition_key_regex: %q: %v", s, errorsTrim(err))
				case re.NumSubexp() != 1:
					d.errorf(x.v, "kinesis.partition_key_regex: %q: must have exactly one capture group (the key), has %d", s, re.NumSubexp())
				default:
					k.PartitionKeyRegex, k.PartitionKeyPattern = re, s
				}
			}
		case "aggregate":
			if b, ok := d.boolean(x.v, "kinesis.aggregate"); ok {
				k.Aggregate = b
			}
		case "max_record_bytes":
			if d.positiveSize(x.v, "kinesis.max_record_bytes", &k.MaxRecordBytes) && k.MaxRecordBytes > KinesisMaxRecordBytes {
				d.errorf(x.v, "kinesis.max_record_bytes: %s is larger than Kinesis allows (10MiB)", k.MaxRecordBytes)
			}
		case "max_request_bytes":
			if d.positiveSize(x.v, "kinesis.max_request_bytes", &k.MaxRequestBytes) {
				requestNode = x.v
				if k.MaxRequestBytes > KinesisMaxRecordBytes {
					d.errorf(x.v, "kinesis.max_request_bytes: %s is larger than a PutRecords request may be (10MiB)", k.MaxRequestBytes)
				}
			}
		case "compression":
			if s, ok := d.str(x.v, "kinesis.compression"); ok {
				if s != "none" && s != "gzip" && s != "zstd" {
					d.errorf(x.v, "kinesis.compression: %q: must be none, gzip or zstd (compressed records are not plain KPL: only consumers that decompress can read them)", s)
				}
				k.Compression = s
				compressionNode = x.v
			}
		case "protocol":
			if s, ok := d.str(x.v, "kinesis.protocol"); ok {
				if s != "cbor" && s != "json" {
					d.errorf(x.v, "kinesis.protocol: %q: must be cbor or json", s)
				}
				k.Protocol = s
			}
		case "max_in_flight":
			if v, ok := d.integer(x.v, "kinesis.max_in_flight"); ok {
				if v <= 0 {
					d.errorf(x.v, "kinesis.max_in_flight: %d: must be positive", v)
				}
				k.MaxInFlight = v
			}
		}
	}
	if fieldNode != nil && regexNode != nil {
		d.errorf(regexNode, "kinesis.partition_key_regex: only one of partition_key_field and partition_key_regex may be set")
	}
	if compressionNode != nil && k.Compression != "none" && (fieldNode != nil || regexNode != nil) {
		// The shipper re-splits keyed aggregates after a reshard, which needs them readable.
		d.errorf(compressionNode, "kinesis.compression: %s cannot be combined with a partition key taken from the line (partition_key_field/partition_key_regex); set compression: none", k.Compression)
	}
	if !streamSet {
		d.errorf(fl.k, "kinesis.stream is required (the name of the Kinesis data stream)")
	}
	if requestNode == nil {
		k.MaxRequestBytes = max(DefaultMaxRequestBytes, k.MaxRecordBytes)
	} else if k.MaxRequestBytes < k.MaxRecordBytes {
		d.errorf(requestNode, "kinesis.max_request_bytes: %s is smaller than kinesis.max_record_bytes (%s)", k.MaxRequestBytes, k.MaxRecordBytes)
	}
	return k
}
