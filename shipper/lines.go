package shipper

import "github.com/kinship-agent/kinship/aggregator"

// eachLine calls fn with every user record (line) inside r, in order. The aggregator hands
// the shipper KPL aggregates whatever the destination; Firehose and HTTP receivers want the
// lines, so those destinations unpack them here and the pipeline in front of the shipper
// stays the same for every destination. A record that is not a valid aggregate is one line,
// as the KCL reads it. The slices alias r.Data.
func eachLine(r *Record, fn func(line []byte)) {
	if !aggregator.HasMagic(r.Data) {
		fn(r.Data) // the common plain record: no allocation
		return
	}
	urs, _, _ := aggregator.Deaggregate(r.Data, r.PartitionKey)
	for i := range urs {
		fn(urs[i].Data)
	}
}
