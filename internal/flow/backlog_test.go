package flow

import "testing"

func TestBacklogCountsWhatIsNotAcknowledged(t *testing.T) {
	var b backlog
	for seq := uint64(1); seq <= 10_000; seq++ {
		b.add(seq, 1000)
	}
	for _, tc := range []struct {
		acked uint64
		want  int64
	}{
		{0, 10_000_000}, {1000, 9_000_000}, {9999, 1000}, {10_000, 0},
	} {
		if got := b.unacked(tc.acked); got != tc.want {
			t.Errorf("unacked(%d) = %d, want %d", tc.acked, got, tc.want)
		}
	}
	if len(b.runs) != 0 {
		t.Errorf("%d runs kept with nothing left to acknowledge", len(b.runs))
	}
	// drop_oldest moves the cursor past frames never acknowledged one by one.
	b.add(10_001, 10)
	b.add(10_002, 20)
	if got := b.unacked(20_000); got != 0 {
		t.Errorf("unacked past the last frame = %d", got)
	}
}

// The runs grow with the backlog's bytes, not with its frame count.
func TestBacklogMemoryFollowsBytes(t *testing.T) {
	var b backlog
	for seq := uint64(1); seq <= 100_000; seq++ {
		b.add(seq, 100)
	}
	if want := 100_000*100/backlogRunBytes + 1; len(b.runs) > want {
		t.Errorf("%d runs for 10 MB of small frames, want at most %d", len(b.runs), want)
	}
}
