package spool

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestMidSegmentCorruption: a flipped bit or a zeroed page inside a segment costs the frames
// it touches, counted, and nothing else: the frames after it in the same segment still ship,
// through recovery, Next, Replay and Inspect.
func TestMidSegmentCorruption(t *testing.T) { eachWriteMode(t, testMidSegmentCorruption) }

func testMidSegmentCorruption(t *testing.T) {
	size := func(i uint64) int { return 900 + int(i%5)*211 }
	const n = 60
	src, segs := writtenSpool(t, n, size, 32<<10)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want a sealed one in the middle", len(segs))
	}
	// Frames of the first segment start at 1 and lie back to back (no ack frame: nothing was
	// acknowledged).
	offs := map[uint64]int64{}
	off := int64(segHeaderSize)
	for i := uint64(1); ; i++ {
		offs[i] = off
		off += frameSize(size(i))
		if fi, _ := os.Stat(segs[0]); off >= fi.Size() {
			break
		}
	}
	hits := func(lo, hi int64) []uint64 { // frames overlapping [lo, hi)
		var out []uint64
		for seq, o := range offs {
			if o < hi && o+frameSize(size(seq)) > lo {
				out = append(out, seq)
			}
		}
		slices.Sort(out)
		return out
	}
	k := uint64(7)
	tests := []struct {
		name   string
		seg    int
		damage func(b []byte)
		lost   []uint64
	}{
		{"bit flip in frame k of a sealed segment", 0, func(b []byte) { b[offs[k]+frameHeaderSize+100] ^= 0x08 }, []uint64{k}},
		{"bit flip in frame k's header", 0, func(b []byte) { b[offs[k]+9] ^= 0x01 }, []uint64{k}},
		{"zeroed 4 KiB page in a sealed segment", 0, func(b []byte) { clear(b[8192 : 8192+4096]) }, hits(8192, 8192+4096)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			path := filepath.Join(dir, filepath.Base(segs[tc.seg]))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(b)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var want []uint64
			for i := uint64(1); i <= n; i++ {
				if !slices.Contains(tc.lost, i) {
					want = append(want, i)
				}
			}
			bl, err := Inspect(dir)
			if err != nil {
				t.Fatal(err)
			}
			if bl.LastSeq != n || bl.UnackedBytes == 0 {
				t.Fatalf("Inspect: %+v", bl)
			}
			opts := testOptions(dir)
			s := mustOpen(t, opts)
			if m, _ := filepath.Glob(filepath.Join(dir, "*.broken")); len(m) != 0 {
				t.Fatalf("recovery cut a segment with valid frames after the damage: %v", m)
			}
			checkFrames(t, replayAll(t, s, 0), want, size)
			got := nextFrames(t, s, len(want))
			checkFrames(t, got, want, size)
			noNext(t, s)
			if c := metricValue(t, opts.Metrics.SpoolCorrupt); c < 1 {
				t.Fatalf("SpoolCorrupt = %v, want the skip counted", c)
			}
			if seq := mustAppend(t, s, []byte("after")); seq != n+1 {
				t.Fatalf("new seq %d, want %d", seq, n+1)
			}
		})
	}
}
