package config

// A flow's processors: the Amazon Kinesis Agent's dataProcessingOptions (agent.json) and
// the native `processors:` list, decoded into plain data the processing stage runs in order.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Processor types (the Kinesis Agent's optionName in brackets).
const (
	ProcSingleLine     = "single_line"      // SINGLELINE: join a multi-line record into one line
	ProcCSVToJSON      = "csv_to_json"      // CSVTOJSON
	ProcLogToJSON      = "log_to_json"      // LOGTOJSON
	ProcAddMetadata    = "add_metadata"     // ADDMETADATA: {"ts", "metadata", "data"}
	ProcAddEC2Metadata = "add_ec2_metadata" // ADDEC2METADATA: instance identity appended to a JSON record
	ProcAddBrackets    = "add_brackets"     // ADDBRACKETS: "{" + record + "}"
	ProcInclude        = "include"          // keep only records matching one of Patterns
	ProcExclude        = "exclude"          // drop records matching one of Patterns
)

// Log formats of log_to_json (the Kinesis Agent's logFormat in brackets).
const (
	LogCommonApache   = "common_apache_log"   // COMMONAPACHELOG
	LogCombinedApache = "combined_apache_log" // COMBINEDAPACHELOG
	LogApacheError    = "apache_error_log"    // APACHEERRORLOG
	LogSyslog         = "syslog"              // SYSLOG
	LogRFC3339Syslog  = "rfc3339_syslog"      // RFC3339SYSLOG
)

// JSON output formats (jsonFormat), and what log_to_json does with a record its pattern
// does not match (on_parse_error).
const (
	JSONCompact      = "compact"      // COMPACT
	JSONPretty       = "pretty_print" // PRETTYPRINT: Jackson's default pretty printer
	ParseErrorSkip   = "skip"         // the record is not sent (the Kinesis Agent's behaviour)
	ParseErrorRaw    = "raw"          // the record is sent as read
	DefaultMetaTTL   = Duration(3600e9)
	DefaultDelimiter = ","
)

// LogFormatFields are the field names each log format fills, in order (the Kinesis Agent's
// parsers); field_names without match_pattern must have as many.
var LogFormatFields = map[string][]string{
	LogCommonApache:   {"host", "ident", "authuser", "datetime", "request", "response", "bytes"},
	LogCombinedApache: {"host", "ident", "authuser", "datetime", "request", "response", "bytes", "referer", "agent"},
	LogApacheError:    {"timestamp", "module", "severity", "processid", "threadid", "client", "message"},
	LogSyslog:         {"timestamp", "hostname", "program", "processid", "message"},
	LogRFC3339Syslog:  {"timestamp", "hostname", "program", "processid", "message"},
}

// Processor is one processing step, as plain data: the processing stage builds its own
// converter from it. Only the fields of its Type are set.
type Processor struct {
	Type string
	// single_line: NoTrim keeps each piece's surrounding white space; EscapeNewline joins the
	// pieces with the three characters \\n instead of nothing (the Kinesis Agent's quirk).
	NoTrim, EscapeNewline bool
	// csv_to_json (required) and log_to_json (optional): the JSON keys, in order.
	FieldNames []string
	// csv_to_json: the regexp a line is split on ("," by default), as written and compiled.
	Delimiter       string
	DelimiterRegexp *regexp.Regexp
	// log_to_json: one of the Log* formats (required), an optional pattern replacing the
	// format's own, and what to do with a record the pattern does not match. MatchRegexp is
	// anchored at both ends: it must match the whole record, as Java's matches() does.
	LogFormat    string
	MatchPattern string
	MatchRegexp  *regexp.Regexp
	OnParseError string
	// add_metadata: any JSON value, keys in the order written; Timestamp adds "ts".
	Metadata  json.RawMessage
	Timestamp bool
	// add_ec2_metadata: how long the instance metadata is kept before it is fetched again.
	MetadataTTL Duration
	// csv_to_json, log_to_json, add_metadata, add_ec2_metadata: JSONCompact or JSONPretty.
	JSONFormat string
	// include / exclude: regexps matched anywhere in the record (RE2 syntax).
	Patterns []string
	Regexps  []*regexp.Regexp
	Pos      Pos // where the processor was written
}

var (
	processorTypes = []string{ProcSingleLine, ProcCSVToJSON, ProcLogToJSON, ProcAddMetadata, ProcAddEC2Metadata, ProcAddBrackets, ProcInclude, ProcExclude}
	processorKeys  = map[string][]string{
		ProcSingleLine:     {"type", "no_trim", "escape_newline"},
		ProcCSVToJSON:      {"type", "field_names", "delimiter", "json_format"},
		ProcLogToJSON:      {"type", "log_format", "match_pattern", "field_names", "on_parse_error", "json_format"},
		ProcAddMetadata:    {"type", "metadata", "timestamp", "json_format"},
		ProcAddEC2Metadata: {"type", "metadata_ttl", "json_format"},
		ProcAddBrackets:    {"type"},
		ProcInclude:        {"type", "patterns"},
		ProcExclude:        {"type", "patterns"},
	}
	logFormats = []string{LogCommonApache, LogCombinedApache, LogApacheError, LogSyslog, LogRFC3339Syslog}
)

