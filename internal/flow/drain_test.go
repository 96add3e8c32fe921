package flow

import (
	"context"
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/spool"
)

// A backlog of full frames drained by a shipper that now takes fresh frames from memory,
// now frames a commit wrote to disk before it could take them (dropped from the spool's
// cache, read back): every frame buffer is recycled, so the buffers allocated stay at what
// is live at once, however many frames pass.
func TestBacklogDrainRecyclesFrameBuffers(t *testing.T) {
	// inPlace: frames made in the aggregator's buffers (aggregator.Options.Buffers), which
	// putBuf must recycle whole.
	for _, inPlace := range []bool{false, true} {
		t.Run(map[bool]string{false: "copied", true: "in place"}[inPlace], func(t *testing.T) {
			backlogDrainRecyclesFrameBuffers(t, inPlace)
		})
	}
}

func backlogDrainRecyclesFrameBuffers(t *testing.T, inPlace bool) {
	f := testFlow(t, t.TempDir()) // fsync_interval 1h: the test commits
	src := realSource(t, t.TempDir()+"/a.log")
	sink{f: f}.Open(src, 0)
	ctx := context.Background()
	out := output{f: f, ctx: ctx}
	source := spoolSource{f}
	data := make([]byte, f.frameCap-frameSlack-4096) // a full aggregate
	var offset int64
	put := func() {
		t.Helper()
		offset++
		marks := []aggregator.Mark{{Source: 1, Offset: offset}}
		rec := &aggregator.Record{PartitionKey: "k", Data: data, UserRecords: 1, Marks: marks}
		if inPlace {
			rec = aggregate(f, data, false, marks)
		}
		if err := out.Put(rec); err != nil {
			t.Fatal(err)
		}
	}
	var inFlight []uint64
	next := func() {
		t.Helper()
		it, err := source.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inFlight = append(inFlight, it.Seq)
	}
	var memory int64 // the most the spool held in memory besides what the shipper has
	sync := func() {
		t.Helper()
		memory = max(memory, f.spool.Stats().MemoryBytes)
		if err := f.spool.Sync(); err != nil {
			t.Fatal(err)
		}
		memory = max(memory, f.spool.Stats().MemoryBytes)
	}
	const rounds, perRound = 10, 9
	for range rounds {
		put() // taken from memory: the spool's reader stops
		next()
		// Eight frames the shipper is too slow for: a commit writes them, and they are
		// read back from disk (in backlog mode the spool keeps no cache).
		for range 8 {
			put() // a frame fills the spool's lead (spool.MaxHeldBytes): written at once
			sync()
		}
		for range 8 {
			next()
		}
		for _, seq := range inFlight {
			if err := source.Ack(seq); err != nil {
				t.Fatal(err)
			}
		}
		inFlight = inFlight[:0]
	}
	if st := f.spool.Stats(); st.AckedThrough != rounds*perRound {
		t.Fatalf("acknowledged through %d, want %d", st.AckedThrough, rounds*perRound)
	}
	if bound := int64(spool.MaxHeldBytes + frameCacheBytesBacklog); memory > bound || memory < int64(len(data)) {
		t.Errorf("the spool held up to %d bytes in memory, want a frame at least and at most its lead and its cache (%d)", memory, bound)
	}
	// Live at once: the nine frames of a round and the one read back.
	if n := f.bufAllocs.Load(); n > perRound+1 {
		t.Errorf("%d frame buffers allocated for %d frames, at most %d live at once", n, rounds*perRound, perRound+1)
	}
}
