package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"go.yaml.in/yaml/v3"
)

// document is what one file says, before drop-ins are merged: nil pointers are keys the
// file does not set, so that a later file overrides only what it mentions.
type document struct {
	name                                        string
	empty                                       bool
	stateDir, region, endpoint, roleARN, listen *string
	externalID, sessionName                     *string
	roleOnlyKey                                 string // the last key that means nothing without role_arn,
	roleOnlyAt                                  Pos    // and where it was written
	unhealthyAfter                              *Duration
	spoolMaxBytes                               *Size // the global spool bound
	spoolMaxPos                                 Pos
	flows                                       []Flow
	flowsKey                                    *Pos // where "flows:" was written, if it was
	flowsBroken                                 bool // flows were written but unreadable: already reported
	firehoseEndpoint                            *string
	cloudwatch                                  cloudWatchDoc
	agentCheckpoints                            *AgentCheckpoints // agent.json only
	agentDifferences                            []Difference      // agent.json only
}

var (
	topKeys       = []string{"state_dir", "aws", "metrics", "spool", "flows"}
	awsKeys       = []string{"region", "endpoint", "role_arn", "external_id", "role_session_name", "firehose_endpoint"}
	metricsKeys   = []string{"listen", "unhealthy_after", "cloudwatch"}
	flowKeys      = []string{"name", "paths", "exclude", "start_at", "multiline", "max_line_bytes", "poll_interval", "close_inactive", "partial_line_timeout", "skip_header_lines", "truncated_record_terminator", "follow_symlinks", "delete_after_shipped", "kinesis", "firehose", "http", "discard", "batch", "spool", "add_metadata", "processors"}
	metadataKeys  = []string{"hostname", "instance_id", "region", "file_path"}
	multilineKeys = []string{"start_pattern", "max_lines", "max_bytes", "timeout"}
	kinesisKeys   = []string{"stream", "partition_key", "partition_key_field", "partition_key_regex", "aggregate", "max_record_bytes", "max_request_bytes", "max_in_flight", "compression", "protocol"}
	batchKeys     = []string{"max_age", "max_bytes", "max_records"}
	spoolKeys     = []string{"max_bytes", "when_full", "fsync_interval", "segment_bytes", "compression", "write"}

	flowNameRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	streamNameRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	externalIDRE  = regexp.MustCompile(`^[\w+=,.@:/-]+$`) // and 2 to 1224 long
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	yamlErrorRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	keyFieldRE    = regexp.MustCompile(`^[^.\s]+(\.[^.\s]+)*$`)
)

// globalSpoolKeys are the keys of the top-level spool block (the bound of all flows together).
var globalSpoolKeys = []string{"max_bytes"}

const (
	maxFlowNameLen = 128
	maxPartKeyLen  = 256 // Kinesis counts Unicode characters
	// nodeBudget bounds the work done on one document: aliases and merge keys can make a
	// small file expand exponentially ("billion laughs").
	nodeBudget    = 1 << 20
	maxMergeDepth = 16
)

type decoder struct {
	name      string
	p         *problems
	budget    int
	exhausted bool
	// unknownSeen keeps a key merged into several flows (<<: *base) from being reported once per flow.
	unknownSeen map[*yaml.Node]bool
	// translated: the nodes come from an agent.json, not from the operator's YAML.
	translated bool
}

type field struct {
	key  string
	k, v *yaml.Node
}

