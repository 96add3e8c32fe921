// Package processing runs a flow's record processors: the Amazon Kinesis Agent's
// dataProcessingOptions (SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA, ADDEC2METADATA,
// ADDBRACKETS) with the bytes that agent produces, quirks included, and kinship's own
// include/exclude line filters.
//
// A record is one tailed record as the tailer frames it, trailing "\n" included. Each
// processor appends its output to a caller's buffer, so a flow reuses one buffer for every
// record. A processor has three outcomes, which the caller must keep apart:
//
//   - output: ship it instead of the record;
//   - skip (LOGTOJSON on a line its pattern does not match, a filter): ship nothing and move
//     the file position past the record, as the Kinesis Agent does;
//   - error (ADDEC2METADATA on a record that is not a JSON object): ship the original record
//     unchanged and count an error, as the Kinesis Agent does.
//
// Processors and chains keep scratch space between calls: one per goroutine.
package processing

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Processor converts one record.
type Processor interface {
	// Process appends the converted record to dst and returns the extended buffer. skip
	// means the record is to be dropped (not an error); on error the caller ships the
	// original record and counts the error. record is not retained and not modified.
	Process(dst, record []byte) (out []byte, skip bool, err error)
}

// Option names, as agent.json spells them (case-sensitive, as the Kinesis Agent reads them),
// and kinship's own filters.
const (
	SingleLine     = "SINGLELINE"
	CSVToJSON      = "CSVTOJSON"
	LogToJSON      = "LOGTOJSON"
	AddMetadata    = "ADDMETADATA"
	AddEC2Metadata = "ADDEC2METADATA"
	AddBrackets    = "ADDBRACKETS"
	UsingPlugin    = "USINGPLUGGIN" // sic: the Kinesis Agent's spelling
	Include        = "include"
	Exclude        = "exclude"
)

// Options is one entry of dataProcessingOptions, as plain data (config translates agent.json
// and the native YAML into it). A nil slice or empty string is a key that was not given.
type Options struct {
	Name             string          // optionName
	ParseOptions     []string        // SINGLELINE: NO_TRIM, ESCAPE_NEW_LINE
	CustomFieldNames []string        // CSVTOJSON (required), LOGTOJSON
	Delimiter        string          // CSVTOJSON: a Java regex; "" means the default ","
	LogFormat        string          // LOGTOJSON, ADDEC2METADATA (required by both)
	MatchPattern     string          // LOGTOJSON: a Java regex; include/exclude: an RE2 regex
	Metadata         json.RawMessage // ADDMETADATA: any JSON value, key order kept
	Timestamp        string          // ADDMETADATA: "true" (any case) adds "ts"
	MetadataTTL      time.Duration   // ADDEC2METADATA: 0 means the default hour
	JSONFormat       string          // COMPACT (default) or PRETTYPRINT
}

// Deps are what processors need from outside.
type Deps struct {
	Now    func() time.Time // ADDMETADATA's ts, ADDEC2METADATA's refresh; time.Now if nil
	IMDS   InstanceMetadata // ADDEC2METADATA; a default IMDSv2 client if nil
	Logger *slog.Logger     // configuration warnings and metadata refresh failures
}

// Chain runs processors in the configured order. A skip ends the chain; an error ends it
// and is returned with the failing option named. The zero Chain passes records unchanged.
type Chain struct {
	processors []Processor
	names      []string
	scratch    [2][]byte
}

// Len is the number of processors.
func (c *Chain) Len() int { return len(c.processors) }

// Process runs the chain on record, appending the result to dst.
func (c *Chain) Process(dst, record []byte) ([]byte, bool, error) {
	n := len(c.processors)
	if n == 0 {
		return append(dst, record...), false, nil
	}
	in := record
	for i, p := range c.processors {
		target := dst
		if i < n-1 {
			target = c.scratch[i%2][:0]
		}
		out, skip, err := p.Process(target, in)
		if err != nil {
			return dst, false, fmt.Errorf("processing: %s: %w", c.names[i], err)
		}
		if skip {
			return dst, true, nil
		}
		if i < n-1 {
			c.scratch[i%2] = out
			in = out
		} else {
			dst = out
		}
	}
	return dst, false, nil
}

// New builds the chain for a flow's options, checking each as the Kinesis Agent does at
// start (an option it would refuse is an error here too).
func New(opts []Options, deps Deps) (*Chain, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Chain{}
	for i, o := range opts {
		p, err := newProcessor(o, deps)
		if err != nil {
			return nil, fmt.Errorf("processing: option %d (%s): %w", i+1, o.Name, err)
		}
		c.processors = append(c.processors, p)
		c.names = append(c.names, o.Name)
	}
	return c, nil
}

func newProcessor(o Options, deps Deps) (Processor, error) {
	switch o.Name {
	case SingleLine:
		return newSingleLine(o, deps)
	case CSVToJSON:
		return newCSVToJSON(o)
	case LogToJSON:
		return newLogToJSON(o, deps)
	case AddMetadata:
		return newAddMetadata(o, deps)
	case AddEC2Metadata:
		return newAddEC2Metadata(o, deps)
	case AddBrackets:
		return &brackets{}, nil
	case Include, Exclude:
		return newLineFilter(o)
	case UsingPlugin:
		return nil, errors.New("USINGPLUGGIN loads a Java class into the Kinesis Agent; kinship cannot run Java converters: " +
			"remove the option, or do the conversion downstream (a Firehose transformation Lambda, for example)")
	case "":
		return nil, errors.New("optionName is missing")
	}
	for _, known := range []string{SingleLine, CSVToJSON, LogToJSON, AddMetadata, AddEC2Metadata, AddBrackets} {
		if strings.EqualFold(o.Name, known) {
			return nil, fmt.Errorf("unknown optionName %q (names are case-sensitive: %s)", o.Name, known)
		}
	}
	return nil, fmt.Errorf("unknown optionName %q (known: SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA, ADDEC2METADATA, ADDBRACKETS)", o.Name)
}

// printer reads jsonFormat: COMPACT (the default) or PRETTYPRINT.
func prettyFormat(o Options) (bool, error) {
	switch o.JSONFormat {
	case "", "COMPACT":
		return false, nil
	case "PRETTYPRINT":
		return true, nil
	}
	return false, fmt.Errorf("jsonFormat %q: want COMPACT or PRETTYPRINT", o.JSONFormat)
}

// trimNewline drops one trailing "\n", as the converters that build JSON do.
func trimNewline(s []byte) []byte {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		return s[:n-1]
	}
	return s
}
