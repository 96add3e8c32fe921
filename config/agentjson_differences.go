package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Difference is one thing kinship does differently from the Amazon Kinesis Agent with a
// flow of an agent.json, so that an operator can switch with open eyes. It is information,
// not a problem: the flow runs, and validate prints it after the warnings. Differences that
// hold for every flow whatever its settings (docs/migrating.md, "Other differences") are not
// repeated per flow; a flow that behaves the same has none.
type Difference struct {
	Flow    string // the flow's name
	Key     string // the agent.json key (or kinship's own key) the difference comes from
	Kinship string // what kinship does
	Agent   string // what the Kinesis Agent does
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: %s: kinship %s; the Kinesis Agent %s", d.Flow, d.Key, d.Kinship, d.Agent)
}

// differ notes a difference of flow f; its name is known only once every flow is read.
func (f *agentFlow) differ(key, kinship, agent string) {
	f.diffs = append(f.diffs, Difference{Key: key, Kinship: kinship, Agent: agent})
}

// flowDifferences adds the differences that depend on the decoded flow (processors) and
// names them after the flow.
func (f *agentFlow) flowDifferences(fl *Flow) []Difference {
	if k := fl.Kinesis; k != nil && k.PartitionKey == "deterministic" && len(fl.Processors) == 0 && !k.Aggregate {
		// KinesisRecord.generatePartitionKey hashes data.array(): for a record not rewritten
		// by a converter that is the parser's whole read buffer, not the record.
		f.differ("partitionKeyOption", "keys each record by the MD5 of the record",
			"hashes the whole read buffer the record was cut from (a bug): the same record may land on another shard")
	}
	for i, p := range fl.Processors {
		if p.Type == ProcAddEC2Metadata {
			f.differ(fmt.Sprintf("dataProcessingOptions[%d] ADDEC2METADATA", i),
				"reads tags from the instance metadata (tags/instance: needs instance metadata tags allowed on the instance) and fetches the metadata at the first record",
				"reads tags with ec2:DescribeTags and fetches the metadata at start")
		}
	}
	out := make([]Difference, len(f.diffs))
	for i, d := range f.diffs {
		d.Flow = fl.Name
		out[i] = d
	}
	return out
}

// patternDifferences: what kinship does with the files filePattern names.
func (f *agentFlow) patternDifferences(pattern string) {
	if strings.ContainsAny(filepath.Base(pattern), "*?[{") {
		f.differ("filePattern",
			"does not follow symbolic links its wildcard finds (counted in kinship_files_skipped_total{reason=\"symlink\"}; a native flow with follow_symlinks: true does)",
			"follows them")
	}
}
