package spool

import (
	"bytes"
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

// `kinship status --file` reads the frames themselves (their envelopes name the lines' files)
// while the agent runs, compressed or not, acknowledged or not.
func TestInspectFramesReadsPayloadsWithoutTheLock(t *testing.T) {
	for _, codec := range []Compression{CompressNone, CompressZstd} {
		dir := filepath.Join(t.TempDir(), "spool")
		s, err := Open(Options{Dir: dir, FsyncInterval: -1, Compression: codec})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := range 3 {
			if _, err := s.Append(ctx, bytes.Repeat([]byte{byte('a' + i)}, 500)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Sync(); err != nil { // Next hands out durable frames only
			t.Fatal(err)
		}
		fr, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(fr.Seq); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		b, err := InspectFrames(dir, nil, func(f Frame) error {
			if want := bytes.Repeat([]byte{byte('a' + len(seqs))}, 500); !bytes.Equal(f.Payload, want) {
				t.Errorf("codec %v: frame %d payload %.10q..., want %.10q...", codec, f.Seq, f.Payload, want)
			}
			seqs = append(seqs, f.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seqs) != 3 || seqs[0] != 1 || seqs[2] != 3 || b.AckedThrough != 1 {
			t.Errorf("codec %v: frames %v, backlog %+v; want 1..3, acked through 1", codec, seqs, b)
		}
		s.Close()
	}
}

// Frames before the seq asked for are not handed over (status reads only what restore would).
func TestInspectFramesFrom(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, err := Open(Options{Dir: dir, FsyncInterval: -1, SegmentBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 20 {
		if _, err := s.Append(context.Background(), make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	if _, err := InspectFrames(dir, func(Backlog) uint64 { return 15 }, func(f Frame) error {
		seqs = append(seqs, f.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 6 || seqs[0] != 15 || seqs[5] != 20 {
		t.Fatalf("frames %v, want 15..20", seqs)
	}
}
