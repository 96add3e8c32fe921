package config

// The Amazon Kinesis Agent's agent.json, translated to the native configuration.
//
// Every key the Kinesis Agent documents (its README, the AWS guides "Writing to Kinesis
// Data Streams / Firehose with Kinesis Agent", and the keys its Java sources read) is
// either honoured or named in a warning; keys nobody knows are warned about too, with a
// "did you mean", because the Kinesis Agent itself ignores them and kinship must accept
// the same file. Problems that would make kinship do something other than what the file
// asks for with the data itself are errors, not warnings.
//
// dataProcessingOptions become the flow's processors (agentjson_processing.go), checked by
// the native decoder with errors at the agent.json positions. An operator who wants the raw
// lines instead says so with the top-level key "kinship.dataProcessingOptions": "skip" (the
// Kinesis Agent ignores unknown keys, so the file stays valid for both agents during a
// migration).
//
// Records are sent one line per Kinesis record, as the Kinesis Agent does, unless the
// file sets "kinship.aggregate": true: KPL aggregation is transparent to the KCL and to
// Lambda's deaggregation modules, but not to a consumer that reads record data as is.
//
// The file is read like the Kinesis Agent reads it (Jackson with ALLOW_COMMENTS): // and
// /* */ comments are allowed, numbers and booleans may be written as strings, and a
// repeated key keeps its last value.

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kinship-agent/kinship/internal/javaregex"
	"go.yaml.in/yaml/v3"
)

// Keys kinship reads in agent.json beyond the Kinesis Agent's own.
const (
	agentKeyAggregate  = "kinship.aggregate"
	agentKeyProcessing = "kinship.dataProcessingOptions"
)

// looksLikeAgentJSON tells an agent.json from a native configuration written as JSON
// (which is valid YAML): a native file has only native top-level keys, and a native
// top-level key other than flows or a flow with a name or paths.
func looksLikeAgentJSON(root *jnode) bool {
	if root.kind != 'o' {
		return false
	}
	native := false
	for _, k := range root.keys {
		if !slices.Contains(topKeys, k.name) {
			return true
		}
		if k.name != "flows" {
			native = true
			continue
		}
		if k.val.kind == 'a' {
			for _, f := range k.val.items {
				if f.kind == 'o' && slices.ContainsFunc(f.keys, func(k jkey) bool { return k.name == "name" || k.name == "paths" }) {
					native = true
				}
			}
		}
	}
	return !native
}

// agentJSON decides whether a file is an agent.json: its extension is .json, or its
// content is a JSON object that does not look like a native configuration. It returns
// the comment-free content for decodeAgentJSON.
func agentJSON(name string, data []byte) (bool, []byte) {
	clean := stripJSONComments(data)
	trimmed := bytes.TrimSpace(clean)
	ext := strings.EqualFold(filepath.Ext(name), ".json")
	if !ext && (len(trimmed) == 0 || trimmed[0] != '{') {
		return false, nil
	}
	root, err := parseJSON(clean)
	if err != nil {
		// A .json file with a syntax error is reported as JSON; anything else is left to
		// the YAML decoder (a native file in YAML flow style also starts with '{').
		return ext, clean
	}
	if !looksLikeAgentJSON(root) && root.kind == 'o' {
		return false, nil
	}
	return ext || root.kind == 'o', clean
}

type agentTranslator struct {
	name     string
	data     []byte
	p        *problems
	warnings []string
	doc      *document
	skipProc bool
	aggr     bool
	// prefix names the agent.d file being read in warnings ("" for agent.json itself).
	prefix  string
	pending []*agentFlow // the flows of every file, named and decoded by finish
}

// agentExclude are the files the Kinesis Agent never tails whatever filePattern says
// (SourceFile.validateFile: the path lower-cased ends in .gz, .bz2 or .zip).
var agentExclude = []string{"*.[gG][zZ]", "*.[bB][zZ]2", "*.[zZ][iI][pP]"}

func (t *agentTranslator) pos(off int64) Pos {
	if off < 0 {
		return Pos{File: t.name}
	}
	off = min(off, int64(len(t.data)))
	line := 1 + bytes.Count(t.data[:off], []byte{'\n'})
	col := int(off) - (bytes.LastIndexByte(t.data[:off], '\n') + 1) + 1
	return Pos{File: t.name, Line: line, Column: col}
}

