package flow

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/shipper"
	"github.com/kinship-agent/kinship/spool"
)

// flowWith is testFlow with more settings for the flow (YAML, one line each).
func flowWith(t *testing.T, dir string, extra ...string) *Flow {
	t.Helper()
	y := "flows:\n  - name: t\n    paths: [\"/nonexistent/*.log\"]\n    spool: {fsync_interval: 1h%s}\n    batch: {max_bytes: 64KiB}\n"
	spoolExtra := ""
	dest := "    discard: {}\n"
	for _, e := range extra {
		switch {
		case strings.HasPrefix(e, "write:"):
			spoolExtra += ", " + e
		case strings.HasPrefix(e, "kinesis:"):
			dest = "    " + e + "\n"
		}
	}
	return openFlow(t, fmt.Sprintf(y, spoolExtra)+dest, Deps{Dir: dir, Destination: shipper.Discard{}})
}

// aggregate is a record as the aggregator builds it with the flow's buffers: data written
// frameHeadroom bytes into a buffer from aggregateBuffers, which the record hands over.
func aggregate(f *Flow, data []byte, plain bool, marks []aggregator.Mark) *aggregator.Record {
	buf := aggregateBuffers{f}.Get(frameHeadroom + f.frameCap - frameSlack + 64)
	buf = buf[:cap(buf)]
	at := frameHeadroom + 17 // anywhere behind the headroom: a plain line lies inside the aggregate
	if !plain {
		at = frameHeadroom
	}
	n := copy(buf[at:], data)
	return &aggregator.Record{PartitionKey: "pk", UserRecords: 3, Marks: marks, Data: buf[at : at+n], Buffer: buf}
}

// sources opens n files whose paths are pathLen bytes long or so, as sources 1..n.
func sources(t *testing.T, fs []*Flow, n, pathLen int) []aggregator.Mark {
	dir := t.TempDir()
	var marks []aggregator.Mark
	for i := range n {
		name := fmt.Sprintf("%03d-%s.log", i, strings.Repeat("p", max(pathLen-len(dir)-9, 1)))
		src := realSource(t, filepath.Join(dir, name))
		src.Index = uint32(i + 1)
		for _, f := range fs {
			sink{f: f}.Open(src, 0)
		}
		marks = append(marks, aggregator.Mark{Source: src.Index, Offset: 10})
	}
	return marks
}

// Frames made in place hold what the copy made before, byte for byte, in the spool (handed
// to the shipper, and on disk) whatever takes the copy path: a lone plain line, marks
// whose header does not fit the headroom, compression, a small record.
func TestInPlaceFramesAreTheCopiedOnes(t *testing.T) {
	cases := []struct {
		name    string
		extra   []string
		marks   int
		pathLen int
		plain   bool
		size    int
		inPlace bool
	}{
		{"aggregate backlog", nil, 3, 80, false, 50 << 10, true},
		{"aggregate always", []string{"write: always"}, 3, 80, false, 50 << 10, true},
		{"plain line", nil, 1, 80, true, 40 << 10, true},
		{"marks past the headroom", []string{"write: always"}, 40, 200, false, 50 << 10, false},
		{"compressed", []string{"kinesis: {stream: s, compression: zstd}"}, 2, 80, false, 50 << 10, false},
		{"small record", nil, 1, 80, false, 1000, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			placed, copied := flowWith(t, t.TempDir(), tc.extra...), flowWith(t, t.TempDir(), tc.extra...)
			marks := sources(t, []*Flow{placed, copied}, tc.marks, tc.pathLen)
			var want, got [][]byte
			for i := range 5 {
				data := bytes.Repeat([]byte{byte('a' + i)}, tc.size)
				binary.LittleEndian.PutUint32(data, uint32(i)) // compressible, and told apart
				for j := range marks {
					marks[j].Offset += int64(i + j + 1)
				}
				rec := aggregate(placed, data, tc.plain, marks)
				if err := (output{f: placed, ctx: context.Background()}).Put(rec); err != nil {
					t.Fatal(err)
				}
				if err := (output{f: copied, ctx: context.Background()}).Put(&aggregator.Record{
					PartitionKey: "pk", UserRecords: 3, Marks: marks, Data: bytes.Clone(data)}); err != nil {
					t.Fatal(err)
				}
				p, c := shipFrame(t, placed, rec.Buffer), shipFrame(t, copied, nil)
				if in := p.inBuffer; in != tc.inPlace {
					t.Errorf("record %d: frame in the aggregator's buffer %v, want %v", i, in, tc.inPlace)
				}
				if !bytes.Equal(p.payload, c.payload) || !bytes.Equal(p.data, c.data) {
					t.Fatalf("record %d: the frame made in place differs from the copy", i)
				}
				if e, err := decodeEnvelope(p.payload, true); err != nil || len(e.Marks) != tc.marks {
					t.Fatalf("record %d: frame decodes to %d marks, %v", i, len(e.Marks), err)
				}
				want = append(want, c.payload)
				got = append(got, p.payload)
			}
			// On disk, as a downgrade or a restart reads them.
			if !bytes.Equal(bytes.Join(spooled(t, placed), nil), bytes.Join(spooled(t, copied), nil)) {
				t.Error("the spool files hold other frames in place than copied")
			}
		})
	}
}

type shippedFrame struct {
	payload, data []byte
	inBuffer      bool
}