func decodeDocument(name string, data []byte, p *problems) *document {
	doc := &document{name: name}
	d := &decoder{name: name, p: p, budget: nodeBudget}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			doc.empty = true
		} else {
			d.yamlError(err)
			doc.flowsBroken = true // the parse error says it all
		}
		return doc
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "a second YAML document (after ---) is not supported; put more flows in conf.d/*.yaml instead")
	} else if !errors.Is(err, io.EOF) {
		d.yamlError(err)
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			doc.empty = true
			return doc
		}
		n = n.Content[0]
	}
	n = d.resolve(n)
	if isNull(n) {
		doc.empty = true
		return doc
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "expected a mapping of settings (%s), got %s", strings.Join(topKeys, ", "), kindName(n))
		doc.flowsBroken = true
		return doc
	}
	for _, f := range d.mapping(n, "", "at the top level", topKeys) {
		switch f.key {
		case "state_dir":
			if s, ok := d.str(f.v, f.key); ok {
				if !filepath.IsAbs(s) {
					d.errorf(f.v, "state_dir: %q: must be an absolute path", s)
				}
				s = filepath.Clean(s)
				doc.stateDir = &s
			}
		case "aws":
			d.aws(f.v, doc)
		case "metrics":
			for _, m := range d.mapping(f.v, "metrics", "in metrics", metricsKeys) {
				if m.key == "cloudwatch" {
					d.cloudWatch(m.v, &doc.cloudwatch)
					continue
				}
				if m.key == "unhealthy_after" {
					var v Duration
					if d.positiveDuration(m.v, "metrics.unhealthy_after", &v) {
						doc.unhealthyAfter = &v
					}
					continue
				}
				if s, ok := d.str(m.v, "metrics.listen"); ok {
					if s != "" {
						if msg := checkListen(s); msg != "" {
							d.errorf(m.v, "metrics.listen: %q: %s", s, msg)
						}
					}
					doc.listen = &s
				}
			}
		case "spool":
			for _, m := range d.mapping(f.v, "spool", "in the top-level spool (the bound of all flows' spools together; a flow's own spool settings go in the flow)", globalSpoolKeys) {
				var v Size
				if d.positiveSize(m.v, "spool.max_bytes", &v) {
					doc.spoolMaxBytes, doc.spoolMaxPos = &v, d.pos(m.v)
				}
			}
		case "flows":
			pos := d.pos(f.k)
			doc.flowsKey = &pos
			d.flows(f.v, doc)
		}
	}
	return doc
}

func (d *decoder) aws(n *yaml.Node, doc *document) {
	for _, f := range d.mapping(n, "aws", "in aws", awsKeys) {
		s, ok := d.str(f.v, "aws."+f.key)
		if !ok {
			continue
		}
		switch f.key {
		case "region":
			if strings.ContainsAny(s, " \t/") {
				d.errorf(f.v, "aws.region: %q: not a region name (e.g. us-east-1)", s)
			}
			doc.region = &s
		case "endpoint", "firehose_endpoint":
			if s != "" {
				u, err := url.Parse(s)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					d.errorf(f.v, "aws.%s: %q: must be an absolute http(s) URL (e.g. http://127.0.0.1:4567)", f.key, s)
				}
			}
			if f.key == "endpoint" {
				doc.endpoint = &s
			} else {
				doc.firehoseEndpoint = &s
			}
		case "role_arn":
			if s != "" && (!strings.HasPrefix(s, "arn:") || !strings.Contains(s, ":role/")) {
				d.errorf(f.v, "aws.role_arn: %q: not an IAM role ARN (e.g. arn:aws:iam::123456789012:role/kinship)", s)
			}
			doc.roleARN = &s
		case "external_id":
			// STS's own limits, so that a typo fails validate rather than every AssumeRole.
			if s != "" && (len(s) < 2 || len(s) > 1224 || !externalIDRE.MatchString(s)) {
				d.errorf(f.v, "aws.external_id: %q: want 2 to 1224 characters of letters, digits and +=,.@:/-", s)
			}
			doc.externalID = &s
			if s != "" {
				doc.roleOnlyKey, doc.roleOnlyAt = "aws.external_id", d.pos(f.k)
			}
		case "role_session_name":
			if s != "" && !sessionNameRE.MatchString(s) {
				d.errorf(f.v, "aws.role_session_name: %q: want 2 to 64 characters of letters, digits and +=,.@-", s)
			}
			doc.sessionName = &s
			if s != "" {
				doc.roleOnlyKey, doc.roleOnlyAt = "aws.role_session_name", d.pos(f.k)
			}
		}
	}
}

func checkListen(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "not host:port (e.g. 127.0.0.1:9780)"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "port must be a number from 0 to 65535"
	}
	if strings.ContainsAny(host, " /") {
		return "not host:port (e.g. 127.0.0.1:9780)"
	}
	return ""
}

func (d *decoder) flows(n *yaml.Node, doc *document) {
	n = d.resolve(n)
	if n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "flows: expected a list of flows (- name: ...), got %s", kindName(n))
		doc.flowsBroken = true
		return
	}
	for i, item := range n.Content {
		if !d.spend() {
			return
		}
		item = d.resolve(item)
		if item.Kind != yaml.MappingNode {
			d.errorf(item, "flows[%d]: expected a flow (a mapping with name, paths and a destination), got %s", i, kindName(item))
			doc.flowsBroken = true
			continue
		}
		doc.flows = append(doc.flows, d.flow(item, i))
	}
}

