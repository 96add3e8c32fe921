// Package shipper moves records from the spool to a destination: it batches them into requests
// within the destination's limits, keeps up to MaxInFlight requests on the wire, resends only
// the entries that failed (with capped exponential backoff and full jitter) and acknowledges
// each item to the spool once the destination accepted its record.
//
// # Delivery
//
// At least once. An item is acked only after its record was accepted; acks arrive out of
// order across requests (the spool keeps a contiguous cursor). When Run's context ends,
// requests in flight are abandoned without acking: those records are shipped again after a
// restart, which bounds duplicates to what was in flight.
//
// # Nothing is ever dropped
//
// Every failure is retried, forever, until the context ends. Failures are classified
// (Classify) for the kinship_send_errors_total{reason} label and for the pace of retries:
// "throttled" and "transient" back off exponentially with full jitter
// (delay = rand * min(BackoffMax, BackoffBase * 2^attempt)); "config" and "invalid" cannot heal
// by retrying soon (a missing stream, expired credentials, a rejected record), so they wait
// BackoffMax between attempts and are logged at most once a minute. This trades a stuck
// request slot, then a full spool and a paused tailer (backpressure, visible in metrics and
// logs), for the guarantee that an operator can fix the cause without losing a line.
//
// A record larger than the destination's MaxRecordBytes is a bug upstream (the aggregator
// bounds records). It is counted once in SendErrors{reason="too_large"}, logged loudly
// (rate-limited) and sent alone in its own request, so that it cannot fail a whole batch of
// good records: if the destination accepts it anyway (a stream whose limit was raised), it
// is delivered; if not, it is retried slowly like any other "invalid" failure. It is never
// acked without delivery. Such a record occupies one request slot until it is delivered or
// the agent restarts, which slows the flow and, eventually, fills the spool: loud on purpose.
//
// # Logs
//
// One line per event, never per record: the start of a failure streak (the first request to
// fail while none other is failing; at most once per 10 s) and its end ("sends recovered"),
// failures that need an operator ("config", "invalid") at most once a minute, a too-large
// record at most once a minute.
//
// # Concurrency
//
// Run owns batching on its own goroutine; MaxInFlight worker goroutines each own one request
// and its retries. Source.Next and Pending are called from Run's goroutine only; Ack and
// Destination.Put are called from the workers concurrently. Options.Idle is called from
// either when Run waits for the Source with no request in flight.
package shipper
