package config

// agent.json's kinesis.endpoint and firehose.endpoint: in the Kinesis Agent an endpoint is
// also how the region is chosen, so they map to aws.region or aws.endpoint.

import (
	"net/url"
	"regexp"
	"strings"
)

var (
	kinesisHostRE  = regexp.MustCompile(`^kinesis(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)
	firehoseHostRE = regexp.MustCompile(`^firehose(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)
	regionInHost   = regexp.MustCompile(`(?:^|\.)([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9])\.`)
)

// endpoint maps kinesis.endpoint. In the Kinesis Agent the endpoint is how a region is
// chosen, so a standard regional endpoint becomes aws.region (the SDK then builds the same
// URL); any other endpoint (VPC endpoint, local test) becomes aws.endpoint, with the region
// taken from the host name when it names one. The guides show it with and without a scheme.
func (t *agentTranslator) endpoint(k jkey) {
	s, ok := t.str(k, "")
	if !ok || strings.TrimSpace(s) == "" {
		return // the guides' templates write "kinesis.endpoint": "" for the default
	}
	raw := strings.TrimSpace(s)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.errorf(k.val.off, "%s: %q: not an endpoint (e.g. https://kinesis.us-west-2.amazonaws.com)", k.name, s)
		return
	}
	host := strings.ToLower(u.Hostname())
	if m := kinesisHostRE.FindStringSubmatch(host); m != nil && u.Scheme == "https" && (u.Path == "" || u.Path == "/") {
		region := m[1]
		t.doc.region = &region
		return
	}
	ep := strings.TrimSuffix(raw, "/")
	t.doc.endpoint = &ep
	if m := regionInHost.FindStringSubmatch(host); m != nil {
		region := m[1]
		t.doc.region = &region
	}
}

// firehoseEndpoint maps firehose.endpoint like endpoint maps kinesis.endpoint: a standard
// regional endpoint gives the region, any other becomes aws.firehose_endpoint (Firehose
// clients only, so that kinesis.endpoint still applies to Kinesis).
func (t *agentTranslator) firehoseEndpoint(k jkey) {
	s, ok := t.str(k, "")
	if !ok || strings.TrimSpace(s) == "" {
		return // the guides' templates write "firehose.endpoint": "" next to Kinesis flows
	}
	raw := strings.TrimSpace(s)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.errorf(k.val.off, "%s: %q: not an endpoint (e.g. https://firehose.us-west-2.amazonaws.com)", k.name, s)
		return
	}
	host := strings.ToLower(u.Hostname())
	if m := firehoseHostRE.FindStringSubmatch(host); m != nil && u.Scheme == "https" && (u.Path == "" || u.Path == "/") {
		t.setRegion(k.name, m[1])
		return
	}
	ep := strings.TrimSuffix(raw, "/")
	t.doc.firehoseEndpoint = &ep
	if m := regionInHost.FindStringSubmatch(host); m != nil {
		t.setRegion(k.name, m[1])
	}
}

// setRegion sets the region from a Firehose key. kinship uses one region for every service
// while the Kinesis Agent may name one per service: the Kinesis keys win, and a Firehose
// region that differs from a region already set is named in a warning.
func (t *agentTranslator) setRegion(from, region string) {
	if t.doc.region != nil && *t.doc.region != region {
		t.warnf("%s: region %s differs from %s, already taken from another key: kinship uses one region for Kinesis and Firehose; %s is ignored", from, region, *t.doc.region, region)
		return
	}
	t.doc.region = &region
}
