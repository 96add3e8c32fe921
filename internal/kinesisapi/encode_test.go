package kinesisapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/encoding/cbor"
)

// testInput returns n records with awkward keys and data (every byte value, empty data,
// keys needing JSON escapes, invalid UTF-8, explicit hash keys on some).
func testInput(n int, rnd *rand.Rand) *kinesis.PutRecordsInput {
	keys := []string{"plain", `quo"te\back`, "tab\tnew\nline\x01", "ünïcödé-键", "bad\xffutf8\xc3", "k"}
	in := &kinesis.PutRecordsInput{StreamName: aws.String("s-1")}
	for i := range n {
		d := make([]byte, rnd.IntN(3000))
		for j := range d {
			d[j] = byte(rnd.Uint32())
		}
		if i%7 == 3 {
			d = nil
		}
		e := types.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String(keys[i%len(keys)])}
		if i%3 == 1 {
			e.ExplicitHashKey = aws.String(fmt.Sprint(rnd.Uint64()))
		}
		in.Records = append(in.Records, e)
	}
	return in
}

type decodedEntry struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey *string
}

func wantEntries(in *kinesis.PutRecordsInput) []decodedEntry {
	var out []decodedEntry
	for _, e := range in.Records {
		d := e.Data
		if d == nil {
			d = []byte{}
		}
		out = append(out, decodedEntry{Data: d, PartitionKey: validKey(*e.PartitionKey), ExplicitHashKey: e.ExplicitHashKey})
	}
	return out
}

func checkEntries(t *testing.T, got, want []decodedEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries decoded, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Data, w.Data) || g.PartitionKey != w.PartitionKey || aws.ToString(g.ExplicitHashKey) != aws.ToString(w.ExplicitHashKey) ||
			(g.ExplicitHashKey == nil) != (w.ExplicitHashKey == nil) {
			t.Fatalf("entry %d = %q/%q/%v, want %q/%q/%v", i, g.Data, g.PartitionKey, g.ExplicitHashKey, w.Data, w.PartitionKey, w.ExplicitHashKey)
		}
	}
}

// A JSON body decodes (with encoding/json, as a service would) to exactly the input, its
// hash is the body's, and its size bound held, so the buffer was never grown.
func TestJSONBody(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 57, 500} {
		in := testInput(n, rnd)
		size := jsonSize(in)
		buf := make([]byte, 0, size)
		h := sha256.New()
		body := appendJSON(buf, in, h)
		if len(body) > size || &body[:1][0] != &buf[:1][0] {
			t.Fatalf("body of %d bytes outgrew its bound %d", len(body), size)
		}
		if sum := sha256.Sum256(body); !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Fatal("hash is not the body's")
		}
		var got struct {
			Records    []decodedEntry
			StreamName string
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body is not JSON: %v\n%.300s", err, body)
		}
		if got.StreamName != "s-1" {
			t.Errorf("StreamName = %q", got.StreamName)
		}
		checkEntries(t, got.Records, wantEntries(in))
	}
}

// A CBOR body (its segments joined) decodes, with the SDK's CBOR decoder, to exactly the
// input; its framing size is exact and record data is not copied.
func TestCBORBody(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 57, 500} {
		in := testInput(n, rnd)
		in.StreamName, in.StreamARN = nil, aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/s-1")
		frameSize := cborFramingSize(in)
		h := sha256.New()
		frame, segs, size := encodeCBOR(make([]byte, 0, frameSize), nil, in, h)
		if len(frame) != frameSize {
			t.Fatalf("framing is %d bytes, computed %d", len(frame), frameSize)
		}
		body := bytes.Join(segs, nil)
		if len(body) != size {
			t.Fatalf("segments hold %d bytes, size %d", len(body), size)
		}
		if sum := sha256.Sum256(body); !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Fatal("hash is not the body's")
		}
		for _, s := range segs {
			if !isRecordData(in, s) && !inside(frame, s) {
				t.Errorf("a segment of %d bytes is neither framing nor a record's own data: copied", len(s))
			}
		}
		v, err := cbor.Decode(body)
		if err != nil {
			t.Fatalf("body is not CBOR: %v", err)
		}
		m, ok := v.(cbor.Map)
		if !ok || len(m) != 2 {
			t.Fatalf("body is %T with %d fields, want a map of Records and StreamARN", v, len(m))
		}
		if s, _ := m["StreamARN"].(cbor.String); string(s) != *in.StreamARN {
			t.Errorf("StreamARN = %v", m["StreamARN"])
		}
		list, _ := m["Records"].(cbor.List)
		var got []decodedEntry
		for i, item := range list {
			em, _ := item.(cbor.Map)
			d, ok1 := em["Data"].(cbor.Slice)
			k, ok2 := em["PartitionKey"].(cbor.String)
			if !ok1 || !ok2 {
				t.Fatalf("entry %d: %#v", i, em)
			}
			e := decodedEntry{Data: []byte(d), PartitionKey: string(k)}
			if ehk, ok := em["ExplicitHashKey"].(cbor.String); ok {
				e.ExplicitHashKey = aws.String(string(ehk))
			}
			got = append(got, e)
		}
		checkEntries(t, got, wantEntries(in))
	}
}

func inside(frame, s []byte) bool {
	f := frame[:cap(frame)]
	for i := range f {
		if &f[i] == &s[0] {
			return true
		}
	}
	return false
}

func isRecordData(in *kinesis.PutRecordsInput, s []byte) bool {
	for _, e := range in.Records {
		if len(e.Data) > 0 && &e.Data[0] == &s[0] {
			return true
		}
	}
	return false
}

func TestCBORHeads(t *testing.T) {
	for _, n := range []uint64{0, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32} {
		b := appendCBORHead(nil, cborBytes, n)
		if len(b) != cborHeadLen(n) {
			t.Errorf("head of %d is %d bytes, cborHeadLen says %d", n, len(b), cborHeadLen(n))
		}
		if n < 1<<20 {
			v, err := cbor.Decode(append(b, make([]byte, n)...))
			if s, ok := v.(cbor.Slice); err != nil || !ok || uint64(len(s)) != n {
				t.Errorf("byte string of %d: %v %T", n, err, v)
			}
		}
	}
	if got := base64.StdEncoding.EncodedLen(4); got != 8 {
		t.Fatal(got)
	}
}

func TestParseProtocol(t *testing.T) {
	for s, want := range map[string]Protocol{"": CBOR, "cbor": CBOR, "json": JSON} {
		if p, err := ParseProtocol(s); err != nil || p != want {
			t.Errorf("ParseProtocol(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseProtocol("xml"); err == nil {
		t.Error("xml accepted")
	}
}
