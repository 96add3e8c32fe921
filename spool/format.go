package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	segMagic        = "kinspool"
	segVersion      = 1
	segHeaderSize   = 32
	frameHeaderSize = 24

	frameInvalid = 0
	frameData    = 1
	frameAck     = 2
	// frameDelivered stands for a data frame the destination acknowledged before any commit
	// wrote it (Options.Write backlog): it takes the frame's seq and carries the caller's
	// Options.Stub of it (file positions), never the record. It counts as a data frame for
	// the seq order; Next never hands it out; Replay does, with Frame.Delivered set.
	frameDelivered = 3

	// MaxPayload bounds one frame's payload, far above a Kinesis record (10 MiB at most).
	MaxPayload = 256 << 20

	readBufSize = 256 << 10
)

// holdsSeq tells whether a frame of type typ takes a data seq (data or delivered): the frames
// that must carry consecutive seqs.
func holdsSeq(typ byte) bool { return typ == frameData || typ == frameDelivered }

// castagnoli is read-only after package initialisation; crc32 uses SSE4.2/ARMv8 CRC
// instructions for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks framing that recovery or a reader refuses; anything else from the reader is
// an I/O error.
var errCorrupt = errors.New("corrupt frame")

func pad8(n int) int { return (8 - n%8) % 8 }

func frameSize(payloadLen int) int64 {
	return int64(frameHeaderSize + payloadLen + pad8(payloadLen))
}

func segName(first uint64) string { return fmt.Sprintf("%020d.seg", first) }

func encodeSegHeader(b []byte, first uint64) {
	clear(b[:segHeaderSize])
	copy(b, segMagic)
	binary.LittleEndian.PutUint32(b[8:], segVersion)
	binary.LittleEndian.PutUint64(b[16:], first)
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
}

func decodeSegHeader(b []byte) (first uint64, err error) {
	if len(b) < segHeaderSize {
		return 0, fmt.Errorf("short header (%d bytes): %w", len(b), errCorrupt)
	}
	if string(b[:8]) != segMagic {
		return 0, fmt.Errorf("bad magic %q: %w", b[:8], errCorrupt)
	}
	if crc32.Checksum(b[:24], castagnoli) != binary.LittleEndian.Uint32(b[24:]) {
		return 0, fmt.Errorf("header crc mismatch: %w", errCorrupt)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != segVersion {
		return 0, fmt.Errorf("unsupported version %d: %w", v, errCorrupt)
	}
	return binary.LittleEndian.Uint64(b[16:]), nil
}

// encodeFrameHeader fills h (frameHeaderSize bytes) for a frame whose payload is p, stored raw.
func encodeFrameHeader(h []byte, typ byte, seq uint64, p []byte) {
	encodeFrameHeaderCodec(h, typ, CompressNone, seq, p)
}

// encodeFrameHeaderCodec fills h for a frame whose payload on disk is p, encoded with codec.
// The CRC covers p as stored, so damage is caught before anything is decompressed.
func encodeFrameHeaderCodec(h []byte, typ byte, codec Compression, seq uint64, p []byte) {
	clear(h[:frameHeaderSize])
	h[0] = typ
	h[1] = byte(codec)
	binary.LittleEndian.PutUint32(h[4:], uint32(len(p)))
	binary.LittleEndian.PutUint64(h[8:], seq)
	crc := crc32.Update(crc32.Checksum(h[:16], castagnoli), castagnoli, p)
	binary.LittleEndian.PutUint32(h[16:], crc)
}

// frameReader walks the frames of one segment through a reused buffer. Payloads that fit in
// the buffer are copied out of it; bigger ones are read straight into their own slice, so a
// 1 MiB frame costs one copy from the kernel.
type frameReader struct {
	r      io.ReaderAt
	end    int64 // frames are read only below end (the durable or valid size)
	off    int64 // offset of the next frame
	buf    []byte
	bufOff int64 // file offset of buf[0]
	bufLen int
	alloc  func(n int) []byte // payload buffers; nil: make
	// dataFrom > 0 (Next): only data frames at or after this seq are read with their payload;
	// the others (frames handed out already, delivered stubs) are checksummed where they lie,
	// so stepping over them neither allocates nor copies.
	dataFrom uint64
	z        *codecs // decoders for compressed frames; nil: made on first use
	zbuf     []byte  // a compressed payload as read, before decoding
}

func newFrameReader(r io.ReaderAt, off, end int64, buf []byte) *frameReader {
	if cap(buf) < frameHeaderSize {
		buf = make([]byte, 0, frameHeaderSize) // a header must fit; payloads may go around it
	}
	return &frameReader{r: r, off: off, end: end, buf: buf}
}

func (fr *frameReader) reset(r io.ReaderAt, off, end int64) {
	fr.r, fr.off, fr.end, fr.bufLen = r, off, end, 0
}

// window returns file bytes [off, off+n) from the buffer, refilling it if needed.
// n must be <= cap(fr.buf) and off+n <= fr.end.
func (fr *frameReader) window(off int64, n int) ([]byte, error) {
	if off >= fr.bufOff && off+int64(n) <= fr.bufOff+int64(fr.bufLen) {
		s := int(off - fr.bufOff)
		return fr.buf[s : s+n], nil
	}
	want := int64(cap(fr.buf))
	if left := fr.end - off; left < want {
		want = left
	}
	fr.buf = fr.buf[:want]
	got, err := fr.r.ReadAt(fr.buf, off)
	fr.bufOff, fr.bufLen = off, got
	if got < n {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("file ends at %d: %w", off+int64(got), errCorrupt)
		}
		return nil, err
	}
	return fr.buf[:n], nil
}

