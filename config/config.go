package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
)

// Defaults, named so that documentation and tests can refer to them.
const (
	DefaultStateDir        = "/var/lib/kinship"
	DefaultStartAt         = "beginning"
	DefaultMaxLineBytes    = 1 * MiB
	DefaultPollInterval    = Duration(10e9)
	DefaultMultiMaxLines   = 500
	DefaultMultiTimeout    = Duration(1e9)
	DefaultCloseInactive   = Duration(300e9)
	DefaultPartialTimeout  = Duration(5e9)
	DefaultPartitionKey    = "random"
	DefaultMaxRecordBytes  = 1 * MiB
	DefaultMaxRequestBytes = 5 * MiB
	// DefaultKinesisProtocol is kinesis.protocol's default: CBOR needs no base64, so it
	// hashes, encrypts and sends a quarter fewer bytes than JSON.
	DefaultKinesisProtocol = "cbor"
	DefaultMaxInFlight     = 4
	DefaultBatchMaxAge     = Duration(1e9)
	DefaultBatchMaxBytes   = 1 * MiB
	DefaultSpoolMaxBytes   = 1 * GiB
	DefaultWhenFull        = "block"
	// S2 rather than zstd: zstd packs tighter for several times the CPU (bench/README.md has
	// the figures).
	DefaultCompression    = "s2"
	DefaultSpoolWrite     = "backlog"
	DefaultFsyncInterval  = Duration(100e6)
	DefaultSegmentBytes   = 64 * MiB
	DefaultUnhealthyAfter = Duration(5 * 60e9)

	// KinesisMaxRecordBytes is the largest record (data + partition key) a stream accepts
	// once raised with UpdateMaxRecordSize; it also bounds one PutRecords request.
	KinesisMaxRecordBytes = 10 * MiB
)

// Config is the validated configuration of the agent, with every default filled in.
type Config struct {
	StateDir string // spool and positions live below it
	AWS      AWS
	Metrics  Metrics
	Spool    GlobalSpool
	Flows    []Flow
	// AgentCheckpoints is set when the main file is an agent.json: where the Amazon Kinesis
	// Agent kept its per-file read offsets, for a flow's first start to resume from them
	// instead of from start_at.
	AgentCheckpoints *AgentCheckpoints
	// Warnings name the settings of an agent.json that kinship does not honour, one
	// sentence each; the agent logs them at start and validate prints them.
	Warnings []string
	// Differences name, per flow of an agent.json, what kinship does differently from the
	// Kinesis Agent (validate prints them; they are information, not problems).
	Differences []Difference
}

// AgentCheckpoints locates the Kinesis Agent's checkpoint database (an SQLite file of
// per-file offsets; its checkpoints/SQLiteFileCheckpointStore.java has the schema).
type AgentCheckpoints struct {
	File string   // absolute path [DefaultAgentCheckpointFile]
	TTL  Duration // checkpoints older than this are stale (checkpointTimeToLiveDays) [7 days]
}

// The Kinesis Agent's checkpoint defaults.
const (
	DefaultAgentCheckpointFile = "/var/run/aws-kinesis-agent/checkpoints"
	DefaultAgentCheckpointTTL  = Duration(7 * 24 * 3600e9)
)

// AWS holds the few AWS settings that the standard credential/region chain cannot supply.
type AWS struct {
	Region   string
	Endpoint string // absolute http(s) URL, or empty
	RoleARN  string
	// ExternalID and RoleSessionName go with RoleARN into AssumeRole: the external id a
	// cross-account role's trust policy may demand, and the session name CloudTrail shows.
	ExternalID      string
	RoleSessionName string
	// FirehoseEndpoint, when set, is used for Firehose instead of Endpoint (agent.json's
	// firehose.endpoint; aws.firehose_endpoint).
	FirehoseEndpoint string
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string // host:port; empty disables the endpoint
	// UnhealthyAfter: /healthz fails when a flow with data waiting in its spool has not
	// shipped anything for this long; 0 means DefaultUnhealthyAfter.
	UnhealthyAfter Duration
	CloudWatch     CloudWatch
}