// flow decodes one flow, fills in its defaults and checks it, including the limits that
// tie one setting to another.
func (d *decoder) flow(n *yaml.Node, index int) Flow {
	f := Flow{
		StartAt:            DefaultStartAt,
		MaxLineBytes:       DefaultMaxLineBytes,
		PollInterval:       DefaultPollInterval,
		CloseInactive:      DefaultCloseInactive,
		PartialLineTimeout: DefaultPartialTimeout,
		Batch:              Batch{MaxAge: DefaultBatchMaxAge},
		Spool: Spool{
			MaxBytes:      DefaultSpoolMaxBytes,
			WhenFull:      DefaultWhenFull,
			FsyncInterval: DefaultFsyncInterval,
			Compression:   DefaultCompression,
			Write:         DefaultSpoolWrite,
		},
		Pos: d.pos(n),
	}
	// The name is needed for the messages about the flow's other keys, wherever it is written.
	label := fmt.Sprintf("flow #%d", index+1)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], d.resolve(n.Content[i+1]); k.Value == "name" && v.Kind == yaml.ScalarNode && v.Value != "" {
			label = fmt.Sprintf("flow %q", v.Value)
			break
		}
	}
	var (
		nameSet, pathsSet bool
		dests             []field
		at                limitNodes
		deleteNodes       map[string]*yaml.Node
	)
	for _, fl := range d.mapping(n, "flow", "in "+label, flowKeys) {
		switch fl.key {
		case "name":
			s, ok := d.str(fl.v, "name")
			if !ok {
				nameSet = true // already reported
				continue
			}
			nameSet = true
			switch {
			case s == "":
				d.errorf(fl.v, "name: must not be empty")
			case len(s) > maxFlowNameLen || !flowNameRE.MatchString(s) || s == "." || s == "..":
				d.errorf(fl.v, "name: %q: use 1 to %d of A-Z a-z 0-9 _ . - (it names a directory under state_dir)", s, maxFlowNameLen)
			}
			f.Name = s
		case "paths":
			pathsSet = true
			var ok bool
			if f.Paths, ok = d.patterns(fl.v, "paths", true); ok && len(f.Paths) == 0 {
				d.errorf(fl.v, "paths: must list at least one absolute path pattern (e.g. [\"/var/log/app/*.log\"])")
			}
		case "exclude":
			f.Exclude, _ = d.patterns(fl.v, "exclude", false)
		case "start_at":
			if s, ok := d.str(fl.v, "start_at"); ok {
				if s != "beginning" && s != "end" {
					d.errorf(fl.v, "start_at: %q: must be beginning or end", s)
				}
				f.StartAt = s
			}
		case "multiline":
			f.Multiline = d.multiline(fl, label)
		case "max_line_bytes":
			if d.positiveSize(fl.v, "max_line_bytes", &f.MaxLineBytes) {
				at.lineBytes = fl.v
			}
		case "poll_interval":
			d.positiveDuration(fl.v, "poll_interval", &f.PollInterval)
		case "close_inactive":
			d.positiveDuration(fl.v, "close_inactive", &f.CloseInactive)
		case "partial_line_timeout":
			d.positiveDuration(fl.v, "partial_line_timeout", &f.PartialLineTimeout)
		case "skip_header_lines":
			if v, ok := d.integer(fl.v, "skip_header_lines"); ok {
				if v < 0 {
					d.errorf(fl.v, "skip_header_lines: %d: must be 0 (none) or more", v)
				}
				f.SkipHeaderLines = v
			}
		case "truncated_record_terminator":
			if s, ok := d.str(fl.v, "truncated_record_terminator"); ok {
				f.TruncatedRecordTerminator, at.term = s, fl.v
			}
		case "follow_symlinks":
			if b, ok := d.boolean(fl.v, "follow_symlinks"); ok {
				f.FollowSymlinks = b
			}
		case "delete_after_shipped":
			f.DeleteAfterShipped, deleteNodes = d.deleteAfterShipped(fl.v)
		case "kinesis":
			dests = append(dests, fl)
			f.Kinesis = d.kinesis(fl, label)
		case "firehose":
			dests = append(dests, fl)
			f.Firehose = d.firehose(fl, label)
		case "http":
			dests = append(dests, fl)
			f.HTTP = d.http(fl, label)
		case "discard":
			dests = append(dests, fl)
			d.mapping(fl.v, "discard", "in discard of "+label, nil)
			f.Discard = &Discard{}
		case "batch":
			for _, b := range d.mapping(fl.v, "batch", "in batch of "+label, batchKeys) {
				switch b.key {
				case "max_age":
					d.positiveDuration(b.v, "batch.max_age", &f.Batch.MaxAge)
				case "max_bytes":
					if d.positiveSize(b.v, "batch.max_bytes", &f.Batch.MaxBytes) {
						at.batchBytes = b.v
					}
				case "max_records":
					if v, ok := d.integer(b.v, "batch.max_records"); ok {
						if v < 0 {
							d.errorf(b.v, "batch.max_records: %d: must be 0 (no limit) or more", v)
						}
						f.Batch.MaxRecords = v
					}
				}
			}
		case "add_metadata":
			f.AddMetadata = d.addMetadata(fl, label)
		case "processors":
			f.Processors = d.processors(fl, label)
		case "spool":
			at.spool = fl.k
			for _, s := range d.mapping(fl.v, "spool", "in spool of "+label, spoolKeys) {
				switch s.key {
				case "max_bytes":
					if d.positiveSize(s.v, "spool.max_bytes", &f.Spool.MaxBytes) {
						at.spoolBytes = s.v
					}
				case "when_full":
					if v, ok := d.str(s.v, "spool.when_full"); ok {
						switch v {
						case "block", "drop_oldest":
						default:
							d.errorf(s.v, "spool.when_full: %q: must be block or drop_oldest", v)
						}
						f.Spool.WhenFull = v
					}
				case "compression":
					if v, ok := d.str(s.v, "spool.compression"); ok {
						switch v {
						case "s2", "zstd", "none":
						default:
							d.errorf(s.v, "spool.compression: %q: must be s2, zstd or none", v)
						}
						f.Spool.Compression = v
					}
				case "write":
					if v, ok := d.str(s.v, "spool.write"); ok {
						switch v {
						case "backlog", "always":
						default:
							d.errorf(s.v, "spool.write: %q: must be backlog or always", v)
						}
						f.Spool.Write = v
					}
				case "fsync_interval":
					d.positiveDuration(s.v, "spool.fsync_interval", &f.Spool.FsyncInterval)
				case "segment_bytes":
					if d.positiveSize(s.v, "spool.segment_bytes", &f.Spool.SegmentBytes) {
						at.seg = s.v
					}
				}
			}
		}
	}
	if !nameSet {
		d.errorf(n, "%s: name is required (it names the flow's spool directory)", label)
	}
	if !pathsSet {
		d.errorf(n, "%s: paths is required (e.g. paths: [\"/var/log/app/*.log\"])", label)
	}
	for _, g := range f.DeleteAfterShipped {
		if slices.Contains(f.Paths, g) {
			d.errorf(deleteNodes[g], "delete_after_shipped: %q is also in paths: it would name the live files; list the rotated ones (e.g. \"/var/log/app/*.log.[0-9]\")", g)
		}
	}
	switch len(dests) {
	case 0:
		d.errorf(n, "%s: no destination; add one of kinesis, firehose, http or discard", label)
	case 1:
	default:
		names := make([]string, len(dests))
		for i, x := range dests {
			names[i] = x.key
		}
		d.errorf(dests[1].k, "%s: more than one destination (%s); a flow has exactly one", label, strings.Join(names, ", "))
	}

	d.checkLimits(&f, at)
	return f
}