// shipFrame takes the next frame as the shipper would, before its ack.
func shipFrame(t *testing.T, f *Flow, buf []byte) shippedFrame {
	t.Helper()
	if f.cfg.Spool.Write == "always" {
		if err := f.spool.Sync(); err != nil { // Next hands out durable frames only
			t.Fatal(err)
		}
	}
	it, err := spoolSource{f}.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.shippedMu.Lock()
	p := f.shipped[it.Seq]
	f.shippedMu.Unlock()
	in := false
	for off := 0; off < frameHeadroom+64 && off < len(buf); off++ {
		in = in || &buf[off] == &p[0]
	}
	return shippedFrame{payload: bytes.Clone(p), data: bytes.Clone(it.Record.Data), inBuffer: in}
}

// spooled commits everything and returns the data frames on disk.
func spooled(t *testing.T, f *Flow) [][]byte {
	t.Helper()
	if err := f.spool.Sync(); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	if err := f.spool.Replay(0, func(fr spool.Frame) error {
		if !fr.Delivered {
			out = append(out, fr.Payload)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("nothing on disk")
	}
	return out
}

// Aggregates go round: built in a frame buffer, spooled in place, shipped and acked by a
// shipper on another goroutine while commits write them, and back to the pool as the whole
// buffer. The pool must not shrink (a frame given back as itself is smaller than a buffer,
// which the pool would drop, and every aggregate would allocate one) and no buffer may be
// reused while the spool or the shipper still reads it (-race, and the data checked at the
// ack).
func TestInPlaceBuffersGoRound(t *testing.T) {
	for _, write := range []string{"write: backlog", "write: always"} {
		t.Run(write, func(t *testing.T) {
			f := flowWith(t, t.TempDir(), write)
			marks := sources(t, []*Flow{f}, 2, 60)
			const records = 1000 // more than the spool's cache holds (always), so that a shrinking pool shows
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			shipped := make(chan error, 1)
			go func() {
				src := spoolSource{f}
				for i := range records {
					it, err := src.Next(ctx)
					if err != nil {
						shipped <- err
						return
					}
					d := it.Record.Data
					if len(d) < 8 || binary.LittleEndian.Uint64(d) != uint64(i) || binary.LittleEndian.Uint64(d[len(d)-8:]) != uint64(i) {
						shipped <- fmt.Errorf("record %d: its data changed before its ack", i)
						return
					}
					if i%7 == 0 {
						_ = f.spool.Sync() // commits write frames in flight from their buffers
					}
					if err := src.Ack(it.Seq); err != nil {
						shipped <- err
						return
					}
				}
				shipped <- nil
			}()
			out := output{f: f, ctx: ctx}
			size := (f.frameCap - frameSlack) * 3 / 4
			for i := range records {
				rec := aggregate(f, make([]byte, size), false, marks)
				binary.LittleEndian.PutUint64(rec.Data, uint64(i))
				binary.LittleEndian.PutUint64(rec.Data[len(rec.Data)-8:], uint64(i))
				for j := range marks {
					marks[j].Offset++
				}
				if err := out.Put(rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.spool.Sync(); err != nil { // write: always hands out durable frames only
				t.Fatal(err)
			}
			if err := <-shipped; err != nil {
				t.Fatal(err)
			}
			if n := f.bufAllocs.Load(); n > int64(cap(f.bufs)) {
				t.Errorf("%d records allocated %d frame buffers: more than the %d the pool keeps", records, n, cap(f.bufs))
			}
			for range len(f.bufs) {
				if b := <-f.bufs; cap(b) < f.frameCap {
					t.Fatalf("the pool holds a buffer of %d bytes, smaller than a frame buffer's %d", cap(b), f.frameCap)
				}
			}
			f.inPlaceMu.Lock()
			left := len(f.inPlace)
			f.inPlaceMu.Unlock()
			if left != 0 {
				t.Errorf("%d frames made in place were never given back", left)
			}
		})
	}
}

// Frames the spool or the shipper drop without giving them back (here: acknowledged
// straight at the spool, as drop_oldest's frames in flight are) do not pin their buffers:
// forgotten once acknowledged and durable, and bounded meanwhile.
func TestInPlaceFramesDroppedDoNotPinMemory(t *testing.T) {
	f := flowWith(t, t.TempDir())
	marks := sources(t, []*Flow{f}, 1, 60)
	out := output{f: f, ctx: context.Background()}
	size := (f.frameCap - frameSlack) * 3 / 4
	entries := func() int {
		f.inPlaceMu.Lock()
		defer f.inPlaceMu.Unlock()
		return len(f.inPlace)
	}
	for i := range 3 * f.inPlaceMax {
		marks[0].Offset++
		if err := out.Put(aggregate(f, make([]byte, size), false, marks)); err != nil {
			t.Fatal(err)
		}
		fr, err := f.spool.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.spool.Ack(fr.Seq); err != nil { // never given back
			t.Fatal(err)
		}
		if n := entries(); n > f.inPlaceMax {
			t.Fatalf("after %d frames dropped, %d entries pin their buffers, more than %d", i+1, n, f.inPlaceMax)
		}
	}
	if err := f.spool.Sync(); err != nil {
		t.Fatal(err)
	}
	f.pruneInPlace(min(f.spool.AckedThrough(), f.spool.Durable()))
	if n := entries(); n != 0 {
		t.Errorf("%d frames acknowledged and durable still pin their buffers", n)
	}
}
