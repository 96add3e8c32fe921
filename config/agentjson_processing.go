package config

// agent.json's dataProcessingOptions, translated to the native processors list: the
// native decoder then checks them, with errors at the agent.json positions and named by
// the agent.json keys.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The Kinesis Agent's optionName values (case-sensitive, like its enum) and what each
// becomes; USINGPLUGGIN loads a Java class and cannot be honoured.
var (
	agentOptionTypes = map[string]string{
		"SINGLELINE":     ProcSingleLine,
		"CSVTOJSON":      ProcCSVToJSON,
		"LOGTOJSON":      ProcLogToJSON,
		"ADDMETADATA":    ProcAddMetadata,
		"ADDEC2METADATA": ProcAddEC2Metadata,
		"ADDBRACKETS":    ProcAddBrackets,
	}
	agentLogFormats = map[string]string{
		"COMMONAPACHELOG":   LogCommonApache,
		"COMBINEDAPACHELOG": LogCombinedApache,
		"APACHEERRORLOG":    LogApacheError,
		"SYSLOG":            LogSyslog,
		"RFC3339SYSLOG":     LogRFC3339Syslog,
	}
	agentJSONFormats = map[string]string{"COMPACT": JSONCompact, "PRETTYPRINT": JSONPretty}
	// The keys each option reads; others are ignored by the Kinesis Agent, and named in a
	// warning here.
	agentOptionKeys = map[string][]string{
		"SINGLELINE":     {"optionName", "parseOptions"},
		"CSVTOJSON":      {"optionName", "customFieldNames", "delimiter", "jsonFormat"},
		"LOGTOJSON":      {"optionName", "logFormat", "matchPattern", "customFieldNames", "jsonFormat"},
		"ADDMETADATA":    {"optionName", "metadata", "timestamp", "jsonFormat"},
		"ADDEC2METADATA": {"optionName", "metadataTTL", "logFormat", "matchPattern", "customFieldNames", "jsonFormat"},
		"ADDBRACKETS":    {"optionName"},
	}
)

// processing translates dataProcessingOptions into a processors node of the native flow
// (appended to kv); false when the flow cannot run.
func (t *agentTranslator) processing(k jkey, where string, f *agentFlow, kv *[]*yaml.Node) bool {
	switch {
	case k.val.kind == '0' || (k.val.kind == 'a' && len(k.val.items) == 0):
		return true
	case k.val.kind == 'o':
		t.warnf("%sdataProcessingOptions: an object, not a list: the Kinesis Agent ignores it without a word, and so does kinship: the lines of %s are shipped unprocessed (write it as a list, [ {...} ], to have it run)", where, f.pattern)
		return true
	case k.val.kind != 'a':
		t.errorf(k.val.off, "%sdataProcessingOptions: expected a list of processing options, got %s", where, k.val.kindName())
		return false
	}
	var names []string
	for _, item := range k.val.items {
		names = append(names, optionName(item))
	}
	if t.skipProc {
		t.warnf("%sdataProcessingOptions: %s not run: lines of %s are shipped as read, unprocessed (%q is \"skip\")", where, strings.Join(names, ", "), f.pattern, agentKeyProcessing)
		return true
	}
	ok := true
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	seq.Line, seq.Column = t.lc(k.val.off)
	for j, item := range k.val.items {
		n, good := t.processingOption(j, item, where, f)
		ok = ok && good
		if n != nil {
			seq.Content = append(seq.Content, n)
		}
	}
	if ok {
		line, col := t.lc(k.off)
		*kv = append(*kv, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "processors", Line: line, Column: col}, seq)
	}
	return ok
}

func optionName(item *jnode) string {
	if item.kind == 'o' {
		for _, o := range item.keys {
			if o.name == "optionName" && o.val.kind == 's' {
				return o.val.str
			}
		}
	}
	return "?"
}