func (d *decoder) multiline(fl field, label string) *Multiline {
	m := &Multiline{MaxLines: DefaultMultiMaxLines, Timeout: DefaultMultiTimeout}
	patternSet := false
	for _, x := range d.mapping(fl.v, "multiline", "in multiline of "+label, multilineKeys) {
		switch x.key {
		case "start_pattern":
			s, ok := d.str(x.v, "multiline.start_pattern")
			patternSet = true
			if !ok {
				continue
			}
			if s == "" {
				d.errorf(x.v, "multiline.start_pattern: must not be empty")
				continue
			}
			re, err := regexp.Compile(s)
			if err != nil {
				d.errorf(x.v, "multiline.start_pattern: %q: %v", s, errorsTrim(err))
				continue
			}
			m.StartPattern, m.Regexp = s, re
		case "max_lines":
			if v, ok := d.integer(x.v, "multiline.max_lines"); ok {
				if v <= 0 {
					d.errorf(x.v, "multiline.max_lines: %d: must be positive", v)
				}
				m.MaxLines = v
			}
		case "max_bytes":
			d.positiveSize(x.v, "multiline.max_bytes", &m.MaxBytes)
		case "timeout":
			d.positiveDuration(x.v, "multiline.timeout", &m.Timeout)
		}
	}
	if !patternSet {
		d.errorf(fl.k, "multiline.start_pattern is required (a regexp matching the first line of each entry)")
	}
	return m
}

