// Package aggregator packs lines into Kinesis records in the Kinesis Producer Library's
// aggregated-record format, and decodes that format.
//
// Record format (byte-compatible with the KPL; docs/ARCHITECTURE.md):
//
//	magic 0xF3 0x89 0x9A 0xC2 | protobuf AggregatedRecord | MD5(protobuf bytes)
//
// An aggregate that holds a single user record is emitted plain (the line itself), as the KPL
// does. Every user record of one aggregate shares the aggregate's partition key, so all of
// them hash to the same shard (consumers drop a whole aggregate otherwise).
//
// A lone line that itself starts with the magic number is the one exception: it stays a
// one-record aggregate (when that fits), because a consumer would otherwise try to decode it
// as an aggregate and, failing, drop it or pass it through depending on the library.
//
// Pipeline: Add copies each line into the open aggregate's buffer (its exact encoded size
// is known before the copy, so a record never crosses MaxRecordBytes); AddLines does the same
// for a reader's batch of one source's lines under one lock acquisition, as the per-line lock
// and unlock (a full memory barrier each, behind the line's stores) cost more than the
// packing itself. Sealed aggregates are
// hashed (MD5, the format's unavoidable per-byte cost) by Workers goroutines while the next
// one fills, and delivered to Output.Put in sealing order by one goroutine. At most Workers+2
// buffers exist, allocated as first needed; when all are taken, Add blocks until Put returns.
// If Put never returns, Add, Flush and Close block too: the Output's owner unblocks them by
// cancelling its context.
//
// Hashing (md5.go, hashpipe.go): MD5 is serial within one message, but AVX2 runs it for 8
// messages at once and AVX-512 for 16, for a fraction of the CPU. An MD5Server (one md5-simd
// server goroutine, one per process: the supervisor passes it to every flow) takes the
// blocks of every hash worker's summer and processes as many lanes as have data, so lanes
// fill only when several aggregates are hashed at the same moment: Workers defaults to 8
// there, and a batching goroutine holds an aggregate sealed because it was full until 8 are
// held. While the delivery goroutine is busy (Put blocks: backpressure) they wait without a
// timer, as holding them delays nothing; when it needs one of them, they go at once, or, if
// aggregates are being sealed less than IdleAge/4 apart (≥ 200 MB/s with the defaults: peers
// come soon), after at most IdleAge. What is sealed by age, Nudge, Flush or Close is hashed
// at once and takes the held ones with it, so latency at low rates is unchanged. A batch of
// fewer than 3 is hashed by crypto/md5 on the workers, which beats md5-simd's scalar code
// for it (hashTask). Without AVX2 (arm64, old x86) the summers are crypto/md5 and nothing
// waits. Both packers share
// this pipeline; decoding (DecodeAggregate, Deaggregate: the shipper's re-split and line
// destinations) checks one aggregate at a time with crypto/md5.
//
// Latency: an aggregate is sealed when full, MaxAge after its first line, or early when the
// consumer says it is idle (Nudge: the shipper has nothing to send and nothing in flight) and
// the aggregate is IdleAge old, unless lines come fast enough to fill it before MaxAge. So a
// line leaves within tens of milliseconds at low rates, and records stay full at high rates;
// early seals come at most once per round trip of the consumer.
//
// Two packers, one core: core.go holds what both share (options and their defaults, the
// partition key source, the lock, the age timer and its goroutine, Nudge, Flush, Close and
// the first Put error); each packer is a packing strategy behind the small packer interface.
// Aggregator (aggregator.go) is the packer for random, host and fixed keys: one aggregate
// open at a time. Sharded (sharded.go) is the packer for flows whose partition keys are
// taken from each line (JSONFieldKey, RegexKey in keys.go). Like the KPL, it keeps one open
// aggregate per shard of the stream (a ShardLocator says which), packs only lines bound for
// that shard into it with their own keys in the partition key table, and sets the shard's
// starting hash key as the record's ExplicitHashKey; its marks are low watermarks over all
// open aggregates. A fixed key, or the fallback of keys from the lines, follows one rule
// (CheckPartitionKey): valid UTF-8 of 1 to 256 bytes, refused otherwise, never cut.
//
// Long lines: MaxLineBytes is the longest line a record holds whole (the record limit minus
// the partition key, and for Sharded the largest key table entry and framing). The flow
// gives it to the tailer as its line limit, so the tailer makes the one cut, with the
// truncated record terminator, and counts it once. A line that grew after the tailer is cut
// here the same way (terminator, kinship_lines_truncated_total, a warning at most once a
// minute); a line that fits is never cut.
//
// Positions: the aggregator knows nothing of files. Each line comes with an opaque source
// number and the offset just after it; a sealed Record carries, per source, the offset after
// the last of its lines in this record or an earlier one (a low watermark: only one aggregate
// is open at a time and records are delivered in order). Skip moves a source's mark past a
// line that is not shipped (processing dropped it): the next record carrying the source's
// lines takes the mark, or, with none open, a Record of marks only (UserRecords 0, no Data)
// delivered at the next age tick, Flush or Close, in order after every record before it.
//
// Deterministic partition keys (the Kinesis Agent's DETERMINISTIC: the MD5 of the record in
// lower-case hex) differ line by line: an Aggregator computes them only without aggregation
// (each line its own record); aggregated, they go through Sharded with DeterministicKey.
package aggregator