// next reads the frame at fr.off. With wantPayload false the payload is only checksummed and
// the returned slice is nil. It returns io.EOF exactly at fr.end; errors wrapping errCorrupt
// mean the bytes at fr.off are not a valid frame (fr.off is left there).
func (fr *frameReader) next(wantPayload bool) (typ byte, seq uint64, payload []byte, err error) {
	if fr.off >= fr.end {
		return 0, 0, nil, io.EOF
	}
	if fr.end-fr.off < frameHeaderSize {
		return 0, 0, nil, fmt.Errorf("%d trailing bytes: %w", fr.end-fr.off, errCorrupt)
	}
	h, err := fr.window(fr.off, frameHeaderSize)
	if err != nil {
		return 0, 0, nil, err
	}
	typ = h[0]
	if typ != frameData && typ != frameAck && typ != frameDelivered {
		return 0, 0, nil, fmt.Errorf("frame type %d: %w", typ, errCorrupt)
	}
	if h[2]|h[3]|h[20]|h[21]|h[22]|h[23] != 0 {
		return 0, 0, nil, fmt.Errorf("reserved bytes set: %w", errCorrupt)
	}
	codec := Compression(h[1])
	if codec > CompressZstd || (typ != frameData && codec != CompressNone) {
		return 0, 0, nil, fmt.Errorf("codec %d in a frame of type %d: %w", codec, typ, errCorrupt)
	}
	n := int64(binary.LittleEndian.Uint32(h[4:]))
	seq = binary.LittleEndian.Uint64(h[8:])
	want := binary.LittleEndian.Uint32(h[16:])
	// Bound the length by the file before allocating anything for it.
	if n > MaxPayload || n > fr.end-fr.off-frameHeaderSize || (typ == frameAck && n != 0) {
		return 0, 0, nil, fmt.Errorf("length %d with %d bytes left: %w", n, fr.end-fr.off-frameHeaderSize, errCorrupt)
	}
	crc := crc32.Checksum(h[:16], castagnoli)
	start := fr.off + frameHeaderSize
	if wantPayload && holdsSeq(typ) && (fr.dataFrom == 0 || typ == frameData && seq >= fr.dataFrom) {
		switch {
		case codec != CompressNone:
			// Bounded like any payload by what the file holds; decoded below once the CRC
			// has vouched for it.
			if int64(cap(fr.zbuf)) < n {
				fr.zbuf = make([]byte, n)
			}
			payload = fr.zbuf[:n]
		case fr.alloc != nil:
			payload = fr.alloc(int(n))
		default:
			payload = make([]byte, n)
		}
		done := 0
		if start >= fr.bufOff && start < fr.bufOff+int64(fr.bufLen) {
			done = copy(payload, fr.buf[start-fr.bufOff:fr.bufLen])
		}
		if done < int(n) {
			if n-int64(done) < int64(cap(fr.buf)) {
				w, err := fr.window(start+int64(done), int(n)-done)
				if err != nil {
					return 0, 0, nil, err
				}
				copy(payload[done:], w)
			} else if got, err := fr.r.ReadAt(payload[done:], start+int64(done)); got < int(n)-done {
				if err == nil || errors.Is(err, io.EOF) {
					err = fmt.Errorf("file ends inside payload: %w", errCorrupt)
				}
				return 0, 0, nil, err
			}
		}
		crc = crc32.Update(crc, castagnoli, payload)
	} else {
		for done := int64(0); done < n; {
			c := min(n-done, int64(cap(fr.buf)))
			w, err := fr.window(start+done, int(c))
			if err != nil {
				return 0, 0, nil, err
			}
			crc = crc32.Update(crc, castagnoli, w)
			done += c
		}
	}
	if crc != want {
		return 0, 0, nil, fmt.Errorf("crc mismatch: %w", errCorrupt)
	}
	size := frameSize(int(n))
	if fr.off+size > fr.end {
		// The padding is missing: the frame was torn after its payload.
		return 0, 0, nil, fmt.Errorf("padding cut off: %w", errCorrupt)
	}
	if wantPayload && typ == frameData && codec != CompressNone {
		if payload, err = fr.inflate(codec, payload); err != nil {
			return 0, 0, nil, err
		}
	}
	fr.off += size
	return typ, seq, payload, nil
}