// GlobalSpool bounds the spools of all flows together (the top-level spool block).
type GlobalSpool struct {
	// MaxBytes bounds the bytes of every running flow's spool together; 0 (the default):
	// only each flow's own spool.max_bytes. When it is reached, each flow applies its own
	// when_full; every flow keeps a reserve of min(its max_bytes, MaxBytes/(2*flows)) that
	// the others cannot take (see spool.Budget).
	MaxBytes Size
	Pos      Pos // where max_bytes was written, for errors found after merging
}

// Flow is one set of path patterns with its processing options and one destination.
type Flow struct {
	Name         string
	Paths        []string // absolute doublestar patterns
	Exclude      []string
	StartAt      string // "beginning" or "end"
	Multiline    *Multiline
	MaxLineBytes Size
	PollInterval Duration
	// CloseInactive: a file idle at its end this long gives its descriptor back (reopened on
	// the next write, identity kept).
	CloseInactive Duration
	// PartialLineTimeout: a last line without '\n' is shipped after this long without growth.
	PartialLineTimeout Duration
	// SkipHeaderLines: lines skipped at the start of a file read from offset 0.
	SkipHeaderLines int
	// FollowSymlinks: follow links that the patterns' wildcards find. Off by default:
	// whoever can write a watched directory could make the agent ship any file it can read.
	FollowSymlinks bool
	// DeleteAfterShipped: absolute globs of rotated files the flow deletes once every line of
	// them is acknowledged (by every flow that reads them); never the newest file under a
	// paths pattern, nor one written to within close_inactive.
	DeleteAfterShipped []string
	// TruncatedRecordTerminator is appended, within max_line_bytes, to a truncated line.
	TruncatedRecordTerminator string
	Kinesis                   *Kinesis
	Firehose                  *Firehose
	HTTP                      *HTTP
	Discard                   *Discard
	Batch                     Batch
	Spool                     Spool
	AddMetadata               *AddMetadata // nil: lines are shipped as read
	// KeepNewline: each record keeps the '\n' that ended its line, as the Kinesis Agent sends
	// it (set for agent.json flows; consumers concatenating records rely on it).
	KeepNewline bool
	// Processors run on each record in order, after multiline joining and before
	// aggregation (processors.go; agent.json's dataProcessingOptions).
	Processors []Processor
	Pos        Pos // where the flow was defined, for errors found after loading
}

// AddMetadata wraps each line as a JSON object {"data": line, ...} with the chosen context
// fields (host, instance_id, region from IMDSv2, path), as the Kinesis Agent's
// ADDEC2METADATA processing option does.
type AddMetadata struct {
	Hostname   bool
	InstanceID bool
	Region     bool
	FilePath   bool
}

// NeedsIMDS reports whether the fields need the EC2 instance metadata service.
func (m *AddMetadata) NeedsIMDS() bool { return m != nil && (m.InstanceID || m.Region) }

// Multiline joins continuation lines to the line that matched StartPattern.
type Multiline struct {
	StartPattern string
	Regexp       *regexp.Regexp
	MaxLines     int
	MaxBytes     Size // an entry longer than this is cut; default: the flow's MaxLineBytes
	Timeout      Duration
}

// Kinesis is the Kinesis Data Streams destination.
type Kinesis struct {
	Stream string // name or ARN
	// PartitionKey: "random", "host", "deterministic" (the MD5 of each record, in hex: the
	// Kinesis Agent's DETERMINISTIC) or a fixed key; with a key from the line, the fallback.
	PartitionKey string
	// A key taken from each line (at most one of the two is set): a dotted path of JSON object
	// keys, or a regexp whose one capture group is the key. Lines without it get PartitionKey.
	PartitionKeyField   string
	PartitionKeyRegex   *regexp.Regexp
	PartitionKeyPattern string // PartitionKeyRegex as written
	Aggregate           bool
	MaxRecordBytes      Size
	MaxRequestBytes     Size
	MaxInFlight         int
	Compression         string // "none", "gzip" or "zstd": each record's data compressed whole
	// Protocol is PutRecords' wire format: "cbor" (application/x-amz-cbor-1.1, records as
	// bytes) or "json" (application/x-amz-json-1.1, records in base64, as the AWS SDK for Go sends).
	Protocol string
}

// Discard takes records like a destination would and drops them (tests, benchmarks).
type Discard struct{}

