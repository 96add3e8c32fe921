// Package aggregator packs lines into Kinesis records in the Kinesis Producer Library's
// aggregated-record format, and decodes that format.
//
// Record format (byte-compatible with the KPL, see DESIGN.md):
//
//	magic 0xF3 0x89 0x9A 0xC2 | protobuf AggregatedRecord | MD5(protobuf bytes)
//
// An aggregate that holds a single user record is emitted plain (the line itself), as the KPL
// does. Every user record of one aggregate shares the aggregate's partition key, so all of
// them hash to the same shard (consumers drop a whole aggregate otherwise).
//
// Positions: the aggregator knows nothing of files. Each line comes with an opaque source
// number and the offset just after it; a sealed Record carries, per source, the offset after
// the last of its lines in this record or an earlier one (a low watermark: only one aggregate
// is open at a time and records are delivered in order).
package aggregator