// processors decodes the processors list of a flow.
func (d *decoder) processors(fl field, label string) []Processor {
	n := d.resolve(fl.v)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "processors: expected a list of processors (- type: csv_to_json ...), got %s", kindName(n))
		return nil
	}
	var out []Processor
	for i, item := range n.Content {
		if !d.spend() {
			return out
		}
		if p, ok := d.processor(d.resolve(item), i, label); ok {
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) processor(n *yaml.Node, i int, label string) (Processor, bool) {
	what := fmt.Sprintf("processors[%d]", i)
	p := Processor{Pos: d.pos(n)}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a processor (a mapping with type: %s), got %s", what, strings.Join(processorTypes, " | "), kindName(n))
		return p, false
	}
	// The type decides which keys are known.
	var typeNode *yaml.Node
	for j := 0; j+1 < len(n.Content); j += 2 {
		if d.resolve(n.Content[j]).Value == "type" {
			typeNode = n.Content[j+1]
		}
	}
	if typeNode == nil {
		d.errorf(n, "%s: type is required (%s)", what, strings.Join(processorTypes, ", "))
		return p, false
	}
	t, ok := d.str(typeNode, what+".type")
	if !ok {
		return p, false
	}
	keys, known := processorKeys[t]
	if !known {
		d.errorf(typeNode, "%s.type: %q: must be one of %s", what, t, strings.Join(processorTypes, ", "))
		return p, false
	}
	p.Type = t
	good := true
	bad := func(at *yaml.Node, format string, args ...any) {
		d.errorf(at, format, args...)
		good = false
	}
	var fieldsNode, patternNode, formatNode *yaml.Node
	for _, x := range d.mapping(n, what, fmt.Sprintf("in %s (%s) of %s", what, t, label), keys) {
		key := what + "." + x.key
		switch x.key {
		case "no_trim", "escape_newline", "timestamp":
			b, ok := d.boolean(x.v, key)
			good = good && ok
			switch x.key {
			case "no_trim":
				p.NoTrim = b
			case "escape_newline":
				p.EscapeNewline = b
			default:
				p.Timestamp = b
			}
		case "field_names":
			fieldsNode = x.v
			names, ok := d.stringList(x.v, key)
			good = good && ok
			for j, s := range names {
				if s == "" {
					bad(x.v, "%s[%d]: must not be empty", key, j)
				}
			}
			p.FieldNames = names
		case "delimiter":
			if s, ok := d.str(x.v, key); !ok {
				good = false
			} else if s == "" {
				bad(x.v, "%s: must not be empty (a regexp, e.g. ',' or '\\t')", key)
			} else if re, msg := compileJavaRegexp(s, false); msg != "" {
				bad(x.v, "%s: %q: %s", key, s, msg)
			} else {
				p.Delimiter, p.DelimiterRegexp = s, re
			}
		case "log_format":
			formatNode = x.v
			if s, ok := d.str(x.v, key); !ok {
				good = false
			} else if _, known := LogFormatFields[s]; !known {
				bad(x.v, "%s: %q: must be one of %s", key, s, strings.Join(logFormats, ", "))
			} else {
				p.LogFormat = s
			}
		case "match_pattern":
			patternNode = x.v
			if s, ok := d.str(x.v, key); !ok {
				good = false
			} else if s == "" {
				bad(x.v, "%s: must not be empty", key)
			} else if re, msg := compileJavaRegexp(s, true); msg != "" {
				bad(x.v, "%s: %q: %s", key, s, msg)
			} else {
				p.MatchPattern, p.MatchRegexp = s, re
			}
		case "on_parse_error":
			if s, ok := d.str(x.v, key); !ok {
				good = false
			} else if s != ParseErrorSkip && s != ParseErrorRaw {
				bad(x.v, "%s: %q: must be skip (the record is not sent, as the Kinesis Agent does) or raw (the record is sent as read)", key, s)
			} else {
				p.OnParseError = s
			}
		case "json_format":
			if s, ok := d.str(x.v, key); !ok {
				good = false
			} else if s != JSONCompact && s != JSONPretty {
				bad(x.v, "%s: %q: must be compact or pretty_print", key, s)
			} else {
				p.JSONFormat = s
			}
		case "metadata":
			var b bytes.Buffer
			if err := d.toJSON(x.v, &b, 0); err != "" {
				bad(x.v, "%s: %s", key, err)
			} else {
				p.Metadata = json.RawMessage(b.Bytes())
			}
		case "metadata_ttl":
			p.MetadataTTL = DefaultMetaTTL
			good = d.positiveDuration(x.v, key, &p.MetadataTTL) && good
		case "patterns":
			list, ok := d.stringList(x.v, key)
			good = good && ok
			if ok && len(list) == 0 {
				bad(x.v, "%s: must list at least one regexp", key)
			}
			for j, s := range list {
				re, msg := compileRegexp(s)
				if msg != "" {
					bad(d.resolve(x.v).Content[j], "%s[%d]: %q: %s", key, j, s, msg)
					continue
				}
				p.Patterns, p.Regexps = append(p.Patterns, s), append(p.Regexps, re)
			}
		}
	}
	switch t {
	case ProcCSVToJSON:
		if fieldsNode == nil {
			bad(n, "%s: field_names is required for csv_to_json (the JSON keys of the columns, in order)", what)
		}
		if p.Delimiter == "" {
			p.Delimiter, p.DelimiterRegexp = DefaultDelimiter, regexp.MustCompile(DefaultDelimiter)
		}
	case ProcLogToJSON:
		if formatNode == nil {
			bad(n, "%s: log_format is required for log_to_json (%s)", what, strings.Join(logFormats, ", "))
		}
		if p.OnParseError == "" {
			p.OnParseError = ParseErrorSkip
		}
		if want := LogFormatFields[p.LogFormat]; patternNode != nil && p.MatchRegexp == nil {
			// already reported
		} else if p.MatchRegexp != nil && fieldsNode != nil && p.MatchRegexp.NumSubexp() != len(p.FieldNames) {
			bad(patternNode, "%s.match_pattern: has %d capture groups for %d field_names: every record would be skipped; give one group per field", what, p.MatchRegexp.NumSubexp(), len(p.FieldNames))
		} else if p.MatchRegexp != nil && fieldsNode == nil && p.MatchRegexp.NumSubexp() != len(want) && p.LogFormat != "" {
			bad(patternNode, "%s.match_pattern: has %d capture groups, and without field_names the %d fields of %s (%s) are filled: every record would be skipped", what, p.MatchRegexp.NumSubexp(), len(want), p.LogFormat, strings.Join(want, ", "))
		} else if p.MatchRegexp == nil && fieldsNode != nil && p.LogFormat != "" && len(p.FieldNames) != len(want) {
			bad(fieldsNode, "%s.field_names: %d names for the %d fields of %s (%s); without match_pattern there must be as many", what, len(p.FieldNames), len(want), p.LogFormat, strings.Join(want, ", "))
		}
	case ProcAddEC2Metadata:
		if p.MetadataTTL == 0 {
			p.MetadataTTL = DefaultMetaTTL
		}
	case ProcInclude, ProcExclude:
		if p.Patterns == nil && good {
			bad(n, "%s: patterns is required for %s (a list of regexps)", what, t)
		}
	}
	switch t {
	case ProcCSVToJSON, ProcLogToJSON, ProcAddMetadata, ProcAddEC2Metadata:
		if p.JSONFormat == "" {
			p.JSONFormat = JSONCompact
		}
	}
	if t == ProcAddMetadata && p.Metadata == nil {
		p.Metadata = json.RawMessage("null") // the Kinesis Agent writes "metadata": null
	}
	return p, good
}

