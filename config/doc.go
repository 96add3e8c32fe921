// Package config loads kinship's native YAML configuration: /etc/kinship/kinship.yaml and
// then /etc/kinship/conf.d/*.yaml in name order.
//
// The documents are walked as yaml.v3 nodes rather than unmarshalled into structs, because
// an operator fixing a config needs every problem at once and each one with file:line:column;
// struct unmarshalling stops at the first error and loses positions. Unknown keys are errors
// (with the known keys listed and a "did you mean"), since a typo silently ignored is a log
// file silently not shipped.
//
// Merging drop-ins: a later file overrides the top-level settings it mentions, key by key
// (a drop-in setting aws.region keeps the main file's aws.endpoint); flows are appended and
// a flow name may be defined only once across all files, because the name is the flow's
// spool directory.
//
// Defaults that depend on another setting give way to it instead of producing an error:
// batch.max_bytes defaults to min(1MiB, kinesis.max_record_bytes), kinesis.max_request_bytes
// to max(5MiB, max_record_bytes), spool.segment_bytes to min(64MiB, spool.max_bytes). An
// explicit value that breaks such a limit is an error.
//
// The main file may also be the Amazon Kinesis Agent's agent.json, accepted unchanged and
// translated to the native configuration (agentjson.go says how each key maps), with the
// flows of agent.d/*.json beside it appended; the keys kinship does not honour are listed
// in Config.Warnings, never ignored silently. The translation builds native YAML nodes
// positioned at the agent.json keys and runs them through the native decoder, so both
// formats share one set of checks and errors point into the file the operator wrote.
//
// Config.Warnings also says what is valid but probably not meant: a flow pattern that
// reaches state_dir (the tailer skips the agent's own state), or a max_line_bytes that one
// record cannot hold (Flow.LineRoom explains the arithmetic; Flow.EffectiveMaxLineBytes is
// the limit the tailer should cut at).
//
// YAML anchors, aliases and merge keys (<<) work; the work spent on one document is bounded
// so that an alias bomb fails with an error instead of exhausting the host.
package config
