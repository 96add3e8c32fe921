package aggregator

import (
	"bytes"
	"testing"
)

// FuzzDecodeAggregate checks that the strict decoder (and KeyTables) never panics, never allocates beyond
// what the input can describe, and that whatever it accepts re-encodes to the same records.
// Random bytes almost never carry a valid MD5, so each input is also decoded as the protobuf
// body of a record with a correct checksum: that is what reaches the parser in earnest.
func FuzzDecodeAggregate(f *testing.F) {
	f.Add(EncodeAggregate("pk", "", [][]byte{[]byte("a"), {}, []byte("\x00\xff")}))
	f.Add(EncodeAggregate("pk", "170141183460469231731687303715884105728", [][]byte{bytes.Repeat([]byte("x"), 200)}))
	f.Add([]byte("plain line"))
	f.Add(magic[:])
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data)
		check(t, wrap(data))
	})
}

func check(t *testing.T, data []byte) {
	recs, err := DecodeAggregate(data)
	_ = KeyTables(data, func([]byte, bool) bool { return true }) // must not panic on anything
	users, aggregated, derr := Deaggregate(data, "outer")
	if derr != nil || aggregated != (err == nil) {
		t.Fatalf("Deaggregate disagrees with DecodeAggregate: %v, aggregated=%v, strict err %v", derr, aggregated, err)
	}
	if err != nil {
		if len(users) != 1 || !bytes.Equal(users[0].Data, data) {
			t.Fatalf("an invalid aggregate must come back whole as one plain record")
		}
		return
	}
	// The router's cheap look (KeyTables) reads whatever the strict decoder accepts, and
	// every record's key is in the tables it yields.
	keys := map[string]bool{}
	if err := KeyTables(data, func(k []byte, explicit bool) bool { keys[string(k)] = true; return true }); err != nil {
		t.Fatalf("KeyTables refuses an aggregate DecodeAggregate accepts: %v", err)
	}
	for _, r := range recs {
		if !keys[r.PartitionKey] || (r.ExplicitHashKey != "" && !keys[r.ExplicitHashKey]) {
			t.Fatalf("record keys %q/%q not among the key tables %v", r.PartitionKey, r.ExplicitHashKey, keys)
		}
	}
	// Every record costs at least 2 bytes of input (tag and length), so the result is bounded by the input.
	if 2*len(recs) > len(data) {
		t.Fatalf("%d records out of %d bytes", len(recs), len(data))
	}
	again, err := DecodeAggregate(encodeUserRecords(nil, recs))
	if err != nil {
		t.Fatalf("re-encoded records do not decode: %v", err)
	}
	if !sameRecords(recs, again) {
		t.Fatalf("round trip changed the records:\n%+v\n%+v", recs, again)
	}
}
