package spool

import (
	"context"
	"path/filepath"
	"testing"
)

// An operator's `kinship status` reads the backlog while the agent holds the spool open.
func TestInspectWhileOpenSeesBacklogWithoutTheLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := Open(Options{Dir: dir, FsyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for range 3 {
		if _, err := s.Append(ctx, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	fr, err := s.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(fr.Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil { // writes the ack frame
		t.Fatal(err)
	}
	b, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.LastSeq != 3 || b.AckedThrough != 1 || b.UnackedFrames != 2 {
		t.Errorf("Inspect = %+v, want last 3, acked 1, 2 unacked", b)
	}
	if want := 2 * frameSize(100); b.UnackedBytes != want {
		t.Errorf("UnackedBytes = %d, want %d", b.UnackedBytes, want)
	}
	if b.Bytes == 0 || b.Segments != 1 {
		t.Errorf("Inspect = %+v, want one non-empty segment", b)
	}
	// Still usable: Inspect took no lock and changed nothing.
	if _, err := s.Append(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if empty, err := Inspect(filepath.Join(t.TempDir(), "missing")); err != nil || empty.UnackedFrames != 0 {
		t.Errorf("missing dir: %+v, %v", empty, err)
	}
}