func (t *agentTranslator) errorf(off int64, format string, args ...any) {
	t.p.add(t.pos(off), format, args...)
}

func (t *agentTranslator) warnf(format string, args ...any) {
	t.warnings = append(t.warnings, t.prefix+strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", `\n`))
}

// decodeAgentJSON translates an agent.json (comments already blanked) into a document
// and the warnings about keys kinship does not honour.
func decodeAgentJSON(name string, data []byte, dropIns []agentDropIn, p *problems) (*document, []string) {
	t := &agentTranslator{name: name, data: data, p: p, doc: &document{name: name}}
	root, err := parseJSON(data)
	if err != nil {
		var je *jsonError
		if errors.As(err, &je) {
			t.errorf(je.off, "json: %s", je.msg)
		} else {
			t.errorf(0, "json: %v", err)
		}
		t.doc.flowsBroken = true
		return t.doc, nil
	}
	if root.kind != 'o' {
		t.errorf(root.off, "expected a JSON object with \"flows\" (the Kinesis Agent's agent.json), got %s", root.kindName())
		t.doc.flowsBroken = true
		return t.doc, nil
	}
	top := t.members(root, "")
	t.topLevel(root, top)
	for _, in := range dropIns {
		t.dropIn(in)
	}
	if _, ok := top["flows"]; !ok && len(t.pending) == 0 && !t.doc.flowsBroken {
		t.name, t.data, t.prefix = name, data, ""
		t.errorf(root.off, "no \"flows\": the Kinesis Agent's agent.json lists them as \"flows\": [{\"filePattern\": \"/var/log/app/*.log\", \"kinesisStream\": \"app-logs\"}]")
		t.doc.flowsBroken = true
	}
	t.finish()
	return t.doc, t.warnings
}

// agentDropIn is one /etc/aws-kinesis/agent.d/*.json, comments already blanked.
type agentDropIn struct {
	name string
	data []byte
}

// dropIn appends the flows of one agent.d file, as the Kinesis Agent does; its other keys
// are not read (by either agent), and are named in a warning.
func (t *agentTranslator) dropIn(in agentDropIn) {
	t.name, t.data, t.prefix = in.name, in.data, in.name+": "
	root, err := parseJSON(in.data)
	if err != nil {
		var je *jsonError
		if errors.As(err, &je) {
			t.errorf(je.off, "json: %s", je.msg)
		} else {
			t.errorf(0, "json: %v", err)
		}
		t.doc.flowsBroken = true
		return
	}
	if root.kind != 'o' {
		t.errorf(root.off, "expected a JSON object with \"flows\" (a Kinesis Agent agent.d file), got %s", root.kindName())
		t.doc.flowsBroken = true
		return
	}
	top := t.members(root, "")
	for _, k := range root.keys {
		if top[k.name].off != k.off {
			continue
		}
		if k.name == "flows" {
			t.flows(k)
			continue
		}
		t.warnf("%s: only \"flows\" is read from agent.d files (by the Kinesis Agent too); set it in the main agent.json, ignored", k.name)
	}
}

// members returns an object's members by name, the last one winning as in the Kinesis
// Agent, with a warning for each repeated key.
func (t *agentTranslator) members(n *jnode, where string) map[string]jkey {
	out := make(map[string]jkey, len(n.keys))
	for _, k := range n.keys {
		if _, dup := out[k.name]; dup {
			t.warnf("%s%s: repeated; the last value is used (as the Kinesis Agent does)", where, k.name)
		}
		out[k.name] = k
	}
	return out
}

func (t *agentTranslator) topLevel(root *jnode, top map[string]jkey) {
	// Kinship's own keys first: they change how the flows are translated.
	if k, ok := top[agentKeyAggregate]; ok {
		t.aggr, _ = t.boolean(k, "")
	}
	if k, ok := top[agentKeyProcessing]; ok {
		if s, ok := t.str(k, ""); ok {
			if s != "skip" {
				t.errorf(k.val.off, "%s: %q: the only value is \"skip\" (ship lines without the Kinesis Agent's processing)", k.name, s)
			}
			t.skipProc = s == "skip"
		}
	}

	// The Kinesis Agent publishes CloudWatch metrics unless told not to.
	on, ns := true, AgentCloudWatchNamespace
	t.doc.cloudwatch.enabled, t.doc.cloudwatch.namespace = &on, &ns
	t.doc.agentCheckpoints = &AgentCheckpoints{File: DefaultAgentCheckpointFile, TTL: DefaultAgentCheckpointTTL}

	var creds []string
	for _, k := range root.keys {
		if top[k.name].off != k.off {
			continue // repeated: the last one counts
		}
		if why, ok := agentTopUnsupported[k.name]; ok {
			switch {
			case k.name == "awsAccessKeyId" || k.name == "awsSecretAccessKey":
				creds = append(creds, k.name) // never the values
			default:
				t.warnf("%s: not supported, ignored: %s", k.name, why)
			}
			continue
		}
		switch k.name {
		case "flows":
			t.flows(k)
		case "cloudwatch.emitMetrics", "cloudwatch.namespace", "cloudwatch.endpoint", "cloudwatch.tagInstance", "cloudwatch.metricsBufferTimeMillis":
			t.cloudWatch(k)
		case "checkpointTimeToLiveDays":
			if v, ok := t.integer(k, "", 1); ok {
				t.doc.agentCheckpoints.TTL = Duration(time.Duration(v) * 24 * time.Hour)
			}
		case "checkpointFile":
			if s, ok := t.str(k, ""); ok {
				if s == "" {
					t.errorf(k.val.off, "%s: must not be empty (the Kinesis Agent's default is %s)", k.name, DefaultAgentCheckpointFile)
				} else if !filepath.IsAbs(s) {
					// The Kinesis Agent resolves it against its working directory, / as a service.
					t.warnf("%s: %q is relative: taken as /%s, the Kinesis Agent's working directory as a service", k.name, s, s)
					t.doc.agentCheckpoints.File = filepath.Join("/", s)
				} else {
					t.doc.agentCheckpoints.File = filepath.Clean(s)
				}
			}
		case "kinesis.endpoint":
			t.endpoint(k)
		case "firehose.endpoint":
			t.firehoseEndpoint(k)
		case "kinesis.region", "firehose.region":
			if s, ok := t.str(k, ""); ok && s != "" {
				if strings.ContainsAny(s, " \t/") {
					t.errorf(k.val.off, "%s: %q: not a region name (e.g. us-east-1)", k.name, s)
				}
				if k.name == "kinesis.region" {
					t.doc.region = &s
				} else {
					t.setRegion(k.name, s)
				}
			}
		case "assumeRoleARN":
			if s, ok := t.str(k, ""); ok && s != "" {
				if !strings.HasPrefix(s, "arn:") || !strings.Contains(s, ":role/") {
					t.errorf(k.val.off, "%s: %q: not an IAM role ARN (e.g. arn:aws:iam::123456789012:role/kinship)", k.name, s)
				}
				t.doc.roleARN = &s
			}
		case "assumeRoleExternalId":
			// aws.external_id; merge reports it when assumeRoleARN is missing.
			if s, ok := t.str(k, ""); ok && s != "" {
				if len(s) < 2 || len(s) > 1224 || !externalIDRE.MatchString(s) {
					t.errorf(k.val.off, "%s: %q: want 2 to 1224 characters of letters, digits and +=,.@:/-", k.name, s)
				}
				t.doc.externalID = &s
				t.doc.roleOnlyKey, t.doc.roleOnlyAt = k.name, t.pos(k.off)
			}
		case agentKeyAggregate, agentKeyProcessing:
		default:
			t.unknown(k.name, "", append(slices.Clone(agentTopKnown), mapKeys(agentTopUnsupported)...))
		}
	}
	if len(creds) > 0 {
		t.warnf("%s: not supported, ignored: %s", strings.Join(creds, ", "), agentTopUnsupported["awsAccessKeyId"])
	}
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (t *agentTranslator) unknown(key, where string, known []string) {
	best, bestDist := "", 3
	for _, c := range known {
		if d := editDistance(key, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	hint := ""
	if best != "" {
		hint = fmt.Sprintf("; did you mean %q?", best)
	}
	t.warnf("%s%s: unknown key, ignored (the Kinesis Agent ignores it too)%s", where, key, hint)
}

func (t *agentTranslator) str(k jkey, where string) (string, bool) {
	switch k.val.kind {
	case 's', 'n', 'b':
		return k.val.str, true // the Kinesis Agent converts scalars to strings
	case '0':
		return "", true
	}
	t.errorf(k.val.off, "%s%s: expected a string, got %s", where, k.name, k.val.kindName())
	return "", false
}

func (t *agentTranslator) boolean(k jkey, where string) (bool, bool) {
	if k.val.kind == 'b' || k.val.kind == 's' || k.val.kind == 'n' {
		// The Kinesis Agent's Configuration.readBoolean accepts these spellings.
		switch strings.ToLower(strings.TrimSpace(k.val.str)) {
		case "true", "t", "yes", "y", "1":
			return true, true
		case "false", "f", "no", "n", "0":
			return false, true
		}
	}
	t.errorf(k.val.off, "%s%s: expected true or false, got %s", where, k.name, k.val.kindName())
	return false, false
}

// integer reads a whole number, written as a JSON number or a string as the Kinesis Agent
// accepts; min is the smallest value allowed.
func (t *agentTranslator) integer(k jkey, where string, lo int64) (int64, bool) {
	if k.val.kind == 'n' || k.val.kind == 's' {
		if v, err := strconv.ParseInt(strings.TrimSpace(k.val.str), 10, 64); err == nil {
			if v < lo {
				t.errorf(k.val.off, "%s%s: %d: must be %d or more", where, k.name, v, lo)
				return 0, false
			}
			return v, true
		}
	}
	t.errorf(k.val.off, "%s%s: expected a whole number, got %s", where, k.name, k.val.kindName())
	return 0, false
}

// agentFlow is what one agent.json flow says, before it becomes a native flow.
type agentFlow struct {
	index          int
	file, where    string // the file it was read from, and "flows[i]." with the file's prefix
	obj            *jnode
	pattern        string
	stream         string // the Kinesis stream, or the Firehose delivery stream
	firehose       bool
	node           *yaml.Node // the native flow, positioned at the agent.json keys
	renames        map[string]string
	streamNameNode *yaml.Node
	recordPerLine  bool // a Firehose flow without aggregatedRecordSizeBytes
	joinBytes      Size // its aggregatedRecordSizeBytes
	diffs          []Difference
}

func (t *agentTranslator) flows(k jkey) {
	if k.val.kind != 'a' {
		t.errorf(k.val.off, "flows: expected a list of flows, got %s", k.val.kindName())
		t.doc.flowsBroken = true
		return
	}
	for i, item := range k.val.items {
		where := fmt.Sprintf("flows[%d].", i)
		if item.kind != 'o' {
			t.errorf(item.off, "flows[%d]: expected a flow object (with filePattern and kinesisStream), got %s", i, item.kindName())
			t.doc.flowsBroken = true
			continue
		}
		if f := t.flow(i, item, where); f != nil {
			f.file, f.where = t.name, t.prefix+where
			t.pending = append(t.pending, f)
		} else {
			t.doc.flowsBroken = true // already reported: no "no flows" on top of it
		}
	}
}

// finish names the flows of agent.json and its drop-ins together (names must be unique
// across them) and decodes each as a native flow.
func (t *agentTranslator) finish() {
	fs := t.pending
	t.prefix = "" // warnings from here name their file themselves
	t.nameFlows(fs)
	if slices.ContainsFunc(fs, func(f *agentFlow) bool { return !f.firehose }) && !t.aggr {
		t.warnf("%s: not set: records are sent one line per Kinesis record, as the Kinesis Agent sends them; set it to true once every consumer de-aggregates KPL records (the KCL and Lambda's deaggregation modules do) for fewer, fuller records", agentKeyAggregate)
	}
	for _, f := range fs {
		sub := &problems{files: []string{f.file}}
		d := &decoder{name: f.file, p: sub, budget: nodeBudget, translated: true}
		fl := d.flow(f.node, f.index)
		// The Kinesis Agent's record is a line with its '\n' (consumers that concatenate
		// records, like Firehose to S3, rely on it), and a Firehose record holds one such line
		// unless aggregatedRecordSizeBytes joins them.
		fl.KeepNewline = true
		if fl.Firehose != nil {
			fl.Firehose.RecordPerLine = f.recordPerLine
			fl.Firehose.JoinBytes = f.joinBytes
		}
		for _, e := range sub.errs {
			for native, agent := range f.renames {
				if rest, ok := strings.CutPrefix(e.Msg, native+":"); ok {
					e.Msg = fmt.Sprintf("flows[%d].%s (kinship's %s):%s", f.index, agent, native, rest)
					break
				}
			}
			t.p.errs = append(t.p.errs, e)
		}
		t.warnings = append(t.warnings, sub.warns...)
		t.doc.flows = append(t.doc.flows, fl)
		t.doc.agentDifferences = append(t.doc.agentDifferences, f.flowDifferences(&fl)...)
	}
}

// flow translates one agent.json flow into a native flow node; nil when it cannot run.
func (t *agentTranslator) flow(i int, obj *jnode, where string) *agentFlow {
	m := t.members(obj, where)
	f := &agentFlow{index: i, obj: obj, renames: map[string]string{}}
	var (
		kv       []*yaml.Node // the native flow's key/value nodes
		kinesis  []*yaml.Node
		firehose []*yaml.Node
		batch    []*yaml.Node
		ok       = true
	)
	add := func(dst *[]*yaml.Node, native, agent string, k jkey, tag, value string) *yaml.Node {
		line, col := t.lc(k.off)
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: native, Line: line, Column: col}
		vline, vcol := t.lc(k.val.off)
		val := &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value, Line: vline, Column: vcol}
		*dst = append(*dst, key, val)
		if agent != "" {
			f.renames[native] = agent
		}
		return val
	}
	millis := func(k jkey) (string, bool) {
		v, good := t.integer(k, where, 1)
		return (time.Duration(v) * time.Millisecond).String(), good
	}

	fp, hasPattern := m["filePattern"]
	if !hasPattern {
		t.errorf(obj.off, "flows[%d]: filePattern is required (the files to read, e.g. /var/log/app/*.log)", i)
		ok = false
	} else if s, good := t.str(fp, where); good {
		f.pattern = s
		if s == "" || !filepath.IsAbs(s) {
			t.errorf(fp.val.off, "%sfilePattern: %q: must be an absolute path pattern (e.g. /var/log/app/*.log)", where, s)
			ok = false
		} else if strings.HasSuffix(s, "/") {
			// SourceFile refuses it too ("File name component is empty"): it would match no file.
			t.errorf(fp.val.off, "%sfilePattern: %q: names a directory, not files (the Kinesis Agent refuses it too); e.g. %s*.log", where, s, s)
			ok = false
		}
		line, col := t.lc(fp.off)
		vline, vcol := t.lc(fp.val.off)
		kv = append(kv, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "paths", Line: line, Column: col},
			&yaml.Node{Kind: yaml.SequenceNode, Line: vline, Column: vcol, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: agentGlob(s), Line: vline, Column: vcol},
			}})
		f.renames["paths"] = "filePattern"
		// The Kinesis Agent never tails compressed files (since 1.1), whatever the case of
		// their extension; neither does the translation.
		ex := &yaml.Node{Kind: yaml.SequenceNode, Line: vline, Column: vcol}
		for _, g := range agentExclude {
			ex.Content = append(ex.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: g})
		}
		kv = append(kv, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "exclude", Line: line, Column: col}, ex)
		f.patternDifferences(s)
	} else {
		ok = false
	}

	ks, hasStream := m["kinesisStream"]
	ds, hasDelivery := m["deliveryStream"]
	switch {
	case hasStream && hasDelivery:
		t.errorf(ds.off, "flows[%d]: both kinesisStream and deliveryStream; a flow has exactly one destination", i)
		ok = false
	case hasDelivery:
		if s, good := t.str(ds, where); good {
			f.stream, f.firehose = s, true
			add(&firehose, "delivery_stream", "deliveryStream", ds, "!!str", s)
		} else {
			ok = false
		}
	case hasStream:
		if s, good := t.str(ks, where); good {
			f.stream = s
			f.streamNameNode = add(&kinesis, "stream", "kinesisStream", ks, "!!str", s)
		} else {
			ok = false
		}
	default:
		t.errorf(obj.off, "flows[%d]: kinesisStream or deliveryStream is required (the Kinesis data stream or Firehose delivery stream to send %s to)", i, f.pattern)
		ok = false
	}

	pk := "random"
	if k, set := m["partitionKeyOption"]; set {
		if s, good := t.str(k, where); good {
			switch strings.ToUpper(s) {
			case "RANDOM":
			case "DETERMINISTIC":
				pk = "deterministic" // the MD5 of the record, in hex
			default:
				t.errorf(k.val.off, "%spartitionKeyOption: %q: must be RANDOM or DETERMINISTIC", where, s)
			}
		}
	}
	if hasStream {
		line, col := t.lc(ks.off)
		kinesis = append(kinesis,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "partition_key", Line: line, Column: col},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: pk, Line: line, Column: col},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "aggregate", Line: line, Column: col},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t.aggr), Line: line, Column: col})
		if t.aggr {
			f.differ(agentKeyAggregate, "packs lines into KPL aggregated records (consumers must de-aggregate)", "sends one line per Kinesis record")
		}
	}

	// The Kinesis Agent starts new files at their end unless told otherwise.
	startAt := "end"
	if k, set := m["initialPosition"]; set {
		if s, good := t.str(k, where); good {
			switch strings.ToUpper(s) {
			case "START_OF_FILE":
				startAt = "beginning"
			case "END_OF_FILE":
			default:
				t.errorf(k.val.off, "%sinitialPosition: %q: must be START_OF_FILE or END_OF_FILE", where, s)
			}
		}
	}
	kv = append(kv, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "start_at"},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: startAt})

	if k, set := m["multiLineStartPattern"]; set {
		if s, good := t.str(k, where); good && s != "" {
			var ml []*yaml.Node
			// The Kinesis Agent starts a record where its Java pattern matches at the line's
			// start (Matcher.lookingAt), not anywhere in it: translated and anchored here so
			// that "\\{" does not start a record at an indented `"a": {`. A construct RE2
			// lacks is left as written for the decoder to report at this key.
			if re2, err := javaregex.Translate(s); err == nil {
				s = `^(?:` + re2 + `)`
			}
			add(&ml, "multiline.start_pattern", "multiLineStartPattern", k, "!!str", s)
			ml[0].Value = "start_pattern"
			line, col := t.lc(k.off)
			kv = append(kv, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "multiline", Line: line, Column: col},
				&yaml.Node{Kind: yaml.MappingNode, Line: line, Column: col, Content: ml})
			// RegexSplitter ends the last record at the end of what is read as soon as that
			// ends in '\n', and knows no line count.
			f.differ("multiLineStartPattern",
				fmt.Sprintf("ends a record at the next start line, after %s without a new line or at %d lines (multiline.timeout, multiline.max_lines)", DefaultMultiTimeout, DefaultMultiMaxLines),
				"ends it at the next start line, or at once when the file's end is reached after a '\\n' (a record written in several writes may be split), with no line limit")
		}
	}
	if k, set := m["minTimeBetweenFilePollsMillis"]; set {
		if d, good := millis(k); good {
			add(&kv, "poll_interval", "minTimeBetweenFilePollsMillis", k, "!!str", d)
		}
	}
	// The Kinesis Agent's buffer is one PutRecords / PutRecordBatch request; kinship's batch
	// is one record, which only a flow that packs lines into records has: kinship.aggregate,
	// or a Firehose flow joining lines (aggregatedRecordSizeBytes, below). Elsewhere these keys
	// are left out, so that maxBufferSizeBytes does not become a limit that cuts lines.
	packs := hasStream && t.aggr
	if k, set := m["maxBufferAgeMillis"]; set {
		if d, good := millis(k); good {
			add(&batch, "max_age", "", k, "!!str", d)
			f.renames["batch.max_age"] = "maxBufferAgeMillis"
		}
	}
	// Firehose flows join whole lines into one record up to aggregatedRecordSizeBytes (0, the
	// default: a record per line); kinship's batch is that record.
	joined := false
	if k, set := m["aggregatedRecordSizeBytes"]; set && hasDelivery {
		if v, good := t.integer(k, where, 0); !good {
			ok = false
		} else if Size(v) > FirehoseMaxRecordBytes {
			t.errorf(k.val.off, "%saggregatedRecordSizeBytes: %d: must be 0 to %d (the largest Firehose record), as the Kinesis Agent requires", where, v, int64(FirehoseMaxRecordBytes))
			ok = false
		} else if v > 0 {
			// The record stays the Firehose record (batch.max_bytes' default); the lines it
			// joins are counted apart, as AggregationSplitter counts them, so that a line
			// longer than the hint is a record of its own, whole.
			joined, f.joinBytes = true, Size(v)
		}
	}
	f.recordPerLine = hasDelivery && !joined
	if k, set := m["maxBufferAgeMillis"]; set && !packs && !joined {
		if v, good := t.integer(k, where, 1); good {
			f.differ("maxBufferAgeMillis", "sends each record once it is read and spooled, without waiting to fill a request",
				fmt.Sprintf("holds records up to %s to fill a request", time.Duration(v)*time.Millisecond))
		}
	}
	if k, set := m["maxBufferSizeBytes"]; set && !packs {
		if v, good := t.integer(k, where, 1); good {
			f.differ("maxBufferSizeBytes", "fills each request up to the service's limits (records are not held to reach a size)",
				fmt.Sprintf("sends a request once %d bytes are buffered", v))
		}
	}
	if k, set := m["maxBufferSizeBytes"]; set && packs {
		if v, good := t.integer(k, where, 1); good {
			// The Kinesis Agent's buffer is one PutRecords call (up to 5MiB); kinship's batch is
			// one Kinesis record, which the stream caps at max_record_bytes.
			if Size(v) > DefaultMaxRecordBytes {
				t.warnf("%smaxBufferSizeBytes: %d is more than one Kinesis record holds: kinship closes a record at %s and sends several records per request", where, v, DefaultMaxRecordBytes)
				v = int64(DefaultMaxRecordBytes)
			}
			add(&batch, "max_bytes", "", k, "!!int", strconv.FormatInt(v, 10))
			f.renames["batch.max_bytes"] = "maxBufferSizeBytes"
			f.differ("maxBufferSizeBytes", fmt.Sprintf("packs KPL aggregates of up to %d bytes, and cuts a longer line to fit one", v),
				fmt.Sprintf("sends a request once %d bytes are buffered, and never cuts a line below the record limit", v))
		}
	}
	if k, set := m["maxBufferSizeRecords"]; set && !packs {
		if v, good := t.integer(k, where, 1); good {
			f.differ("maxBufferSizeRecords", "fills each request up to the service's limits (500 records)", fmt.Sprintf("sends a request once %d records are buffered", v))
		}
	}
	if k, set := m["maxBufferSizeRecords"]; set && packs {
		if v, good := t.integer(k, where, 1); good {
			add(&batch, "max_records", "", k, "!!int", strconv.FormatInt(v, 10))
			f.renames["batch.max_records"] = "maxBufferSizeRecords"
			f.differ("maxBufferSizeRecords", fmt.Sprintf("packs up to %d lines in one KPL aggregate", v), fmt.Sprintf("sends a request once %d records are buffered", v))
		}
	}
	if k, set := m["skipHeaderLines"]; set {
		if v, good := t.integer(k, where, 0); good && v > 0 {
			if slices.Contains(flowKeys, "skip_header_lines") {
				add(&kv, "skip_header_lines", "skipHeaderLines", k, "!!int", strconv.FormatInt(v, 10))
				f.differ("skipHeaderLines", "skips them in a file read from its start, but not in one read again from 0 after a copytruncate (whose writer writes no new header)",
					"skips them whenever it reads a file from offset 0, after a copytruncate too")
			} else {
				t.warnf("%sskipHeaderLines: not supported yet, ignored: the first %d lines of each file are shipped too", where, v)
			}
		}
	}
	if _, set := m["truncatedRecordTerminator"]; !set {
		// The Kinesis Agent's default: a cut record still ends in '\n'.
		kv = append(kv, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "truncated_record_terminator"},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "\n"})
	}
	if k, set := m["truncatedRecordTerminator"]; set {
		if s, good := t.str(k, where); good {
			if slices.Contains(flowKeys, "truncated_record_terminator") {
				add(&kv, "truncated_record_terminator", "truncatedRecordTerminator", k, "!!str", s)
			} else if s != "\n" {
				t.warnf("%struncatedRecordTerminator: not supported yet, ignored: truncated lines end where they were cut", where)
			}
		}
	}
	if k, set := m["dataProcessingOptions"]; set {
		if !t.processing(k, where, f, &kv) {
			ok = false
		}
	}
	for _, k := range obj.keys {
		if m[k.name].off != k.off || slices.Contains(agentFlowKnown, k.name) || (k.name == "aggregatedRecordSizeBytes" && hasDelivery) {
			continue
		}
		if why, known := agentFlowUnsupported[k.name]; known {
			t.warnf("%s%s: not supported, ignored: %s", where, k.name, why)
			continue
		}
		t.unknown(k.name, where, append(slices.Clone(agentFlowKnown), mapKeys(agentFlowUnsupported)...))
	}
	if !ok {
		return nil
	}
	if len(batch) > 0 {
		kv = append(kv, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "batch"},
			&yaml.Node{Kind: yaml.MappingNode, Content: batch})
	}
	if hasDelivery {
		line, col := t.lc(ds.off)
		kv = append(kv, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "firehose", Line: line, Column: col},
			&yaml.Node{Kind: yaml.MappingNode, Line: line, Column: col, Content: firehose})
	} else {
		line, col := t.lc(ks.off)
		kv = append(kv, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "kinesis", Line: line, Column: col},
			&yaml.Node{Kind: yaml.MappingNode, Line: line, Column: col, Content: kinesis})
	}
	for native, agent := range map[string]string{"stream": "kinesisStream", "delivery_stream": "deliveryStream"} {
		if _, set := f.renames[native]; set {
			if native == "delivery_stream" {
				f.renames["firehose."+native] = agent
			} else {
				f.renames["kinesis."+native] = agent
			}
			delete(f.renames, native)
		}
	}
	if _, set := f.renames["multiline.start_pattern"]; set {
		f.renames["multiline.start_pattern"] = "multiLineStartPattern"
	}
	oline, ocol := t.lc(obj.off)
	f.node = &yaml.Node{Kind: yaml.MappingNode, Line: oline, Column: ocol, Content: kv}
	return f
}

