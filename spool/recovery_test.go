package spool

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestRecoveryReportsLostFrames: damage in the newest segment makes Open cut frames that
// were durable; the caller's positions may already point past them, so Open must say which
// seqs are gone (issue 13.5), count them, and never report frames that were acknowledged.
func TestRecoveryReportsLostFrames(t *testing.T) { eachWriteMode(t, testRecoveryReportsLostFrames) }

func testRecoveryReportsLostFrames(t *testing.T) {
	size := func(i uint64) int { return 700 + int(i%3)*100 }
	const n = 40
	src, segs := writtenSpool(t, n, size, 16<<10)
	if len(segs) < 2 {
		t.Fatalf("%d segments, want a sealed one before the newest", len(segs))
	}
	newest := filepath.Base(segs[len(segs)-1])
	b, err := os.ReadFile(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	first := binary.LittleEndian.Uint64(b[16:])
	frame2 := int64(segHeaderSize) + frameSize(size(first))
	tests := []struct {
		name      string
		damage    func(b []byte)
		firstLost uint64
		frames    uint64
		bytes     int64
	}{
		{"random bytes in frame 2", func(b []byte) {
			copy(b[frame2+frameHeaderSize+10:], "\x13\x37\xca\xfe\xba\xbe")
		}, first + 1, n - first, int64(len(b)) - frame2},
		{"huge length field in frame 2", func(b []byte) {
			binary.LittleEndian.PutUint32(b[frame2+4:], 0xfffffff0)
		}, first + 1, n - first, int64(len(b)) - frame2},
		{"bad header", func(b []byte) { b[3] ^= 0xff }, first, n - first + 1, int64(len(b))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			c := append([]byte(nil), b...)
			tc.damage(c)
			if err := os.WriteFile(filepath.Join(dir, newest), c, 0o600); err != nil {
				t.Fatal(err)
			}
			opts := testOptions(dir)
			s := mustOpen(t, opts)
			got := s.Recovery()
			want := Recovery{LostFrames: tc.frames, LostBytes: tc.bytes, FirstLost: tc.firstLost}
			if got != want {
				t.Fatalf("Recovery() = %+v, want %+v", got, want)
			}
			if v := metricValue(t, opts.Metrics.SpoolLostFrames); v != float64(tc.frames) {
				t.Errorf("lost frames metric %v, want %d", v, tc.frames)
			}
			if v := metricValue(t, opts.Metrics.SpoolLostBytes); v != float64(tc.bytes) {
				t.Errorf("lost bytes metric %v, want %d", v, tc.bytes)
			}
			checkFrames(t, replayAll(t, s, 0), seqRange(1, tc.firstLost-1), size)
			// kinship status reads it from disk: the bytes set aside stay visible.
			if bl, err := Inspect(dir); err != nil || bl.BrokenBytes != tc.bytes || bl.BrokenFiles != 1 {
				t.Fatalf("Inspect = %+v (%v), want the %d broken bytes in one file", bl, err, tc.bytes)
			}
			// Until the caller says it rolled its state back, every Open reports the loss
			// again (a crash before that must not make it vanish); nothing more is cut.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, testOptions(dir))
			if got := s.Recovery(); got != (Recovery{FirstLost: tc.firstLost}) {
				t.Fatalf("Open before RecoveryHandled: Recovery() = %+v, want FirstLost %d only", got, tc.firstLost)
			}
			if err := s.RecoveryHandled(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, testOptions(dir))
			if got := s.Recovery(); got != (Recovery{}) {
				t.Fatalf("Open after RecoveryHandled: Recovery() = %+v, want nothing", got)
			}
		})
	}

	// Damage inside a sealed segment is stepped over, the frames after it kept: the frames
	// it destroyed are reported when they were not acknowledged, not when they were.
	for _, acked := range []bool{false, true} {
		t.Run(fmt.Sprintf("sealed segment, acknowledged %v", acked), func(t *testing.T) {
			dir := copyDir(t, src)
			s := mustOpen(t, testOptions(dir))
			if acked {
				for _, f := range nextFrames(t, s, n) {
					if err := s.Ack(f.Seq); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, filepath.Base(segs[0]))
			c, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f2 := int64(segHeaderSize) + frameSize(size(1))
			copy(c[f2+frameHeaderSize+10:], "\x13\x37\xca\xfe\xba\xbe")
			if err := os.WriteFile(path, c, 0o600); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, testOptions(dir))
			want := Recovery{FirstLost: 2}
			if acked {
				want = Recovery{}
			}
			if got := s.Recovery(); got != want {
				t.Fatalf("Recovery() = %+v, want %+v", got, want)
			}
		})
	}

	t.Run("a zeroed tail loses nothing", func(t *testing.T) {
		dir := copyDir(t, src)
		path := filepath.Join(dir, newest)
		if err := os.WriteFile(path, append(append([]byte(nil), b...), make([]byte, 4096)...), 0o600); err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, testOptions(dir))
		if got := s.Recovery(); got.LostFrames != 0 || got.FirstLost != 0 {
			t.Fatalf("Recovery() = %+v, want no frame lost", got)
		}
	})
}
