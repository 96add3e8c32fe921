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
// # Per-shard order (keyed flows)
//
// A flow whose partition keys come from the lines promises that a key's lines reach its
// shard in the order written. Kinesis keeps order only per PutRecords call and per shard, and
// answers per record: with several requests in flight, or a record throttled while a later
// record of its shard in the same request is taken, a key's lines would land out of order.
// So with Options.Shards the shipper never has two unaccepted records for one shard: a
// request carries at most one record per shard, and a shard's next record is not sent while
// an earlier one is in flight or waiting for its retry. A record's shards are the ones the
// destination sends it to under the current shard map (ShardRouter, with ShardAware's split
// rules): several for an aggregate that a reshard forces to re-split, each held. A record
// the map cannot place (no map yet, a gap mid-reshard) goes alone with nothing else out, and
// after a map change nothing routed under the new map goes until every record routed under
// the old one was accepted.
//
// Records of other shards keep flowing: the shipper reads ahead in the Source past held
// records, up to LookAheadBytes [16 MiB] and 4 requests' worth of records (the memory this
// costs), and fills requests from that look-ahead in Source order per shard. Acks stay
// per record; the spool's cursor only passes a frame once every frame before it was acked,
// so a held record keeps the cursor (and the file positions behind it) where it is.
//
// This costs nothing at the shard's limit: an aggregate is up to 1 MiB and a shard accepts
// 1 MiB/s (and 1,000 records/s), so one record per shard per round trip already fills it
// unless a round trip takes over a second. Against an unthrottled endpoint (kinesalite) a
// keyed flow is bounded by one record per shard per round trip instead. Flows with random,
// host or fixed keys have no Options.Shards and are unchanged.
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
// # Stream headroom (Kinesis)
//
// Headroom wraps a flow's PutRecords client and tells how much of the stream's write
// capacity this host alone uses, so that an operator reshards before a fleet of such hosts
// is throttled. A shard takes 1 MiB/s (data + partition key) and 1,000 records/s; a KPL
// aggregate is one record whatever it holds. Over a sliding minute it keeps the bytes and
// records each shard accepted (placed by the ShardId of each result entry) and counts the
// records refused with ProvisionedThroughputExceededException per shard (a refused entry
// names no shard: the shard map places it). The utilization is the busiest shard's
// max(bytes/s ÷ 1 MiB/s, records/s ÷ 1000/s); for random partition keys it is estimated as
// this host's total spread evenly over the open shards. Keyed flows take the open shards
// from their shard map; other flows list them every 5 minutes (ListShards, else
// DescribeStreamSummary), and an identity allowed neither leaves the count unset, logged
// once at info, never a flow error. Over half a shard, one warning is logged: again only
// after the utilization fell below and rose again, and never twice within an hour.
//
// # Concurrency
//
// Run owns batching on its own goroutine (and, with Options.Shards, the look-ahead queue);
// MaxInFlight worker goroutines each own one request and its retries, and release a
// record's shard holds once it is accepted. Source.Next and Pending are called from Run's goroutine only; Ack and
// Destination.Put are called from the workers concurrently. Options.Idle is called from
// either when Run waits for the Source with no request in flight.
package shipper
