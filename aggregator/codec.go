package aggregator

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// magic starts every KPL aggregated record (KPL format version 0.9.0).
var magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	magicLen    = len(magic)
	checksumLen = md5.Size

	// Field numbers of the KPL protobuf messages.
	fieldPKTable  protowire.Number = 1 // AggregatedRecord.partition_key_table
	fieldEHKTable protowire.Number = 2 // AggregatedRecord.explicit_hash_key_table
	fieldRecords  protowire.Number = 3 // AggregatedRecord.records
	fieldPKIndex  protowire.Number = 1 // Record.partition_key_index
	fieldEHKIndex protowire.Number = 2 // Record.explicit_hash_key_index
	fieldData     protowire.Number = 3 // Record.data
	fieldTags     protowire.Number = 4 // Record.tags
	fieldTagKey   protowire.Number = 1 // Tag.key
	fieldTagValue protowire.Number = 2 // Tag.value
)

// UserRecord is one record as the producer meant it: a line, with the keys it was sent with.
type UserRecord struct {
	PartitionKey    string
	ExplicitHashKey string
	Data            []byte
}

// Errors of the strict decoder, for errors.Is. Each comes wrapped with the offset it was found at.
var (
	ErrNotAggregate = errors.New("not a KPL aggregate (no magic)")
	ErrChecksum     = errors.New("MD5 checksum mismatch")
	ErrMalformed    = errors.New("malformed protobuf")
)

// HasMagic reports whether data starts with the KPL magic number.
func HasMagic(data []byte) bool {
	return len(data) >= magicLen && [4]byte(data[:magicLen]) == magic
}

// Deaggregate returns the user records in one Kinesis record. Anything that is not a valid
// aggregate (no magic, MD5 mismatch, unparsable protobuf) comes back as one plain user record
// with the given partition key, as the KCL does; aggregated tells the two cases apart.
// Data of the returned records aliases data. err is always nil: every input has a reading.
func Deaggregate(data []byte, partitionKey string) (recs []UserRecord, aggregated bool, err error) {
	if HasMagic(data) {
		if recs, err := DecodeAggregate(data); err == nil {
			return recs, true, nil
		}
	}
	return []UserRecord{{PartitionKey: partitionKey, Data: data}}, false, nil
}