func (t *agentTranslator) lc(off int64) (int, int) {
	p := t.pos(off)
	return p.Line, p.Column
}

// agentGlob turns the Kinesis Agent's filePattern, a glob on the file name in a literal
// directory, into a doublestar pattern: glob characters in the directory part are escaped.
func agentGlob(pattern string) string {
	dir, file := filepath.Split(pattern)
	var b strings.Builder
	for _, r := range dir {
		if strings.ContainsRune(`*?[]{}\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + file
}

var nameUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// nameFlows gives each flow a stable name (it names the flow's spool directory): the
// stream's name, or the stream and the file pattern when several flows feed one stream,
// made unique with a suffix when even that repeats.
func (t *agentTranslator) nameFlows(fs []*agentFlow) {
	perStream := map[string]int{}
	for _, f := range fs {
		perStream[f.stream]++
	}
	used := map[string]bool{}
	for _, f := range fs {
		base := f.stream
		if i := strings.LastIndex(base, "/"); strings.HasPrefix(base, "arn:") && i >= 0 {
			base = base[i+1:] // a stream ARN ends in stream/NAME
		}
		if perStream[f.stream] > 1 {
			base += "/" + f.pattern // the separators collapse into one "-"
		}
		name := safeFlowName(base)
		for n := 2; used[name]; n++ {
			name = safeFlowName(fmt.Sprintf("%s/%d", base, n))
			if !used[name] {
				t.warnf("%s same kinesisStream and filePattern as an earlier flow: every line is sent twice; named %q", strings.TrimSuffix(f.where, ".")+":", name)
			}
		}
		used[name] = true
		line, col := f.node.Line, f.node.Column // t.lc would read another file's lines
		f.node.Content = append([]*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name", Line: line, Column: col},
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: name, Line: line, Column: col},
		}, f.node.Content...)
	}
}

func safeFlowName(s string) string {
	name := strings.Trim(nameUnsafe.ReplaceAllString(s, "-"), "-.")
	if name == "" {
		name = "flow"
	}
	if len(name) > maxFlowNameLen {
		h := fnv.New32a()
		_, _ = h.Write([]byte(s))
		name = fmt.Sprintf("%s-%08x", name[:maxFlowNameLen-9], h.Sum32())
	}
	return name
}
