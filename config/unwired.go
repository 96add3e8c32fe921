package config

// Settings this build parses and checks but whose stage is not merged yet. Each check
// goes away with its constant when the stage lands: nothing here is needed afterwards.

// cloudWatchWired: metrics.cloudwatch is published. Until it is, an enabled section is
// named in a warning: metrics are not data, so the agent still runs.
const cloudWatchWired = false

// unwired reports the settings of cfg that this build cannot honour yet.
func unwired(cfg *Config, p *problems) {
	if !cloudWatchWired && cfg.Metrics.CloudWatch.Enabled {
		p.warn("metrics.cloudwatch.enabled (agent.json's cloudwatch.emitMetrics, true by default in the Kinesis Agent): read and checked, but this build publishes no CloudWatch metrics yet; it serves Prometheus metrics (metrics.listen)")
	}
}
