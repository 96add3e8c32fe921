package flow

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
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