// Batch bounds an aggregated record before it is closed.
type Batch struct {
	MaxAge     Duration
	MaxBytes   Size
	MaxRecords int // 0: no limit
}

// Spool bounds the flow's on-disk spool.
type Spool struct {
	MaxBytes      Size
	WhenFull      string // "block" or "drop_oldest"
	FsyncInterval Duration
	SegmentBytes  Size
	Compression   string // "s2", "zstd" or "none"; max_bytes counts compressed bytes
	// Write is "backlog" (records the destination acknowledges before the next group
	// commit are never written, only their positions) or "always" (every record is
	// written and fsynced, as before); see package spool.
	Write string
}

// Load reads path and then every <dir of path>/conf.d/*.yaml in name order (a missing
// conf.d is fine). Drop-ins may add flows and set top-level keys: a later file wins key by
// key (aws.region in a drop-in leaves aws.endpoint of the main file alone), flows are
// appended, and a flow name defined twice is an error naming both places. Every problem
// of every file is reported at once, as a *ValidationError.
//
// The main file may instead be the Amazon Kinesis Agent's agent.json (a .json file, or any
// file holding a JSON object that is not a native configuration): it is translated to the
// native configuration, and what kinship does not honour is listed in Config.Warnings.
// The flows of <dir of path>/agent.d/*.json are then appended in name order, as the
// Kinesis Agent appends those of /etc/aws-kinesis/agent.d.
func Load(path string) (*Config, error) {
	dropIns, err := filepath.Glob(filepath.Join(filepath.Dir(path), "conf.d", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("config: conf.d: %w", err)
	}
	files := append([]string{path}, dropIns...)
	p := &problems{files: files}
	var docs []*document
	var warnings []string
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if i > 0 && (errors.Is(err, fs.ErrNotExist) || isDir(f)) {
				continue // raced with a removal, or a directory named x.yaml
			}
			p.add(Pos{File: f}, "cannot read: %v", unwrapPath(err))
			if i == 0 {
				return nil, p.err() // without the main file, any other complaint is noise
			}
			continue
		}
		if isAgent, clean := agentJSON(f, data); i == 0 && isAgent {
			doc, w := decodeAgentJSON(f, clean, agentDropIns(f, p), p)
			docs, warnings = append(docs, doc), w
			continue
		}
		docs = append(docs, decodeDocument(f, data, p))
	}
	cfg := merge(docs, p)
	if err := p.err(); err != nil {
		return nil, err
	}
	cfg.Warnings = append(append(warnings, p.warns...), cfg.stateDirWarnings()...)
	return cfg, nil
}

// agentDropIns reads <dir of agent.json>/agent.d/*.json in name order (the Kinesis Agent
// reads /etc/aws-kinesis/agent.d beside /etc/aws-kinesis/agent.json); a missing agent.d is
// fine.
func agentDropIns(path string, p *problems) []agentDropIn {
	names, err := filepath.Glob(filepath.Join(filepath.Dir(path), "agent.d", "*.json"))
	if err != nil {
		p.add(Pos{File: path}, "agent.d: %v", err)
		return nil
	}
	var out []agentDropIn
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !isDir(name) {
				p.add(Pos{File: name}, "cannot read: %v", unwrapPath(err))
			}
			continue
		}
		p.files = append(p.files, name)
		out = append(out, agentDropIn{name: name, data: stripJSONComments(data)})
	}
	return out
}

// Parse decodes and validates one document, native or agent.json (see Load); name is used
// in errors.
func Parse(name string, data []byte) (*Config, error) {
	p := &problems{files: []string{name}}
	var doc *document
	var warnings []string
	if isAgent, clean := agentJSON(name, data); isAgent {
		doc, warnings = decodeAgentJSON(name, clean, nil, p)
	} else {
		doc = decodeDocument(name, data, p)
	}
	cfg := merge([]*document{doc}, p)
	if err := p.err(); err != nil {
		return nil, err
	}
	cfg.Warnings = append(append(warnings, p.warns...), cfg.stateDirWarnings()...)
	return cfg, nil
}

// minimalHint is written in YAML flow style so that the error stays on one line.
const minimalHint = `the smallest useful file is: flows: [{name: app, paths: ["/var/log/app/*.log"], kinesis: {stream: app-logs}}]`

