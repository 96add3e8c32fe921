package flow

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newBacklog() *backlog {
	return &backlog{gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kinship_spool_unacked_bytes"})}
}

// kinship_spool_unacked_bytes is what unacked returns, at every step.
func TestBacklogCountsWhatIsNotAcknowledged(t *testing.T) {
	b := newBacklog()
	for seq := uint64(1); seq <= 10_000; seq++ {
		b.add(seq, 1000)
	}
	if got := testutil.ToFloat64(b.gauge); got != 10_000_000 {
		t.Errorf("gauge after adding = %v, want 10000000", got)
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
		if got := testutil.ToFloat64(b.gauge); got != float64(tc.want) {
			t.Errorf("gauge after unacked(%d) = %v, want %d", tc.acked, got, tc.want)
		}
	}
	if len(b.runs) != 0 {
		t.Errorf("%d runs kept with nothing left to acknowledge", len(b.runs))
	}
	// drop_oldest moves the cursor past frames never acknowledged one by one.
	b.add(10_001, 10)
	b.add(10_002, 20)
	if got := testutil.ToFloat64(b.gauge); got != 30 {
		t.Errorf("gauge with two frames of 10 and 20 bytes = %v", got)
	}
	if got := b.unacked(20_000); got != 0 || testutil.ToFloat64(b.gauge) != 0 {
		t.Errorf("unacked past the last frame = %d, gauge %v", got, testutil.ToFloat64(b.gauge))
	}
	// A cursor older than one already seen (Status reads its Stats before an Ack) forgets
	// nothing and counts nothing again.
	b.add(20_001, 1000)
	b.add(20_002, 1000)
	b.unacked(20_001)
	if got := b.unacked(20_000); got != 1000 {
		t.Errorf("unacked with an older cursor = %d, want 1000", got)
	}
}

// The runs grow with the backlog's bytes, not with its frame count.
func TestBacklogMemoryFollowsBytes(t *testing.T) {
	b := newBacklog()
	for seq := uint64(1); seq <= 100_000; seq++ {
		b.add(seq, 100)
	}
	if want := 100_000*100/backlogRunBytes + 1; len(b.runs) > want {
		t.Errorf("%d runs for 10 MB of small frames, want at most %d", len(b.runs), want)
	}
}
