package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/s2"
)

// mixedPayloads returns log payloads (compressible, as kinship writes them), random bytes
// (stored raw: compression would not shrink them) and tiny and empty ones.
func mixedPayloads() [][]byte {
	r := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 70<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	return [][]byte{
		logPayload(false, 1, 256<<10),
		logPayload(true, 2, 300<<10),
		random,
		{},
		[]byte("x"),
		logPayload(true, 3, 1<<20),
		logPayload(false, 4, 20<<10),
	}
}

// Compressed frames come back byte for byte through Next (from memory and from disk), Replay
// and a reopen with another setting, and log data takes several times less disk.
func TestCompressedFramesRoundTrip(t *testing.T) {
	for _, codec := range []Compression{CompressS2, CompressZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(dir)
			opts.Compression = codec
			opts.CompressBacklog = -1   // every frame, whatever the backlog
			opts.CacheBytes = 400 << 10 // some frames come from memory, the rest from disk
			s := mustOpen(t, opts)
			sent := mixedPayloads()
			raw := 0
			for _, p := range sent {
				if _, err := s.AppendShared(context.Background(), bytes.Clone(p)); err != nil {
					t.Fatal(err)
				}
				raw += len(p)
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			for i, want := range sent {
				if f := mustNext(t, s); f.Seq != uint64(i+1) || !bytes.Equal(f.Payload, want) {
					t.Fatalf("Next: frame %d (%d bytes) differs from the %d bytes appended", f.Seq, len(f.Payload), len(want))
				}
			}
			noNext(t, s)
			onDisk := s.Stats().Bytes
			// 1.4 MiB of the payloads is log data compressing >3x; the 70 KiB of random bytes
			// is stored as is.
			if onDisk > int64(raw)/2 {
				t.Errorf("%d bytes on disk for %d bytes of payload: not compressed", onDisk, raw)
			}
			appended := metricValue(t, opts.Metrics.SpoolAppendedBytes)
			stored := metricValue(t, opts.Metrics.SpoolStoredBytes)
			if appended != float64(raw) || stored >= appended/2 {
				t.Errorf("metrics: appended %v stored %v, want %d appended and less than half stored", appended, stored, raw)
			}
			b, err := Inspect(dir)
			if err != nil || b.UnackedFrames != uint64(len(sent)) || b.Bytes != onDisk {
				t.Errorf("Inspect: %+v, %v; want %d frames in %d bytes", b, err, len(sent), onDisk)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			// Reopened without compression: recovery accepts every frame, Replay and Next
			// decode them, new frames are raw.
			opts.Compression = CompressNone
			opts.CacheBytes = 0
			s = mustOpen(t, opts)
			mustAppend(t, s, sent[0])
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			all := append(sent, sent[0])
			got := replayAll(t, s, 1)
			if len(got) != len(all) {
				t.Fatalf("Replay: %d frames, want %d", len(got), len(all))
			}
			for i, f := range got {
				if !bytes.Equal(f.Payload, all[i]) {
					t.Fatalf("Replay: frame %d differs", f.Seq)
				}
			}
			for i := range all {
				if f := mustNext(t, s); !bytes.Equal(f.Payload, all[i]) {
					t.Fatalf("Next after reopen: frame %d differs", f.Seq)
				}
			}
		})
	}
}

// A spool written before compression existed (all frames raw) stays readable by a spool
// that compresses, and both kinds of frames live in one segment.
func TestOldRawSegmentsReadWithCompressionOn(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir))
	p1 := logPayload(false, 9, 64<<10)
	mustAppend(t, s, p1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(dir)
	opts.Compression = CompressS2
	opts.CompressBacklog = -1 // every frame, whatever the backlog
	s = mustOpen(t, opts)
	p2 := logPayload(true, 10, 64<<10)
	mustAppend(t, s, p2)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if f := mustNext(t, s); !bytes.Equal(f.Payload, p1) {
		t.Fatal("old raw frame differs")
	}
	if f := mustNext(t, s); !bytes.Equal(f.Payload, p2) {
		t.Fatal("new compressed frame differs")
	}
}

// With the same max_bytes, a compressed spool holds several times more log data before
// Append blocks.
func TestMaxBytesCountsCompressedBytes(t *testing.T) {
	fill := func(codec Compression) int {
		opts := testOptions(t.TempDir())
		opts.Write = WriteAlways // frames reach the disk as they are appended: Bytes is exact
		opts.Compression = codec
		opts.CompressBacklog = -1 // every frame, whatever the backlog
		opts.MaxBytes = 2 << 20
		opts.SegmentBytes = 512 << 10
		s := mustOpen(t, opts)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		held := 0
		for i := range 200 {
			if s.Stats().Bytes >= opts.MaxBytes {
				break // the next Append would block: nothing acks
			}
			p := logPayload(i%2 == 1, uint64(i), 128<<10)
			if _, err := s.Append(ctx, p); err != nil {
				t.Fatal(err)
			}
			held += len(p)
		}
		return held
	}
	rawHeld, s2Held := fill(CompressNone), fill(CompressS2)
	if s2Held < 3*rawHeld {
		t.Errorf("2 MiB spool held %d bytes of logs compressed, %d raw: want at least 3x", s2Held, rawHeld)
	}
}