// inflate decodes a compressed payload whose CRC was right. A frame that passes its CRC yet
// does not decode, or claims more than MaxPayload, is corrupt: its output is bounded before
// any buffer is allocated for it.
func (fr *frameReader) inflate(codec Compression, z []byte) ([]byte, error) {
	if fr.z == nil {
		fr.z = &codecs{}
	}
	n, err := fr.z.decodedLen(codec, z)
	if err != nil {
		return nil, err
	}
	if n > MaxPayload {
		return nil, fmt.Errorf("decodes to more than %d bytes: %w", MaxPayload, errCorrupt)
	}
	var out []byte
	if fr.alloc != nil {
		out = fr.alloc(n)
	} else {
		out = make([]byte, n)
	}
	if err := fr.z.decompress(codec, out, z); err != nil {
		return nil, err
	}
	return out, nil
}

// resync looks for the frame after corrupt bytes starting at bad, last being the seq of the
// last good data frame before them. Every 8-byte aligned offset after bad is tried: it must
// hold a complete frame (known type, reserved bytes zero, length within the file, CRC right)
// whose seq fits what the skipped bytes could have held, since every frame takes at least
// frameHeaderSize bytes: a data frame needs last < seq <= last+1+skipped/frameHeaderSize, an
// ack frame seq <= that bound. The seq bound keeps stale frames (of other segments or spools
// whose blocks a file system reused) out. found is false when no such frame exists (a torn or
// garbage tail); fr.off is then bad. On success fr.off is the frame found, not yet consumed;
// allow is the largest seq jump its seq may take over last.
func (fr *frameReader) resync(bad int64, last uint64) (found bool, allow uint64, err error) {
	for off := bad + 8; off+frameHeaderSize <= fr.end; off += 8 {
		fr.off = off
		typ, seq, _, err := fr.next(false)
		if err != nil && !errors.Is(err, errCorrupt) {
			fr.off = bad
			return false, 0, err
		}
		if err != nil {
			continue
		}
		allow = uint64(off-bad) / frameHeaderSize
		if (holdsSeq(typ) && seq > last && seq <= last+1+allow) || (typ == frameAck && seq <= last+1+allow) {
			fr.off = off
			return true, allow, nil
		}
	}
	fr.off = bad
	return false, 0, nil
}

// lostIn tells how many data frames the bytes [from, end) held after the data frame last,
// bytes that recovery is about to cut or set aside: the highest seq of a valid data frame
// found in them (stepping over bad bytes the way resync does), or one for damage that hides
// every frame, unless the bytes are all zero (a preallocated or never written extent). hi is
// the highest seq found (last when none).
func lostIn(r io.ReaderAt, from, end int64, last uint64, buf []byte) (frames, hi uint64) {
	fr := newFrameReader(r, from, end, buf[:0])
	hi = last
	bad := from
	for {
		found, allow, err := fr.resync(bad, hi)
		if err != nil || !found {
			break
		}
		for {
			at := fr.off
			typ, seq, _, err := fr.next(false)
			if err != nil || (holdsSeq(typ) && (seq <= hi || seq > hi+1+allow)) {
				bad = at
				break
			}
			if holdsSeq(typ) {
				hi, allow = seq, 0
			}
		}
		if bad >= end {
			break
		}
	}
	if hi > last {
		return hi - last, hi
	}
	if !allZero(r, from, end, buf) {
		return 1, hi
	}
	return 0, hi
}

