package config

// Limits between the settings of one flow, checked once the flow is decoded. A default
// gives way to an explicit neighbour (a smaller max_record_bytes lowers the default batch
// size) instead of making it an error; an explicit value that breaks a limit is reported
// where it was written.

import (
	"cmp"
	"fmt"
	"os"

	"github.com/kinship-agent/kinship/internal/payload"

	"go.yaml.in/yaml/v3"
)

// limitNodes are where the settings that bound one another were written; nil: not written,
// the default applies.
type limitNodes struct {
	batchBytes, seg, spoolBytes, spool, term, lineBytes *yaml.Node
}

// checkLimits fills in the defaults that depend on another setting and reports the
// explicit values that break a limit.
func (d *decoder) checkLimits(f *Flow, at limitNodes) {
	recordLimit, recordWhat := KinesisMaxRecordBytes, "the largest Kinesis record (10MiB)"
	if f.Kinesis != nil {
		recordLimit, recordWhat = f.Kinesis.MaxRecordBytes, fmt.Sprintf("kinesis.max_record_bytes (%s)", f.Kinesis.MaxRecordBytes)
	}
	if f.Firehose != nil {
		// The lines of one aggregate become one Firehose record, which holds at most 1,000 KiB.
		recordLimit, recordWhat = FirehoseMaxRecordBytes, "the largest Firehose record (1000KiB)"
	}
	if at.batchBytes == nil {
		f.Batch.MaxBytes = min(DefaultBatchMaxBytes, recordLimit)
	} else if f.Batch.MaxBytes > recordLimit {
		d.errorf(at.batchBytes, "batch.max_bytes: %s is larger than %s: an aggregated record must fit in one Kinesis record", f.Batch.MaxBytes, recordWhat)
	}
	// The terminator is written inside the truncated line, so it must leave room for data.
	termTooLong := at.term != nil && Size(len(f.TruncatedRecordTerminator)) >= f.MaxLineBytes
	if termTooLong {
		where := at.lineBytes
		if where == nil {
			where = at.term
		}
		d.errorf(where, "truncated_record_terminator: %d bytes do not fit in max_line_bytes (%s) with room for data", len(f.TruncatedRecordTerminator), f.MaxLineBytes)
	}
	// Lines a little longer than LineRoom (by the partition key) are the norm at the
	// defaults and EffectiveMaxLineBytes takes care of them; a record smaller than the line
	// limit, because of a size the operator wrote, deserves a word.
	// agent.json has no line limit of its own: the Kinesis Agent cuts at the record size too.
	sizesWritten := !d.translated && (at.lineBytes != nil || at.batchBytes != nil || (f.Kinesis != nil && f.Kinesis.MaxRecordBytes != DefaultMaxRecordBytes))
	if record, _ := f.recordBytes(); sizesWritten && !termTooLong && f.MaxLineBytes > record {
		if room, why := f.LineRoom(); f.MaxLineBytes > room {
			d.p.warn("flow %q (%s): max_line_bytes: %s (%d bytes) is more than one record holds: lines are cut at %d bytes, %s; truncated_record_terminator is written within those %d bytes",
				f.Name, d.pos(at.lineBytes), f.MaxLineBytes, int64(f.MaxLineBytes), int64(room), why, int64(room))
		}
	}
	if m := f.Multiline; m != nil {
		if m.MaxBytes == 0 {
			m.MaxBytes = f.MaxLineBytes
		}
		if at.term != nil && !termTooLong && Size(len(f.TruncatedRecordTerminator)) >= m.MaxBytes {
			d.errorf(at.term, "truncated_record_terminator: %d bytes do not fit in multiline.max_bytes (%s) with room for data", len(f.TruncatedRecordTerminator), m.MaxBytes)
		}
	}
	if at.seg == nil {
		f.Spool.SegmentBytes = min(DefaultSegmentBytes, f.Spool.MaxBytes)
	} else if f.Spool.SegmentBytes > f.Spool.MaxBytes {
		d.errorf(at.seg, "spool.segment_bytes: %s is larger than spool.max_bytes (%s)", f.Spool.SegmentBytes, f.Spool.MaxBytes)
	}
	if f.Spool.MaxBytes < f.Batch.MaxBytes {
		where := at.spoolBytes
		if where == nil {
			where = at.spool
		}
		if where == nil {
			where = at.batchBytes
		}
		if where != nil {
			d.errorf(where, "spool.max_bytes: %s is smaller than batch.max_bytes (%s): one record must fit in the spool", f.Spool.MaxBytes, f.Batch.MaxBytes)
		}
	}
}