// DecodeAggregate strictly decodes a KPL aggregated record. It fails on a missing magic, a
// checksum mismatch, malformed protobuf (including missing required fields) and key indexes
// outside the key tables. Fields may come in any order; unknown fields and tags are skipped.
// Data of the returned records aliases data.
func DecodeAggregate(data []byte) ([]UserRecord, error) {
	if !HasMagic(data) {
		return nil, fmt.Errorf("aggregator: decode: offset 0: %w", ErrNotAggregate)
	}
	if len(data) < magicLen+checksumLen {
		return nil, fmt.Errorf("aggregator: decode: offset %d: %w: record of %d bytes has no room for the checksum",
			magicLen, ErrMalformed, len(data))
	}
	body := data[magicLen : len(data)-checksumLen]
	if sum := md5.Sum(body); !bytes.Equal(sum[:], data[len(data)-checksumLen:]) {
		return nil, fmt.Errorf("aggregator: decode: offset %d: %w", len(data)-checksumLen, ErrChecksum)
	}

	// First pass: the key tables (they may follow the records) and the number of records,
	// so that the result is allocated once and never beyond what the input can hold.
	var pks, ehks []string
	nrec := 0
	err := walk(body, magicLen, func(num protowire.Number, typ protowire.Type, v []byte, off int) error {
		if num != fieldPKTable && num != fieldEHKTable && num != fieldRecords {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("offset %d: %w: field %d has wire type %d, want length-delimited", off, ErrMalformed, num, typ)
		}
		switch num {
		case fieldPKTable:
			pks = append(pks, string(v))
		case fieldEHKTable:
			ehks = append(ehks, string(v))
		case fieldRecords:
			nrec++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("aggregator: decode: %w", err)
	}

	recs := make([]UserRecord, 0, nrec)
	err = walk(body, magicLen, func(num protowire.Number, typ protowire.Type, v []byte, off int) error {
		if num != fieldRecords {
			return nil
		}
		r, err := decodeRecord(v, off, pks, ehks)
		if err != nil {
			return fmt.Errorf("record %d: %w", len(recs), err)
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("aggregator: decode: %w", err)
	}
	return recs, nil
}

// errStopWalk ends a walk early; never returned to callers.
var errStopWalk = errors.New("aggregator: stop walk")

// KeyTables reads the key tables of an aggregate without checking its MD5 or decoding its
// records: the cheap look a router takes at every record (the full, checked decode is
// DecodeAggregate). fn gets each table entry in the order written, explicit telling the
// explicit hash key table from the partition key table, and ends the walk by returning
// false. The error says data is not an aggregate whose fields can be walked. key aliases data.
func KeyTables(data []byte, fn func(key []byte, explicit bool) bool) error {
	if !HasMagic(data) {
		return fmt.Errorf("aggregator: key tables: offset 0: %w", ErrNotAggregate)
	}
	if len(data) < magicLen+checksumLen {
		return fmt.Errorf("aggregator: key tables: offset %d: %w: record of %d bytes has no room for the checksum",
			magicLen, ErrMalformed, len(data))
	}
	err := walk(data[magicLen:len(data)-checksumLen], magicLen, func(num protowire.Number, typ protowire.Type, v []byte, off int) error {
		if num != fieldPKTable && num != fieldEHKTable {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("offset %d: %w: field %d has wire type %d, want length-delimited", off, ErrMalformed, num, typ)
		}
		if !fn(v, num == fieldEHKTable) {
			return errStopWalk
		}
		return nil
	})
	if err != nil && err != errStopWalk {
		return fmt.Errorf("aggregator: key tables: %w", err)
	}
	return nil
}

// walk calls fn for every field of a protobuf message in b (base is b's offset in the
// record, for error messages). v is the field's payload: the bytes of a length-delimited
// field, nil otherwise; off is the offset of the payload. Group fields are skipped whole.
func walk(b []byte, base int, fn func(num protowire.Number, typ protowire.Type, v []byte, off int) error) error {
	pos := 0
	for pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return fmt.Errorf("offset %d: %w: bad tag: %v", base+pos, ErrMalformed, protowire.ParseError(n))
		}
		fieldAt := pos
		pos += n
		var v []byte
		if typ == protowire.BytesType {
			val, m := protowire.ConsumeBytes(b[pos:])
			if m < 0 {
				return fmt.Errorf("offset %d: %w: field %d: %v", base+fieldAt, ErrMalformed, num, protowire.ParseError(m))
			}
			v = val
			pos += m - len(val)
			if err := fn(num, typ, v, base+pos); err != nil {
				return err
			}
			pos += len(val)
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b[pos:])
		if m < 0 {
			return fmt.Errorf("offset %d: %w: field %d: %v", base+fieldAt, ErrMalformed, num, protowire.ParseError(m))
		}
		if err := fn(num, typ, b[pos:pos+m], base+pos); err != nil {
			return err
		}
		pos += m
	}
	return nil
}

func decodeRecord(b []byte, base int, pks, ehks []string) (UserRecord, error) {
	var (
		r               UserRecord
		pkIdx, ehkIdx   uint64
		havePK, haveEHK bool
		haveData        bool
	)
	err := walk(b, base, func(num protowire.Number, typ protowire.Type, v []byte, off int) error {
		switch num {
		case fieldPKIndex, fieldEHKIndex:
			if typ != protowire.VarintType {
				return fmt.Errorf("offset %d: %w: field %d has wire type %d, want varint", off, ErrMalformed, num, typ)
			}
			x, _ := protowire.ConsumeVarint(v) // walk has already validated it
			if num == fieldPKIndex {
				pkIdx, havePK = x, true
			} else {
				ehkIdx, haveEHK = x, true
			}
		case fieldData:
			if typ != protowire.BytesType {
				return fmt.Errorf("offset %d: %w: data has wire type %d, want length-delimited", off, ErrMalformed, typ)
			}
			r.Data, haveData = v, true
		case fieldTags:
			if typ != protowire.BytesType {
				return fmt.Errorf("offset %d: %w: tag has wire type %d, want length-delimited", off, ErrMalformed, typ)
			}
			return decodeTag(v, off)
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	switch {
	case !havePK:
		return r, fmt.Errorf("offset %d: %w: missing required partition_key_index", base, ErrMalformed)
	case !haveData:
		return r, fmt.Errorf("offset %d: %w: missing required data", base, ErrMalformed)
	case pkIdx >= uint64(len(pks)):
		return r, fmt.Errorf("offset %d: %w: partition_key_index %d outside a table of %d", base, ErrMalformed, pkIdx, len(pks))
	case haveEHK && ehkIdx >= uint64(len(ehks)):
		return r, fmt.Errorf("offset %d: %w: explicit_hash_key_index %d outside a table of %d", base, ErrMalformed, ehkIdx, len(ehks))
	}
	r.PartitionKey = pks[pkIdx]
	if haveEHK {
		r.ExplicitHashKey = ehks[ehkIdx]
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	return r, nil
}

// decodeTag only validates a tag: kinship has no use for tags, but a consumer that finds a
// tag without its required key would reject the whole aggregate, so the strict decoder does too.
func decodeTag(b []byte, base int) error {
	haveKey := false
	err := walk(b, base, func(num protowire.Number, typ protowire.Type, v []byte, off int) error {
		if num != fieldTagKey && num != fieldTagValue {
			return nil
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("offset %d: %w: tag field %d has wire type %d, want length-delimited", off, ErrMalformed, num, typ)
		}
		if num == fieldTagKey {
			haveKey = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveKey {
		return fmt.Errorf("offset %d: %w: tag without its required key", base, ErrMalformed)
	}
	return nil
}

// EncodeAggregate builds one aggregate whose user records all carry pk (and ehk, unless it
// is empty). It always aggregates, even a single record. For tests and tools; the packer
// has its own allocation-free path.
func EncodeAggregate(pk string, ehk string, datas [][]byte) []byte {
	recs := make([]UserRecord, len(datas))
	for i, d := range datas {
		recs[i] = UserRecord{PartitionKey: pk, ExplicitHashKey: ehk, Data: d}
	}
	return encodeUserRecords(nil, recs)
}

// encodeUserRecords appends an aggregate of recs to dst, with key tables built from the
// records' own keys (so records with different keys round-trip).
func encodeUserRecords(dst []byte, recs []UserRecord) []byte {
	var pks, ehks []string
	pkIdx := map[string]uint64{}
	ehkIdx := map[string]uint64{}
	for _, r := range recs {
		if _, ok := pkIdx[r.PartitionKey]; !ok {
			pkIdx[r.PartitionKey] = uint64(len(pks))
			pks = append(pks, r.PartitionKey)
		}
		if _, ok := ehkIdx[r.ExplicitHashKey]; !ok && r.ExplicitHashKey != "" {
			ehkIdx[r.ExplicitHashKey] = uint64(len(ehks))
			ehks = append(ehks, r.ExplicitHashKey)
		}
	}
	dst = append(dst, magic[:]...)
	start := len(dst)
	for _, k := range pks {
		dst = protowire.AppendTag(dst, fieldPKTable, protowire.BytesType)
		dst = protowire.AppendString(dst, k)
	}
	for _, k := range ehks {
		dst = protowire.AppendTag(dst, fieldEHKTable, protowire.BytesType)
		dst = protowire.AppendString(dst, k)
	}
	for _, r := range recs {
		n := protowire.SizeTag(fieldPKIndex) + protowire.SizeVarint(pkIdx[r.PartitionKey]) +
			protowire.SizeTag(fieldData) + protowire.SizeBytes(len(r.Data))
		if r.ExplicitHashKey != "" {
			n += protowire.SizeTag(fieldEHKIndex) + protowire.SizeVarint(ehkIdx[r.ExplicitHashKey])
		}
		dst = protowire.AppendTag(dst, fieldRecords, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(n))
		dst = protowire.AppendTag(dst, fieldPKIndex, protowire.VarintType)
		dst = protowire.AppendVarint(dst, pkIdx[r.PartitionKey])
		if r.ExplicitHashKey != "" {
			dst = protowire.AppendTag(dst, fieldEHKIndex, protowire.VarintType)
			dst = protowire.AppendVarint(dst, ehkIdx[r.ExplicitHashKey])
		}
		dst = protowire.AppendTag(dst, fieldData, protowire.BytesType)
		dst = protowire.AppendBytes(dst, r.Data)
	}
	sum := md5.Sum(dst[start:])
	return append(dst, sum[:]...)
}