// stringList reads a list of strings.
func (d *decoder) stringList(n *yaml.Node, what string) ([]string, bool) {
	n = d.resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list of strings, got %s", what, kindName(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for j, item := range n.Content {
		s, good := d.str(item, fmt.Sprintf("%s[%d]", what, j))
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

// toJSON writes a YAML value as JSON, mapping keys in the order written; it returns what
// cannot be written, or "".
func (d *decoder) toJSON(n *yaml.Node, b *bytes.Buffer, depth int) string {
	n = d.resolve(n)
	if depth > maxJSONDepth {
		return fmt.Sprintf("nested more than %d levels deep", maxJSONDepth)
	}
	if !d.spend() {
		return "too large"
	}
	switch {
	case isNull(n):
		b.WriteString("null")
	case n.Kind == yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := d.resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return fmt.Sprintf("line %d: keys must be plain strings, got %s", k.Line, kindName(k))
			}
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k.Value)
			b.WriteByte(':')
			if msg := d.toJSON(n.Content[i+1], b, depth+1); msg != "" {
				return msg
			}
		}
		b.WriteByte('}')
	case n.Kind == yaml.SequenceNode:
		b.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if msg := d.toJSON(item, b, depth+1); msg != "" {
				return msg
			}
		}
		b.WriteByte(']')
	case n.Tag == "!!bool":
		var v bool
		if n.Decode(&v) != nil {
			return fmt.Sprintf("line %d: %q is not a boolean", n.Line, n.Value)
		}
		b.WriteString(strconv.FormatBool(v))
	case n.Tag == "!!int" || n.Tag == "!!float":
		if json.Valid([]byte(n.Value)) {
			b.WriteString(n.Value) // as written (an agent.json number keeps its text)
			return ""
		}
		var v float64
		if n.Decode(&v) != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Sprintf("line %d: %s cannot be written in JSON", n.Line, n.Value)
		}
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	default:
		writeJSONString(b, n.Value)
	}
	return ""
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Truncate(b.Len() - 1)
}
