package config

// Limits between the settings of one flow, checked once the flow is decoded. A default
// gives way to an explicit neighbour (a smaller max_record_bytes lowers the default batch
// size) instead of making it an error; an explicit value that breaks a limit is reported
// where it was written.

import (
	"fmt"

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
