package aggregator

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// wrap frames a hand-built AggregatedRecord body as a KPL record with a valid checksum.
func wrap(body []byte) []byte {
	sum := md5.Sum(body)
	return append(append(append([]byte{}, magic[:]...), body...), sum[:]...)
}

func field(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func varintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func record(pkIdx uint64, ehkIdx int, data string) []byte {
	r := varintField(nil, fieldPKIndex, pkIdx)
	if ehkIdx >= 0 {
		r = varintField(r, fieldEHKIndex, uint64(ehkIdx))
	}
	return field(r, fieldData, []byte(data))
}

func TestDecodeAcceptsWhatProtobufAllows(t *testing.T) {
	// Records before the tables, fields of a record out of order, unknown fields of every
	// wire type, tags, and a second key in each table.
	rec0 := field(varintField(nil, 99, 7), fieldData, []byte("first"))
	rec0 = varintField(rec0, fieldPKIndex, 1)
	tag := field(field(nil, fieldTagKey, []byte("k")), fieldTagValue, []byte("v"))
	rec0 = field(rec0, fieldTags, tag)
	rec0 = protowire.AppendTag(rec0, 50, protowire.Fixed32Type)
	rec0 = protowire.AppendFixed32(rec0, 1)
	rec1 := record(0, 1, "second")
	var body []byte
	body = field(body, fieldRecords, rec0)
	body = protowire.AppendTag(body, 20, protowire.Fixed64Type)
	body = protowire.AppendFixed64(body, 42)
	body = protowire.AppendTag(body, 21, protowire.StartGroupType)
	body = varintField(body, 1, 5)
	body = protowire.AppendTag(body, 21, protowire.EndGroupType)
	body = field(body, fieldPKTable, []byte("pk-a"))
	body = field(body, fieldPKTable, []byte("pk-b"))
	body = field(body, fieldEHKTable, []byte("1"))
	body = field(body, fieldEHKTable, []byte("340282366920938463463374607431768211455"))
	body = field(body, fieldRecords, rec1)
	body = field(body, 77, []byte("unknown bytes"))

	got, err := DecodeAggregate(wrap(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []UserRecord{
		{PartitionKey: "pk-b", Data: []byte("first")},
		{PartitionKey: "pk-a", ExplicitHashKey: "340282366920938463463374607431768211455", Data: []byte("second")},
	}
	if !sameRecords(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func sameRecords(a, b []UserRecord) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].PartitionKey != b[i].PartitionKey || a[i].ExplicitHashKey != b[i].ExplicitHashKey || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func TestDecodeRejects(t *testing.T) {
	good := field(nil, fieldPKTable, []byte("k"))
	badSum := wrap(field(good, fieldRecords, record(0, -1, "x")))
	badSum[len(badSum)-1] ^= 1
	truncated := field(good, fieldRecords, record(0, -1, "payload"))
	truncated = truncated[:len(truncated)-3]
	tests := []struct {
		name string
		data []byte
		is   error
		msg  string
	}{
		{"empty", nil, ErrNotAggregate, "offset 0"},
		{"no magic", []byte("just a log line, long enough to hold a checksum"), ErrNotAggregate, "offset 0"},
		{"magic only", magic[:], ErrMalformed, "no room for the checksum"},
		{"checksum", badSum, ErrChecksum, "offset"},
		{"truncated record", wrap(truncated), ErrMalformed, "offset 7"},
		{"bad tag", wrap([]byte{0x80}), ErrMalformed, "offset 4: malformed protobuf: bad tag"},
		{"lone end group", wrap([]byte{0x0c}), ErrMalformed, "field 1"},
		{"pk index out of range", wrap(field(good, fieldRecords, record(1, -1, "x"))), ErrMalformed, "partition_key_index 1 outside a table of 1"},
		{"ehk index out of range", wrap(field(good, fieldRecords, record(0, 0, "x"))), ErrMalformed, "explicit_hash_key_index 0 outside a table of 0"},
		{"no pk index", wrap(field(good, fieldRecords, field(nil, fieldData, []byte("x")))), ErrMalformed, "missing required partition_key_index"},
		{"no data", wrap(field(good, fieldRecords, varintField(nil, fieldPKIndex, 0))), ErrMalformed, "missing required data"},
		{"table as varint", wrap(varintField(nil, fieldPKTable, 3)), ErrMalformed, "want length-delimited"},
		{"index as bytes", wrap(field(good, fieldRecords, field(record(0, -1, "x"), fieldPKIndex, []byte("0")))), ErrMalformed, "want varint"},
		{"tag without key", wrap(field(good, fieldRecords, field(record(0, -1, "x"), fieldTags, field(nil, fieldTagValue, []byte("v"))))), ErrMalformed, "tag without its required key"},
		{"huge length", wrap(append(protowire.AppendTag(nil, fieldRecords, protowire.BytesType), 0xff, 0xff, 0xff, 0xff, 0x0f)), ErrMalformed, "offset 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeAggregate(tt.data)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "aggregator: decode: ") {
				t.Fatalf("err = %q, want it to start with the stage and contain %q", err, tt.msg)
			}
			// The lenient reader gives the bytes back as one plain record, as the KCL does.
			recs, aggregated, err := Deaggregate(tt.data, "pk")
			if err != nil || aggregated || len(recs) != 1 || !bytes.Equal(recs[0].Data, tt.data) || recs[0].PartitionKey != "pk" {
				t.Fatalf("Deaggregate = %+v, %v, %v; want the input as one plain record", recs, aggregated, err)
			}
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	datas := [][]byte{{}, {0}, []byte("\xff\xfe invalid utf-8"), bytes.Repeat([]byte("z"), 300)}
	for _, ehk := range []string{"", "12345"} {
		enc := EncodeAggregate("key", ehk, datas)
		recs, aggregated, err := Deaggregate(enc, "ignored")
		if err != nil || !aggregated {
			t.Fatalf("Deaggregate: %v aggregated=%v", err, aggregated)
		}
		if len(recs) != len(datas) {
			t.Fatalf("%d records, want %d", len(recs), len(datas))
		}
		for i, r := range recs {
			if r.PartitionKey != "key" || r.ExplicitHashKey != ehk || !bytes.Equal(r.Data, datas[i]) {
				t.Fatalf("record %d = %+v", i, r)
			}
		}
	}
}

// TestPackerMatchesEncoder pins the packer's hand-written encoding to the general encoder.
func TestPackerMatchesEncoder(t *testing.T) {
	c := &collector{}
	a, err := New(Options{Aggregate: true, PartitionKey: "fixed"}, c)
	if err != nil {
		t.Fatal(err)
	}
	datas := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte("b"), 130), bytes.Repeat([]byte("c"), 20000)}
	for i, d := range datas {
		if err := a.Add(0, d, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	recs := c.records()
	if len(recs) != 1 || !bytes.Equal(recs[0].Data, EncodeAggregate("fixed", "", datas)) {
		t.Fatalf("packer and EncodeAggregate disagree")
	}
}

// KeyTables reads both tables of what the encoder writes, in order, stops when asked, and
// refuses what is not an aggregate.
func TestKeyTables(t *testing.T) {
	data := EncodeUserRecords(nil, []UserRecord{
		{PartitionKey: "a", Data: []byte("1")},
		{PartitionKey: "b", ExplicitHashKey: "42", Data: []byte("2")},
		{PartitionKey: "a", Data: []byte("3")},
	})
	var got []string
	if err := KeyTables(data, func(k []byte, explicit bool) bool {
		got = append(got, fmt.Sprintf("%s/%v", k, explicit))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "a/false b/false 42/true" {
		t.Errorf("tables %v, want a/false b/false 42/true", got)
	}
	n := 0
	if err := KeyTables(data, func([]byte, bool) bool { n++; return false }); err != nil || n != 1 {
		t.Errorf("stopped walk: %d calls, err %v; want 1 call, nil", n, err)
	}
	if err := KeyTables([]byte("plain line"), func([]byte, bool) bool { return true }); !errors.Is(err, ErrNotAggregate) {
		t.Errorf("plain line: err %v, want ErrNotAggregate", err)
	}
	bad := append(append([]byte{}, magic[:]...), 0x0a, 0x7f, 'x') // a key table entry longer than the record
	bad = append(bad, make([]byte, checksumLen)...)
	if err := KeyTables(bad, func([]byte, bool) bool { return true }); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated table entry: err %v, want ErrMalformed", err)
	}
}
