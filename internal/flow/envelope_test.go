package flow

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/kinship-agent/kinship/tailer"
)

func sampleEnvelope() envelope {
	return envelope{
		PartitionKey: "a1b2c3", ExplicitHashKey: "", UserRecords: 3,
		Marks: []position{
			{ID: tailer.FileID{Dev: 2049, Ino: 131}, Fingerprint: tailer.Fingerprint{Len: 1024, Sum: 0xdeadbeefcafef00d}, Path: "/var/log/app/a.log", Offset: 1 << 40},
			{ID: tailer.FileID{Dev: 1, Ino: 2}, Path: "/var/log/b.log", Offset: 0},
		},
		Data: []byte("\xf3\x89\x9a\xc2 not really an aggregate \x00\xff"),
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, e := range []envelope{sampleEnvelope(), {Data: []byte{}}, {PartitionKey: "k", UserRecords: 1, Data: []byte("x")}} {
		b := appendEnvelope([]byte("prefix"), &e)
		got, err := decodeEnvelope(b[len("prefix"):], true)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if len(e.Marks) == 0 {
			e.Marks = []position{}
		}
		if !reflect.DeepEqual(got, e) && !(len(got.Data) == 0 && len(e.Data) == 0) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
		noMarks, err := decodeEnvelope(b[len("prefix"):], false)
		if err != nil || noMarks.Marks != nil || !bytes.Equal(noMarks.Data, e.Data) || noMarks.PartitionKey != e.PartitionKey {
			t.Errorf("decode without marks: %+v, %v", noMarks, err)
		}
	}
}

func TestEnvelopeRejectsTruncatedAndForeign(t *testing.T) {
	e := sampleEnvelope()
	b := appendEnvelope(nil, &e)
	headerLen := len(b) - len(e.Data)
	for cut := 0; cut < headerLen; cut++ {
		if _, err := decodeEnvelope(b[:cut], true); !errors.Is(err, errEnvelope) {
			t.Errorf("cut at %d of a %d-byte header: err %v, want errEnvelope", cut, headerLen, err)
		}
	}
	foreign := append([]byte{9}, b[1:]...)
	if _, err := decodeEnvelope(foreign, true); !errors.Is(err, errEnvelope) {
		t.Errorf("version 9: err %v, want errEnvelope", err)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	e := sampleEnvelope()
	f.Add(appendEnvelope(nil, &e))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeEnvelope(b, true)
		if err != nil {
			return
		}
		again, err := decodeEnvelope(appendEnvelope(nil, &got), true)
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		if !bytes.Equal(again.Data, got.Data) || len(again.Marks) != len(got.Marks) || again.PartitionKey != got.PartitionKey {
			t.Fatalf("re-encoded envelope differs")
		}
	})
}