// errorsTrim drops regexp's "error parsing regexp: " prefix; the key already says what failed.
func errorsTrim(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// patterns reads a list of doublestar patterns; ok is false when a problem was reported.
func (d *decoder) patterns(n *yaml.Node, what string, absolute bool) (out []string, ok bool) {
	n = d.resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list of path patterns (e.g. [\"/var/log/app/*.log\"]), got %s", what, kindName(n))
		return nil, false
	}
	ok = true
	for _, item := range n.Content {
		if !d.spend() {
			return out, false
		}
		s, good := d.str(item, what)
		if !good {
			ok = false
			continue
		}
		item = d.resolve(item)
		switch {
		case s == "":
			d.errorf(item, "%s: empty pattern", what)
			ok = false
		case absolute && !filepath.IsAbs(s):
			d.errorf(item, "%s: %q: must be an absolute path pattern (e.g. /var/log/app/*.log)", what, s)
			ok = false
		case !doublestar.ValidatePattern(s):
			d.errorf(item, "%s: %q: not a valid glob pattern (check [ ] and { } pairs)", what, s)
			ok = false
		default:
			out = append(out, s)
		}
	}
	return out, ok
}

// mapping returns the known keys of a mapping node in file order, following merge keys
// (<<), and reports unknown and repeated keys. A null value counts as an empty mapping
// ("discard:" means "discard: {}").
func (d *decoder) mapping(n *yaml.Node, path, where string, known []string) []field {
	n = d.resolve(n)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode && len(known) == 0 {
		d.errorf(n, "%s: expected {}, got %s", path, kindName(n))
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping (%s), got %s", path, strings.Join(known, ", "), kindName(n))
		return nil
	}
	var out []field
	d.collect(n, where, known, map[string]bool{}, &out, 0)
	return out
}

func (d *decoder) collect(n *yaml.Node, where string, known []string, seen map[string]bool, out *[]field, depth int) {
	if depth > maxMergeDepth {
		d.errorf(n, "merge keys (<<) nested too deeply")
		return
	}
	here := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend() {
			return
		}
		k, v := d.resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "keys must be plain words, got %s", kindName(k))
			continue
		}
		if k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := here[k.Value]; dup {
			d.errorf(k, "key %q repeated (first at line %d)", k.Value, first.Line)
			continue
		}
		here[k.Value] = k
		if !slices.Contains(known, k.Value) {
			d.unknown(k, where, known)
			continue
		}
		if seen[k.Value] {
			continue // set explicitly, or by an earlier merge: that one wins
		}
		seen[k.Value] = true
		*out = append(*out, field{key: k.Value, k: k, v: v})
	}
	for _, m := range merges {
		m = d.resolve(m)
		switch m.Kind {
		case yaml.MappingNode:
			d.collect(m, where, known, seen, out, depth+1)
		case yaml.SequenceNode:
			for _, item := range m.Content {
				if item = d.resolve(item); item.Kind == yaml.MappingNode {
					d.collect(item, where, known, seen, out, depth+1)
				} else {
					d.errorf(item, "<<: expected a mapping to merge, got %s", kindName(item))
				}
			}
		default:
			d.errorf(m, "<<: expected a mapping or a list of mappings to merge, got %s", kindName(m))
		}
	}
}

func (d *decoder) unknown(k *yaml.Node, where string, known []string) {
	if d.unknownSeen[k] {
		return
	}
	if d.unknownSeen == nil {
		d.unknownSeen = map[*yaml.Node]bool{}
	}
	d.unknownSeen[k] = true
	if len(known) == 0 {
		d.errorf(k, "unknown key %q %s (it takes no keys)", k.Value, where)
		return
	}
	hint := ""
	best, bestDist := "", 3
	for _, c := range known {
		if dist := editDistance(k.Value, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if best != "" {
		hint = fmt.Sprintf("; did you mean %q?", best)
	}
	d.errorf(k, "unknown key %q %s (known: %s)%s", k.Value, where, strings.Join(known, ", "), hint)
}

// editDistance is the Levenshtein distance, for "did you mean" hints on short keys.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	n = d.resolve(n)
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: expected a string, got %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, what string) (bool, bool) {
	n = d.resolve(n)
	var b bool
	if n.Kind != yaml.ScalarNode || isNull(n) || n.Decode(&b) != nil {
		d.errorf(n, "%s: expected true or false, got %s", what, kindName(n))
		return false, false
	}
	return b, true
}

func (d *decoder) integer(n *yaml.Node, what string) (int, bool) {
	n = d.resolve(n)
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		d.errorf(n, "%s: expected a whole number, got %s", what, kindName(n))
		return 0, false
	}
	return v, true
}

