package aggregator

import (
	"bytes"
	"testing"
)

// FuzzDecodeAggregate checks that the strict decoder never panics, never allocates beyond
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
