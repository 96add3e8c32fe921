package aggregator

import (
	"bytes"
	"testing"
)

// Both packers built without metrics pack as with them: a line cut to fit and a line
// without the partition key (the paths that count) are delivered.
func TestZeroMetricsPack(t *testing.T) {
	const maxRecord = 8 << 10
	for _, keyed := range []bool{false, true} {
		out := &collector{}
		opts := Options{MaxRecordBytes: maxRecord, Aggregate: true}
		var a interface {
			Add(uint32, []byte, int64) error
			Close() error
		}
		var err error
		if keyed {
			a, err = NewSharded(KeyedOptions{Options: opts, Key: JSONFieldKey("k")}, out)
		} else {
			a, err = New(opts, out)
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range [][]byte{bytes.Repeat([]byte("l"), maxRecord), []byte("no key")} {
			if err := a.Add(0, l, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		lines := 0
		for _, r := range out.records() {
			urs, _, err := Deaggregate(r.Data, r.PartitionKey)
			if err != nil {
				t.Fatal(err)
			}
			lines += len(urs)
		}
		if lines != 2 {
			t.Errorf("keyed %v: %d lines delivered, want 2", keyed, lines)
		}
	}
}