// positiveSize stores a valid positive size in dst and reports whether it did.
func (d *decoder) positiveSize(n *yaml.Node, what string, dst *Size) bool {
	return positive(d, n, what, "a size (e.g. 512MiB)", parseSizeNode, dst)
}

func (d *decoder) positiveDuration(n *yaml.Node, what string, dst *Duration) bool {
	return positive(d, n, what, "a duration (e.g. 500ms)", func(n *yaml.Node) (Duration, string) { return parseDuration(n.Value) }, dst)
}

// positive decodes a scalar with parse into dst, reporting a non-scalar, an unparsable or a
// non-positive value at the node's position.
func positive[T Size | Duration](d *decoder, n *yaml.Node, what, expected string, parse func(*yaml.Node) (T, string), dst *T) bool {
	n = d.resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "%s: expected %s, got %s", what, expected, kindName(n))
		return false
	}
	v, reason := parse(n)
	if reason == "" && v <= 0 {
		reason = "must be positive"
	}
	if reason != "" {
		d.errorf(n, "%s: %q: %s", what, n.Value, reason)
		return false
	}
	*dst = v
	return true
}

// resolve follows aliases to the node they name.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// spend charges one node against the document's budget, reporting once when it runs out.
func (d *decoder) spend() bool {
	if d.budget > 0 {
		d.budget--
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.p.add(Pos{File: d.name}, "document too large or too many aliases (more than %d nodes after expanding aliases)", nodeBudget)
	}
	return false
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func (d *decoder) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.name}
	}
	return Pos{File: d.name, Line: n.Line, Column: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.p.add(d.pos(n), format, args...)
}

// yamlError turns the parser's "yaml: line N: msg" into a positioned error. The parser
// does not expose the column, so only the line is given.
func (d *decoder) yamlError(err error) {
	msg := err.Error()
	if m := yamlErrorRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.p.add(Pos{File: d.name, Line: line}, "yaml: %s", m[2])
		return
	}
	d.p.add(Pos{File: d.name}, "%s", msg)
}

// addMetadata reads add_metadata: which EC2 context fields wrap each line.
func (d *decoder) addMetadata(fl field, label string) *AddMetadata {
	m := &AddMetadata{}
	for _, x := range d.mapping(fl.v, "add_metadata", "in add_metadata of "+label, metadataKeys) {
		v, ok := d.boolean(x.v, "add_metadata."+x.key)
		if !ok {
			continue
		}
		switch x.key {
		case "hostname":
			m.Hostname = v
		case "instance_id":
			m.InstanceID = v
		case "region":
			m.Region = v
		case "file_path":
			m.FilePath = v
		}
	}
	if *m == (AddMetadata{}) {
		return nil // every field off: lines stay as they are
	}
	return m
}

// deleteAfterShipped reads the globs of the rotated files a flow deletes once shipped, and
// where each was written. A glob without a wildcard in its last element names one file, the
// live one most likely: rejected (the flow never deletes the newest file under a pattern
// either, but a configuration that asks for it is a mistake to say at once).
func (d *decoder) deleteAfterShipped(n *yaml.Node) ([]string, map[string]*yaml.Node) {
	globs, _ := d.patterns(n, "delete_after_shipped", true)
	at := map[string]*yaml.Node{}
	if seq := d.resolve(n); seq != nil && seq.Kind == yaml.SequenceNode {
		for _, item := range seq.Content {
			if item = d.resolve(item); item.Kind == yaml.ScalarNode {
				at[item.Value] = item
			}
		}
	}
	for _, g := range globs {
		if !strings.ContainsAny(filepath.Base(g), "*?[{") {
			d.errorf(at[g], "delete_after_shipped: %q: names one file, not rotated ones: use a glob such as \"/var/log/app/*.log.[0-9]\"", g)
		}
	}
	return globs, at
}
