package config

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// CloudWatch configures publishing metrics to Amazon CloudWatch (metrics.cloudwatch; the
// Kinesis Agent's cloudwatch.* keys), for fleets whose alarms watch the Kinesis Agent's
// metrics (BytesSent, RecordSendAttempts, RecordSendErrors, RecordsSent, ServiceErrors).
type CloudWatch struct {
	Enabled     bool
	Namespace   string   // [DefaultCloudWatchNamespace; AWSKinesisAgent for an agent.json]
	Endpoint    string   // absolute http(s) URL; empty: the SDK's endpoint resolution
	TagInstance bool     // add the instance id as a dimension
	Interval    Duration // metrics are buffered this long between sends [30s]
}

// Defaults of metrics.cloudwatch.
const (
	DefaultCloudWatchNamespace = "kinship"
	AgentCloudWatchNamespace   = "AWSKinesisAgent" // the Kinesis Agent's, and so an agent.json's
	DefaultCloudWatchInterval  = Duration(30e9)
)

var (
	cloudWatchKeys = []string{"enabled", "namespace", "endpoint", "tag_instance", "interval"}
	// CloudWatch's own rule for namespaces, so that a typo fails validate rather than every
	// PutMetricData.
	namespaceRE = regexp.MustCompile(`^[0-9A-Za-z._/#: -]{1,255}$`)
)

// cloudWatchDoc is what one file says of metrics.cloudwatch: nil is not said.
type cloudWatchDoc struct {
	enabled, tagInstance *bool
	namespace, endpoint  *string
	interval             *Duration
}

func (c *cloudWatchDoc) mergeInto(dst *CloudWatch) {
	if c.enabled != nil {
		dst.Enabled = *c.enabled
	}
	if c.tagInstance != nil {
		dst.TagInstance = *c.tagInstance
	}
	if c.namespace != nil {
		dst.Namespace = *c.namespace
	}
	if c.endpoint != nil {
		dst.Endpoint = *c.endpoint
	}
	if c.interval != nil {
		dst.Interval = *c.interval
	}
}

// checkNamespace says what is wrong with a CloudWatch namespace, or "".
func checkNamespace(s string) string {
	switch {
	case !namespaceRE.MatchString(s):
		return "want 1 to 255 of A-Z a-z 0-9 . - _ / # : and space"
	case strings.HasPrefix(s, "AWS/"):
		return "AWS/ is reserved for AWS services' own metrics"
	}
	return ""
}

// checkHTTPURL says what is wrong with an endpoint URL, or "".
func checkHTTPURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an absolute http(s) URL (e.g. https://monitoring.us-east-1.amazonaws.com)"
	}
	return ""
}

func (d *decoder) cloudWatch(n *yaml.Node, c *cloudWatchDoc) {
	for _, x := range d.mapping(n, "metrics.cloudwatch", "in metrics.cloudwatch", cloudWatchKeys) {
		key := "metrics.cloudwatch." + x.key
		switch x.key {
		case "enabled", "tag_instance":
			if b, ok := d.boolean(x.v, key); ok {
				if x.key == "enabled" {
					c.enabled = &b
				} else {
					c.tagInstance = &b
				}
			}
		case "namespace":
			if s, ok := d.str(x.v, key); ok {
				if msg := checkNamespace(s); msg != "" {
					d.errorf(x.v, "%s: %q: %s", key, s, msg)
				}
				c.namespace = &s
			}
		case "endpoint":
			if s, ok := d.str(x.v, key); ok {
				if msg := checkHTTPURL(s); s != "" && msg != "" {
					d.errorf(x.v, "%s: %q: %s", key, s, msg)
				}
				c.endpoint = &s
			}
		case "interval":
			var v Duration
			if d.positiveDuration(x.v, key, &v) {
				c.interval = &v
			}
		}
	}
}

// cloudWatch maps agent.json's cloudwatch.* keys to metrics.cloudwatch.
func (t *agentTranslator) cloudWatch(k jkey) {
	c := &t.doc.cloudwatch
	switch k.name {
	case "cloudwatch.emitMetrics", "cloudwatch.tagInstance":
		if b, ok := t.boolean(k, ""); ok {
			if k.name == "cloudwatch.emitMetrics" {
				c.enabled = &b
			} else {
				c.tagInstance = &b
			}
		}
	case "cloudwatch.namespace":
		if s, ok := t.str(k, ""); ok {
			if msg := checkNamespace(s); msg != "" {
				t.errorf(k.val.off, "%s: %q: %s", k.name, s, msg)
			}
			c.namespace = &s
		}
	case "cloudwatch.endpoint":
		s, ok := t.str(k, "")
		if !ok || strings.TrimSpace(s) == "" {
			return // the guides' templates write "" for the default
		}
		raw := strings.TrimSpace(s)
		if !strings.Contains(raw, "://") {
			raw = "https://" + raw // the Kinesis Agent's endpoints are often written without a scheme
		}
		if msg := checkHTTPURL(raw); msg != "" {
			t.errorf(k.val.off, "%s: %q: %s", k.name, s, msg)
		}
		raw = strings.TrimSuffix(raw, "/")
		c.endpoint = &raw
	case "cloudwatch.metricsBufferTimeMillis":
		if v, ok := t.integer(k, "", 1); ok {
			d := Duration(time.Duration(v) * time.Millisecond)
			c.interval = &d
		}
	}
}
