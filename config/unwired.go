package config

// Settings this build parses and checks but whose stage is not merged yet. Each check
// goes away with its constant when the stage lands: nothing here is needed afterwards.

// processingWired: the flow runs Flow.Processors. Until it does, a flow with processors is
// refused at load (validate fails too): shipping the records unprocessed would change what
// every consumer of the stream reads.
const processingWired = false

// deterministicWired: the aggregator computes partition_key: deterministic (the MD5 of
// each record). Until it does, such a flow gets random keys and a warning, as before,
// rather than every record sent with the literal key "deterministic" to one shard.
const deterministicWired = false

// unwired reports the settings of cfg that this build cannot honour yet.
func unwired(cfg *Config, p *problems) {
	if !processingWired {
		for _, f := range cfg.Flows {
			if len(f.Processors) > 0 {
				p.add(f.Processors[0].Pos, "flow %q: processors (agent.json's dataProcessingOptions) are read and checked, but this build does not run them yet: the records would reach the stream unprocessed; remove them to ship the lines as read (in an agent.json, \"%s\": \"skip\" does that and keeps the file valid for the Kinesis Agent)", f.Name, agentKeyProcessing)
			}
		}
	}
	if !deterministicWired {
		for i := range cfg.Flows {
			if k := cfg.Flows[i].Kinesis; k != nil && k.PartitionKey == "deterministic" {
				k.PartitionKey = "random"
				p.warn("flow %q: partition_key deterministic (agent.json's partitionKeyOption DETERMINISTIC, a hash of each record) is not computed by this build yet: records get random partition keys, so identical lines no longer land on the same shard", cfg.Flows[i].Name)
			}
		}
	}
}
