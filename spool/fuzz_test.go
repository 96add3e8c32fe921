package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// buildSegment returns a segment image holding data frames of the given sizes (seqs from
// first on) with an ack frame after every third one.
func buildSegment(first uint64, sizes ...int) []byte {
	b := make([]byte, segHeaderSize)
	encodeSegHeader(b, first)
	var h [frameHeaderSize]byte
	for i, n := range sizes {
		p := payloadFor(first+uint64(i), n)
		encodeFrameHeader(h[:], frameData, first+uint64(i), p)
		b = append(b, h[:]...)
		b = append(b, p...)
		b = append(b, make([]byte, pad8(n))...)
		if i%3 == 2 {
			encodeFrameHeader(h[:], frameAck, first+uint64(i-1), nil)
			b = append(b, h[:]...)
		}
	}
	return b
}

func fuzzSeeds() [][]byte {
	valid := buildSegment(7, 0, 1, 13, 100, 300, 8)
	flipped := bytes.Clone(valid)
	flipped[len(flipped)-3] ^= 0x40
	hugeLen := buildSegment(1, 10)
	binary.LittleEndian.PutUint32(hugeLen[segHeaderSize+4:], 200<<20)
	// Compressed frames (s2, zstd, and raw ones between them), one with a right CRC whose s2
	// header claims 1 GiB, and a zstd one with a flipped bit in its compressed bytes.
	zs := buildCompressedSegment(3, CompressS2, CompressNone, CompressZstd, CompressS2)
	zflip := buildCompressedSegment(1, CompressZstd)
	zflip[len(zflip)-20] ^= 0x08
	// Corruption inside a segment with valid frames after it: resynchronisation paths.
	midFlip := buildSegment(3, 40, 500, 17, 64, 9)
	midFlip[segHeaderSize+int(frameSize(40))+60] ^= 0x02
	zeroed := buildSegment(1, 700, 700, 700, 700, 700, 700, 700)
	clear(zeroed[1024 : 1024+1500])
	badSeq := buildSegment(1, 30, 30, 30)
	binary.LittleEndian.PutUint64(badSeq[segHeaderSize+8:], 99) // crc no longer matches either
	// Delivered stubs (backlog mode) between data frames, and one with a bad codec byte.
	delivered := buildSegment(5, 40, 30)
	var dh [frameHeaderSize]byte
	stub := []byte("stub of 40 bytes")
	for _, seq := range []uint64{7, 8} {
		encodeFrameHeaderCodec(dh[:], frameDelivered, CompressNone, seq, stub)
		delivered = append(delivered, dh[:]...)
		delivered = append(delivered, stub...)
		delivered = append(delivered, make([]byte, pad8(len(stub)))...)
	}
	delivered = append(delivered, buildSegment(9, 20)[segHeaderSize:]...)
	badCodec := bytes.Clone(delivered)
	badCodec[segHeaderSize+int(frameSize(40)+frameSize(30))+1] = byte(CompressS2)
	return [][]byte{
		nil,
		valid[:segHeaderSize],
		valid,
		valid[:len(valid)-5],
		append(bytes.Clone(valid), make([]byte, 64)...),
		flipped,
		hugeLen,
		buildSegment(1, 1000),
		zs,
		corruptCompressedSegment(1 << 30),
		zflip,
		midFlip,
		zeroed,
		badSeq,
		delivered,
		badCodec,
	}
}

// buildCompressedSegment returns a segment image with one log payload per codec given.
func buildCompressedSegment(first uint64, kinds ...Compression) []byte {
	b := make([]byte, segHeaderSize)
	encodeSegHeader(b, first)
	var z codecs
	defer z.close()
	var h [frameHeaderSize]byte
	for i, c := range kinds {
		p := logPayload(i%2 == 0, uint64(i), 2<<10)
		var scratch []byte
		stored, used := z.compress(c, &scratch, p)
		encodeFrameHeaderCodec(h[:], frameData, used, first+uint64(i), stored)
		b = append(b, h[:]...)
		b = append(b, stored...)
		b = append(b, make([]byte, pad8(len(stored)))...)
	}
	return b
}

