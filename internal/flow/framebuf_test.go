package flow

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/shipper"
)

// Small frames (records sealed by max_age on a slow flow, while the destination is down)
// hold memory of their own size: the spool's cache bounds what it keeps by the frames'
// length, so a full aggregate's buffer under each would turn its 16 MiB into gigabytes.
func TestSmallFramesHoldTheirOwnSize(t *testing.T) {
	f := testFlow(t, t.TempDir())
	src := realSource(t, filepath.Join(t.TempDir(), "a.log"))
	sink{f: f}.Open(src, 0)
	out := output{f: f, ctx: context.Background()}
	const records = 300 // of 200 bytes: 60 KB, all in the spool's cache, none acknowledged
	line := make([]byte, 200)
	before := heapInUse()
	for i := range records {
		if err := out.Put(&aggregator.Record{PartitionKey: "k", Data: line, UserRecords: 1,
			Marks: []aggregator.Mark{{Source: 1, Offset: int64(i+1) * 200}}}); err != nil {
			t.Fatal(err)
		}
	}
	if grown := heapInUse() - before; grown > 16<<20 {
		t.Errorf("%d frames of %d bytes hold %d MiB", records, len(line), grown>>20)
	}

	// Frames of about a full aggregate still reuse their buffers.
	big := f.getBuf(f.frameCap - 1024)
	f.putBuf(big)
	if again := f.getBuf(f.frameCap - 2048); cap(again) != cap(big) || &again[:1][0] != &big[:1][0] {
		t.Error("a full-size frame buffer was not reused")
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// With a small batch.max_bytes (agent.json's maxBufferSizeBytes becomes it) every frame is
// small, and a recycled buffer, a full aggregate plus the envelope's 16 KiB, is many times
// the frame it would carry: the spool's cache (write: always, a destination that is down)
// bounds what it keeps by the frames' length, so frames must hold about their own size
// there, whether the aggregator built them (in place) or they were copied. At 1 KiB batches
// the cache's 16 MiB of frames held half a GiB.
func TestSmallBatchFramesHoldAboutTheirOwnSize(t *testing.T) {
	f := openFlow(t, `
flows:
  - name: t
    paths: ["/nonexistent/*.log"]
    discard: {}
    batch: {max_bytes: 1KiB}
    spool: {fsync_interval: 1h, write: always}
`, Deps{Dir: t.TempDir(), Destination: shipper.Discard{}})
	marks := sources(t, []*Flow{f}, 1, 60)
	out := output{f: f, ctx: context.Background()}
	const records, size = 6000, 700 // 5 MB, all in the spool's cache, none acknowledged
	before := heapInUse()
	var framed int64
	for i := range records {
		marks[0].Offset++
		data := bytes.Repeat([]byte{byte(i)}, size)
		rec := &aggregator.Record{PartitionKey: "pk", UserRecords: 3, Marks: marks, Data: data}
		if i%2 == 0 {
			rec = aggregate(f, data, false, marks) // built in a buffer of the flow's
		}
		if err := out.Put(rec); err != nil {
			t.Fatal(err)
		}
		framed += size + 100
	}
	if err := f.spool.Sync(); err != nil { // the frames leave the unsynced tail's copy
		t.Fatal(err)
	}
	// Twice the frames, and the chunks of the spool's unsynced tail the copies went
	// through (it keeps two of 4 MiB); recycled buffers held 25 times the frames.
	if grown := heapInUse() - before; grown > 2*framed+(10<<20) {
		t.Errorf("%d frames of about %d bytes (%d KiB) hold %d KiB of memory", records, size+100, framed>>10, grown>>10)
	}
}