func merge(docs []*document, p *problems) *Config {
	cfg := &Config{StateDir: DefaultStateDir}
	seen := map[string]Pos{}
	for _, d := range docs {
		if d.stateDir != nil {
			cfg.StateDir = *d.stateDir
		}
		if d.region != nil {
			cfg.AWS.Region = *d.region
		}
		if d.endpoint != nil {
			cfg.AWS.Endpoint = *d.endpoint
		}
		if d.roleARN != nil {
			cfg.AWS.RoleARN = *d.roleARN
		}
		if d.externalID != nil {
			cfg.AWS.ExternalID = *d.externalID
		}
		if d.sessionName != nil {
			cfg.AWS.RoleSessionName = *d.sessionName
		}
		if d.firehoseEndpoint != nil {
			cfg.AWS.FirehoseEndpoint = *d.firehoseEndpoint
		}
		if d.listen != nil {
			cfg.Metrics.Listen = *d.listen
		}
		if d.unhealthyAfter != nil {
			cfg.Metrics.UnhealthyAfter = *d.unhealthyAfter
		}
		d.cloudwatch.mergeInto(&cfg.Metrics.CloudWatch)
		if d.agentCheckpoints != nil {
			cfg.AgentCheckpoints = d.agentCheckpoints
		}
		cfg.Differences = append(cfg.Differences, d.agentDifferences...)
		if d.spoolMaxBytes != nil {
			cfg.Spool = GlobalSpool{MaxBytes: *d.spoolMaxBytes, Pos: d.spoolMaxPos}
		}
		for _, f := range d.flows {
			if f.Name != "" {
				if first, dup := seen[f.Name]; dup {
					p.add(f.Pos, "flow %q is already defined at %s", f.Name, first)
					continue
				}
				seen[f.Name] = f.Pos
			}
			cfg.Flows = append(cfg.Flows, f)
		}
	}
	cfg.Metrics.CloudWatch.Namespace = cmp.Or(cfg.Metrics.CloudWatch.Namespace, DefaultCloudWatchNamespace)
	cfg.Metrics.CloudWatch.Interval = cmp.Or(cfg.Metrics.CloudWatch.Interval, DefaultCloudWatchInterval)
	if g := cfg.Spool.MaxBytes; g > 0 {
		// A flow holding no data may always append one record, but a budget smaller than a
		// record would bound nothing: refuse it where it was written.
		for _, f := range cfg.Flows {
			if g < f.Batch.MaxBytes {
				p.add(cfg.Spool.Pos, "spool.max_bytes: %s is smaller than batch.max_bytes of flow %q (%s): one record of every flow must fit", g, f.Name, f.Batch.MaxBytes)
				break
			}
		}
	}
	if cfg.AWS.RoleARN == "" {
		// Otherwise the key would be ignored without a word.
		for _, d := range docs {
			if d.roleOnlyKey != "" {
				p.add(d.roleOnlyAt, "%s: only used to assume aws.role_arn, which is not set", d.roleOnlyKey)
			}
		}
	}
	if len(cfg.Flows) == 0 && !slices.ContainsFunc(docs, func(d *document) bool { return d.flowsBroken }) {
		pos := Pos{Line: 1, Column: 1}
		if len(docs) > 0 {
			pos.File = docs[0].name
			if d := docs[0]; d.flowsKey != nil {
				pos = *d.flowsKey
			}
		}
		switch {
		case len(docs) == 1 && docs[0].empty:
			p.add(pos, "the file is empty; %s", minimalHint)
		default:
			p.add(pos, "no flows configured; %s", minimalHint)
		}
	}
	return cfg
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// unwrapPath drops the *PathError's path: the position already names the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Destination names the flow's destination as written in the file ("kinesis", "firehose",
// "http" or "discard").
func (f *Flow) Destination() string {
	switch {
	case f.Kinesis != nil:
		return "kinesis"
	case f.Firehose != nil:
		return "firehose"
	case f.HTTP != nil:
		return "http"
	case f.Discard != nil:
		return "discard"
	}
	return ""
}

// FlowDir is the directory of the flow's state (its spool and positions): the flow name is
// validated to be a single safe path element for this reason.
func (c *Config) FlowDir(f *Flow) string {
	return filepath.Join(c.StateDir, "flows", f.Name)
}
