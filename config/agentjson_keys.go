package config

// The keys of agent.json: those kinship reads, and those it cannot honour with the reason
// it gives in the warning.

// Top-level keys of agent.json that kinship cannot honour, grouped by what to say.
var (
	agentTopKnown = []string{
		"flows", "checkpointFile", "checkpointTimeToLiveDays", "kinesis.endpoint", "kinesis.region", "assumeRoleARN", "assumeRoleExternalId",
		"firehose.endpoint", "firehose.region",
		"cloudwatch.emitMetrics", "cloudwatch.namespace", "cloudwatch.endpoint", "cloudwatch.tagInstance", "cloudwatch.metricsBufferTimeMillis",
		agentKeyAggregate, agentKeyProcessing,
	}
	agentTopUnsupported = map[string]string{
		"cloudwatch.metricsQueueSize":              "metrics are buffered for metrics.cloudwatch.interval (cloudwatch.metricsBufferTimeMillis), whatever their number",
		"awsAccessKeyId":                           "credentials written in the configuration file are not used: kinship takes credentials from the standard AWS chain (instance role, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the service's environment, shared credentials file)",
		"awsSecretAccessKey":                       "credentials written in the configuration file are not used: kinship takes credentials from the standard AWS chain (instance role, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the service's environment, shared credentials file)",
		"userDefinedCredentialsProvider.classname": "Java credential providers cannot be loaded: kinship takes credentials from the standard AWS chain",
		"userDefinedCredentialsProvider.location":  "Java credential providers cannot be loaded: kinship takes credentials from the standard AWS chain",
		"assumeRoleDurationSeconds":                "assumed-role sessions use the SDK's default duration and are refreshed before they expire",
		"sts.endpoint":                             "STS is reached through the SDK's standard endpoint resolution (AWS_ENDPOINT_URL_STS)",
		"shutdownTimeoutMillis":                    "kinship stops when its spool is durable; records not yet sent are shipped at the next start",
		"maxSendingThreads":                        "kinship sends with kinesis.max_in_flight concurrent requests per flow (default 4)",
		"maxSendingThreadsPerCore":                 "kinship sends with kinesis.max_in_flight concurrent requests per flow (default 4)",
		"sendingThreadsKeepAliveMillis":            "kinship has no sending thread pool",
		"sendingThreadsMaxQueueSize":               "kinship has no sending thread pool; the on-disk spool is its queue",
		"maxConnections":                           "the SDK's HTTP client defaults apply",
		"connectionTimeoutMillis":                  "the SDK's HTTP client defaults apply",
		"connectionTTLMillis":                      "the SDK's HTTP client defaults apply",
		"socketTimeoutMillis":                      "the SDK's HTTP client defaults apply",
		"useTcpKeepAlive":                          "the SDK's HTTP client defaults apply",
		"useHttpGzip":                              "the SDK's HTTP client defaults apply",
		"log.level":                                "use kinship run --log-level; logs go to stderr (the journal)",
		"log.emitMetrics":                          "use the Prometheus metrics (metrics.listen in the native configuration)",
		"log.emitInternalMetrics":                  "use the Prometheus metrics (metrics.listen in the native configuration)",
		"log.statusReportingPeriodSeconds":         "use the Prometheus metrics (metrics.listen in the native configuration)",
	}
	agentFlowKnown = []string{
		"filePattern", "kinesisStream", "deliveryStream", "partitionKeyOption", "initialPosition",
		"multiLineStartPattern", "skipHeaderLines", "truncatedRecordTerminator", "maxBufferAgeMillis",
		"maxBufferSizeBytes", "maxBufferSizeRecords", "minTimeBetweenFilePollsMillis", "dataProcessingOptions",
	}
	agentFlowUnsupported = map[string]string{
		"aggregatedRecordSizeBytes":              "the Kinesis Agent joins records only for Firehose flows (deliveryStream); a Kinesis flow sends one line per record, or KPL aggregated records with \"kinship.aggregate\": true",
		"maxTimeBetweenFileTrackerRefreshMillis": "kinship watches directories for new files and polls every poll_interval",
		"waitOnFullPublishQueueMillis":           "kinship's on-disk spool replaces the publish queue; a full spool stops reading (spool.max_bytes)",
		"waitOnEmptyPublishQueueMillis":          "kinship's on-disk spool replaces the publish queue",
		"waitOnFullRetryQueueMillis":             "kinship's on-disk spool replaces the retry queue",
		"publishQueueCapacity":                   "kinship's on-disk spool replaces the publish queue (spool.max_bytes)",
		"retryInitialBackoffMillis":              "kinship retries with its own capped, jittered backoff",
		"retryMaxBackoffMillis":                  "kinship retries with its own capped, jittered backoff",
		"maxFileCheckpointAgeMillis":             "kinship keeps a file's position as long as the file exists",
		"fileFooterPattern":                      "kinship reads files to their end",
		"log.emitInternalMetrics":                "use the Prometheus metrics",
	}
)