func allZero(r io.ReaderAt, from, end int64, buf []byte) bool {
	buf = buf[:cap(buf)]
	if len(buf) == 0 {
		buf = make([]byte, 4096)
	}
	for off := from; off < end; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		for _, b := range buf[:n] {
			if b != 0 {
				return false
			}
		}
		if n == 0 || (err != nil && !errors.Is(err, io.EOF)) {
			return n == 0 && errors.Is(err, io.EOF)
		}
		off += int64(n)
	}
	return true
}

// segFirst reads the first seq from a segment's header.
func segFirst(r io.ReaderAt) (uint64, error) {
	var hb [segHeaderSize]byte
	if n, err := r.ReadAt(hb[:], 0); n < segHeaderSize {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("short header: %w", errCorrupt)
		}
		return 0, err
	}
	return decodeSegHeader(hb[:])
}

// badRange is a stretch of corrupt bytes inside a segment that resync stepped over.
type badRange struct {
	off, n int64
	err    error
}

// scanResult is what a full pass over one segment found.
type scanResult struct {
	first    uint64
	last     uint64      // last data seq; first-1 when the segment holds none
	frames   int         // data frames
	ack      uint64      // highest ack frame (0 when none)
	validEnd int64       // offset just after the last valid frame
	err      error       // why scanning stopped before the end of the file (wraps errCorrupt), or an I/O error
	skipped  []badRange  // corrupt stretches with valid frames after them (mid-segment corruption)
	gaps     []lostRange // data seqs missing behind skipped stretches: frames they destroyed
}

// lostRange is an inclusive range of sequence numbers; last is math.MaxUint64 when it is open.
type lostRange struct{ first, last uint64 }

// scanSegment validates a segment of the given size held by r. With resync false the scan
// stops at the first bad frame (the newest segment at Open: see the package doc); with
// resync true it steps over bad bytes followed by a valid frame.
func scanSegment(r io.ReaderAt, size int64, buf []byte, resync bool) scanResult {
	var hb [segHeaderSize]byte
	got, err := r.ReadAt(hb[:], 0)
	if got < segHeaderSize {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("short header (%d bytes): %w", got, errCorrupt)
		}
		return scanResult{err: err}
	}
	first, err := decodeSegHeader(hb[:])
	if err != nil {
		return scanResult{err: err}
	}
	res := scanResult{first: first, last: first - 1, validEnd: segHeaderSize}
	if cap(buf) > int(size) {
		buf = buf[:0:size] // never hold more than the file itself
	}
	fr := newFrameReader(r, segHeaderSize, size, buf)
	var allow uint64 // seq jump allowed after a skipped stretch
	for {
		at := fr.off
		typ, seq, _, err := fr.next(false)
		if err == io.EOF {
			return res
		}
		if err == nil && holdsSeq(typ) && (seq <= res.last || seq > res.last+1+allow) {
			fr.off = at
			err = fmt.Errorf("seq %d, want %d: %w", seq, res.last+1, errCorrupt)
		}
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				res.err = fmt.Errorf("frame at %d: %w", at, err)
				return res
			}
			// Bad bytes followed by a valid frame are corruption inside the segment: skip
			// them. With nothing valid after them they are a torn tail: stop there.
			if !resync {
				res.err = fmt.Errorf("frame at %d: %w", at, err)
				return res
			}
			found, a, rerr := fr.resync(at, res.last)
			if rerr != nil {
				res.err = fmt.Errorf("frame at %d: %w", at, rerr)
				return res
			}
			if !found {
				res.err = fmt.Errorf("frame at %d: %w", at, err)
				return res
			}
			res.skipped = append(res.skipped, badRange{off: at, n: fr.off - at, err: err})
			allow = a
			continue
		}
		if holdsSeq(typ) {
			if seq > res.last+1 {
				res.gaps = append(res.gaps, lostRange{res.last + 1, seq - 1})
			}
			res.last = seq
			res.frames++
			allow = 0
		} else if seq > res.ack {
			res.ack = seq
		}
		res.validEnd = fr.off
	}
}
