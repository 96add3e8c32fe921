package processing

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kinship-agent/kinship/internal/javaregex"
)

// decoder keeps the buffer records with malformed UTF-8 are decoded into.
type decoder struct{ buf []byte }

func (d *decoder) decode(record []byte) []byte {
	s := decodeRecord(d.buf, record)
	if len(record) > 0 && len(s) > 0 && &s[0] != &record[0] {
		d.buf = s
	}
	return s
}

// singleLine is SINGLELINE: the record's lines joined into one. Java's String.split("\n")
// drops trailing empty pieces; each piece is trimmed of every character up to U+0020 unless
// NO_TRIM; ESCAPE_NEW_LINE joins with the three characters \\n (the Kinesis Agent's own test
// pins that doubled backslash), else with nothing.
type singleLine struct {
	noTrim, escapeNewLine bool
	dec                   decoder
}

func newSingleLine(o Options, deps Deps) (*singleLine, error) {
	p := &singleLine{}
	for _, opt := range o.ParseOptions {
		switch opt {
		case "NO_TRIM":
			p.noTrim = true
		case "ESCAPE_NEW_LINE":
			p.escapeNewLine = true
		default:
			// The Kinesis Agent looks only for the two it knows and ignores the rest.
			deps.Logger.Warn("processing: SINGLELINE ignores an unknown parseOptions value", "value", opt)
		}
	}
	return p, nil
}

func (p *singleLine) Process(dst, record []byte) ([]byte, bool, error) {
	s := p.dec.decode(record)
	end := len(s)
	for end > 0 && s[end-1] == '\n' {
		end--
	}
	s = s[:end]
	for first := true; ; first = false {
		if !first && p.escapeNewLine {
			dst = append(dst, '\\', '\\', 'n')
		}
		i := bytes.IndexByte(s, '\n')
		piece := s
		if i >= 0 {
			piece = s[:i]
		}
		if !p.noTrim {
			piece = javaTrim(piece)
		}
		dst = append(dst, piece...)
		if i < 0 {
			break
		}
		s = s[i+1:]
	}
	return append(dst, '\n'), false, nil
}

// javaTrim is String.trim: every character up to U+0020 off both ends (in UTF-8 those are
// exactly the bytes up to 0x20).
func javaTrim(s []byte) []byte {
	for len(s) > 0 && s[0] <= ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] <= ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// javaSplitter is String.split(regex) with limit 0: no match gives the whole input as the
// one piece (even when empty); a zero-width match at the start gives no leading empty piece;
// trailing empty pieces are dropped.
type javaSplitter struct {
	literal []byte         // the delimiter when it matches one fixed, non-empty string
	re      *regexp.Regexp // otherwise
	bounds  []int          // start, end of each piece
}

func newJavaSplitter(delimiter string) (*javaSplitter, error) {
	re2, err := javaregex.Translate(delimiter)
	if err != nil {
		return nil, err
	}
	if lit, ok := javaregex.Literal(re2); ok && len(lit) > 0 {
		return &javaSplitter{literal: lit}, nil
	}
	re, err := regexp.Compile(re2)
	if err != nil {
		return nil, fmt.Errorf("java regex %q: %w", delimiter, err)
	}
	return &javaSplitter{re: re}, nil
}

// split fills sp.bounds for s and returns the number of pieces.
func (sp *javaSplitter) split(s []byte) int {
	b := sp.bounds[:0]
	index := 0
	matched := false
	if sp.literal != nil {
		for {
			i := bytes.Index(s[index:], sp.literal)
			if i < 0 {
				break
			}
			b = append(b, index, index+i)
			index += i + len(sp.literal)
			matched = true
		}
	} else {
		for _, m := range sp.re.FindAllIndex(s, -1) {
			if m[0] == 0 && m[1] == 0 {
				continue
			}
			b = append(b, index, m[0])
			index = m[1]
			matched = true
		}
	}
	if !matched {
		sp.bounds = append(b, 0, len(s))
		return 1
	}
	b = append(b, index, len(s))
	for len(b) > 0 && b[len(b)-1] == b[len(b)-2] {
		b = b[:len(b)-2]
	}
	sp.bounds = b
	return len(b) / 2
}