// FuzzSegmentReader feeds arbitrary bytes as a segment file: recovery's scan and the reader
// must not panic, must not allocate for lengths the file cannot hold (nor decode compressed
// frames beyond MaxPayload), and must return only frames whose CRC is right, decoded.
func FuzzSegmentReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	bufs := [][]byte{make([]byte, 0, 40), make([]byte, 0, readBufSize)} // tiny: every refill path
	var z codecs
	defer z.close()
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for _, buf := range bufs {
			res := scanSegment(r, int64(len(data)), buf, true)
			if res.validEnd > int64(len(data)) {
				t.Fatalf("validEnd %d beyond %d bytes", res.validEnd, len(data))
			}
			if res.err == nil && res.validEnd != int64(len(data)) {
				t.Fatalf("scan stopped at %d of %d without an error", res.validEnd, len(data))
			}
			// The newest segment's scan stops at the first bad frame; what recovery then
			// counts as lost in the rest must agree with the seqs that rest can hold.
			if cut := scanSegment(r, int64(len(data)), buf, false); cut.validEnd > 0 && cut.err != nil {
				rest := int64(len(data)) - cut.validEnd
				lost, hi := lostIn(r, cut.validEnd, int64(len(data)), cut.last, buf)
				switch {
				case hi < cut.last, hi > cut.last && lost != hi-cut.last, hi == cut.last && lost > 1:
					t.Fatalf("lostIn: %d lost, highest seq %d after %d", lost, hi, cut.last)
				case hi-cut.last > uint64(rest)/frameHeaderSize+1:
					t.Fatalf("lostIn: seq %d after %d in %d bytes", hi, cut.last, rest)
				}
			}
			if res.validEnd == 0 {
				continue
			}
			fr := newFrameReader(r, segHeaderSize, res.validEnd, buf)
			fr.z = &z
			frames, undecodable := 0, false
			last, allow, skips := res.first-1, uint64(0), 0
			for {
				at := fr.off
				typ, seq, p, err := fr.next(true)
				if err == io.EOF {
					break
				}
				h := data[at : at+frameHeaderSize]
				if err != nil && h[1] != 0 && errors.Is(err, errCorrupt) && crcRight(fr, at) {
					// The CRC vouched for the stored bytes, which the decoder refused; only
					// the reader decodes, so the scan took the frame.
					undecodable = true
					break
				}
				if err == nil && holdsSeq(typ) && (seq <= last || seq > last+1+allow) {
					fr.off, err = at, errCorrupt
				}
				if err != nil {
					// Inside the valid prefix only the stretches the scan skipped may be bad.
					found, a, rerr := fr.resync(at, last)
					if rerr != nil || !found {
						t.Fatalf("frame at %d inside the valid prefix: %v, and no resync (%v)", at, err, rerr)
					}
					allow = a
					skips++
					continue
				}
				if !holdsSeq(typ) {
					continue
				}
				frames++
				if seq <= last {
					t.Fatalf("frame at %d: seq %d after %d", at, seq, last)
				}
				last, allow = seq, 0
				stored := data[at+frameHeaderSize : at+frameHeaderSize+int64(binary.LittleEndian.Uint32(h[4:]))]
				if h[1] == 0 && !bytes.Equal(p, stored) {
					t.Fatalf("frame at %d: payload differs from the file", at)
				}
				if len(p) > MaxPayload {
					t.Fatalf("frame at %d: %d bytes decoded", at, len(p))
				}
				crc := crc32.Update(crc32.Checksum(h[:16], castagnoli), castagnoli, stored)
				if crc != binary.LittleEndian.Uint32(h[16:]) {
					t.Fatalf("frame at %d returned with a bad crc", at)
				}
			}
			if !undecodable && (frames != res.frames || skips != len(res.skipped)) {
				t.Fatalf("reader saw %d data frames and %d bad stretches, scan %d and %d", frames, skips, res.frames, len(res.skipped))
			}
		}
	})
}

// TestReaderBoundsLengthBeforeAllocating: a header claiming 200 MiB in a tiny file must not
// make anything allocate 200 MiB.
func TestReaderBoundsLengthBeforeAllocating(t *testing.T) {
	data := fuzzSeeds()[6]
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := scanSegment(bytes.NewReader(data), int64(len(data)), nil, true)
	fr := newFrameReader(bytes.NewReader(data), segHeaderSize, int64(len(data)), make([]byte, 0, 64))
	_, _, _, err := fr.next(true)
	runtime.ReadMemStats(&after)
	if !errors.Is(res.err, errCorrupt) || !errors.Is(err, errCorrupt) {
		t.Fatalf("scan %v, next %v: want corrupt", res.err, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte file", grew, len(data))
	}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzSegmentReader from fuzzSeeds when
// SPOOL_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SPOOL_WRITE_CORPUS") != "1" {
		t.Skip("set SPOOL_WRITE_CORPUS=1 to regenerate the committed seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSegmentReader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds() {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// crcRight tells whether the frame at off passes its CRC (without decoding its payload).
func crcRight(fr *frameReader, off int64) bool {
	fr.off = off
	_, _, _, err := fr.next(false)
	fr.off = off
	return err == nil
}