// processingOption translates one option into a native processor node.
func (t *agentTranslator) processingOption(j int, item *jnode, where string, f *agentFlow) (*yaml.Node, bool) {
	at := fmt.Sprintf("%sdataProcessingOptions[%d]", where, j)
	if item.kind != 'o' {
		t.errorf(item.off, "%s: expected an object with \"optionName\", got %s", at, item.kindName())
		return nil, false
	}
	m := t.members(item, at+".")
	on, has := m["optionName"]
	if !has {
		t.errorf(item.off, "%s: optionName is required (%s)", at, strings.Join(mapKeys(agentOptionKeys), ", "))
		return nil, false
	}
	name, good := t.str(on, at+".")
	if !good {
		return nil, false
	}
	typ, known := agentOptionTypes[name]
	switch {
	case name == "USINGPLUGGIN":
		t.errorf(on.val.off, "%s.optionName: USINGPLUGGIN loads a Java class into the Kinesis Agent; kinship cannot run Java plug-ins: remove it (or write the transformation as a consumer of the stream), or add \"%s\": \"skip\" to ship the lines of %s unprocessed", at, agentKeyProcessing, f.pattern)
		return nil, false
	case !known:
		hint := ""
		for agent := range agentOptionTypes {
			if strings.EqualFold(agent, name) {
				hint = fmt.Sprintf("; did you mean %q? (option names are case-sensitive, as in the Kinesis Agent)", agent)
			}
		}
		t.errorf(on.val.off, "%s.optionName: %q: not a processing option of the Kinesis Agent (%s)%s", at, name, strings.Join(mapKeys(agentOptionKeys), ", "), hint)
		return nil, false
	}

	ok := true
	native := fmt.Sprintf("processors[%d]", j)
	agent := fmt.Sprintf("dataProcessingOptions[%d]", j)
	node := &yaml.Node{Kind: yaml.MappingNode}
	node.Line, node.Column = t.lc(item.off)
	add := func(nativeKey string, k jkey, v *yaml.Node) {
		line, col := t.lc(k.off)
		node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: nativeKey, Line: line, Column: col}, v)
		if nativeKey != "type" {
			f.renames[native+"."+nativeKey] = agent + "." + k.name
		}
	}
	scalar := func(k jkey, tag, value string) *yaml.Node {
		line, col := t.lc(k.val.off)
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value, Line: line, Column: col}
	}
	enum := func(k jkey, values map[string]string) (string, bool) {
		s, good := t.str(k, at+".")
		if !good {
			return "", false
		}
		v, known := values[s]
		if !known {
			t.errorf(k.val.off, "%s.%s: %q: must be one of %s (case-sensitive, as in the Kinesis Agent)", at, k.name, s, strings.Join(mapKeys(values), ", "))
			return "", false
		}
		return v, true
	}
	add("type", on, scalar(on, "!!str", typ))
	f.renames[native] = agent

	for _, k := range item.keys {
		if m[k.name].off != k.off || k.name == "optionName" {
			continue
		}
		if !slices.Contains(agentOptionKeys[name], k.name) {
			t.warnf("%s.%s: not a key of %s, ignored (the Kinesis Agent ignores it too)", at, k.name, name)
			continue
		}
		switch k.name {
		case "parseOptions":
			if k.val.kind != 'a' {
				t.errorf(k.val.off, "%s.parseOptions: expected a list (NO_TRIM, ESCAPE_NEW_LINE), got %s", at, k.val.kindName())
				ok = false
				continue
			}
			seen := map[string]bool{}
			for _, o := range k.val.items {
				switch {
				case o.kind == 's' && (o.str == "NO_TRIM" || o.str == "ESCAPE_NEW_LINE"):
					key := map[string]string{"NO_TRIM": "no_trim", "ESCAPE_NEW_LINE": "escape_newline"}[o.str]
					if !seen[key] {
						seen[key] = true
						add(key, k, scalar(k, "!!bool", "true"))
					}
				default:
					t.warnf("%s.parseOptions: %s is not NO_TRIM or ESCAPE_NEW_LINE, ignored (the Kinesis Agent ignores it too)", at, o.kindName())
				}
			}
		case "customFieldNames":
			if k.val.kind != 'a' {
				t.errorf(k.val.off, "%s.customFieldNames: expected a list of field names, got %s", at, k.val.kindName())
				ok = false
				continue
			}
			add("field_names", k, t.yamlOf(k.val))
		case "delimiter", "matchPattern":
			if s, good := t.str(k, at+"."); good {
				key := map[string]string{"delimiter": "delimiter", "matchPattern": "match_pattern"}[k.name]
				if name == "ADDEC2METADATA" {
					continue // read by its unused log parser only
				}
				add(key, k, scalar(k, "!!str", s))
			} else {
				ok = false
			}
		case "logFormat":
			if v, good := enum(k, agentLogFormats); !good {
				ok = false
			} else if name == "LOGTOJSON" {
				add("log_format", k, scalar(k, "!!str", v))
			}
		case "jsonFormat":
			if v, good := enum(k, agentJSONFormats); good {
				add("json_format", k, scalar(k, "!!str", v))
			} else {
				ok = false
			}
		case "metadata":
			add("metadata", k, t.yamlOf(k.val))
		case "timestamp":
			// The Kinesis Agent reads the string "true" (any case); anything else is false.
			stamp := (k.val.kind == 's' || k.val.kind == 'b') && strings.EqualFold(k.val.str, "true")
			add("timestamp", k, scalar(k, "!!bool", strconv.FormatBool(stamp)))
		case "metadataTTL":
			if v, good := t.integer(k, at+".", 1); good {
				add("metadata_ttl", k, scalar(k, "!!str", strconv.FormatInt(v, 10)+"s"))
			} else {
				ok = false
			}
		}
	}
	// Required keys, named as agent.json names them.
	switch name {
	case "CSVTOJSON":
		if _, set := m["customFieldNames"]; !set {
			t.errorf(item.off, "%s: CSVTOJSON needs customFieldNames (the JSON keys of the columns, in order)", at)
			ok = false
		}
	case "LOGTOJSON", "ADDEC2METADATA":
		if _, set := m["logFormat"]; !set {
			t.errorf(item.off, "%s: %s needs logFormat (%s), as in the Kinesis Agent", at, name, strings.Join(mapKeys(agentLogFormats), ", "))
			ok = false
		}
	}
	return node, ok
}

// yamlOf turns a JSON value into the YAML node the native decoder reads, positions kept.
func (t *agentTranslator) yamlOf(j *jnode) *yaml.Node {
	line, col := t.lc(j.off)
	n := &yaml.Node{Line: line, Column: col}
	switch j.kind {
	case 'o':
		n.Kind = yaml.MappingNode
		for _, k := range j.keys {
			kl, kc := t.lc(k.off)
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.name, Line: kl, Column: kc}, t.yamlOf(k.val))
		}
	case 'a':
		n.Kind = yaml.SequenceNode
		for _, item := range j.items {
			n.Content = append(n.Content, t.yamlOf(item))
		}
	case 's':
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!str", j.str
	case 'n':
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!float", j.str
	case 'b':
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", j.str
	default:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
	}
	return n
}
