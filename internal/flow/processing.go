package flow

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/processing"
)

// stage is what the sink does to a line before the aggregator: the kept '\n' of agent.json
// flows (KeepNewline), then the flow's processors. A flow with neither has no stage at all,
// so its lines cost nothing here. Used by the tailer's goroutine only (it owns the buffers).
//
// Outcomes of a processor (see package processing): an output replaces the record; a skip
// (log_to_json without a match, include/exclude) ships nothing while the file position
// still moves past the record (the aggregator's Skip); an error ships the record as read,
// counted and logged (rate-limited).
type stage struct {
	keepNewline bool
	// cutAt are the line limits the tailer cuts at (lines, multiline events) and cutEnd its
	// terminator: a line that long ending with it was cut, and a cut record ends with the
	// terminator instead of '\n', as the Kinesis Agent's does.
	cutAt  [2]int
	cutEnd string

	steps []step
	rec   []byte    // the line with its '\n'
	bufs  [2][]byte // processors write into these in turn

	m   *metrics.Flow
	log *slog.Logger
	// Errors are logged at most once per errLogEvery, with how many there were since.
	errLogged time.Time
	errSince  int
}

// step is one processor, run as a chain of one so that the stage knows which one skipped.
type step struct {
	chain *processing.Chain
	typ   string // config.Proc*
	// raw: a skip is not a drop but "ship the record as read" (log_to_json with
	// on_parse_error: raw).
	raw bool
}

const errLogEvery = time.Minute

// newStage returns the flow's stage, nil when there is nothing to do to its lines.
func newStage(cfg config.Flow, deps processing.Deps, m *metrics.Flow, log *slog.Logger) (*stage, error) {
	if !cfg.KeepNewline && len(cfg.Processors) == 0 {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &stage{keepNewline: cfg.KeepNewline, cutEnd: cfg.TruncatedRecordTerminator, m: m, log: log}
	deps.Logger = log
	for i, p := range cfg.Processors {
		c, err := processing.New([]processing.Options{processingOptions(p)}, deps)
		if err != nil {
			return nil, fmt.Errorf("processors[%d] (%s): %w", i, p.Type, err)
		}
		s.steps = append(s.steps, step{chain: c, typ: p.Type, raw: p.Type == config.ProcLogToJSON && p.OnParseError == config.ParseErrorRaw})
	}
	return s, nil
}

// process returns the record to ship for line, or skip. out is valid until the next call.
func (s *stage) process(line []byte) (out []byte, skip bool) {
	rec := line
	if s.keepNewline && !s.wasCut(line) {
		s.rec = append(append(s.rec[:0], line...), '\n')
		rec = s.rec
	}
	out = rec
	for i, st := range s.steps {
		o, skipped, err := st.chain.Process(s.bufs[i%2][:0], out)
		s.bufs[i%2] = o
		switch {
		case err != nil:
			s.failed(err)
			return rec, false
		case skipped && st.raw:
			s.m.ProcessingErrors.Inc()
			return rec, false
		case skipped && (st.typ == config.ProcInclude || st.typ == config.ProcExclude):
			s.m.LinesFiltered.Inc()
			return nil, true
		case skipped:
			s.m.ProcessingSkipped.Inc()
			return nil, true
		}
		out = o
	}
	if !s.keepNewline && len(s.steps) > 0 {
		// A native flow's records are lines without '\n' (destinations that need one add it);
		// the converters end theirs with one, as the Kinesis Agent's do.
		out = bytes.TrimSuffix(out, []byte{'\n'})
	}
	return out, false
}

func (s *stage) wasCut(line []byte) bool {
	return s.cutEnd != "" && (len(line) == s.cutAt[0] || len(line) == s.cutAt[1]) && bytes.HasSuffix(line, []byte(s.cutEnd))
}

func (s *stage) failed(err error) {
	s.m.ProcessingErrors.Inc()
	s.errSince++
	if now := time.Now(); now.Sub(s.errLogged) >= errLogEvery {
		s.log.Warn("processing failed; records shipped as read", "err", err, "records", s.errSince)
		s.errLogged, s.errSince = now, 0
	}
}

// processingOptions is a configured processor as package processing takes it: the Kinesis
// Agent's option names and enum values.
func processingOptions(p config.Processor) processing.Options {
	o := processing.Options{JSONFormat: jsonFormat(p.JSONFormat)}
	switch p.Type {
	case config.ProcSingleLine:
		o.Name = processing.SingleLine
		if p.NoTrim {
			o.ParseOptions = append(o.ParseOptions, "NO_TRIM")
		}
		if p.EscapeNewline {
			o.ParseOptions = append(o.ParseOptions, "ESCAPE_NEW_LINE")
		}
	case config.ProcCSVToJSON:
		o.Name, o.CustomFieldNames, o.Delimiter = processing.CSVToJSON, p.FieldNames, p.Delimiter
	case config.ProcLogToJSON:
		o.Name, o.LogFormat, o.MatchPattern, o.CustomFieldNames = processing.LogToJSON, agentLogFormat(p.LogFormat), p.MatchPattern, p.FieldNames
	case config.ProcAddMetadata:
		o.Name, o.Metadata = processing.AddMetadata, p.Metadata
		if p.Timestamp {
			o.Timestamp = "true"
		}
	case config.ProcAddEC2Metadata:
		// The Kinesis Agent requires a logFormat it never uses; the native key has none.
		o.Name, o.MetadataTTL, o.LogFormat = processing.AddEC2Metadata, p.MetadataTTL.D(), "SYSLOG"
	case config.ProcAddBrackets:
		o.Name = processing.AddBrackets
	case config.ProcInclude, config.ProcExclude:
		o.Name = processing.Include
		if p.Type == config.ProcExclude {
			o.Name = processing.Exclude
		}
		// Any of the patterns: one alternation of config's compiled (RE2) forms.
		alts := make([]string, len(p.Regexps))
		for i, re := range p.Regexps {
			alts[i] = "(?:" + re.String() + ")"
		}
		o.MatchPattern = strings.Join(alts, "|")
	default:
		o.Name = p.Type // refused by processing.New, naming it
	}
	return o
}

func jsonFormat(f string) string {
	if f == config.JSONPretty {
		return "PRETTYPRINT"
	}
	return "" // COMPACT
}

func agentLogFormat(f string) string {
	switch f {
	case config.LogCommonApache:
		return "COMMONAPACHELOG"
	case config.LogCombinedApache:
		return "COMBINEDAPACHELOG"
	case config.LogApacheError:
		return "APACHEERRORLOG"
	case config.LogSyslog:
		return "SYSLOG"
	case config.LogRFC3339Syslog:
		return "RFC3339SYSLOG"
	}
	return f
}
