package spool

import (
	"context"
	"testing"
)

// A spool opened without metrics works as one with them: the zero Metrics counts appends,
// drops and write errors into nothing, and the data goes through.
func TestZeroMetricsSpool(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, FsyncInterval: -1, SegmentBytes: 4096, MaxBytes: 3 * 4096, DropOldest: true}
	s := mustOpen(t, opts)
	for i := uint64(1); i <= 100; i++ { // past MaxBytes: drop_oldest drops
		mustAppend(t, s, payloadFor(i, 500))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	fr, err := s.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(fr.Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, opts)
	if last := s.LastSeq(); last != 100 {
		t.Errorf("LastSeq after reopening = %d, want 100", last)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