// Framing the aggregator spends on one record, beside the line itself (aggregator/
// aggregator.go and sharded.go). A lone line is sent plain (the KPL's own rule), so on the
// shared-key path a line pays only for the partition key sent with the record; on the
// keyed path (partition_key_field / partition_key_regex) a line always sits in an
// aggregate: magic, MD5, a key table entry and the record framing, with a key of up to
// 256 bytes both outside and in the table.
const (
	randomKeyBytes = 32  // 128 random bits in hex
	maxKeyBytes    = 256 // Kinesis's limit on a partition key
	// magic (4) + MD5 (16) + key table entry of a 256-byte key (1+2+256) + record framing (16).
	keyedFramingBytes = 4 + 16 + (1 + 2 + maxKeyBytes) + 16
)

// recordBytes is the size the aggregator packs one record of the flow to: batch.max_bytes,
// within kinesis.max_record_bytes, less what compression may add (internal/flow's
// aggregatorOptions does the same sums).
func (f *Flow) recordBytes() (Size, string) {
	r, what := f.Batch.MaxBytes, fmt.Sprintf("batch.max_bytes (%s)", f.Batch.MaxBytes)
	if k := f.Kinesis; k != nil {
		if k.MaxRecordBytes <= r || r == 0 { // a tie is named after the stream's limit
			r, what = k.MaxRecordBytes, fmt.Sprintf("kinesis.max_record_bytes (%s)", k.MaxRecordBytes)
		}
		if k.Compression != "" && k.Compression != payload.None {
			if c := k.MaxRecordBytes - Size(payload.Overhead(int(k.MaxRecordBytes))); c < r {
				r, what = c, fmt.Sprintf("kinesis.max_record_bytes (%s) less %d bytes that %s may add to incompressible data",
					k.MaxRecordBytes, payload.Overhead(int(k.MaxRecordBytes)), k.Compression)
			}
		}
	}
	return r, what
}

// partitionKeyBytes is the length of the partition key sent with each record of a flow
// with one key for all its lines.
func (f *Flow) partitionKeyBytes() (int, string) {
	k := f.Kinesis
	if k == nil {
		return randomKeyBytes, "a random partition key (32 bytes)"
	}
	switch k.PartitionKey {
	case "", "random", "deterministic":
		return randomKeyBytes, fmt.Sprintf("a %s partition key (32 bytes)", cmp.Or(k.PartitionKey, "random"))
	case "host":
		if h, err := os.Hostname(); err == nil && h != "" {
			return len(h), fmt.Sprintf("the host name as partition key (%d bytes)", len(h))
		}
		return maxKeyBytes, "the host name as partition key (up to 256 bytes)"
	}
	return len(k.PartitionKey), fmt.Sprintf("the partition key %q (%d bytes)", k.PartitionKey, len(k.PartitionKey))
}

// LineRoom is the longest line one record of the flow can carry, and how that was worked
// out, in words: the aggregator cuts a longer line to this length whatever max_line_bytes
// says, after the tailer has added truncated_record_terminator.
func (f *Flow) LineRoom() (Size, string) {
	r, what := f.recordBytes()
	// Deterministic keys differ line by line, so aggregated they take the keyed path too.
	if k := f.Kinesis; k != nil && (k.PartitionKeyField != "" || k.PartitionKeyRegex != nil || (k.PartitionKey == "deterministic" && k.Aggregate)) {
		return max(r-maxKeyBytes-keyedFramingBytes, 1), fmt.Sprintf(
			"%s minus a partition key of up to %d bytes and %d bytes of KPL aggregate framing (keys from the line are always packed in an aggregate)",
			what, maxKeyBytes, keyedFramingBytes)
	}
	pk, pkWhat := f.partitionKeyBytes()
	return max(r-Size(pk), 1), fmt.Sprintf("%s minus %s; a line alone in its record is sent plain, without aggregate framing", what, pkWhat)
}

// EffectiveMaxLineBytes is the length the tailer should cut lines at so that the
// aggregator never cuts them again: min(max_line_bytes, LineRoom). With the defaults
// (max_line_bytes 1MiB, 1MiB records, random keys) it is 1,048,544. It bounds the bytes the
// tailer hands on, so with KeepNewline the kept '\n' (or the terminator) counts in it.
func (f *Flow) EffectiveMaxLineBytes() Size {
	room, _ := f.LineRoom()
	return min(f.MaxLineBytes, room)
}