// corruptCompressedSegment returns a segment with one s2 frame whose header claims it
// decodes to claim bytes, with a right CRC: only the decoder can tell.
func corruptCompressedSegment(claim uint64) []byte {
	b := make([]byte, segHeaderSize)
	encodeSegHeader(b, 1)
	z := s2.Encode(nil, logPayload(false, 1, 4<<10))
	hdrLen := binary.PutUvarint(make([]byte, 10), 4<<10)
	z = append(binary.AppendUvarint(nil, claim), z[hdrLen:]...)
	var h [frameHeaderSize]byte
	encodeFrameHeaderCodec(h[:], frameData, CompressS2, 1, z)
	b = append(b, h[:]...)
	b = append(b, z...)
	return append(b, make([]byte, pad8(len(z)))...)
}

// A frame with a right CRC that claims to decode to 1 GiB is refused as corrupt before
// anything is allocated for it; through Open and Next it is skipped and counted.
func TestCompressedFrameClaimingHugeSizeIsRefused(t *testing.T) {
	data := corruptCompressedSegment(1 << 30)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fr := newFrameReader(bytes.NewReader(data), segHeaderSize, int64(len(data)), nil)
	_, _, _, err := fr.next(true)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errCorrupt) {
		t.Fatalf("next: %v, want corrupt", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte frame", grew, len(data))
	}
	// A frame whose claimed size is within bounds but wrong is corrupt too.
	wrong := corruptCompressedSegment(8 << 10)
	fr = newFrameReader(bytes.NewReader(wrong), segHeaderSize, int64(len(wrong)), nil)
	if _, _, _, err := fr.next(true); !errors.Is(err, errCorrupt) || !bytes.Contains([]byte(err.Error()), []byte("s2")) {
		t.Fatalf("next with a wrong decoded size: %v, want corrupt", err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(dir)
	s := mustOpen(t, opts)
	good := logPayload(true, 5, 8<<10)
	noNext(t, s)
	if got := metricValue(t, opts.Metrics.SpoolCorrupt); got < 1 {
		t.Errorf("corrupt frames counted: %v, want at least 1", got)
	}
	mustAppend(t, s, good)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if f := mustNext(t, s); !bytes.Equal(f.Payload, good) {
		t.Fatal("frame after the corrupt one differs")
	}
}

// Data that does not compress (already compressed, random) is stored raw: it never takes
// more room than with compression off.
func TestIncompressibleFrameStoredRaw(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.Compression = CompressS2
	opts.CompressBacklog = -1 // every frame, whatever the backlog
	s := mustOpen(t, opts)
	p := mixedPayloads()[2] // random bytes
	mustAppend(t, s, p)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Stats().Bytes, int64(segHeaderSize)+frameSize(len(p)); got != want {
		t.Errorf("%d bytes on disk, want %d: the raw frame", got, want)
	}
	if f := mustNext(t, s); !bytes.Equal(f.Payload, p) {
		t.Fatal("payload differs")
	}
}

// Frames are compressed only while a backlog builds up: while every frame is acknowledged
// before the next is appended (the destination keeps up) they are stored raw and cost no
// compression CPU; once acks stop, frames past the backlog threshold are compressed.
func TestCompressionOnlyWithABacklog(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.Compression = CompressS2
	opts.CompressBacklog = 64 << 10
	s := mustOpen(t, opts)
	defer s.Close()
	const size = 16 << 10
	stored := func() int64 { return s.Stats().Bytes }
	for i := range 8 {
		mustAppend(t, s, logPayload(i%2 == 0, uint64(i), size))
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(mustNext(t, s).Seq); err != nil {
			t.Fatal(err)
		}
	}
	before := stored()
	if min := int64(segHeaderSize) + 8*frameSize(size); before < min {
		t.Fatalf("%d bytes on disk after 8 acknowledged frames, want the raw %d: compressed while keeping up", before, min)
	}
	// No acks from here: the first 4 frames (4 × 16 KiB ≤ 64 KiB) go raw, the rest compressed.
	for i := range 16 {
		mustAppend(t, s, logPayload(i%2 == 0, uint64(100+i), size))
	}
	raw := 5 * frameSize(size) // frames 1-4 and the one whose backlog was exactly at the bound
	if grew := stored() - before; grew >= raw+11*frameSize(size)/2 {
		t.Fatalf("16 frames without acks took %d bytes: the ones past the backlog were not compressed", grew)
	}
}