// csvToJSON is CSVTOJSON: the record (one "\n" stripped) split on the delimiter, the
// pieces paired with customFieldNames in order; missing ones are null, extra ones dropped.
// No quoting, no trimming.
type csvToJSON struct {
	obj      flatObject
	splitter *javaSplitter
	dec      decoder
}

func newCSVToJSON(o Options) (*csvToJSON, error) {
	if o.CustomFieldNames == nil {
		return nil, errors.New("customFieldNames is required")
	}
	pretty, err := prettyFormat(o)
	if err != nil {
		return nil, err
	}
	delimiter := o.Delimiter
	if delimiter == "" {
		delimiter = ","
	}
	sp, err := newJavaSplitter(delimiter)
	if err != nil {
		return nil, fmt.Errorf("delimiter: %w", err)
	}
	return &csvToJSON{obj: newFlatObject(o.CustomFieldNames, pretty), splitter: sp}, nil
}

func (p *csvToJSON) Process(dst, record []byte) ([]byte, bool, error) {
	s := trimNewline(p.dec.decode(record))
	n := p.splitter.split(s)
	b := p.splitter.bounds
	for j, i := range p.obj.slots {
		dst = append(dst, p.obj.prefixes[j]...)
		if i < n {
			dst = appendJSONString(dst, s[b[2*i]:b[2*i+1]])
		} else {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, p.obj.closing...), false, nil
}

// logToJSON is LOGTOJSON: the record (one "\n" stripped) must match the whole pattern; group
// i becomes field i. A record that does not match, or a pattern whose group count is not the
// field count, is skipped.
type logToJSON struct {
	re       *regexp.Regexp
	nfields  int
	dashNull bool // the Apache formats turn a field that is exactly "-" into null
	obj      flatObject
	dec      decoder
}

// logFormat is one of LOGTOJSON's built-in formats.
type logFormat struct {
	pattern  string // a Java regex
	fields   []string
	dashNull bool
}

func newLogToJSON(o Options, deps Deps) (*logToJSON, error) {
	format, re, fields, err := logParser(o)
	if err != nil {
		return nil, err
	}
	pretty, err := prettyFormat(o)
	if err != nil {
		return nil, err
	}
	if re.NumSubexp() != len(fields) {
		// The Kinesis Agent starts with such a pattern and skips every record.
		deps.Logger.Warn("processing: LOGTOJSON matchPattern has a different number of groups than customFieldNames; every record will be skipped",
			"groups", re.NumSubexp(), "fields", len(fields))
	}
	return &logToJSON{re: re, nfields: len(fields), dashNull: format.dashNull, obj: newFlatObject(fields, pretty)}, nil
}

// logParser reads logFormat, matchPattern and customFieldNames as the Kinesis Agent's log
// parser factory does (ADDEC2METADATA goes through it too).
func logParser(o Options) (logFormat, *regexp.Regexp, []string, error) {
	if o.LogFormat == "" {
		return logFormat{}, nil, nil, errors.New("logFormat is required")
	}
	format, ok := logFormats()[o.LogFormat]
	if !ok {
		return logFormat{}, nil, nil, fmt.Errorf("logFormat %q: want COMMONAPACHELOG, COMBINEDAPACHELOG, APACHEERRORLOG, SYSLOG or RFC3339SYSLOG", o.LogFormat)
	}
	pattern, fields := format.pattern, format.fields
	switch {
	case o.MatchPattern != "" && o.CustomFieldNames == nil:
		return logFormat{}, nil, nil, errors.New("customFieldNames must be specified when matchPattern is specified")
	case o.MatchPattern != "":
		pattern, fields = o.MatchPattern, o.CustomFieldNames
	case o.CustomFieldNames != nil && len(o.CustomFieldNames) != len(fields):
		return logFormat{}, nil, nil, fmt.Errorf("customFieldNames has %d names, logFormat %s has %d fields: give as many, or a matchPattern",
			len(o.CustomFieldNames), o.LogFormat, len(fields))
	case o.CustomFieldNames != nil:
		fields = o.CustomFieldNames
	}
	re, err := javaregex.Compile(pattern, true)
	if err != nil {
		return logFormat{}, nil, nil, fmt.Errorf("matchPattern: %w", err)
	}
	return format, re, fields, nil
}

func (p *logToJSON) Process(dst, record []byte) ([]byte, bool, error) {
	s := trimNewline(p.dec.decode(record))
	m := p.re.FindSubmatchIndex(s)
	if m == nil || len(m)/2-1 != p.nfields {
		return dst, true, nil
	}
	for j, i := range p.obj.slots {
		dst = append(dst, p.obj.prefixes[j]...)
		start, end := m[2*i+2], m[2*i+3]
		if start < 0 || (p.dashNull && end-start == 1 && s[start] == '-') {
			dst = append(dst, "null"...)
			continue
		}
		dst = appendJSONString(dst, s[start:end])
	}
	return append(dst, p.obj.closing...), false, nil
}

// addMetadata is ADDMETADATA: {"ts":..., "metadata":..., "data":"<record>"}.
type addMetadata struct {
	now       func() time.Time
	timestamp bool
	obj       flatObject
	metadata  []byte // rendered once
	dec       decoder
}

// tsLayout is yyyy-MM-dd'T'HH:mm:ss.SSS'Z', always UTC.
const tsLayout = "2006-01-02T15:04:05.000Z"

func newAddMetadata(o Options, deps Deps) (*addMetadata, error) {
	pretty, err := prettyFormat(o)
	if err != nil {
		return nil, err
	}
	p := &addMetadata{now: deps.Now, timestamp: strings.EqualFold(o.Timestamp, "true")}
	meta := &jsonValue{kind: jsonNull}
	if len(bytes.TrimSpace(o.Metadata)) > 0 {
		if meta, err = parseJSONValue(o.Metadata); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
	}
	p.metadata = appendJSONValue(nil, meta, pretty, 1)
	keys := []string{"metadata", "data"}
	if p.timestamp {
		keys = []string{"ts", "metadata", "data"}
	}
	p.obj = newFlatObject(keys, pretty)
	return p, nil
}

func (p *addMetadata) Process(dst, record []byte) ([]byte, bool, error) {
	s := trimNewline(p.dec.decode(record))
	field := 0
	if p.timestamp {
		dst = append(dst, p.obj.prefixes[0]...)
		dst = append(dst, '"')
		dst = p.now().UTC().AppendFormat(dst, tsLayout)
		dst = append(dst, '"')
		field++
	}
	dst = append(dst, p.obj.prefixes[field]...)
	dst = append(dst, p.metadata...)
	dst = append(dst, p.obj.prefixes[field+1]...)
	dst = appendJSONString(dst, s)
	return append(dst, p.obj.closing...), false, nil
}

// brackets is ADDBRACKETS: "{" + record + "}", the record's "\n" still inside.
type brackets struct{ dec decoder }

func (p *brackets) Process(dst, record []byte) ([]byte, bool, error) {
	dst = append(dst, '{')
	dst = append(dst, p.dec.decode(record)...)
	return append(dst, '}'), false, nil
}

// lineFilter is kinship's include/exclude: an RE2 search in the record without its "\n";
// include keeps the records it finds, exclude skips them.
type lineFilter struct {
	re      *regexp.Regexp
	include bool
}

func newLineFilter(o Options) (*lineFilter, error) {
	if o.MatchPattern == "" {
		return nil, fmt.Errorf("%s needs a pattern", o.Name)
	}
	re, err := regexp.Compile(o.MatchPattern)
	if err != nil {
		return nil, fmt.Errorf("%s pattern: %w", o.Name, err)
	}
	return &lineFilter{re: re, include: o.Name == Include}, nil
}

func (p *lineFilter) Process(dst, record []byte) ([]byte, bool, error) {
	if p.re.Match(trimNewline(record)) != p.include {
		return dst, true, nil
	}
	return append(dst, record...), false, nil
}
